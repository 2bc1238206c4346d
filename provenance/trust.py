"""Trust anchors for validation: the caller's PEM file plus the workspace's own CA."""

from __future__ import annotations

from provenance import keys
from provenance.manifest import read_anchor_file


def trust_pem(trust=None, *, trust_local: bool = True) -> bytes:
    """The PEM the SDK gets as anchors: the caller's file or bytes plus the local CA."""
    pem = b""
    if trust:
        pem += trust if isinstance(trust, bytes) else read_anchor_file(
            trust)
    if trust_local:
        local = keys.local_trust_anchors()
        if local:
            pem += (b"\n" if pem else b"") + local
    return pem
