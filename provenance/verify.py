"""Validating C2PA credentials, and explaining the outcome in plain sentences.

:func:`verify_file` reads a file with c2pa-python's ``Reader`` under one set of trust
settings and reports exactly the SDK's validation state (``invalid``, ``valid``,
``trusted``), or ``absent`` when there is no manifest. When there is none and
recovery is on, the watermark and the fingerprints are looked up in the ledger
(:mod:`provenance.recovery`); a match is reported as ``recovered``.

Trust: the sources of :mod:`provenance.trust` (default: the bundled C2PA Trust List,
the workspace's own CA and the trust files added to the workspace); a trusted
report names the source that made the signer trusted.
"""

from __future__ import annotations

import io
import json
import mmap
import re
from dataclasses import replace
from pathlib import Path

from PIL import Image

from provkit.provenance import tc260
from provkit.provenance.core import imageio
from provkit.provenance.core.errors import BadInput, ProvkitError, describe
from provkit.provenance.core.guard import reading
from provkit.provenance.manifest import context, new_reader
from provkit.provenance.report import VerifyReport, report_from_store
from provkit.provenance.status import entries as status_entries
from provkit.provenance.thumbnails import Mode
from provkit.provenance.thumbnails import attach as attach_thumbnails
from provkit.provenance.thumbnails import collect as collect_thumbnails
from provkit.provenance.trust import resolve as resolve_trust

#: A PNG's IEND chunk: zero length, type, and its fixed CRC.
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"

def _check_complete(path: Path, mime: str, data) -> None:
    """BadInput for a JPEG or PNG whose end is missing (a truncated download).

    Data after the end marker (a motion photo's video, an appended trailer) is fine:
    the JPEG end marker may sit anywhere after the start of scan (entropy-coded data
    never contains it), the PNG IEND chunk anywhere in the file."""
    if mime == "image/jpeg":
        header_end = _jpeg_header_end(data)
        if header_end > len(data):
            raise BadInput("truncated image data (a JPEG segment runs past the end of the file)",
                           path=path)
        if data.rfind(b"\xff\xd9", header_end) == -1:
            raise BadInput("truncated image data (no JPEG end marker)", path=path)
    if mime == "image/png" and data.rfind(_PNG_IEND) == -1:
        raise BadInput("truncated image data (no PNG end chunk)", path=path)

def _check_declared_size(path: Path, mime: str) -> None:
    """BadInput for an image whose header declares more pixels than provkit decodes: the
    same cause detect and scan give (checked before the file's completeness)."""
    if not imageio.is_image_mime(mime):
        return
    try:
        with Image.open(path) as img:
            size = img.size
    except Exception:  # noqa: BLE001 - not Pillow's to read (HEIC, JXL...): the SDK reads it
        return
    imageio.check_size(size, path=path)


def _raise_decoder_cause(path: Path, mime: str, sdk_message: str) -> None:
    """BadInput with the image decoder's own cause when the still image does not decode."""
    if not imageio.is_image_mime(mime):
        raise BadInput(f"cannot read ({sdk_message.splitlines()[0]})", path=path)
    with reading(path), Image.open(path) as img:
        imageio.check_size(img.size, path=path)
        img.load()


