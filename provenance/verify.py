"""Validating C2PA credentials, and explaining the outcome in plain sentences.

:func:`verify_file` reads a file with c2pa-python's ``Reader`` under one set of trust
settings and reports exactly the SDK's validation state (``invalid``, ``valid``,
``trusted``), or ``absent`` when there is no manifest. When there is none and
recovery is on, the watermark and the fingerprints are looked up in the ledger
(:mod:`provenance.recovery`); a match is reported as ``recovered``.

Trust: the anchors are the PEM file the caller names plus, by default, the
workspace's own development CA, so a workspace trusts what it signed itself.
"""

from __future__ import annotations

import functools
import itertools
import json
import mmap
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from policies.errors import BadInput
from provenance import imageio
from provenance.manifest import ASSET_ASSERTION, context, source_type_name

#: Hard-binding failures: the bytes are not those the manifest was signed over (always
#: reported for a standalone store, e.g. one recovered from the ledger).
HARD_BINDING_CODES = frozenset({"assertion.dataHash.mismatch", "assertion.bmffHash.mismatch",
                                "assertion.boxesHash.mismatch",
                                "assertion.collectionHash.mismatch"})
STATES = ("absent", "invalid", "valid", "trusted", "recovered")

#: Status code (prefix) -> a sentence a person can act on.
EXPLANATIONS = [
    ("assertion.dataHash.mismatch", "The pixels (or other file bytes) were changed after signing."),
    ("assertion.bmffHash.mismatch", "The file contents were changed after signing."),
    ("assertion.boxesHash.mismatch", "The file contents were changed after signing."),
    ("assertion.collectionHash.mismatch", "The file contents were changed after signing."),
    ("assertion.hashedURI.mismatch", ("The manifest was altered after signing: an assertion "
                                      "does not match the hash the claim recorded.")),
    ("assertion.missing", "The manifest refers to an assertion that is missing."),
    ("assertion.action.", "The manifest's action history is malformed."),
    ("claimSignature.mismatch", ("The signature does not match the claim (wrong key or altered "
                                 "claim).")),
    ("claimSignature.missing", "The manifest has no signature."),
    ("claimSignature.outsideValidity", ("The signature was made outside the certificate's "
                                        "validity period.")),
    ("signingCredential.untrusted", "The signer is not on your trust list."),
    ("signingCredential.invalid", "The signing certificate is not valid for C2PA signing."),
    ("signingCredential.revoked", "The signing certificate has been revoked."),
    ("signingCredential.expired", "The signing certificate has expired."),
    ("timeStamp.untrusted", "The time-stamp authority is not on your trust list."),
    ("timeStamp.mismatch", "The time-stamp does not match the signature."),
    ("ingredient.manifest.missing", "An ingredient's manifest is missing."),
    ("ingredient.hashedURI.mismatch", "An ingredient's manifest was altered."),
    ("manifest.", "The manifest store is malformed."),
    ("claim.", "The claim is malformed."),
    ("general.error", "The manifest could not be validated."),
]


def explain(codes) -> list[str]:
    """Plain sentences for SDK status codes, each sentence once, in code order."""
    out = []
    for code in codes:
        for prefix, sentence in EXPLANATIONS:
            if code == prefix or (prefix.endswith(".") and code.startswith(prefix)):
                if sentence not in out:
                    out.append(sentence)
                break
        else:
            sentence = f"Validation reported {code}."
            if sentence not in out:
                out.append(sentence)
    return out


@dataclass(frozen=True)
class VerifyReport:
    """The credential report for one file."""

    path: str
    state: str
    remote_url: str | None = None
    manifest_label: str | None = None
    title: str | None = None
    signer: dict | None = None
    digital_source_type: str | None = None
    actions: list = field(default_factory=list)
    ingredients: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    explanation: list = field(default_factory=list)
    soft_binding: list = field(default_factory=list)
    training_mining: dict = field(default_factory=dict)
    author: list = field(default_factory=list)
    asset_id: str | None = None
    recovered_by: dict | None = None
    recovered_manifest: dict | None = None
    watermark: dict | None = None

    @property
    def ok(self) -> bool:
        if self.state == "recovered":
            return (self.recovered_manifest or {}).get("state") in ("valid", "trusted")
        return self.state in ("valid", "trusted")

    def to_json(self) -> dict:
        c2pa = {k: v for k, v in self.__dict__.items() if k != "path"}
        return {"path": self.path, "c2pa": c2pa}


