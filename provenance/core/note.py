"""Signed notes and checkpoints in the C2SP text formats, and the workspace's log key.

A *signed note* (C2SP ``signed-note``) is text ending in a newline, a blank line, then
one line per signature: ``— <key name> <base64(key hash (4 bytes) || signature)>``. The
key hash is the first four bytes of ``SHA-256(name || "\\n" || 0x01 || public key)``
(0x01: Ed25519). A *checkpoint* (C2SP ``tlog-checkpoint``) is a note whose text is the
log's origin line, its tree size in decimal and its root hash in base64, each on its own
line. A verifier key is written ``<name>+<8 hex digits of the key hash>+<base64(0x01 ||
public key)>``; the private key file holds ``PRIVATE+KEY+<name>+<hash>+<base64(0x01 ||
seed)>``, the form the Go ``note`` package reads.

The log key is the workspace's own Ed25519 key for its Merkle logs, kept apart from the
C2PA signing identity and the audit chain's key: ``keys/log.key`` (0600) and
``keys/log.vkey`` (the verifier key to hand to partners). It is made by ``provkit keys
init`` or ``provkit log key --init``, never on the side by an append: a log without a
key still records its leaves, and its checkpoints start when the key exists.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from provkit.provenance.core import workspace
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.core.files import atomic_write

ED25519 = 0x01
KEY_FILE, VKEY_FILE = "log.key", "log.vkey"
SIG_PREFIX = "\u2014 "
#: A note this large is not a checkpoint (bounded reading of untrusted files).
MAX_NOTE = 64 * 1024


class SignatureError(BadInput):
    """A well-formed note that the given key did not sign (forged, altered, or another
    key's): a finding, not unreadable input."""

    exit_code = 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def key_hash(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise BadInput(f"a key name has no spaces and no '+': {name!r}")


@dataclass(frozen=True)
class Verifier:
    """A public key that checks note signatures: its name, key hash and Ed25519 key."""

    name: str
    hash: bytes
    public: bytes

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """A verifier key ``name+hash+base64``; BadInput naming what is wrong."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise BadInput("a log key is NAME+HASH+KEY (C2SP note verifier key)")
        name, hexhash, keydata = parts
        _check_name(name)
        try:
            raw = _unb64(keydata)
            wanted = bytes.fromhex(hexhash)
        except (binascii.Error, ValueError):
            raise BadInput("the log key's hash or key data is not hex/base64") from None
        if len(raw) != 33 or raw[0] != ED25519 or len(wanted) != 4:
            raise BadInput("the log key is not an Ed25519 note verifier key")
        public = raw[1:]
        if key_hash(name, public) != wanted:
            raise BadInput("the log key's hash does not match its name and key")
        return cls(name, wanted, public)

    def __str__(self) -> str:
        return f"{self.name}+{self.hash.hex()}+{_b64(bytes([ED25519]) + self.public)}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric import ed25519

        try:
            ed25519.Ed25519PublicKey.from_public_bytes(self.public).verify(signature, text)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private note key: signs a note's text."""

    name: str
    seed: bytes

    @classmethod
    def generate(cls, name: str) -> Signer:
        _check_name(name)
        return cls(name, secrets.token_bytes(32))

    @classmethod
    def parse(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise ConfigError("the log key file is not a PRIVATE+KEY+NAME+HASH+KEY line")
        name, raw = parts[2], _unb64(parts[4])
        if len(raw) != 33 or raw[0] != ED25519:
            raise ConfigError("the log key file does not hold an Ed25519 key")
        signer = cls(name, raw[1:])
        if signer.verifier().hash.hex() != parts[3]:
            raise ConfigError("the log key file's hash does not match its key")
        return signer

    @functools.cached_property
    def _key(self):
        from cryptography.hazmat.primitives.asymmetric import ed25519

        return ed25519.Ed25519PrivateKey.from_private_bytes(self.seed)

    @functools.cached_property
    def _verifier(self) -> Verifier:
        from cryptography.hazmat.primitives import serialization

        public = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return Verifier(self.name, key_hash(self.name, public), public)

    def verifier(self) -> Verifier:
        return self._verifier

    def __str__(self) -> str:
        v = self.verifier()
        return f"PRIVATE+KEY+{self.name}+{v.hash.hex()}+{_b64(bytes([ED25519]) + self.seed)}"

    def sign(self, text: str) -> str:
        """The signed note of ``text`` (which must end in a newline)."""
        if not text.endswith("\n") or "\n\n" in text:
            raise ValueError("a note's text ends in one newline and has no blank line")
        v = self.verifier()
        sig = self._key.sign(text.encode())
        return f"{text}\n{SIG_PREFIX}{self.name} {_b64(v.hash + sig)}\n"


# ------------------------------------------------------------------ notes and checkpoints


def open_note(note: str, verifier: Verifier) -> str:
    """The text of ``note`` when it carries a good signature by ``verifier``;
    BadInput saying why not."""
    if len(note) > MAX_NOTE:
        raise BadInput("the note is too large to be a checkpoint")
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise BadInput("not a signed note: no blank line before the signatures")
    text, sigs = note[: cut + 1], note[cut + 2 :]
    for line in sigs.splitlines():
        if not line.startswith(SIG_PREFIX):
            raise BadInput("not a signed note: a signature line does not start with '— '")
        parts = line[len(SIG_PREFIX) :].split(" ")
        if len(parts) != 2:
            raise BadInput("not a signed note: a malformed signature line")
        name, blob = parts
        try:
            raw = _unb64(blob)
        except (binascii.Error, ValueError):
            raise BadInput("not a signed note: a signature is not base64") from None
        if name == verifier.name and raw[:4] == verifier.hash and len(raw) == 68:
            if verifier.verify(text.encode(), raw[4:]):
                return text
            raise SignatureError(
                f"the signature by {name} does not verify: the note was altered or forged"
            )
    raise SignatureError(f"the note carries no signature by the key {verifier.name}")


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement of a log: its origin, tree size and root hash."""

    origin: str
    size: int
    root: bytes
    note: str  # the signed note text, exactly as signed

    def to_json(self) -> dict:
        return {
            "origin": self.origin,
            "size": self.size,
            "root": _b64(self.root),
            "note": self.note,
        }


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{_b64(root)}\n"


def sign_checkpoint(signer: Signer, origin: str, size: int, root: bytes) -> Checkpoint:
    return Checkpoint(origin, size, root, signer.sign(checkpoint_text(origin, size, root)))


def read_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """A checkpoint whose signature by ``verifier`` holds; BadInput otherwise."""
    lines = open_note(note, verifier).split("\n")
    if len(lines) < 4:
        raise BadInput("not a checkpoint: it needs an origin, a size and a root hash")
    origin, size, root = lines[:3]
    if not size.isdigit() or (len(size) > 1 and size[0] == "0"):
        raise BadInput(f"not a checkpoint: tree size {size!r} is not a decimal number")
    try:
        digest = _unb64(root)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 32 or not origin:
        raise BadInput("not a checkpoint: the root hash is not 32 bytes in base64")
    return Checkpoint(origin, int(size), digest, note)


def load_note(path) -> str:
    """A note file's text (bounded); BadInput naming the file."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_NOTE:
            raise BadInput("too large to be a checkpoint", path=p)
        return p.read_bytes().decode("utf-8")
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=p) from None
    except UnicodeDecodeError:
        raise BadInput("not a text checkpoint (not UTF-8)", path=p) from None


def verifier_from(value) -> Verifier:
    """A verifier key given as the key text or a file that holds it."""
    text = str(value).strip()
    if "+" not in text or Path(text).is_file():
        p = Path(text)
        try:
            text = p.read_text(encoding="utf-8")[:4096]
        except (OSError, UnicodeDecodeError) as e:
            raise BadInput(
                f"cannot read the log key ({getattr(e, 'strerror', None) or e})", path=p
            ) from None
    return Verifier.parse(text)


# ------------------------------------------------------------------ the workspace log key


def key_folder() -> Path:
    d = workspace.home() / "keys"
    if not d.is_dir():
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


_CACHE: dict[str, tuple] = {}
_KEY_PATHS: dict[str | None, str] = {}


def log_signer(*, create: bool = False) -> Signer | None:
    """The workspace's log key (None when there is none and ``create`` is False).
    ``create``: make one (name ``provkit-<8 random hex digits>``) when missing; an
    existing key is never replaced. Cheap when called per append: one stat."""
    home = os.environ.get("PROVKIT_HOME")
    if home not in _KEY_PATHS:
        _KEY_PATHS[home] = str(key_folder() / KEY_FILE)
    name = _KEY_PATHS[home]
    try:
        st = os.stat(name)
        stamp = (st.st_ino, st.st_mtime_ns)
        hit = _CACHE.get(name)
        if hit and hit[0] == stamp:
            return hit[1]
    except FileNotFoundError:
        if not create:
            return None
        key_folder()  # 0700
        path = Path(name)
        signer = Signer.generate(f"provkit-{secrets.token_hex(4)}")
        try:
            atomic_write(path, (str(signer) + "\n").encode(), mode=0o600, overwrite=False)
        except FileExistsError:  # another process made it first: use that one
            return log_signer()
        atomic_write(key_folder() / VKEY_FILE, (str(signer.verifier()) + "\n").encode(), mode=0o600)
        return log_signer()
    signer = Signer.parse(Path(name).read_text(encoding="utf-8"))
    _CACHE[name] = (stamp, signer)
    return signer


def log_verifier() -> Verifier | None:
    signer = log_signer()
    return signer.verifier() if signer else None