def _jpeg_header_end(data) -> int:
    """Where the JPEG segments before the first start-of-scan end (APP11 JUMBF lives there);
    past ``len(data)`` when a segment's declared length runs beyond the file."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xDA:
            break
        if marker == 0xFF:
            i += 1
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return i

def _remote_url_from(message: str, data: bytes) -> str | None:
    m = re.search(r"(https?://[^\s)]+)", message)
    if m:
        return m.group(1).rstrip(".,")
    m = re.search(rb"provenance[\"'=>\s]+(https?://[^\"'<\s]+)", data)
    return m.group(1).decode(errors="replace") if m else None

def read_c2pa(path, *, trust=None, fetch_remote: bool = False,
              trust_local: bool = True, ocsp: bool = False, image=None,
              thumbnails: Mode = None) -> VerifyReport:
    """The C2PA part of verification: embedded or remote manifest, or ``absent``.

    ``thumbnails``: None (references only), ``"inline"`` or a ``keep`` callable (see
    :mod:`provenance.thumbnails`).

    ``trust``: trust source names (see :mod:`provenance.trust`; None: the default).
    ``fetch_remote``/``ocsp``: let the SDK fetch a remote manifest / check revocation
    online; both off by default, so reading a file opens no connection."""
    p = Path(path)
    mime = imageio.sniff_media(p)
    resolved = resolve_trust(trust, trust_local=trust_local)
    ctx = context(trust_anchors=resolved.pem(), fetch_remote=fetch_remote, ocsp=ocsp)
    try:
        with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            _check_declared_size(p, mime)
            _check_complete(p, mime, data)
            report = _read_open_file(p, mime, f, data, ctx, fetch_remote, resolved, image,
                                     thumbnails)
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=p) from None
    if not imageio.is_image_mime(mime):
        report = replace(report, format=mime, notes=[*report.notes, NOT_PIXELS.format(mime=mime)])
    return report


#: The note on a file that is not a still image.
NOT_PIXELS = ("{mime} is not a still image provkit decodes: pixel checks (watermark, "
              "fingerprints, ledger recovery, the classifier) do not apply; only its C2PA "
              "credentials were read.")


def _read_open_file(p: Path, mime: str, f, data, ctx, fetch_remote: bool, trust,
                    image=None, thumbnails: Mode = None) -> VerifyReport:
    """Read the manifest of an open file (``data``: its bytes, memory-mapped)."""
    import c2pa

    try:
        reader = new_reader(mime, f, ctx)
    except c2pa.C2paError.ManifestNotFound:
        return VerifyReport(path=str(p), state="absent", format=mime,
                            explanation=["The file carries no C2PA manifest."])
    except c2pa.C2paError as e:
        msg = str(e)
        if _is_remote_error(c2pa, e):
            return _remote_report(p, msg, data, fetch_remote)
        if "NotSupported" in msg or "not supported" in msg.lower():
            return VerifyReport(path=str(p), state="absent", format=mime, explanation=[
                f"The file carries no C2PA manifest ({mime} files cannot carry one)."])
        if data.find(b"jumb") == -1 and data.find(b"c2pa") == -1:
            # No manifest bytes anywhere: the SDK failed on the container itself (a
            # truncated GIF, say). That is bad input, never "a manifest is present".
            _raise_decoder_cause(p, mime, msg)
            why = (f"The file carries no C2PA manifest (the C2PA reader could not parse its "
                   f"container: {msg.splitlines()[0]}; no manifest bytes are in the file).")
            return VerifyReport(path=str(p), state="absent", format=mime, explanation=[why])
        return VerifyReport(path=str(p), state="invalid", failures=["manifest.unreadable"],
                            format=mime, failure_details=[{
                                "code": "manifest.unreadable", "where": "active manifest",
                                "url": None, "sdk_explanation": msg.splitlines()[0],
                                "sentence": "A C2PA manifest is present but cannot be parsed."}],
                            explanation=[("A C2PA manifest is present but cannot be parsed "
                                          f"({msg.splitlines()[0]}).")])
    try:
        store = json.loads(reader.json())
        crjson = _crjson(reader)
        remote_url = reader.get_remote_url() if not reader.is_embedded() else None
        thumb = None
        found = collect_thumbnails(reader, store) if thumbnails else {}
        results = store.get("validation_results")
        if imageio.is_image_mime(mime) and any(
                e.get("hard_binding") for e in status_entries(results)):
            thumb = _thumbnail_bytes(c2pa, reader, store)
    finally:
        reader.close()
    # Reader.get_validation_state() is this same field of this same JSON (parsed once here).
    state = (store.get("validation_state") or "invalid").lower()
    end = min(_jpeg_header_end(data), len(data)) if mime == "image/jpeg" else len(data)
    report = report_from_store(p, store, state=state, remote_url=remote_url, raw=data,
                               raw_end=end, trust=trust, crjson=crjson, mime=mime)
    if thumb is not None:
        report = replace(report, thumbnail_check=thumbnail_check(p, thumb, report.thumbnail,
                                                                 image=image))
    report = attach_thumbnails(report, found, thumbnails)
    if remote_url:
        fetched = f"The manifest was fetched from {remote_url}."
        report = replace(report, explanation=[fetched, *report.explanation])
    return report


def _crjson(reader) -> dict | None:
    """The Reader's crJSON (None where this SDK version cannot produce it)."""
    fn = getattr(reader, "crjson", None)
    if fn is None:
        return None
    try:
        return json.loads(fn())
    except Exception:  # noqa: BLE001  # crJSON is extra detail; the report stands without it
        return None