# --------------------------------------------------------------------------- parsing


def _codes(results: dict | None, key: str = "failure") -> list[str]:
    if not results:
        return []
    codes = [s["code"] for s in (results.get("activeManifest") or {}).get(key, [])]
    for delta in results.get("ingredientDeltas") or []:
        codes += [s["code"] for s in (delta.get("validationDeltas") or {}).get(key, [])]
    return codes


def _assertion(manifest: dict, *labels):
    for a in manifest.get("assertions", []):
        if a.get("label") in labels or any(a.get("label", "").startswith(lb + "__")
                                           for lb in labels):
            return a.get("data")
    return None


def _actions(manifest: dict) -> list[dict]:
    data = _assertion(manifest, "c2pa.actions.v2", "c2pa.actions") or {}
    out = []
    for a in data.get("actions", []):
        agent = a.get("softwareAgent")
        if isinstance(agent, dict):
            agent = " ".join(str(agent[k]) for k in ("name", "version") if agent.get(k))
        item = {"action": a.get("action"), "software_agent": agent,
                "digital_source_type": source_type_name(a.get("digitalSourceType"))}
        if a.get("parameters"):
            params = {k: v for k, v in a["parameters"].items() if k != "ingredients"}
            if params:
                item["parameters"] = params
        if a.get("when"):
            item["when"] = a["when"]
        out.append(item)
    return out


def _signer(manifest: dict, cert_issuers: dict | None = None) -> dict | None:
    info = manifest.get("signature_info")
    if not info:
        return None
    serial = info.get("cert_serial_number")
    return {"common_name": info.get("common_name"),
            # c2pa-rs reports the signing certificate's organisation as "issuer"
            "organization": info.get("issuer"),
            "issuer": (cert_issuers or {}).get(serial),
            "time": info.get("time"), "alg": info.get("alg"), "serial": serial}


def _soft_bindings(manifest: dict) -> list[dict]:
    import base64

    out = []
    for a in manifest.get("assertions", []):
        if a.get("label", "").split("__")[0] != "c2pa.soft-binding":
            continue
        data = a.get("data") or {}
        for block in data.get("blocks", []):
            try:
                value = base64.b64decode(block.get("value", "")).hex()
            except ValueError:
                value = None
            out.append({"alg": data.get("alg"), "value": value, "scope": block.get("scope")})
    return out


def _training(manifest: dict) -> dict:
    data = _assertion(manifest, "cawg.training-mining", "c2pa.training-mining") or {}
    return {k: (v.get("use") if isinstance(v, dict) else v)
            for k, v in (data.get("entries") or {}).items()}


def _authors(manifest: dict) -> list[str]:
    data = _assertion(manifest, "stds.schema-org.CreativeWork") or {}
    authors = data.get("author") or []
    return [a.get("name") for a in authors if isinstance(a, dict) and a.get("name")]


def state_from_codes(failures, successes=()) -> str:
    """The state validation codes imply: ``invalid`` on any failure other than an
    untrusted signer, else ``trusted`` when the SDK reported a trusted credential."""
    if any(c != "signingCredential.untrusted" for c in failures):
        return "invalid"
    return "trusted" if "signingCredential.trusted" in successes else "valid"


def state_from_results(results: dict | None) -> str:
    """The state a set of recorded validation results implies (for ingredients)."""
    return state_from_codes(_codes(results), _codes(results, "success"))


#: Most ingredient entries one report lists (a store can name the same manifests many times).
MAX_INGREDIENT_NODES = 256


