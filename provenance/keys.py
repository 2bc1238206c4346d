"""The signing identity: a certificate chain and a private key, or a signing callback.

``keys init`` makes a development CA and an ES256 (P-256) leaf certificate with the
extensions C2PA validators require; ``keys import`` adopts an organisation's own
chain and key after checking them. Files live in ``$PROVKIT_HOME/keys/``:

- ``chain.pem``  the signing certificate first, then its issuers (leaf-first)
- ``signer.key`` the private key of the leaf, mode 0600, never printed
- ``ca.pem``     the development CA (only after ``keys init``); trusted by default
  when this workspace verifies files (see :func:`local_trust_anchors`)
- ``ca.key``     the development CA key, mode 0600
- ``retired/``   development CAs an identity replaced (``init --force``, ``import
  --force``); still trusted locally, so files signed before stay ``trusted``. Only CAs
  provkit retired itself count: their SHA-256 is recorded in the workspace database
  (``retired_anchors``), and a PEM dropped into the folder by anyone else is ignored.

The folder is 0700 and every file in it 0600, whatever the umask. An identity is
replaced as one step: the new files are written to ``.pending/`` with a ``COMMIT``
marker last, then moved in; an interrupted swap is finished (marker present) or
discarded (marker absent) by the next process that opens the identity, so the key
always matches its chain.

A key held in a KMS or HSM signs through :meth:`Identity.from_callback`.

Why one module of over 400 lines: creating, importing, checking and loading the
identity share its on-disk layout, the lock that guards it and the chain checks every
path runs; nothing else in provkit touches the key files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from provkit.provenance.core import note, workspace
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.core.files import atomic_write

#: Extended key usages C2PA validators accept for claim signing certificates.
C2PA_EKUS = {
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.36": "documentSigning",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "1.3.6.1.4.1.311.76.59.1.9": "MS C2PA signing",
    "1.3.6.1.4.1.62558.2.1": "C2PA signing",
}

_ALG_FOR_CURVE = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}


def keys_dir() -> Path:
    return workspace.home() / "keys"


def _private_dir(d: Path) -> Path:
    """``d`` created if needed, mode 0700 whatever the umask."""
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    if (d.stat().st_mode & 0o777) != 0o700:
        os.chmod(d, 0o700)
    return d


@contextlib.contextmanager
def _locked(d: Path, *, exclusive: bool = True):
    """Hold the identity folder's lock: writers exclusively, readers shared, so two
    processes never mix one identity's CA with another's chain. A swap an earlier
    process left half-done is settled first (see the module doc)."""
    import fcntl

    _private_dir(d)
    fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "r+b") as f:
        if (d / PENDING).exists():
            fcntl.flock(f, fcntl.LOCK_EX)
            _settle(d)
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


#: Staging folder of an identity swap, and its commit marker.
PENDING, COMMIT = ".pending", "COMMIT"


def _swap(d: Path, files: dict[str, bytes], *, retire_ca: bool) -> None:
    """Replace identity files as one step (caller holds the exclusive lock): stage every
    file, write the commit marker, then move them in (:func:`_settle`)."""
    staging = d / PENDING
    if staging.exists():
        shutil.rmtree(staging)
    _private_dir(staging)
    for name, data in files.items():
        atomic_write(staging / name, data, mode=0o600)
    atomic_write(
        staging / COMMIT,
        json.dumps({"files": sorted(files), "retire_ca": retire_ca}).encode(),
        mode=0o600,
    )
    _settle(d)


def _settle(d: Path) -> None:
    """Finish a committed swap (idempotent: safe to repeat after a crash at any point), or
    discard one that never reached its commit marker."""
    staging = d / PENDING
    if not staging.is_dir():
        return
    marker = staging / COMMIT
    if not marker.exists():
        shutil.rmtree(staging)
        return
    plan = json.loads(marker.read_text())
    staged_ca = staging / "ca.pem"
    if plan.get("retire_ca") and (d / "ca.pem").exists():
        current = (d / "ca.pem").read_bytes()
        if not (staged_ca.exists() and staged_ca.read_bytes() == current):
            _retire(d, current)
            (d / "ca.pem").unlink()
            if "ca.key" not in plan["files"] or not (staging / "ca.key").exists():
                (d / "ca.key").unlink(missing_ok=True)
    if plan.get("retire_ca") and "ca.key" not in plan["files"]:
        (d / "ca.key").unlink(missing_ok=True)
    for name in plan["files"]:
        if (staging / name).exists():
            os.replace(staging / name, d / name)
    marker.unlink()
    shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class CertInfo:
    """What a person needs to know about one certificate."""

    subject: str
    common_name: str | None
    organization: str | None
    issuer: str
    not_before: str
    not_after: str
    sha256: str
    algorithm: str
    serial: str

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Identity:
    """A signing identity: the leaf-first chain and either a key file or a callback."""

    chain_pem: bytes
    alg: str = "es256"
    key_path: Path | None = None
    sign_callback: Callable[[bytes], bytes] | None = field(default=None, compare=False)
    tsa_url: str | None = None

    @classmethod
    def from_callback(
        cls,
        chain_pem: bytes | str,
        sign: Callable[[bytes], bytes],
        *,
        alg: str = "es256",
        tsa_url: str | None = None,
    ) -> Identity:
        """An identity whose key lives elsewhere (KMS, HSM).

        ``sign(data) -> signature`` receives the COSE to-be-signed bytes and returns the
        raw signature (for ES256: the 64-byte r||s form, not DER)."""
        if isinstance(chain_pem, str):
            chain_pem = chain_pem.encode()
        return cls(chain_pem=chain_pem, alg=alg, sign_callback=sign, tsa_url=tsa_url)

    @property
    def certificates(self) -> list:
        from cryptography import x509

        return x509.load_pem_x509_certificates(self.chain_pem)

    @property
    def leaf(self) -> CertInfo:
        return cert_info(self.certificates[0])

    def c2pa_signer(self):
        """A fresh ``c2pa.Signer`` (the SDK consumes signers, so make one per use)."""
        import c2pa

        if self.sign_callback is not None:
            alg = getattr(c2pa.C2paSigningAlg, self.alg.upper())
            return c2pa.Signer.from_callback(
                self.sign_callback, alg, self.chain_pem.decode(), self.tsa_url
            )
        key = self.key_path.read_bytes()  # read per use; never cached in the value
        info = c2pa.C2paSignerInfo(self.alg.encode(), self.chain_pem, key, self.tsa_url)
        return c2pa.Signer.from_info(info)

    def signer_json(self) -> dict:
        leaf = self.leaf
        return {
            "common_name": leaf.common_name,
            "organization": leaf.organization,
            "issuer": leaf.issuer,
            "sha256": leaf.sha256,
        }


def cert_info(cert) -> CertInfo:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import NameOID

    def attr(name, oid):
        values = name.get_attributes_for_oid(oid)
        return values[0].value if values else None

    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        algorithm = f"ECDSA {key.curve.name} ({_ALG_FOR_CURVE.get(key.curve.name, '?').upper()})"
    elif isinstance(key, rsa.RSAPublicKey):
        algorithm = f"RSA {key.key_size}"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        algorithm = "Ed25519"
    else:
        algorithm = type(key).__name__
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        common_name=attr(cert.subject, NameOID.COMMON_NAME),
        organization=attr(cert.subject, NameOID.ORGANIZATION_NAME),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        algorithm=algorithm,
        serial=format(cert.serial_number, "x"),
    )


# --------------------------------------------------------------------------- files


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret with mode 0600 from the first byte (atomic rename)."""
    atomic_write(path, data, mode=0o600)


