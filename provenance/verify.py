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

import json
import mmap
import re
from dataclasses import replace
from pathlib import Path

from provenance.core import imageio
from provenance.core.errors import BadInput, ProvkitError
from provenance.core.guard import reading
from provenance.manifest import context, new_reader
from provenance.recovery import recover_report
from provenance.report import VerifyReport, report_from_store
from provenance.status import status_codes
from provenance.trust import trust_pem

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
        reader = new_reader(mime, f, ctx)
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
    failures = status_codes(store.get("validation_results"))
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
    image, truncated, or anything a reader (the SDK, the certificate parser, the decoder)
    fails on: one guard turns every such failure into a BadInput naming the file."""
    with reading(path, "verify"):
        report = read_c2pa(path, trust_anchors=trust_anchors, fetch_remote=fetch_remote,
                           trust_local=trust_local)
        if report.state != "absent" or not recover or report.remote_url:
            return report
        return recover_report(report, db=db, trust_anchors=trust_anchors,
                              trust_local=trust_local, image=image)

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
        except ProvkitError as e:
            if not isinstance(e, BadInput):
                raise  # a configuration problem concerns every file
            out.append(e)
    return out
