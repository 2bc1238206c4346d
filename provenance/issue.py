"""Issuing an asset: the one pipeline every image leaving provkit goes through.

    fresh asset id -> watermark.embed(id) -> watermark.readable? -> C2PA sign (ManifestSpec)
        -> ledger.record

A mark that would not read back is not claimed: the image is signed without it and
without the soft binding, and ``Issued.watermark_skipped`` says why.

``provkit sign`` and the generator's seal both call :func:`issue`. The output is
written atomically (temp file in the same folder, then rename) and the input is
never overwritten.

Why one module: issuing is one pipeline (watermark, disclosure, sign, ledger) whose
steps share the staging and rollback of one output.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image
from provkit.provenance import disclosure as disclosure_lib
from provkit.provenance import keys, tc260
from provkit.provenance import watermark as watermark_lib
from provkit.provenance.core import config as workspace_config
from provkit.provenance.core import imageio
from provkit.provenance.core.clock import now_iso
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.files import atomic_file
from provkit.provenance.core.vocabulary import source_type_iri, source_type_name
from provkit.provenance.fingerprint import fingerprint_image
from provkit.provenance.ledger import STATUSES, ledger_store
from provkit.provenance.manifest import (
    ManifestSpec,
    manifest_definition,
    read_store,
    sign_stream,
    supported_mime,
)
from provkit.provenance.relation import make_reference

#: ``Issued.watermark_skipped`` for a file that is not a still image.
NOT_AN_IMAGE = (
    "the watermark applies to still images provkit decodes only; this {mime} file "
    "was signed without it and without a soft binding"
)
#: ``Issued.watermark_skipped`` when the marked pixels fail the watermark's self-check.
UNREADABLE_MARK = (
    "the watermark does not read back from these pixels (noise-like image); "
    "signed without it and without a soft binding"
)


@dataclass(frozen=True)
class Issued:
    """An asset provkit signed and recorded."""

    asset_id: str
    path: str
    mime: str
    sha256: str
    manifest_label: str
    source_type: str | None
    signer: dict
    watermarked: bool = False
    soft_binding_alg: str | None = None
    fingerprinted: bool = False
    #: Why no mark was embedded although one was asked for (None: marked, or not asked).
    watermark_skipped: str | None = None
    #: What the disclosure profile wrote (regimes, the SB 942 fields, the TC260 block,
    #: the visible labels); None when no profile applied.
    disclosures: dict | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def new_asset_id() -> str:
    """64 random bits as 16 lowercase hex characters."""
    return secrets.token_hex(8)


def _fingerprint(pixels):
    """Fingerprints and reference rendition of the pixels written: the image encoded (in
    memory), or the source file whose bytes were signed as they are (the same pixels)."""
    if not isinstance(pixels, Image.Image):
        pixels = imageio.open_image(pixels)
    return fingerprint_image(pixels), make_reference(pixels)


def resolve_output(
    out_path, *, src_path=None, src_mime: str | None = None, force: bool = False
) -> str:
    """The MIME type ``out_path`` will be written as; BadInput if it cannot be written.

    Refused: the input itself, a folder, an existing file without ``force``, a name
    whose extension names no format C2PA can be embedded in (no extension: the
    source's format)."""
    out_path = Path(out_path)
    if (
        src_path is not None
        and out_path.exists()
        and out_path.resolve() == Path(src_path).resolve()
    ):
        raise BadInput("output would overwrite the input; choose another -o path", path=out_path)
    if out_path.is_dir():
        raise BadInput("output is a directory; give a file name", path=out_path)
    if out_path.exists() and not force:
        raise BadInput("output already exists (use --force to replace it)", path=out_path)
    out_mime = imageio.mime_for_suffix(out_path) or (None if out_path.suffix else src_mime)
    if out_mime is None:
        raise BadInput(
            f"C2PA cannot be embedded in '{out_path.suffix}' files (use .jpg, .png, "
            ".webp, .gif, .tif, .avif, .heic, or the source's own format: .pdf, "
            ".wav, .mp3, .flac, .mp4, .mov, .m4a, .avi ...)",
            path=out_path,
        )
    return supported_mime(out_mime, path=out_path)


def issue(
    source,
    out_path,
    *,
    spec: ManifestSpec,
    watermark: bool = True,
    db=None,
    identity=None,
    asset_id: str | None = None,
    force: bool = False,
    status: str = "issued",
    disclosure=None,
) -> Issued:
    """Watermark, sign and record ``source`` (a path or PIL image) into ``out_path``.

    ``identity`` defaults to the workspace identity (created on first use); ``db``
    is a database path or sqlite-utils Database (default: the workspace ledger).
    An existing ``out_path`` is refused unless ``force``; the file is in place (fsync,
    rename) before its ledger row is committed; a failed row removes it again and
    puts back the file ``force`` replaced.
    ``status``: the ledger status the asset is recorded with; ``staged`` for a file
    that still has checks to pass before it is handed out (the caller then marks it
    ``issued``, ``withheld`` or ``review``).
    ``disclosure``: a :class:`provenance.disclosure.Profile`: the SB 942 assertion, the
    TC260 XMP block and the visible labels its regimes ask for, in this same pass."""

    if status not in STATUSES:
        raise BadInput(f"unknown asset status {status!r} (one of {', '.join(STATUSES)})")
    out_path = Path(out_path)
    asset_id = (asset_id or new_asset_id()).lower()
    if len(asset_id) != 16 or any(c not in "0123456789abcdef" for c in asset_id):
        raise BadInput(f"asset id must be 16 hex characters, got '{asset_id}'")
    src_path = None if isinstance(source, Image.Image) else Path(source)
    src_mime = imageio.sniff_media(src_path) if src_path else None
    out_mime = resolve_output(out_path, src_path=src_path, src_mime=src_mime, force=force)
    media = src_mime is not None and not imageio.is_image_mime(src_mime)
    if media and out_mime != src_mime:
        raise BadInput(
            f"a {src_mime} file is signed as it is; the output must be "
            f"{imageio.MEDIA_EXTENSION_FOR_MIME.get(src_mime, src_mime)} too",
            path=out_path,
        )
    book = ledger_store(db)
    if book.get(asset_id) is not None:
        raise BadInput(f"asset id {asset_id} is already in the ledger")

    if spec.resolved_action() != "c2pa.created" and not spec.has_parent:
        if src_path is None:
            raise BadInput(f"action {spec.resolved_action()} needs a parentOf ingredient")
        spec = replace(spec, ingredients=((src_path, "parentOf"),) + tuple(spec.ingredients))
    if not spec.title:
        spec = replace(spec, title=out_path.name)

    # the manifest first: a spec it cannot express fails before any pixel work
    not_image = None
    if media and watermark:  # the mark lives in pixels: audio, video and PDF go without
        not_image = NOT_AN_IMAGE.format(mime=src_mime)
        watermark = False
    soft_alg = watermark_lib.SOFT_BINDING_ALG if watermark else None
    pixels, image, skipped, icc = None, None, not_image, None
    disclosed = None
    if disclosure is not None:
        # 0. disclosure: visible labels go into the pixels before the mark and the
        # signature; the SB 942 fields and the label record into the manifest
        if media:
            raise BadInput(
                f"disclosure labels apply to still images; this file is {src_mime}", path=src_path
            )
        if not disclosure_lib.is_ai(spec.source_type):
            raise BadInput(
                f"the disclosure labels declare AI-made content, but this file is "
                f"signed as {source_type_name(spec.source_type) or 'no source type'}"
                " (use --source-type trainedAlgorithmicMedia, algorithmicMedia or "
                "compositeWithTrainedAlgorithmicMedia)",
                path=src_path or out_path,
            )
        if disclosure.wants("cn") and out_mime not in TC260_MIMES:
            raise BadInput(
                "the GB 45438 implicit label is written into JPEG, PNG and WebP "
                f"files, not {out_mime}",
                path=out_path,
            )
        spec, image, disclosed = _disclose(spec, disclosure, source, src_path, asset_id)
        icc = image.info.get("icc_profile") if image is not None else None
    definition = manifest_definition(spec, asset_id=asset_id, soft_binding_alg=soft_alg)

    # 1. pixels: watermark the asset id into them, or take the bytes as they are. A mark
    # that does not read back is not claimed: the image is signed without it and without
    # the soft binding, and the result says why.
    if image is None and (watermark or src_path is None or src_mime != out_mime):
        image = source if src_path is None else imageio.open_image(src_path)
        icc = image.info.get("icc_profile")
    if watermark:
        wm = watermark_lib
        mark = bytes.fromhex(asset_id)
        try:
            marked = wm.embed(image, mark)
        except BadInput as e:
            raise BadInput(
                f"{e.reason}; sign it with --no-watermark", path=src_path or out_path
            ) from None
        if wm.readable(marked, mark):
            image = marked
        else:
            skipped, soft_alg = UNREADABLE_MARK, None
            definition = manifest_definition(spec, asset_id=asset_id, soft_binding_alg=None)
    labelled = bool(disclosed and disclosed.get("visible_labels"))
    if image is not None and (soft_alg or labelled or src_path is None or src_mime != out_mime):
        pixels = image
        payload = imageio.encode(image, out_mime, icc_profile=icc, path=out_path)
    else:
        payload = src_path.read_bytes()
    if disclosed is not None:
        # the XMP block is in the file before the signature: the hard binding covers it
        payload = _write_xmp(payload, out_mime, disclosure, spec, asset_id, disclosed)

    # 2. C2PA: sign into a temp file beside the output; 3. record it in the ledger;
    # only then does the file take its name.
    identity = identity or keys.for_signing()
    signer = identity.signer_json()
    import c2pa

    # The file is complete, fsynced and renamed into place first; only then is its
    # ledger row committed. A crash in between leaves a signed file without a row (which
    # verifies on its own and is never "issued" in the ledger), never a row pointing at
    # nothing; a failed row removes the file again and puts back the file it replaced
    # (kept aside under a provkit temp name until the row is committed).
    earlier = _keep_aside(out_path) if force else None
    try:
        with atomic_file(out_path, overwrite=force) as f:
            try:
                store = sign_stream(
                    definition,
                    identity,
                    out_mime,
                    io.BytesIO(payload),
                    f,
                    ingredients=spec.ingredients,
                )
                parsed = read_store(store)
            except (c2pa.C2paError, OSError) as e:
                if identity.tsa_url and identity.tsa_url in str(e):
                    raise BadInput(
                        f"signing failed: the time-stamping authority "
                        f"{identity.tsa_url} did not answer ({e})",
                        path=out_path,
                    ) from None
                raise BadInput(f"signing failed: {e}", path=out_path) from None
            f.seek(0)
            sha = hashlib.sha256(f.read()).hexdigest()
            label = parsed.get("active_manifest")
            manifest_json = parsed.get("manifests", {}).get(label, {})
            fp, reference = (
                (None, None) if media else _fingerprint(pixels if pixels is not None else src_path)
            )
    except BaseException as e:
        _drop(earlier)  # the file there before was never replaced
        if isinstance(e, FileExistsError):
            raise BadInput(
                "output already exists (use --force to replace it)", path=out_path
            ) from None
        if isinstance(e, OSError):
            raise BadInput(f"cannot write output ({e.strerror or e})", path=out_path) from None
        raise
    try:
        book.record(
            asset_id=asset_id,
            sha256=sha,
            manifest_label=label,
            signer=signer,
            source_type=source_type_name(spec.source_type),
            source_path=src_path,
            path=os.path.abspath(out_path),
            mime=out_mime,
            manifest_json=manifest_json,
            manifest_store=store,
            fingerprint=fp,
            soft_binding_alg=soft_alg,
            status=status,
            reference=reference,
        )
    except BaseException as e:
        # nothing recorded: the file does not stay either, and the earlier one comes back
        if _remove_if_ours(out_path, sha) and earlier is not None:
            os.replace(earlier, out_path)
        _drop(earlier)
        if isinstance(e, OSError):
            raise BadInput(f"cannot record the asset ({e.strerror or e})", path=out_path) from None
        raise
    _drop(earlier)
    return Issued(
        asset_id=asset_id,
        path=str(out_path),
        mime=out_mime,
        sha256=sha,
        manifest_label=label,
        source_type=source_type_name(spec.source_type),
        signer=signer,
        watermarked=soft_alg is not None,
        soft_binding_alg=soft_alg,
        fingerprinted=fp is not None,
        watermark_skipped=skipped,
        disclosures=disclosed,
    )


#: where the TC260 XMP block is written (provenance/tc260.py)
TC260_MIMES = ("image/jpeg", "image/png", "image/webp")


def _disclose(spec: ManifestSpec, profile, source, src_path, asset_id: str):
    """The spec with the disclosure assertions, the labelled pixels (None without visible
    labels: the pixels are then taken as they come), and the record."""
    image = None
    extra = list(spec.extra_assertions)
    record: dict = {"regimes": list(profile.regimes)}
    if profile.visible_label:
        image = source if src_path is None else imageio.open_image(src_path)
        info = dict(image.info)
        image, labels = disclosure_lib.render_labels(image, profile.regimes)
        image.info.update({k: v for k, v in info.items() if k == "icc_profile"})
        extra.append(disclosure_lib.visible_assertion(labels, image.size))
        record["visible_labels"] = labels
    if profile.wants("us-ca"):
        sb942 = disclosure_lib.sb942_assertion(profile, asset_id=asset_id, when=now_iso())
        extra.append(sb942)
        record["sb942"] = sb942["data"]
    return replace(spec, extra_assertions=tuple(extra)), image, record


def _write_xmp(
    payload: bytes, mime: str, profile, spec: ManifestSpec, asset_id: str, record: dict
) -> bytes:
    """The TC260 block (cn) and the IPTC digital source type (eu, cn) as XMP."""
    if not (profile.wants("cn") or profile.wants("eu")) or mime not in TC260_MIMES:
        return payload
    value = None
    if profile.wants("cn"):
        value = tc260.make_value(
            producer=profile.cn_producer or profile.provider,
            produce_id=asset_id,
            binding=tc260.binding_of_bytes(payload),
        )
        record["tc260"] = value
    dst = source_type_iri(spec.source_type) if spec.source_type else None
    return tc260.write(payload, mime, tc260.packet(value, digital_source_type=dst))


def _remove_if_ours(path: Path, sha: str) -> bool:
    """Remove ``path`` if it still holds the bytes with SHA-256 ``sha`` (what we wrote);
    whether it did."""
    try:
        with open(path, "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() == sha:
                path.unlink()
                return True
    except OSError:
        pass
    return False


def _keep_aside(path: Path) -> Path | None:
    """A second name (a hard link, else a copy) for the file at ``path`` that ``--force``
    is about to replace, so a failed ledger row can put it back; None when there is none.

    The name is a provkit temp name (``.NAME.PID.RANDOM.tmp``): after a crash it is
    cleaned like any stale temp file of a dead writer."""
    if not path.is_file():
        return None
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    try:
        os.link(path, aside)
    except OSError:
        try:
            shutil.copy2(path, aside)
        except OSError:
            aside.unlink(missing_ok=True)
            return None
    return aside


def _drop(aside: Path | None) -> None:
    if aside is not None:
        aside.unlink(missing_ok=True)


def sign(
    source,
    out_path,
    *,
    spec: ManifestSpec | None = None,
    watermark: bool = True,
    db=None,
    identity=None,
    force: bool = False,
    status: str = "issued",
    tsa: str | None = None,
    dev_identity: bool = False,
    disclosure=None,
) -> Issued:
    """``provkit sign``: :func:`issue` with a spec built from the command's options.
    ``dev_identity``: create a development identity if the workspace has none (otherwise
    that is a ConfigError naming ``provkit keys init``).
    ``status``: as for :func:`issue` (the HTTP service signs ``staged``, then releases).
    ``tsa``: an RFC 3161 time-stamping authority's address (default: ``[sign] tsa`` in
    provkit.toml, else none); the signature carries its time-stamp.
    ``disclosure``: a :class:`provenance.disclosure.Profile` (default: ``[disclosure]`` in
    provkit.toml, applied to AI content only)."""
    if dev_identity and identity is None:
        identity = keys.for_signing(dev_identity=True)
    spec = spec or ManifestSpec()
    if disclosure is None and (
        isinstance(source, Image.Image) or imageio.is_image_mime(imageio.sniff_media(Path(source)))
    ):  # [disclosure] regimes, for AI still images
        disclosure = disclosure_lib.profile(source_type=spec.source_type)
    tsa = workspace_config.load().get("sign.tsa", tsa)
    if tsa is not None:
        if not str(tsa).startswith(("http://", "https://")):
            raise BadInput(
                f"--tsa {tsa!r}: give the time-stamping authority's http:// or https:// address"
            )
        identity = replace(identity or keys.for_signing(), tsa_url=str(tsa))
    return issue(
        source,
        out_path,
        spec=spec,
        watermark=watermark,
        db=db,
        identity=identity,
        force=force,
        status=status,
        disclosure=disclosure,
    )
