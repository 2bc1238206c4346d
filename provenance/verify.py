"""Validating C2PA credentials, and explaining the outcome in plain sentences.

:func:`verify_file` reads a file with c2pa-python's ``Reader`` under one set of trust
settings and reports exactly the SDK's validation state (``invalid``, ``valid``,
``trusted``), or ``absent`` when there is no manifest. When there is none and
recovery is on, the watermark and the fingerprints are looked up in the ledger
(:mod:`provenance.recovery`); a match is reported as ``recovered``.

Trust: the sources of :mod:`provenance.trust` (default: the bundled C2PA Trust List,
the workspace's own CA and the trust files added to the workspace); a trusted
report names the source that made the signer trusted.

Why one module: reading a file's credentials (in the file, a sidecar or remote),
comparing its thumbnail and building its report are the consecutive steps of one verify.
"""

from __future__ import annotations

import json
import mmap
import re
from dataclasses import replace
from pathlib import Path

from PIL import Image
from provkit.provenance import tc260
from provkit.provenance.causes import with_causes
from provkit.provenance.core import imageio
from provkit.provenance.core.errors import BadInput, ProvkitError
from provkit.provenance.core.guard import reading
from provkit.provenance.manifest import context, new_reader
from provkit.provenance.remote import fetch_manifest, read_sidecar, sidecar_for
from provkit.provenance.report import VerifyReport, report_from_store
from provkit.provenance.status import entries as status_entries
from provkit.provenance.status import hard_binding_kind, state_from_codes, status_codes
from provkit.provenance.thumbnail_compare import (
    compare_ingredients,
    ingredient_thumbnails,
    thumbnail_bytes,
    thumbnail_check,
)
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
            raise BadInput(
                "truncated image data (a JPEG segment runs past the end of the file)", path=path
            )
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
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return i


def _remote_url_from(message: str, data: bytes) -> str | None:
    m = re.search(r"(https?://[^\s)]+)", message)
    if m:
        return m.group(1).rstrip(".,")
    m = re.search(rb"provenance[\"'=>\s]+(https?://[^\"'<\s]+)", data)
    return m.group(1).decode(errors="replace") if m else None