def _ingredients(store: dict, manifest: dict, cert_issuers, walk: dict | None = None
                 ) -> list[dict]:
    """The ingredient tree under ``manifest``, each manifest expanded once.

    A manifest met again (a shared ingredient, or a cycle back to an ancestor) is
    listed with ``"repeated": true`` and its label instead of being expanded again,
    and at most :data:`MAX_INGREDIENT_NODES` entries are listed in all; an entry
    ``{"omitted": N}`` says how many more there were."""
    if walk is None:
        walk = {"seen": set(), "left": MAX_INGREDIENT_NODES}
    manifests = store.get("manifests") or {}
    out = []
    ingredients = manifest.get("ingredients") or []
    for n, ing in enumerate(ingredients):
        if walk["left"] <= 0:
            out.append({"omitted": len(ingredients) - n,
                        "note": f"more ingredients not listed (at most "
                                f"{MAX_INGREDIENT_NODES} per report)"})
            break
        walk["left"] -= 1
        label = ing.get("active_manifest")
        child = manifests.get(label) if label else None
        results = ing.get("validation_results")
        failures = _codes(results)
        item = {"title": ing.get("title"), "relationship": ing.get("relationship"),
                "format": ing.get("format"), "manifest_label": label}
        if child is None:
            item.update(state="absent", failures=failures)
        elif label in walk["seen"]:
            item.update(state=state_from_results(results), failures=failures, repeated=True,
                        explanation=explain(failures), ingredients=[])
        else:
            walk["seen"].add(label)
            if set(failures) - {"signingCredential.untrusted"} <= HARD_BINDING_CODES and \
                    set(failures) & HARD_BINDING_CODES:
                item["note"] = ("only the hard binding fails: the ingredient's bytes are not "
                                "those its manifest was signed over (expected for recovered "
                                "credentials)")
            item.update(
                state=state_from_results(results), failures=failures,
                explanation=explain(failures), signer=_signer(child, cert_issuers),
                digital_source_type=_source_type(child), actions=_actions(child),
                ingredients=_ingredients(store, child, cert_issuers, walk))
        out.append(item)
    return out


def _source_type(manifest: dict) -> str | None:
    for a in _actions(manifest):
        if a.get("digital_source_type"):
            return a["digital_source_type"]
    return None


def _asset_id(manifest: dict) -> str | None:
    data = _assertion(manifest, ASSET_ASSERTION) or {}
    return data.get("asset_id")


#: A DER certificate: SEQUENCE (long form, 2 length bytes) whose first item is a SEQUENCE too.
_DER_CERT = re.compile(rb"\x30\x82(..)\x30\x82", re.DOTALL)
_SIGNATURE_LABEL = b"c2pa.signature\x00"
#: Bytes read past a signature box's stated end: room for the JPEG segment headers
#: (APP11 + JUMBF repeat) that a box split across segments carries in between.
_SEGMENT_SLACK = 4096


def _signature_boxes(data, end: int):
    """``(start, stop)`` of each ``c2pa.signature`` JUMBF box in ``data[:end]``, last first.

    The active manifest is the last in a store, so its box is found first, without
    reading through the thumbnails before it. A box is ``LBox "jumb" LBox "jumd"
    UUID(16) toggles label``: the label sits 33 bytes after the box start, and the
    first four bytes give the box length."""
    pos = data.rfind(_SIGNATURE_LABEL, 0, end)
    while pos != -1:
        start = pos - 33
        if start >= 0 and data[start + 4:start + 8] == b"jumb" and \
                data[start + 12:start + 16] == b"jumd":
            length = int.from_bytes(data[start:start + 4], "big")
            yield start, min(end, start + length + _SEGMENT_SLACK)
        pos = data.rfind(_SIGNATURE_LABEL, 0, pos)