def _write_public(path: Path, data: bytes) -> None:
    """Certificates too are 0600: the whole key folder is private to its owner."""
    atomic_write(path, data, mode=0o600)


def _pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _load_key(key_pem: bytes):
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(key_pem, password=None)


def _key_pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --------------------------------------------------------------------------- verbs


def make_chain(
    org: str = "provkit development",
    *,
    common_name: str | None = None,
    days: int = 825,
    now: dt.datetime | None = None,
):
    """A fresh development CA and leaf: ``(ca_cert, ca_key, leaf_cert, leaf_key)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now or dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{org} CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        ]
    )
    leaf_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name or f"{org} signer"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days * 2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(leaf_name)
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca_cert, ca_key, leaf_cert, leaf_key


def init(
    org: str = "provkit development", *, force: bool = False, directory: Path | None = None
) -> CertInfo:
    """Create a development CA and signing certificate in the workspace, and the
    workspace's log key when it has none (the log key is never replaced: it is the
    identity of the Merkle logs, whatever signing certificate comes and goes)."""
    d = Path(directory) if directory else keys_dir()
    with _locked(d):
        info = _init(d, org, force)
    if directory is None:
        note.log_signer(create=True)
    return info


def _init(d: Path, org: str, force: bool) -> CertInfo:
    if (d / "chain.pem").exists() and not force:
        raise ConfigError(
            "an identity already exists (use --force to replace it)", path=d / "chain.pem"
        )
    ca_cert, ca_key, leaf_cert, leaf_key = make_chain(org)
    _swap(
        d,
        {
            "ca.key": _key_pem(ca_key),
            "signer.key": _key_pem(leaf_key),
            "ca.pem": _pem(ca_cert),
            "chain.pem": _pem(leaf_cert) + _pem(ca_cert),
        },
        retire_ca=True,
    )
    return cert_info(leaf_cert)


def _retire(d: Path, pem: bytes) -> None:
    """Move a development CA out of service: its certificate to ``retired/`` (still a
    local trust anchor for what it signed) and its fingerprint into the database."""
    digest = sha256_hex(pem)
    _record_retired(digest)
    _private_dir(d / "retired")
    atomic_write(d / "retired" / f"ca-{digest[:16]}.pem", pem, mode=0o600)


def _retired_db():
    db = workspace.connect(None)
    db.conn.execute(
        "CREATE TABLE IF NOT EXISTS retired_anchors (sha256 TEXT PRIMARY KEY, "
        "retired_at TEXT NOT NULL)"
    )
    return db


def _record_retired(digest: str) -> None:
    db = _retired_db()
    try:
        with db.conn:
            db.conn.execute(
                "INSERT OR IGNORE INTO retired_anchors VALUES (?, ?)",
                [digest, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")],
            )
    finally:
        db.conn.close()


def _recorded_retired() -> set[str]:
    path = workspace.default_db_path()
    if not path.exists():
        return set()
    db = workspace.connect(None)
    try:
        rows = db.conn.execute("SELECT sha256 FROM retired_anchors").fetchall()
    except Exception:  # noqa: BLE001  # no such table: nothing was ever retired here
        return set()
    finally:
        db.conn.close()
    return {r[0] for r in rows}


def check_chain(
    chain_pem: bytes,
    key_pem: bytes,
    *,
    chain_path=None,
    key_path=None,
    now: dt.datetime | None = None,
) -> str:
    """Check that a chain and key can sign C2PA manifests; return the algorithm name.

    Raises BadInput with a one-line reason for: unreadable PEM, a key that does not
    match the leaf, an expired (or not yet valid) certificate, a chain that is not
    leaf-first, a leaf without digitalSignature or a C2PA-accepted EKU."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    now = now or dt.datetime.now(dt.UTC)
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise BadInput("no PEM certificates found", path=chain_path) from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise BadInput(f"not an unencrypted PEM private key ({e})", path=key_path) from None
    for child, parent in itertools.pairwise(certs):
        if child.issuer != parent.subject:
            raise BadInput(
                "chain is not leaf-first: each certificate must be followed by its issuer "
                f"('{child.subject.rfc4514_string()}' is followed by "
                f"'{parent.subject.rfc4514_string()}')",
                path=chain_path,
            )
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise BadInput(
                f"certificate '{child.subject.rfc4514_string()}' is not signed by the next "
                "certificate in the chain",
                path=chain_path,
            ) from None
    leaf = certs[0]
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.DER, pub
    ) != leaf.public_key().public_bytes(serialization.Encoding.DER, pub):
        raise BadInput(
            "private key does not match the first (leaf) certificate of the chain", path=key_path
        )
    for cert in certs:
        if cert.not_valid_after_utc < now:
            raise BadInput(
                f"certificate '{cert.subject.rfc4514_string()}' expired on "
                f"{cert.not_valid_after_utc.date().isoformat()}",
                path=chain_path,
            )
        if cert.not_valid_before_utc > now:
            raise BadInput(
                f"certificate '{cert.subject.rfc4514_string()}' is not valid before "
                f"{cert.not_valid_before_utc.isoformat()}",
                path=chain_path,
            )
    try:
        basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        if basic.ca:
            raise BadInput(
                "the first certificate is a CA; the chain must start with the "
                "signing (leaf) certificate",
                path=chain_path,
            )
    except x509.ExtensionNotFound:
        pass
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.digital_signature:
            raise BadInput("leaf certificate lacks the digitalSignature key usage", path=chain_path)
    except x509.ExtensionNotFound:
        pass
    try:
        ekus = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if not any(e.dotted_string in C2PA_EKUS for e in ekus):
            raise BadInput(
                "leaf certificate has no extended key usage C2PA accepts "
                "(emailProtection, documentSigning, C2PA signing, ...)",
                path=chain_path,
            )
    except x509.ExtensionNotFound:
        raise BadInput(
            "leaf certificate has no extended key usage extension; C2PA "
            "requires one (e.g. emailProtection)",
            path=chain_path,
        ) from None
    if leaf.issuer == leaf.subject:
        raise BadInput(
            "leaf certificate is self-signed; C2PA requires a CA-issued signing certificate",
            path=chain_path,
        )
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = _ALG_FOR_CURVE.get(key.curve.name)
        if alg is None:
            raise BadInput(f"unsupported curve {key.curve.name}", path=key_path)
        return alg
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    raise BadInput(f"unsupported key type {type(key).__name__}", path=key_path)


