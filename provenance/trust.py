"""Trust sources for validation: which certificate authorities a signer may chain to.

A source is named by a string:

- ``c2pa``: the official C2PA Trust List shipped with provkit (claim-signing CAs of
  conforming products; see ``provenance/data/c2pa/README.md`` for its licence);
- ``local``: the workspace's own development CA (and the CAs it retired), so a
  workspace trusts what it signed itself;
- the name of a trust file added with ``provkit trust add`` (kept in the workspace);
- a path to a PEM file of CA certificates.

The default (``trust=None``) is what a newsroom desk wants: the C2PA Trust List, the
workspace's own CA, and every trust file the desk added. Passing a list replaces the
default (``["c2pa"]`` trusts the C2PA list alone).

The SDK is given the union as its anchors and says ``trusted`` or not; provkit then
names the source that made the signer trusted (:meth:`Trust.source_for`) by finding
the anchor that issued one of the certificates of the signer's chain. Time-stamps are
judged apart, against the C2PA TSA Trust List (:func:`tsa_source_for`).

Why one module: trust sources, their resolution and naming the source that vouched for a
signer are one concept, read together.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from provkit.provenance import keys
from provkit.provenance.core import der, workspace
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.files import atomic_write, read_head

#: What ``trust=None`` means.
DEFAULT_TRUST = ("c2pa", "local", "added")
BUILTIN = ("c2pa", "local")
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def data_file(name: str) -> bytes:
    """A file shipped in ``provenance/data/c2pa``."""
    return resources.files("provkit.provenance.data.c2pa").joinpath(name).read_bytes()


@functools.lru_cache(maxsize=4)
def list_info(stem: str) -> dict:
    """Name and issue date of a shipped list (``C2PA-TRUST-LIST``, ``C2PA-TSA-TRUST-LIST``)."""
    doc = json.loads(data_file(f"{stem}.json"))
    info = (doc.get("LoTE") or {}).get("ListAndSchemeInformation") or {}
    names = info.get("SchemeName") or [{}]
    issued = (info.get("ListIssueDateTime") or "")[:10] or None
    return {
        "name": names[0].get("value") or stem,
        "issued": issued,
        "next_update": (info.get("NextUpdate") or "")[:10] or None,
    }


@dataclass(frozen=True)
class TrustSource:
    """One named set of anchors."""

    name: str
    kind: str  # c2pa | local | added | file
    label: str
    pem: bytes = field(repr=False)
    path: str | None = None
    issued: str | None = None

    @property
    def certificates(self) -> list[bytes]:
        return _PEM.findall(self.pem)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "label": self.label,
            "path": self.path,
            "issued": self.issued,
            "certificates": len(self.certificates),
            "sha256": hashlib.sha256(self.pem).hexdigest(),
        }


def trust_dir() -> Path:
    """Where ``provkit trust add`` keeps a workspace's trust files."""
    return workspace.home() / "trust"


def added_names() -> list[str]:
    d = trust_dir()
    return sorted(p.stem for p in d.glob("*.pem")) if d.is_dir() else []


@functools.lru_cache(maxsize=1)
def c2pa_source() -> TrustSource:
    info = list_info("C2PA-TRUST-LIST")
    return TrustSource(
        "c2pa",
        "c2pa",
        f"C2PA Trust List ({info['issued']})",
        data_file("C2PA-TRUST-LIST.pem"),
        issued=info["issued"],
    )


@functools.lru_cache(maxsize=1)
def tsa_source() -> TrustSource:
    info = list_info("C2PA-TSA-TRUST-LIST")
    return TrustSource(
        "c2pa-tsa",
        "c2pa",
        f"C2PA TSA Trust List ({info['issued']})",
        data_file("C2PA-TSA-TRUST-LIST.pem"),
        issued=info["issued"],
    )


def _read_pem(path: Path) -> bytes:
    try:
        data = read_head(path, 64 << 20)  # a regular file only (never a pipe), bounded
    except OSError as e:
        raise BadInput(f"cannot read trust anchors ({e.strerror or e})", path=path) from None
    if not _PEM.search(data):
        raise BadInput("no PEM certificates in trust anchor file", path=path)
    return data


