"""Judgements that follow from the evidence: Midjourney's text-chunk signature is a
generator's mark; training takes only images whose origin is vouched for."""

from __future__ import annotations

import uuid

from PIL import Image, PngImagePlugin
from provkit.detect.metadata import read_metadata

from provkit.answers import check
from tests import fixtures_causes as make


def _midjourney_png(path, photos, description: str):
    info = PngImagePlugin.PngInfo()
    info.add_text("Description", description)
    info.add_text("Author", "someone_42")
    info.add_text("Creation Time", "Fri, 05 Dec 2026 01:02:03 GMT")
    Image.fromarray(photos[5]).resize((256, 192)).save(path, pnginfo=info)
    return path


def test_a_midjourney_text_chunk_signature_is_recognised_and_labelled(tmp_path, photos):
    path = _midjourney_png(
        tmp_path / "mj.png",
        photos,
        f"a lighthouse at dusk, film grain --ar 4:3 --v 6.1 Job ID: {uuid.uuid4()}",
    )
    meta = read_metadata(path)
    assert meta.generator == "Midjourney" and meta.generator_source == "png:Description"
    (platform,) = check([path], pack="platform", point="ingest", dry_run=True)
    assert platform.verdict == "ai-generated"
    assert platform.outcome == "label" and "AI-generated" in platform.decision.labels
    (studio,) = check([path], pack="studio", point="train", dry_run=True)
    assert studio.outcome == "deny" and "train-on-ai-output" in studio.decision.matched_rules


def test_a_caption_that_only_mentions_midjourney_is_not_a_signature(tmp_path, photos):
    path = _midjourney_png(
        tmp_path / "caption.png", photos, "Our review of Midjourney v6.1 and its new job queue"
    )
    assert read_metadata(path).generator is None


def test_training_takes_only_vouched_origin(tmp_path, photos):
    camera = tmp_path / "camera.jpg"
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS R5"  # Make, Model
    Image.fromarray(photos[6]).save(camera, "JPEG", quality=92, exif=exif.tobytes())
    (unvouched,) = check([camera], pack="studio", point="train", dry_run=True)
    assert unvouched.outcome == "review"
    assert unvouched.decision.matched_rules == ("train-origin-not-vouched",)
    signed = make.signed_by_workspace(tmp_path, make.photo_jpeg(photos[6]), "ours.jpg")
    (vouched,) = check([signed], pack="studio", point="train", dry_run=True)
    assert vouched.outcome == "allow"