def _thumbnail_bytes(c2pa, reader, store: dict) -> bytes | None:
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest")) or {}
    uri = (manifest.get("thumbnail") or {}).get("identifier")
    if not uri:
        return None
    buf = io.BytesIO()
    try:
        reader.resource_to_stream(uri, buf)
    except c2pa.C2paError:
        return None
    return buf.getvalue() or None


#: PDQ distance (of 256 bits) under which the picture is taken to still look like its
#: thumbnail (PDQ's own confident-match threshold is 31).
THUMBNAIL_MATCH_BITS = 31


def thumbnail_check(path, thumb: bytes, thumbnail: dict | None, *, image=None) -> dict:
    """The current pixels against the manifest's claim thumbnail, both at the
    thumbnail's size: PDQ distance and a sentence. A hint, never a validation: a
    thumbnail is small and made by the signer."""
    import numpy as np  # only here: a credential-bearing file is verified without numpy

    from provkit.provenance.fingerprint import _pdq, hamming

    out = {"hint": True, "thumbnail": dict(thumbnail or {})}
    try:
        small = Image.open(io.BytesIO(thumb))
        small.load()
        small = imageio.to_rgb(small)
        current = image if image is not None else imageio.load_rgb(path)
        current = imageio.to_rgb(current).resize(small.size, Image.BILINEAR)
        a, qa = _pdq(np.asarray(small))
        b, qb = _pdq(np.asarray(current))
    except Exception as e:  # noqa: BLE001  # a hint that cannot be computed says so
        return out | {"distance": None, "sentence": f"The picture could not be compared with "
                                                    f"its thumbnail ({describe(e)})."}
    distance = hamming(a, b)
    looks = distance <= THUMBNAIL_MATCH_BITS
    out.update(distance=distance, threshold=THUMBNAIL_MATCH_BITS, looks_alike=looks,
               quality=[qa, qb])
    if looks:
        out["sentence"] = (f"Hint, not a validation: the picture still looks like the thumbnail "
                           f"signed with it (PDQ distance {distance} of 256 bits).")
    else:
        out["sentence"] = (f"Hint, not a validation: the picture no longer looks like the "
                           f"thumbnail signed with it (PDQ distance {distance} of 256 bits).")
    return out


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