def source(spec) -> list[TrustSource]:
    """The sources one name stands for (``added`` stands for every added file)."""
    if isinstance(spec, bytes):
        if not _PEM.search(spec):
            raise BadInput("no PEM certificates in the trust anchors given")
        return [TrustSource("anchors", "file", "the trust anchors given", spec)]
    spec = str(spec)
    if spec == "c2pa":
        return [c2pa_source()]
    if spec == "local":
        pem = keys.local_trust_anchors()
        return [TrustSource("local", "local", "local workspace CA", pem)] if pem else []
    if spec == "added":
        return [_added(n) for n in added_names()]
    if _NAME.match(spec) and (trust_dir() / f"{spec}.pem").is_file():
        return [_added(spec)]
    p = Path(spec)
    if p.exists() or "/" in spec or p.suffix:
        return [TrustSource(p.name, "file", p.name, _read_pem(p), path=str(p))]
    raise BadInput(
        f"unknown trust source '{spec}' (c2pa, local, a name from `provkit trust "
        "list`, or a PEM file)"
    )


def _added(name: str) -> TrustSource:
    p = trust_dir() / f"{name}.pem"
    return TrustSource(name, "added", f"{name} (added trust file)", _read_pem(p), path=str(p))


@dataclass(frozen=True)
class Trust:
    """The resolved trust sources of one run."""

    sources: tuple[TrustSource, ...]

    def pem(self) -> bytes:
        return b"\n".join(s.pem.strip() for s in self.sources if s.pem)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def source_for(self, chain: list[bytes]) -> str | None:
        """The label of the first source with an anchor that is, or directly issued,
        a certificate of ``chain`` (DER certificates of the signer's chain)."""
        return _issuing_source(self.sources, tuple(chain))

    def source_for_issuer(self, issuer: dict | None) -> str | None:
        """The label of the first source with an anchor whose subject is ``issuer``
        (``{"CN", "O", ...}`` as crJSON's certificateInfo gives it): for a manifest whose
        chain provkit cannot read from the file's bytes (e.g. base64 inside an SVG)."""
        if not issuer:
            return None
        for s in self.sources:
            for anchor in _load_pem_certs(s.pem):
                if _name_matches(anchor.subject, issuer):
                    return s.label
        return None

    def to_json(self) -> dict:
        return {"sources": [s.to_json() for s in self.sources]}


def resolve(trust=None, *, trust_anchors=None, trust_local: bool = True) -> Trust:
    """The trust of a run: ``trust`` (names, paths or PEM bytes; None: the default)
    plus the older keywords ``trust_anchors`` (one more file) and ``trust_local``."""
    if isinstance(trust, Trust):
        return trust
    if isinstance(trust, (str, bytes, Path)):
        trust = [trust]
    specs = list(DEFAULT_TRUST if trust is None else trust)
    if trust_anchors:
        specs.append(trust_anchors)
    if not trust_local:
        specs = [s for s in specs if s != "local"]
    out: list[TrustSource] = []
    seen = set()
    for spec in specs:
        for s in source(spec):
            key = hashlib.sha256(s.pem).digest()
            if key not in seen:
                seen.add(key)
                out.append(s)
    return Trust(tuple(out))


def trust_pem(trust=None, *, trust_local: bool = True, trust_anchors=None) -> bytes:
    """The PEM the SDK gets as anchors (see :func:`resolve`)."""
    return resolve(trust, trust_anchors=trust_anchors, trust_local=trust_local).pem()


# --------------------------------------------------------------------------- matching


@functools.lru_cache(maxsize=64)
def _load_pem_certs(pem: bytes):
    from cryptography import x509

    out = []
    for block in _PEM.findall(pem):
        try:
            out.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            continue
    return out


@functools.lru_cache(maxsize=256)
def _load_der(der: bytes):
    from cryptography import x509

    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def _issued_by(cert, anchor) -> bool:
    if cert.fingerprint(cert.signature_hash_algorithm or _sha256()) == anchor.fingerprint(
        cert.signature_hash_algorithm or _sha256()
    ):
        return True
    if cert.issuer != anchor.subject:
        return False
    try:
        cert.verify_directly_issued_by(anchor)
    except Exception:  # noqa: BLE001  # wrong key, unsupported algorithm: not this anchor
        return False
    return True


def _name_matches(name, wanted: dict) -> bool:
    from cryptography.x509.oid import NameOID

    oids = {
        "CN": NameOID.COMMON_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "C": NameOID.COUNTRY_NAME,
    }
    keys_ = [k for k in wanted if k in oids]
    if "CN" not in keys_:
        return False
    for k in keys_:
        attrs = name.get_attributes_for_oid(oids[k])
        if not attrs or attrs[0].value != wanted[k]:
            return False
    return True


