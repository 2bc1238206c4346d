"""Eight files an editor drops on the desk at once, made here from real photographs
through provkit's own verbs (used by tests/test_serve_browser.py and tests/screenshots.py):

- ``capture.jpg``: a camera capture signed in this workspace (trusted) after a crop, with
  the original capture as its parent ingredient and the camera, capture time and place
  signed into the manifest (``stds.exif``);
- ``wire.jpg``: a third party's credential (another CA, an app named "Lens Camera") on a
  photograph whose pixels were changed after signing (invalid);
- ``generated.png``: made by provkit's built-in generator (AI, sealed);
- ``flood.jpg``: a recompressed copy of a photograph in the ``archive`` set, first
  published in 2019;
- ``shared.jpg``: the capture after a social platform stripped and re-encoded it
  (credentials recovered through the watermark);
- ``viral.jpg``: a picture whose PDQ hash a partner shared into the ``hoaxes`` bank, with
  the partner's id and metadata;
- ``statement.pdf``: a PDF without credentials;
- ``notes.txt``: not an image at all.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.fixtures_provenance import make_identity, paint_over, strip_and_degrade
from tests.fixtures_verify import sign_bytes
from tests.media_files import pdf_bytes

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
MIME = {".jpg": "image/jpeg", ".png": "image/png", ".pdf": "application/pdf", ".txt": "text/plain"}
ARCHIVE_PUBLISHED = "2019-03-14"
PARTNER_ID = "hoax-0042"
EXIF = {
    "@context": {"exif": "http://ns.adobe.com/exif/1.0/"},
    "exif:Make": "Canon",
    "exif:Model": "EOS R5",
    "exif:DateTimeOriginal": "2026-11-30T09:12:44Z",
    "exif:GPSLatitude": "51,30.42N",
    "exif:GPSLongitude": "0,7.65W",
}
#: What each file's row must say, as (words in the answer, the decision chip).
EXPECTED = {
    "capture.jpg": ("camera capture claimed", "ALLOW"),
    "wire.jpg": ("credentials invalid", "DENY"),
    "generated.png": ("AI-generated", "LABEL"),
    "flood.jpg": ("seen before: archive", "REVIEW"),
    "shared.jpg": ("credentials recovered for a transformed copy", "REVIEW"),
    "viral.jpg": (f"seen before: hoaxes/{PARTNER_ID}", "REVIEW"),
    "statement.pdf": ("no credentials", "REVIEW"),
    "notes.txt": ("not an image", None),
}


def _jpeg(array: np.ndarray, path: Path, quality: int = 92) -> Path:
    Image.fromarray(array).save(path, quality=quality)
    return path


def desk_files(folder: Path, photos: list[np.ndarray], db) -> dict[str, Path]:
    """Make the eight files (and the archive set and the hoaxes bank) in ``db``."""
    from provkit.detect.index import ReferenceIndex
    from provkit.detect.lookup import hash_file
    from provkit.detect.reference_sets import import_
    from provkit.generate import Generator
    from provkit.provenance.issue import issue
    from provkit.provenance.manifest import ManifestSpec, manifest_definition

    folder.mkdir(parents=True, exist_ok=True)
    work = folder / "work"
    work.mkdir(exist_ok=True)
    out: dict[str, Path] = {}

    # 1. a trusted capture with its original as ingredient and signed capture details
    raw = _jpeg(np.asarray(Image.fromarray(photos[0]).resize((640, 640))), work / "raw.jpg")
    original = work / "original.jpg"
    issue(
        raw,
        original,
        spec=ManifestSpec(
            source_type="digitalCapture",
            title="IMG_0042.jpg",
            extra_assertions=({"label": "stds.exif", "data": EXIF},),
        ),
        watermark=False,
        db=db,
    )
    cropped = Image.open(original).convert("RGB").crop((0, 0, 560, 560))
    cropped.save(work / "cropped.jpg", quality=92)
    out["capture.jpg"] = folder / "capture.jpg"
    issue(
        work / "cropped.jpg",
        out["capture.jpg"],
        spec=ManifestSpec(
            action="cropped",
            source_type="digitalCapture",
            author="Jane Doe",
            ingredients=((original, "parentOf"),),
            extra_assertions=({"label": "stds.exif", "data": EXIF},),
        ),
        db=db,
    )

    # 2. a third party's credential on pixels changed after signing
    vendor, _ = make_identity(work / "vendor", "Northwind News Agency")
    definition = manifest_definition(
        ManifestSpec(
            source_type="digitalCapture", software_agent={"name": "Lens Camera", "version": "4.1"}
        )
    )
    definition["claim_generator_info"] = [{"name": "Lens Camera SDK", "version": "4.1.2"}]
    photo = Image.fromarray(photos[4]).resize((512, 512))
    import io

    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=90)
    signed = sign_bytes(buf.getvalue(), "image/jpeg", vendor, definition=definition)
    out["wire.jpg"] = folder / "wire.jpg"
    # a patch of the picture painted over: the picture differs from its signed thumbnail
    # (a few flipped bits would change the bytes but not what the thumbnail shows)
    out["wire.jpg"].write_bytes(paint_over(signed))

    # 3. an AI image from the built-in generator
    gen = Generator("builtin", out_dir=work / "generated")
    (sealed,) = gen.generate("a harbour at dawn", n=1, seed=7, size=(384, 384))
    out["generated.png"] = folder / "generated.png"
    Path(sealed.path).rename(out["generated.png"])

    # 4. an archive match: a recompressed copy of a photograph published in 2019
    archive = _jpeg(photos[1], work / "flood-2019.jpg", quality=90)
    ReferenceIndex(db).add(
        "archive",
        [archive],
        label="photo archive",
        item_metadata={str(archive): {"published": ARCHIVE_PUBLISHED}},
    )
    out["flood.jpg"] = folder / "flood.jpg"
    Image.open(archive).resize((400, 300)).save(out["flood.jpg"], quality=75)

    # 5. the capture, stripped and re-encoded by a platform
    out["shared.jpg"] = strip_and_degrade(
        out["capture.jpg"], folder / "shared.jpg", quality=85, scale=0.75
    )

    # 6. a partner's hash in a bank, with its id and metadata
    out["viral.jpg"] = _jpeg(photos[6], folder / "viral.jpg", quality=88)
    listed = work / "hoaxes.jsonl"
    listed.write_text(
        json.dumps(
            {
                "pdq": hash_file(out["viral.jpg"])["pdq"],
                "id": PARTNER_ID,
                "metadata": {"category": "known hoax", "tags": ["flood", "recycled"]},
            }
        )
        + "\n"
    )
    import_("hoaxes", listed, db=db)

    # 7-8. a PDF and a text file
    out["statement.pdf"] = folder / "statement.pdf"
    out["statement.pdf"].write_bytes(pdf_bytes())
    out["notes.txt"] = folder / "notes.txt"
    out["notes.txt"].write_text("Call the photographer before 6 pm.\n")
    return out


HOSTILE = '<img src=x onerror="alert(1)">'


def hostile_file(folder: Path, photos: list[np.ndarray]) -> Path:
    """A photograph signed by a third party whose manifest text is markup: the organisation,
    author, software agent, claim generator and signed EXIF fields."""
    import io

    from provkit.provenance.manifest import ManifestSpec, manifest_definition

    identity, _ = make_identity(folder / "hostile-ca", "Evil <script>alert(2)</script> Ltd")
    definition = manifest_definition(
        ManifestSpec(
            source_type="digitalCapture",
            author=HOSTILE,
            software_agent={"name": HOSTILE, "version": "1"},
        )
    )
    definition["claim_generator_info"] = [{"name": "<svg onload=alert(3)>", "version": "1"}]
    definition["assertions"].append(
        {
            "label": "stds.exif",
            "data": {"exif:Make": "</dd><script>alert(4)</script>", "exif:Model": HOSTILE},
        }
    )
    buf = io.BytesIO()
    Image.fromarray(photos[2]).resize((320, 240)).save(buf, "JPEG", quality=90)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hostile.jpg"
    path.write_bytes(sign_bytes(buf.getvalue(), "image/jpeg", identity, definition=definition))
    return path


def drop_files(page, selector: str, paths: list[Path]) -> None:
    """Drop ``paths`` on ``selector`` as a browser does: one drop event whose
    DataTransfer holds the files."""
    files = [
        {
            "name": p.name,
            "type": MIME.get(p.suffix, ""),
            "data": base64.b64encode(p.read_bytes()).decode(),
        }
        for p in paths
    ]
    transfer = page.evaluate_handle(
        """files => {
        const dt = new DataTransfer();
        for (const f of files) {
            const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
            dt.items.add(new File([bytes], f.name, {type: f.type}));
        }
        return dt;
    }""",
        files,
    )
    page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})