def verify_file(path, *, trust=None, fetch_remote: bool = False, db=None,
                recover: bool = True, trust_local: bool = True, image=None,
                ocsp: bool = False, thumbnails: Mode = None,
                fingerprinter=None) -> VerifyReport:
    """Verify one file's C2PA credentials; recover stripped ones from the ledger.

    ``image``: the file's pixels when the caller has already decoded them (a PIL
    image); recovery then uses them instead of decoding the file again (and
    ``fingerprinter()``, when given, for their fingerprint, so a caller that needs it
    too computes it once). ``thumbnails``: how the answer carries the manifests'
    thumbnails (:mod:`provenance.thumbnails`; default: by reference only). The ledger
    is only opened when there is something to recover. A file that is not a still
    image is never looked up by pixels (its report says so).

    Raises BadInput (exit 2) for a file that cannot be read: missing, empty, of no
    format C2PA can carry, truncated, or anything a reader (the SDK, the certificate
    parser, the decoder) fails on: one guard turns every such failure into a BadInput
    naming the file."""
    resolved = resolve_trust(trust, trust_local=trust_local)
    with reading(path, "verify"):
        report = read_c2pa(path, trust=resolved, fetch_remote=fetch_remote, ocsp=ocsp,
                           image=image, thumbnails=thumbnails)
        if report.state != "absent" or not recover or report.remote_url:
            return _with_tc260(report)
        if report.format and not imageio.is_image_mime(report.format):
            return report
        # recovery (watermark decoders, fingerprints, the ledger) loads only for a file
        # without credentials: `provkit verify` on a signed file stays a light process
        from provkit.provenance.recovery import recover_report

        return _with_tc260(recover_report(report, db=db, trust=resolved, image=image,
                                          fingerprinter=fingerprinter))


#: bytes of a file's head searched for its XMP (where JPEG, PNG and WebP keep it)
TC260_HEAD = 16 << 20


def _with_tc260(report: VerifyReport) -> VerifyReport:
    """The report with the file's own GB 45438 implicit label (``disclosure.tc260``), any
    producer's: unsigned metadata in the file, read whatever the C2PA state is."""
    mime = report.format or imageio.sniff_media(Path(report.path))
    if mime not in ("image/jpeg", "image/png", "image/webp"):
        return report
    try:
        found = tc260.read_bytes(imageio.read_head(Path(report.path), TC260_HEAD), mime)
    except Exception:  # noqa: BLE001 - damaged metadata: the block is simply not read
        found = None
    if found is None:
        return report
    return replace(report, disclosure={**(report.disclosure or {}), "tc260": found.to_json()})


def verify(paths, *, progress=None, **kwargs) -> list[VerifyReport | BadInput]:
    """``provkit verify``: :func:`verify_file` over many files; an unreadable file yields
    its error, not a stop. ``progress(n)`` is called as files finish.

    A bad trust source raises at once (it concerns every file). The trust sources
    are read once for the whole batch."""
    kwargs["trust"] = resolve_trust(kwargs.get("trust"),
                                    trust_local=kwargs.pop("trust_local", True))
    out = []
    for p in paths:
        try:
            out.append(verify_file(p, **kwargs))
        except ProvkitError as e:
            if not isinstance(e, BadInput):
                raise  # a configuration problem concerns every file
            out.append(e)
        if progress:
            progress(1)
    return out


def crjson_file(path, *, trust=None, fetch_remote: bool = False, ocsp: bool = False) -> dict:
    """The SDK's crJSON for one file (``provkit verify --format crjson``): the C2PA JSON
    report format validators produce for the conformance program. A file without a
    manifest gives an empty ``manifests`` list."""
    import c2pa

    p = Path(path)
    mime = imageio.sniff_media(p)
    ctx = context(trust_anchors=resolve_trust(trust).pem(), fetch_remote=fetch_remote, ocsp=ocsp)
    try:
        with reading(p, "verify"), imageio.open_regular(p) as f:
            try:
                reader = new_reader(mime, f, ctx)
            except c2pa.C2paError.ManifestNotFound:
                return {"@context": CRJSON_CONTEXT, "manifests": [],
                        "extras:path": str(p), "extras:state": "absent"}
            except c2pa.C2paError as e:
                raise BadInput(f"the manifest cannot be read ({str(e).splitlines()[0]})",
                               path=p) from None
            try:
                doc = _crjson(reader)
            finally:
                reader.close()
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=p) from None
    if doc is None:
        raise BadInput("this c2pa-python cannot produce crJSON (Reader.crjson is missing)",
                       path=p)
    return doc


CRJSON_CONTEXT = {"@vocab": "https://c2pa.org/crjson",
                  "extras": "https://c2pa.org/crjson/extras"}