@functools.lru_cache(maxsize=256)
def _issuer_of(der: bytes) -> tuple[str, str] | None:
    """``(serial, issuer name)`` of one DER certificate, or None if it is not one."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    names = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME) or \
        cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(cert.serial_number), names[0].value if names else cert.issuer.rfc4514_string()


def cert_issuers(data, end: int | None = None, *, serials=None) -> dict:
    """Serial number (decimal string) -> issuer, for the certificates in ``data[:end]``.

    Only the manifests' signature boxes are read (the certificate chains live there),
    the active manifest's first; with ``serials`` (the signers' serial numbers) the
    search stops once all are found. ``data`` may be bytes or a memory map."""
    end = len(data) if end is None else end
    wanted = set(serials) if serials is not None else None
    out = {}
    boxes = _signature_boxes(data, end)
    first = next(boxes, None)
    for start, stop in [(0, end)] if first is None else itertools.chain([first], boxes):
        chunk = data[start:stop]
        for m in _DER_CERT.finditer(chunk):
            length = int.from_bytes(m.group(1), "big") + 4
            found = _issuer_of(chunk[m.start(): m.start() + length])
            if found:
                out[found[0]] = found[1]
        if wanted is not None and wanted <= out.keys():
            break
    return out


def report_from_store(path, store: dict, *, state: str, failures: list, remote_url=None,
                      raw=b"", raw_end: int | None = None) -> VerifyReport:
    """A report from a Reader's JSON (``store``) and the state the SDK gave.

    ``raw``: the manifest store or file bytes (or a memory map; ``raw_end`` bounds
    where the manifest can be), for the issuer names in the certificate chains."""
    label = store.get("active_manifest")
    manifests = store.get("manifests") or {}
    manifest = manifests.get(label, {}) if label else {}
    serials = {(m.get("signature_info") or {}).get("cert_serial_number")
               for m in manifests.values()} - {None}
    issuers = cert_issuers(raw, raw_end, serials=serials) if serials and len(raw) else {}
    return VerifyReport(
        path=str(path), state=state, remote_url=remote_url, manifest_label=label,
        title=manifest.get("title"), signer=_signer(manifest, issuers),
        digital_source_type=_source_type(manifest), actions=_actions(manifest),
        ingredients=_ingredients(store, manifest, issuers,
                                 {"seen": {label}, "left": MAX_INGREDIENT_NODES}),
        failures=failures,
        explanation=explain(failures), soft_binding=_soft_bindings(manifest),
        training_mining=_training(manifest), author=_authors(manifest),
        asset_id=_asset_id(manifest),
    )


#: A PNG's IEND chunk: zero length, type, and its fixed CRC.
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _check_complete(path: Path, mime: str, data) -> None:
    """BadInput for a JPEG or PNG whose end is missing (a truncated download).

    Data after the end marker (a motion photo's video, an appended trailer) is fine:
    the JPEG end marker may sit anywhere after the start of scan (entropy-coded data
    never contains it), the PNG IEND chunk anywhere in the file."""
    if mime == "image/jpeg" and data.rfind(b"\xff\xd9", _jpeg_header_end(data)) == -1:
        raise BadInput("truncated image data (no JPEG end marker)", path=path)
    if mime == "image/png" and data.rfind(_PNG_IEND) == -1:
        raise BadInput("truncated image data (no PNG end chunk)", path=path)


def _jpeg_header_end(data) -> int:
    """Where the JPEG segments before the first start-of-scan end (APP11 JUMBF lives there)."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xDA:
            break
        if marker == 0xFF:
            i += 1
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return min(i, len(data))


def _remote_url_from(message: str, data: bytes) -> str | None:
    m = re.search(r"(https?://[^\s)]+)", message)
    if m:
        return m.group(1).rstrip(".,")
    m = re.search(rb"provenance[\"'=>\s]+(https?://[^\"'<\s]+)", data)
    return m.group(1).decode(errors="replace") if m else None


def trust_pem(trust_anchors=None, *, trust_local: bool = True) -> bytes:
    """The PEM the SDK gets as anchors: the caller's file or bytes plus the local CA."""
    from provenance import keys
    from provenance.manifest import read_anchor_file

    pem = b""
    if trust_anchors:
        pem += trust_anchors if isinstance(trust_anchors, bytes) else read_anchor_file(
            trust_anchors)
    if trust_local:
        local = keys.local_trust_anchors()
        if local:
            pem += (b"\n" if pem else b"") + local
    return pem


def read_c2pa(path, *, trust_anchors=None, fetch_remote: bool = False,
              trust_local: bool = True) -> VerifyReport:
    """The C2PA part of verification: embedded or remote manifest, or ``absent``."""
    p = Path(path)
    mime = imageio.sniff(p)
    ctx = context(trust_anchors=trust_pem(trust_anchors, trust_local=trust_local),
                  fetch_remote=fetch_remote)
    try:
        with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            _check_complete(p, mime, data)
            return _read_open_file(p, mime, f, data, ctx, fetch_remote)
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=p) from None