def import_(chain_path, key_path, *, force: bool = False) -> CertInfo:
    """Adopt an organisation's chain (leaf-first PEM) and private key.

    An existing identity is replaced only with ``force``; a development CA it
    replaces is retired (kept as a local trust anchor), not deleted."""
    chain_path, key_path = Path(chain_path), Path(key_path)
    d = keys_dir()
    if (d / "chain.pem").exists() and not force:
        raise ConfigError(
            "an identity already exists (use --force to replace it)", path=d / "chain.pem"
        )
    try:
        chain_pem = chain_path.read_bytes()
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=chain_path) from None
    try:
        key_pem = key_path.read_bytes()
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=key_path) from None
    check_chain(chain_pem, key_pem, chain_path=chain_path, key_path=key_path)
    with _locked(d):
        if (d / "chain.pem").exists() and not force:  # another process got there first
            raise ConfigError(
                "an identity already exists (use --force to replace it)", path=d / "chain.pem"
            )
        # the development CA (if any) no longer signs here: retired in the same swap; the key
        # is stored as PKCS#8 whatever the input's form (a SEC1 "EC PRIVATE KEY" as
        # `openssl ecparam -genkey` writes it, PKCS#1 RSA): the signer reads PKCS#8 only
        _swap(
            d, {"signer.key": _key_pem(_load_key(key_pem)), "chain.pem": chain_pem}, retire_ca=True
        )
    from cryptography import x509

    return cert_info(x509.load_pem_x509_certificates(chain_pem)[0])