def _sha256():
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def _by_name(sources: tuple[TrustSource, ...], chain: tuple[bytes, ...]) -> str | None:
    """The source named by the DER alone, where that cannot be wrong; else None.

    Called for a chain the SDK has already validated to one of these anchors: so if the
    anchors that are a chain certificate, or whose subject is byte for byte a chain
    certificate's issuer, all sit in one source, and no anchor of another source bears
    the same common name, that source holds the anchor the SDK used. Anything less clear
    (or unreadable) is left to the signature check below."""
    read = [der.fields(d) for d in chain]
    if not chain or any(r is None for r in read):
        return None
    issuers = {r.issuer_der for r in read}
    names = {r.issuer.get("CN") for r in read} | {r.subject.get("CN") for r in read}
    hits: set[str] = set()
    near: set[str] = set()
    for s in sources:
        for anchor_der in der.pem_certificates(s.pem):
            a = der.fields(anchor_der)
            if a is None:
                return None
            if anchor_der in chain or a.subject_der in issuers:
                hits.add(s.label)
            elif a.subject.get("CN") in names:
                near.add(s.label)
    if len(hits) == 1 and not (near - hits):
        return next(iter(hits))
    return None


@functools.lru_cache(maxsize=256)
def _issuing_source(sources: tuple[TrustSource, ...], chain: tuple[bytes, ...]) -> str | None:
    named = _by_name(sources, chain)
    if named is not None:
        return named
    certs = [c for c in (_load_der(d) for d in chain) if c is not None]
    for s in sources:
        for anchor in _load_pem_certs(s.pem):
            if any(_issued_by(c, anchor) for c in certs):
                return s.label
    return None


def tsa_source_for(chain: list[bytes]) -> str | None:
    """The C2PA TSA Trust List's label if it issued a time-stamping certificate of ``chain``."""
    tsa = [d for d in chain if _is_tsa(_load_der(d))]
    if not tsa:
        return None
    return _issuing_source((tsa_source(),), tuple(tsa))


def _is_tsa(cert) -> bool:
    if cert is None:
        return False
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.TIME_STAMPING in eku


# --------------------------------------------------------------------------- the verb


def trust_list() -> list[dict]:
    """``provkit trust list``: every source there is, built in and added."""
    out = [
        c2pa_source().to_json() | {"default": True},
        {
            **tsa_source().to_json(),
            "default": True,
            "note": "time-stamping authorities only (judged apart from the signer)",
        },
    ]
    local = source("local")
    out.append(
        (
            local[0].to_json()
            if local
            else {
                "name": "local",
                "kind": "local",
                "label": "local workspace CA",
                "certificates": 0,
                "note": "no identity yet (created on first sign)",
            }
        )
        | {"default": True}
    )
    out += [_added(n).to_json() | {"default": True} for n in added_names()]
    return out


def trust_show(name: str) -> dict:
    """``provkit trust show NAME``: one source and the subjects of its certificates."""
    if name in ("c2pa-tsa", "tsa"):
        s = tsa_source()
    else:
        found = source(name)
        if not found:
            raise BadInput(f"trust source '{name}' has no certificates")
        s = found[0]
    subjects = []
    for cert in _load_pem_certs(s.pem):
        subjects.append(
            {
                "subject": cert.subject.rfc4514_string(),
                "not_after": cert.not_valid_after_utc.date().isoformat(),
                "sha256": cert.fingerprint(_sha256()).hex(),
            }
        )
    return s.to_json() | {"certificate_subjects": subjects}


def trust_add(path, *, name: str | None = None, force: bool = False) -> dict:
    """``provkit trust add FILE``: keep a copy of a PEM file as a named trust source."""
    p = Path(path)
    pem = _read_pem(p)
    name = name or p.stem
    if not _NAME.match(name) or name in BUILTIN or name in ("added", "c2pa-tsa", "tsa"):
        raise BadInput(
            f"'{name}' cannot name a trust file (letters, digits, . _ -; not c2pa, local or added)"
        )
    dest = trust_dir() / f"{name}.pem"
    if dest.exists() and not force:
        raise BadInput(f"trust file '{name}' already exists (use --force to replace it)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dest, pem, overwrite=force)
    return _added(name).to_json()


def trust_remove(name: str) -> dict:
    """``provkit trust remove NAME``: forget an added trust file (built-ins cannot go)."""
    if name in BUILTIN:
        raise BadInput(f"'{name}' is built in; leave it out with --trust instead")
    dest = trust_dir() / f"{name}.pem"
    if not _NAME.match(name) or not dest.is_file():
        raise BadInput(f"no added trust file named '{name}' (see `provkit trust list`)")
    info = _added(name).to_json()
    dest.unlink()
    return info | {"removed": True}


#: The names ``provkit trust list/show/add/remove`` call (the CLI mirror).
list_ = trust_list
show = trust_show
add = trust_add
remove = trust_remove