def _read_open_file(p: Path, mime: str, f, data, ctx, fetch_remote: bool) -> VerifyReport:
    """Read the manifest of an open file (``data``: its bytes, memory-mapped)."""
    import c2pa

    try:
        reader = c2pa.Reader(mime, f, context=ctx)
    except c2pa.C2paError.ManifestNotFound:
        return VerifyReport(path=str(p), state="absent",
                            explanation=["The file carries no C2PA manifest."])
    except c2pa.C2paError as e:
        msg = str(e)
        if _is_remote_error(c2pa, e):
            return _remote_report(p, msg, data, fetch_remote)
        if "NotSupported" in msg or "not supported" in msg.lower():
            return VerifyReport(path=str(p), state="absent", explanation=[
                f"The file carries no C2PA manifest ({mime} files cannot carry one)."])
        return VerifyReport(path=str(p), state="invalid", failures=["manifest.unreadable"],
                            explanation=[("A C2PA manifest is present but cannot be parsed "
                                          f"({msg.splitlines()[0]}).")])
    try:
        store = json.loads(reader.json())
        remote_url = reader.get_remote_url() if not reader.is_embedded() else None
    finally:
        reader.close()
    # Reader.get_validation_state() is this same field of this same JSON (parsed once here).
    state = (store.get("validation_state") or "invalid").lower()
    failures = _codes(store.get("validation_results"))
    end = _jpeg_header_end(data) if mime == "image/jpeg" else len(data)
    report = report_from_store(p, store, state=state, failures=failures, remote_url=remote_url,
                               raw=data, raw_end=end)
    if remote_url:
        fetched = f"The manifest was fetched from {remote_url}."
        report = replace(report, explanation=[fetched, *report.explanation])
    return report


def _is_remote_error(c2pa, error) -> bool:
    """Whether the SDK refused because the manifest is remote (c2pa-python raises a plain
    ``C2paError("Remote: must fetch remote manifests from url URL")`` for an unfetched one,
    and ``"Remote: could not fetch the remote manifest ..."`` when fetching failed)."""
    typed = getattr(c2pa.C2paError, "RemoteManifest", None)
    if typed is not None and isinstance(error, typed):
        return True
    msg = str(error)
    return msg.startswith("Remote") or "remote manifest" in msg.lower()


def _remote_report(p: Path, msg: str, data, fetch_remote: bool) -> VerifyReport:
    """``absent`` with the manifest's address: nothing was validated."""
    url = _remote_url_from(msg, data[:1 << 20])
    stored = (f"The manifest is stored remotely at {url}" if url else
              "The manifest is stored remotely (the file does not say where)")
    if fetch_remote:
        why = f"{stored}; fetching it failed ({msg.splitlines()[0]})."
        return VerifyReport(path=str(p), state="absent", remote_url=url,
                            failures=["manifest.inaccessible"], explanation=[why])
    why = f"{stored} and was not fetched (use --fetch-remote)."
    return VerifyReport(path=str(p), state="absent", remote_url=url, explanation=[why])


def verify_file(path, *, trust_anchors=None, fetch_remote: bool = False, db=None,
                recover: bool = True, trust_local: bool = True, image=None) -> VerifyReport:
    """Verify one file's C2PA credentials; recover stripped ones from the ledger.

    ``image``: the file's pixels when the caller has already decoded them (a PIL
    image); recovery then uses them instead of decoding the file again. The ledger
    is only opened when there is something to recover.

    Raises BadInput (exit 2) for a file that cannot be read: missing, empty, not an
    image, truncated."""
    report = read_c2pa(path, trust_anchors=trust_anchors, fetch_remote=fetch_remote,
                       trust_local=trust_local)
    if report.state != "absent" or not recover or report.remote_url:
        return report
    from provenance.recovery import recover_report

    return recover_report(report, db=db, trust_anchors=trust_anchors, trust_local=trust_local,
                          image=image)


def verify(paths, **kwargs) -> list[VerifyReport | BadInput]:
    """:func:`verify_file` over many files; an unreadable file yields its error, not a stop.

    A bad trust anchor file raises at once (it concerns every file). The anchors
    (the file plus the local CA) are read once for the whole batch."""
    kwargs["trust_anchors"] = trust_pem(kwargs.get("trust_anchors"),
                                        trust_local=kwargs.pop("trust_local", True))
    kwargs["trust_local"] = False  # already in the PEM above
    out = []
    for p in paths:
        try:
            out.append(verify_file(p, **kwargs))
        except BadInput as e:
            out.append(e)
    return out