def load(directory: Path | None = None) -> Identity:
    """The workspace identity; ConfigError if there is none."""
    d = Path(directory) if directory else keys_dir()
    chain, key = d / "chain.pem", d / "signer.key"
    if (d / PENDING).exists():
        with _locked(d):  # settles the swap an interrupted process left
            pass
    if not chain.exists() or not key.exists():
        raise ConfigError(
            "no signing identity (run `provkit keys init` or `provkit keys import`)", path=d
        )
    with _locked(d, exclusive=False):
        chain_pem = chain.read_bytes()
        key_pem = key.read_bytes()
    alg = check_chain(chain_pem, key_pem, chain_path=chain, key_path=key)
    return Identity(chain_pem=chain_pem, alg=alg, key_path=key)


#: Set to 1 to let signing create a development identity when the workspace has none
#: (what ``--dev-identity`` does for one command). Never the default: an identity made
#: behind the user's back would make a later ``provkit keys init`` refuse, and files
#: signed in between would carry a CA nobody chose.
DEV_IDENTITY_ENV = "PROVKIT_DEV_IDENTITY"


def for_signing(*, dev_identity: bool = False) -> Identity:
    """The workspace identity to sign with. With none, a ConfigError that names ``provkit
    keys init`` — unless ``dev_identity`` (or ``$PROVKIT_DEV_IDENTITY=1``) asks for a
    development identity to be created now."""
    if dev_identity or os.environ.get(DEV_IDENTITY_ENV) == "1":
        return load_or_init()
    d = keys_dir()
    if not (d / "chain.pem").exists() and not (d / PENDING).exists():
        raise ConfigError(
            "no signing identity: run `provkit keys init` (a development CA) or "
            "`provkit keys import` (your own chain) first, or pass --dev-identity",
            path=d,
        )
    return load()


