"""A newsroom's and a platform's week in files: the realistic set the shipped packs are
judged on (tests/test_policy_realistic.py).

Every file is made here from real photographs (scikit-image, scikit-learn) through
provkit's own verbs, never written as a hand-made context:

- ``camera``: a photograph signed in this workspace as a camera capture (trusted by the
  local trust source);
- ``tampered``: the same file with one byte of its pixels changed (manifest invalid);
- ``stripped``: the signed photo after a social platform (metadata dropped, resized,
  re-encoded): its credentials come back from the ledger through the watermark;
- ``stripped_edited``: the stripped copy with a region painted over;
- ``forged``: a generated image signed as a camera capture by a self-made CA naming a
  real news agency (valid, not trusted);
- ``a1111``: a PNG with AUTOMATIC1111 ``parameters``;
- ``sdxl``: a photograph carrying the Stable Diffusion XL invisible watermark (made with
  the invisible-watermark package, as diffusers does; left out when it is not installed);
- ``generated``: an image made by provkit's built-in generator (sealed, trusted);
- ``recycled``: a recompressed copy of a photograph indexed in an archive set with its
  first publication date (2019).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, PngImagePlugin

from tests.fixtures_provenance import flip_pixel_bytes, make_identity, strip_and_degrade

ARCHIVE_PUBLISHED = "2019-03-14"


def _sdxl(rgb: np.ndarray) -> Image.Image | None:
    """What diffusers' StableDiffusionXLWatermarker does to one image (None without the
    invisible-watermark package, which only the bench extra installs)."""
    try:
        import imwatermark
    except ImportError:
        return None

    from provkit.provenance.watermark.thirdparty import SDXL_BITS

    encoder = imwatermark.WatermarkEncoder()
    encoder.set_watermark("bits", [int(b) for b in SDXL_BITS])
    out = encoder.encode(rgb.astype(np.float32)[:, :, ::-1], "dwtDct")[:, :, ::-1]
    tensor = np.clip(2 * (out / 255 - 0.5), -1.0, 1.0)
    return Image.fromarray(np.round((tensor / 2 + 0.5) * 255).astype(np.uint8))


def build_realistic_set(folder: Path, photos: list[np.ndarray]) -> dict[str, Path]:
    """Make the files (and the archive reference set) in the current workspace."""
    from provkit.detect.index import ReferenceIndex
    from provkit.generate import Generator
    from provkit.provenance.issue import issue
    from provkit.provenance.manifest import ManifestSpec

    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    raw = folder / "raw-camera.jpg"
    Image.fromarray(photos[0]).save(raw, quality=92)
    files["camera"] = folder / "camera.jpg"
    issue(raw, files["camera"], spec=ManifestSpec(source_type="digitalCapture", author="Jane Doe"))
    raw.unlink()

    raw = folder / "raw-composite.jpg"
    Image.fromarray(photos[3]).save(raw, quality=92)
    files["composite"] = folder / "composite.jpg"  # trusted, but "may contain GenAI"
    issue(raw, files["composite"], spec=ManifestSpec(source_type="composite", author="Jane Doe"))
    raw.unlink()

    files["tampered"] = folder / "tampered.jpg"  # one bit of the entropy-coded pixels
    files["tampered"].write_bytes(flip_pixel_bytes(files["camera"].read_bytes()))

    files["stripped"] = strip_and_degrade(
        files["camera"], folder / "stripped.jpg", quality=80, scale=0.75
    )
    edited = Image.open(files["stripped"]).convert("RGB")
    w, h = edited.size
    ImageDraw.Draw(edited).rectangle((w // 4, h // 4, w // 2, h // 2), fill=(250, 250, 250))
    files["stripped_edited"] = folder / "stripped-edited.jpg"
    edited.save(files["stripped_edited"], quality=85)

    gen = Generator("builtin", out_dir=folder / "generated")
    (sealed,) = gen.generate("a harbour at dawn", n=1, seed=7, size=(512, 512))
    files["generated"] = Path(sealed.path)

    other, _ = make_identity(folder / "forger", "Associated Press")
    plain = folder / "forged-source.png"
    Image.open(files["generated"]).convert("RGB").save(plain)
    files["forged"] = folder / "forged.jpg"
    issue(
        plain,
        files["forged"],
        spec=ManifestSpec(source_type="digitalCapture"),
        identity=other,
        watermark=False,
        db=folder / "forger" / "ledger.db",
    )
    plain.unlink()

    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a lighthouse at dusk\nNegative prompt: blurry\n"
        "Steps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 42, Model: sd_xl",
    )
    files["a1111"] = folder / "a1111.png"
    Image.fromarray(photos[2]).save(files["a1111"], pnginfo=info)

    marked = _sdxl(photos[5])
    if marked is not None:
        files["sdxl"] = folder / "sdxl.png"
        marked.save(files["sdxl"])

    archive = folder / "archive"
    archive.mkdir()
    original = archive / "flood-2019.jpg"
    Image.fromarray(photos[1]).save(original, quality=90)
    ReferenceIndex(None).add(
        "archive",
        [original],
        label="photo archive",
        protected=False,
        item_metadata={str(original): {"published": ARCHIVE_PUBLISHED}},
    )
    files["recycled"] = folder / "recycled.jpg"
    Image.open(original).resize((400, 300)).save(files["recycled"], quality=75)
    return files