def read_c2pa(
    path,
    *,
    trust=None,
    fetch_remote: bool = False,
    trust_local: bool = True,
    ocsp: bool = False,
    image=None,
    thumbnails: Mode = None,
) -> VerifyReport:
    """The C2PA part of verification: embedded or remote manifest, or ``absent``.

    ``thumbnails``: None (references only), ``"inline"`` or a ``keep`` callable (see
    :mod:`provenance.thumbnails`).

    ``trust``: trust source names (see :mod:`provenance.trust`; None: the default).
    ``fetch_remote``/``ocsp``: let the SDK fetch a remote manifest / check revocation
    online; both off by default, so reading a file opens no connection."""
    p = Path(path)
    mime = imageio.sniff_media(p)
    resolved = resolve_trust(trust, trust_local=trust_local)
    # The SDK never fetches: with --fetch-remote provkit fetches the manifest itself,
    # bounded in size and time (provenance.remote), and hands the bytes over.
    ctx = context(trust_anchors=resolved.pem(), fetch_remote=False, ocsp=ocsp)
    try:
        with open(p, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            _check_declared_size(p, mime)
            _check_complete(p, mime, data)
            report = _read_open_file(
                p, mime, f, data, ctx, fetch_remote, resolved, image, thumbnails
            )
            if mime == STORE_MIME:
                report = _standalone(report)
            report = with_causes(
                report, fetched=report.remote_url is None or report.state != "absent"
            )
    except OSError as e:
        raise BadInput(f"cannot read ({e.strerror or e})", path=p) from None
    if not imageio.is_image_mime(mime):
        report = replace(report, format=mime, notes=[*report.notes, NOT_PIXELS.format(mime=mime)])
    return report


#: The note on a file that is not a still image.
NOT_PIXELS = (
    "{mime} is not a still image provkit decodes: pixel checks (watermark, "
    "fingerprints, ledger recovery, the classifier) do not apply; only its C2PA "
    "credentials were read."
)


def _read_open_file(
    p: Path, mime: str, f, data, ctx, fetch_remote: bool, trust, image=None, thumbnails: Mode = None
) -> VerifyReport:
    """Read the manifest of an open file (``data``: its bytes, memory-mapped)."""
    import c2pa

    outside, remote_url = None, None  # a manifest kept outside the file, and where
    try:
        reader = new_reader(mime, f, ctx)
    except c2pa.C2paError.ManifestNotFound:
        side = sidecar_for(p)
        if side is None:
            return VerifyReport(
                path=str(p),
                state="absent",
                format=mime,
                explanation=["The file carries no C2PA manifest."],
            )
        outside = f"The manifest was read from the sidecar {side.name} beside the file."
        reader = _reader_with(p, mime, f, ctx, read_sidecar(side), outside)
        if isinstance(reader, VerifyReport):
            return reader
    except c2pa.C2paError as e:
        msg = str(e)
        side = sidecar_for(p)
        if _is_remote_error(c2pa, e) and side is not None:
            outside = f"The manifest was read from the sidecar {side.name} beside the file."
            reader = _reader_with(p, mime, f, ctx, read_sidecar(side), outside)
            if isinstance(reader, VerifyReport):
                return reader
        elif _is_remote_error(c2pa, e):
            if not fetch_remote:
                return _remote_report(p, msg, data, False)
            remote_url = _remote_url_from(msg, data[: 1 << 20])
            try:
                fetched = fetch_manifest(remote_url or "")
            except BadInput as err:
                return _remote_report(p, msg, data, True, why=err.reason)
            outside = f"The manifest was fetched from {remote_url}."
            reader = _reader_with(p, mime, f, ctx, fetched, outside)
            if isinstance(reader, VerifyReport):
                return replace(reader, remote_url=remote_url)
        if outside is not None:
            pass
        elif "NotSupported" in msg or "not supported" in msg.lower():
            return VerifyReport(
                path=str(p),
                state="absent",
                format=mime,
                explanation=[f"The file carries no C2PA manifest ({mime} files cannot carry one)."],
            )
        elif data.find(b"jumb") == -1 and data.find(b"c2pa") == -1:
            # No manifest bytes anywhere: the SDK failed on the container itself (a
            # truncated GIF, say). That is bad input, never "a manifest is present".
            _raise_decoder_cause(p, mime, msg)
            why = (
                f"The file carries no C2PA manifest (the C2PA reader could not parse its "
                f"container: {msg.splitlines()[0]}; no manifest bytes are in the file)."
            )
            return VerifyReport(path=str(p), state="absent", format=mime, explanation=[why])
        else:
            return _unreadable(p, mime, msg)
    try:
        store = json.loads(reader.json())
        crjson = _crjson(reader)
        if remote_url is None and outside is None:
            remote_url = reader.get_remote_url() if not reader.is_embedded() else None
        thumb = None
        found = collect_thumbnails(reader, store) if thumbnails else {}
        results = store.get("validation_results")
        if imageio.is_image_mime(mime) and any(
            e.get("hard_binding") for e in status_entries(results)
        ):
            thumb = thumbnail_bytes(c2pa, reader, store)
        ingredient_thumbs = ingredient_thumbnails(c2pa, reader, store)
    finally:
        reader.close()
    # Reader.get_validation_state() is this same field of this same JSON (parsed once here).
    state = (store.get("validation_state") or "invalid").lower()
    if mime == STORE_MIME:
        state = _without_binding(store, state)
    end = min(_jpeg_header_end(data), len(data)) if mime == "image/jpeg" else len(data)
    report = report_from_store(
        p,
        store,
        state=state,
        remote_url=remote_url,
        raw=data,
        raw_end=end,
        trust=trust,
        crjson=crjson,
        mime=mime,
    )
    if thumb is not None:
        report = replace(
            report, thumbnail_check=thumbnail_check(p, thumb, report.thumbnail, image=image)
        )
    if ingredient_thumbs:
        report = replace(
            report, ingredients=compare_ingredients(report.ingredients, ingredient_thumbs)
        )
    report = attach_thumbnails(report, found, thumbnails)
    if outside:
        report = replace(report, explanation=[outside, *report.explanation])
    elif remote_url:
        fetched = f"The manifest was fetched from {remote_url}."
        report = replace(report, explanation=[fetched, *report.explanation])
    return report


def _unreadable(p: Path, mime: str, msg: str) -> VerifyReport:
    """``invalid``: a manifest is there but the SDK cannot parse it."""
    first = msg.splitlines()[0] if msg else "unknown error"
    return VerifyReport(
        path=str(p),
        state="invalid",
        failures=["manifest.unreadable"],
        format=mime,
        failure_details=[
            {
                "code": "manifest.unreadable",
                "where": "active manifest",
                "url": None,
                "sdk_explanation": first,
                "sentence": "A C2PA manifest is present but cannot be parsed.",
            }
        ],
        explanation=[f"A C2PA manifest is present but cannot be parsed ({first})."],
    )


def _reader_with(p: Path, mime: str, f, ctx, manifest: bytes, where: str):
    """A Reader of the open file against a manifest store kept outside it, or the
    ``invalid`` report when that store cannot be parsed."""
    import c2pa

    f.seek(0)
    try:
        return new_reader(mime, f, ctx, manifest_data=manifest)
    except c2pa.C2paError as e:
        report = _unreadable(p, mime, str(e))
        return replace(report, explanation=[where, *report.explanation])


#: A C2PA manifest store on its own (a ``.c2pa`` sidecar given by itself).
STORE_MIME = "application/c2pa"
STANDALONE_NOTE = (
    "This is a C2PA manifest store on its own (a .c2pa sidecar): the signature "
    "and the claim were checked, but not its binding to any file, because none "
    "was given. Verify the media file beside it (same name) to check both."
)


def _without_binding(store: dict, state: str) -> str:
    """A standalone store's results without its hard-binding failures (there are no
    asset bytes for the binding to match, so they say nothing), and the state the rest
    gives."""
    active = (store.get("validation_results") or {}).get("activeManifest")
    if not active:
        return state
    active["failure"] = [
        s
        for s in active.get("failure") or []
        if not hard_binding_kind(s.get("code") or "", s.get("explanation"))
    ]
    results = store["validation_results"]
    return state_from_codes(status_codes(results), status_codes(results, "success"))


def _standalone(report: VerifyReport) -> VerifyReport:
    return replace(report, notes=[*report.notes, STANDALONE_NOTE])


def _crjson(reader) -> dict | None:
    """The Reader's crJSON (None where this SDK version cannot produce it)."""
    fn = getattr(reader, "crjson", None)
    if fn is None:
        return None
    try:
        return json.loads(fn())
    except Exception:  # noqa: BLE001  # crJSON is extra detail; the report stands without it
        return None


def _is_remote_error(c2pa, error) -> bool:
    """Whether the SDK refused because the manifest is remote (c2pa-python raises a plain
    ``C2paError("Remote: must fetch remote manifests from url URL")`` for an unfetched one,
    and ``"Remote: could not fetch the remote manifest ..."`` when fetching failed)."""
    typed = getattr(c2pa.C2paError, "RemoteManifest", None)
    if typed is not None and isinstance(error, typed):
        return True
    msg = str(error)
    return msg.startswith("Remote") or "remote manifest" in msg.lower()


def _remote_report(
    p: Path, msg: str, data, fetch_remote: bool, why: str | None = None
) -> VerifyReport:
    """``absent`` with the manifest's address: nothing was validated."""
    url = _remote_url_from(msg, data[: 1 << 20])
    stored = (
        f"The manifest is stored remotely at {url}"
        if url
        else "The manifest is stored remotely (the file does not say where)"
    )
    if fetch_remote:
        why = f"{stored}; fetching it failed ({why or msg.splitlines()[0]})."
        return VerifyReport(
            path=str(p),
            state="absent",
            remote_url=url,
            failures=["manifest.inaccessible"],
            explanation=[why],
        )
    why = f"{stored} and was not fetched (use --fetch-remote)."
    return VerifyReport(path=str(p), state="absent", remote_url=url, explanation=[why])


def verify_file(
    path,
    *,
    trust=None,
    fetch_remote: bool = False,
    db=None,
    recover: bool = True,
    trust_local: bool = True,
    image=None,
    ocsp: bool = False,
    thumbnails: Mode = None,
    fingerprinter=None,
) -> VerifyReport:
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
        report = read_c2pa(
            path,
            trust=resolved,
            fetch_remote=fetch_remote,
            ocsp=ocsp,
            image=image,
            thumbnails=thumbnails,
        )
        if report.state != "absent" or not recover or report.remote_url:
            return _with_tc260(report)
        if report.format and not imageio.is_image_mime(report.format):
            return report
        # recovery (watermark decoders, fingerprints, the ledger) loads only for a file
        # without credentials: `provkit verify` on a signed file stays a light process
        from provkit.provenance.recovery import recover_report

        return _with_tc260(
            recover_report(report, db=db, trust=resolved, image=image, fingerprinter=fingerprinter)
        )


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
    kwargs["trust"] = resolve_trust(
        kwargs.get("trust"), trust_local=kwargs.pop("trust_local", True)
    )
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