def retiring_ca(directory: Path | None = None) -> str | None:
    """SHA-256 of the development CA that ``init --force`` / ``import --force`` would
    retire now (None when there is none)."""
    ca = (Path(directory) if directory else keys_dir()) / "ca.pem"
    return sha256_hex(ca.read_bytes()) if ca.exists() else None


def load_or_init(org: str = "provkit development") -> Identity:
    """The workspace identity, creating a development one if there is none (only when
    asked: :func:`for_signing` with ``dev_identity``)."""
    d = keys_dir()
    if not (d / "chain.pem").exists():
        with _locked(d):
            if not (d / "chain.pem").exists():  # re-checked under the lock
                _init(d, org, False)
    return load()


@dataclass(frozen=True)
class IdentityInfo:
    """What ``provkit keys show`` reports: the chain, leaf first, and whether it can sign."""

    signer: dict
    chain: list
    algorithm: str | None
    expired: bool
    problem: str | None
    local_trust_anchor: bool
    retired_anchors: int

    def to_json(self) -> dict:
        return dict(self.__dict__)


def show(directory: Path | None = None, *, now: dt.datetime | None = None) -> IdentityInfo:
    """The identity's certificates, leaf first, and whether it can sign now.

    Read without the signing checks, so an expired identity can still be shown:
    ``expired`` says so, ``problem`` gives the reason it cannot sign (None if it can)."""
    from cryptography import x509

    d = Path(directory) if directory else keys_dir()
    chain = d / "chain.pem"
    if d.is_dir():
        with _locked(d, exclusive=False):  # settles a half-done swap first
            pass
    if not chain.exists():
        raise ConfigError(
            "no signing identity (run `provkit keys init` or `provkit keys import`)", path=d
        )
    chain_pem = chain.read_bytes()
    try:
        certificates = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise BadInput("no PEM certificates found", path=chain) from None
    now = now or dt.datetime.now(dt.UTC)
    certs = [cert_info(c).to_json() for c in certificates]
    expired = any(c.not_valid_after_utc < now for c in certificates)
    problem = None
    alg = None
    try:
        key_pem = (d / "signer.key").read_bytes()
    except OSError as e:
        problem = f"cannot read the signing key ({e.strerror or e})"
    else:
        try:
            alg = check_chain(
                chain_pem, key_pem, chain_path=chain, key_path=d / "signer.key", now=now
            )
        except BadInput as e:
            problem = e.reason
    return IdentityInfo(
        signer=certs[0],
        chain=certs,
        algorithm=alg,
        expired=expired,
        problem=problem,
        local_trust_anchor=(d / "ca.pem").exists(),
        retired_anchors=len(_retired(d)),
    )


def _retired(d: Path) -> list[Path]:
    """Retired CA certificates provkit wrote itself (fingerprint recorded in the database)."""
    folder = d / "retired"
    if not folder.is_dir():
        return []
    known = _recorded_retired()
    return [
        p
        for p in sorted(folder.glob("*.pem"))
        if p.is_file() and sha256_hex(p.read_bytes()) in known
    ]


def local_trust_anchors() -> bytes:
    """PEM of the workspace's development CA and the CAs it retired (empty when none).

    A workspace trusts the CAs it made itself, so files it signed verify as
    ``trusted`` here (also after ``keys init --force``) and as ``valid`` anywhere
    else until that CA is configured."""
    d = keys_dir()
    if not d.is_dir():
        return b""
    with _locked(d, exclusive=False):
        parts = [p.read_bytes() for p in [d / "ca.pem", *_retired(d)] if p.exists()]
        root = _imported_root(d)
        if root is not None:
            parts.append(root)
    return b"\n".join(parts)


def _imported_root(d: Path) -> bytes | None:
    """The self-signed root at the end of an imported chain (the workspace's own CA when
    the identity was imported), as PEM; None when the chain ends below its root."""
    chain = d / "chain.pem"
    if not chain.exists() or (d / "ca.pem").exists():
        return None
    from cryptography import x509  # only for an imported chain (~25 ms to import)

    try:
        certs = x509.load_pem_x509_certificates(chain.read_bytes())
    except (OSError, ValueError):
        return None
    last = certs[-1] if certs else None
    if last is None or len(certs) < 2 or last.issuer != last.subject:
        return None
    return _pem(last)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
