"""C2PA signing: what the manifest says, formats, atomic output, the ledger record."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner
from PIL import Image
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.vocabulary import IPTC
from provkit.provenance.issue import issue
from provkit.provenance.keys import local_trust_anchors
from provkit.provenance.ledger import Ledger
from provkit.provenance.manifest import ManifestSpec

from provkit.cli import root
from tests.fixtures_provenance import needs_watermark, reader_json, sdk_state


def _active(path):
    store = reader_json(path)
    return store, store["manifests"][store["active_manifest"]]


def _assertion(manifest, label):
    return next(a["data"] for a in manifest["assertions"] if a["label"] == label)


def test_manifest_carries_actions_v2_source_type_agent_and_generator(tmp_path, photo_path):
    from provkit.provenance import __version__

    out = tmp_path / "ai.jpg"
    spec = ManifestSpec(
        source_type="trainedAlgorithmicMedia",
        parameters={"seed": 7},
        software_agent={"name": "tiny-diffusion", "version": "1"},
    )
    issue(photo_path, out, spec=spec, watermark=False)
    _, m = _active(out)
    assert m["claim_generator_info"][0]["name"] == "provkit"
    assert m["claim_generator_info"][0]["version"] == __version__
    action = _assertion(m, "c2pa.actions.v2")["actions"][0]
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"] == IPTC + "trainedAlgorithmicMedia"
    assert action["softwareAgent"]["name"] == "tiny-diffusion"
    assert action["parameters"] == {"seed": 7}


def test_no_train_forbids_every_training_and_mining_use(tmp_path, photo_path):
    out = tmp_path / "nt.jpg"
    issue(
        photo_path,
        out,
        spec=ManifestSpec(source_type="digitalCapture", no_train=True, author="Jane Doe"),
        watermark=False,
    )
    _, m = _active(out)
    entries = _assertion(m, "cawg.training-mining")["entries"]
    assert {v["use"] for v in entries.values()} == {"notAllowed"}
    assert "cawg.ai_generative_training" in entries
    work = _assertion(m, "stds.schema-org.CreativeWork")
    assert work["author"][0]["name"] == "Jane Doe"


def test_ingredient_keeps_its_parent_manifest_so_the_chain_can_be_walked(tmp_path, signed_jpeg):
    parent, issued = signed_jpeg
    child = tmp_path / "child.png"
    Image.open(parent).save(tmp_path / "edit.png")
    issue(
        tmp_path / "edit.png",
        child,
        spec=ManifestSpec(
            source_type="humanEdits", action="edited", ingredients=((parent, "parentOf"),)
        ),
        watermark=False,
    )
    store, m = _active(child)
    actions = [a["action"] for a in _assertion(m, "c2pa.actions.v2")["actions"]]
    assert actions == ["c2pa.opened", "c2pa.edited"]
    ing = m["ingredients"][0]
    assert ing["relationship"] == "parentOf"
    assert ing["active_manifest"] == issued.manifest_label
    assert issued.manifest_label in store["manifests"]


def test_signing_never_overwrites_its_input(photo_path):
    before = photo_path.read_bytes()
    with pytest.raises(BadInput, match="overwrite the input"):
        issue(
            photo_path, photo_path, spec=ManifestSpec(source_type="digitalCapture"), watermark=False
        )
    assert photo_path.read_bytes() == before
    assert not list(photo_path.parent.glob(".*.tmp"))


@pytest.mark.parametrize("suffix", [".png", ".webp", ".gif", ".tif"])
def test_every_common_image_format_signs_valid(tmp_path, photos, suffix):
    src = tmp_path / f"src{suffix}"
    Image.fromarray(photos[1]).save(src)
    out = tmp_path / f"out{suffix}"
    issue(src, out, spec=ManifestSpec(source_type="digitalCapture"), watermark=False)
    assert sdk_state(out, anchors=local_trust_anchors()) == "trusted"


def test_output_format_c2pa_cannot_carry_is_refused(tmp_path, photo_path):
    with pytest.raises(BadInput, match="cannot be embedded|cannot tell"):
        issue(
            photo_path,
            tmp_path / "out.bmp",
            spec=ManifestSpec(source_type="digitalCapture"),
            watermark=False,
        )
    assert not (tmp_path / "out.bmp").exists()


def test_unknown_source_type_is_refused():
    with pytest.raises(BadInput, match="unknown digital source type"):
        ManifestSpec(source_type="aiMagic")


def test_pil_image_source_is_encoded_to_the_output_format(tmp_path, photos):
    out = tmp_path / "gen.png"
    issued = issue(
        Image.fromarray(photos[2]),
        out,
        spec=ManifestSpec(source_type="trainedAlgorithmicMedia"),
        watermark=False,
    )
    assert issued.mime == "image/png" and Image.open(out).format == "PNG"
    assert sdk_state(out, anchors=local_trust_anchors()) == "trusted"


def test_sign_records_the_asset_with_the_hash_of_the_output_bytes(tmp_path, photo_path):
    result = CliRunner().invoke(
        root,
        [
            "sign",
            str(photo_path),
            "-o",
            str(tmp_path / "o.jpg"),
            "--source-type",
            "digitalCapture",
            "--no-watermark",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    issued = json.loads(result.output)
    asset = Ledger().get(issued["asset_id"])
    assert asset.sha256 == hashlib.sha256((tmp_path / "o.jpg").read_bytes()).hexdigest()
    assert asset.manifest_label == issued["manifest_label"]
    assert asset.source_type == "digitalCapture" and asset.phash and asset.pdq
    assert Ledger().manifest_store(issued["asset_id"])  # kept for recovery


def test_cli_sign_of_a_created_asset_needs_a_source_type(tmp_path, photo_path):
    result = CliRunner().invoke(root, ["sign", str(photo_path), "-o", str(tmp_path / "o.jpg")])
    assert result.exit_code == 2 and "--source-type" in result.output


def test_cli_sign_of_a_text_file_is_one_line_error(tmp_path):
    bad = tmp_path / "note.jpg"
    bad.write_text("hello")
    result = CliRunner().invoke(
        root, ["sign", str(bad), "-o", str(tmp_path / "o.jpg"), "--source-type", "digitalCapture"]
    )
    assert result.exit_code == 2
    assert "note.jpg: not an image" in result.output and "Traceback" not in result.output


@needs_watermark
def test_watermarked_signing_declares_the_soft_binding(tmp_path, photo_path):
    from provkit.provenance import watermark

    out = tmp_path / "wm.jpg"
    issued = issue(photo_path, out, spec=ManifestSpec(source_type="digitalCapture"))
    _, m = _active(out)
    binding = _assertion(m, "c2pa.soft-binding")
    assert binding["alg"] == watermark.SOFT_BINDING_ALG
    import base64

    assert base64.b64decode(binding["blocks"][0]["value"]).hex() == issued.asset_id
    assert _assertion(m, "io.provkit.asset")["asset_id"] == issued.asset_id
    decoded = watermark.decode(Image.open(out))
    assert decoded is not None and decoded.payload.hex() == issued.asset_id


@needs_watermark
def test_noise_that_cannot_carry_a_readable_mark_is_signed_without_the_soft_binding(
    tmp_path, monkeypatch
):
    import numpy as np
    from provkit.provenance import issue as issue_module
    from provkit.provenance import watermark
    from provkit.provenance.issue import UNREADABLE_MARK

    # Whether a mark reads back from noise depends on the payload: about 1 asset id in 40
    # does on this picture (and is then rightly kept). This id does not.
    monkeypatch.setattr(issue_module, "new_asset_id", lambda: "0123456789abcdef")

    src = tmp_path / "noise.png"
    rgb = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(src)
    out = tmp_path / "o.png"
    result = CliRunner().invoke(
        root, ["sign", str(src), "-o", str(out), "--source-type", "digitalCapture", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["watermarked"] is False and data["soft_binding_alg"] is None
    assert data["watermark_skipped"] == UNREADABLE_MARK
    _, m = _active(out)
    assert "c2pa.soft-binding" not in {a["label"] for a in m["assertions"]}
    assert _assertion(m, "io.provkit.asset")["asset_id"] == data["asset_id"]
    assert np.array_equal(np.asarray(Image.open(out)), rgb)  # the pixels as they came
    assert watermark.decode(Image.open(out)) is None
    assert Ledger().get(data["asset_id"]).soft_binding_alg is None
    assert sdk_state(out, anchors=local_trust_anchors()) == "trusted"


@needs_watermark
def test_a_photograph_passes_the_mark_check_and_keeps_its_soft_binding(tmp_path, photos):
    issued = issue(
        Image.fromarray(photos[1]),
        tmp_path / "o.png",
        spec=ManifestSpec(source_type="digitalCapture"),
    )
    assert issued.watermarked and issued.watermark_skipped is None
    _, m = _active(tmp_path / "o.png")
    assert "c2pa.soft-binding" in {a["label"] for a in m["assertions"]}


def test_a_reused_asset_id_is_refused_before_anything_is_written(tmp_path, photo_path):
    spec = ManifestSpec(source_type="digitalCapture")
    issue(photo_path, tmp_path / "a.jpg", spec=spec, watermark=False, asset_id="00000000000000aa")
    with pytest.raises(BadInput, match="already in the ledger"):
        issue(
            photo_path, tmp_path / "b.jpg", spec=spec, watermark=False, asset_id="00000000000000aa"
        )
    assert not (tmp_path / "b.jpg").exists()
    assert Ledger().count() == 1


# ----------------------------------------------------------- existing outputs


def test_sign_refuses_an_existing_output_unless_forced(tmp_path, photo_path):
    out = tmp_path / "o.jpg"
    out.write_bytes(b"someone else's file")
    args = [
        "sign",
        str(photo_path),
        "-o",
        str(out),
        "--source-type",
        "digitalCapture",
        "--no-watermark",
    ]
    refused = CliRunner().invoke(root, args)
    assert refused.exit_code == 2 and f"{out}: output already exists" in refused.output
    assert out.read_bytes() == b"someone else's file" and Ledger().count() == 0
    forced = CliRunner().invoke(root, [*args, "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    assert sdk_state(out, anchors=local_trust_anchors()) == "trusted"
    assert Ledger().count() == 1


def test_a_failed_ledger_write_leaves_the_file_that_was_there(tmp_path, photo_path, monkeypatch):
    import sqlite3

    out = tmp_path / "o.jpg"
    out.write_bytes(b"the earlier file")

    def fails(self, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Ledger, "record", fails)
    with pytest.raises(sqlite3.OperationalError):
        issue(
            photo_path,
            out,
            spec=ManifestSpec(source_type="digitalCapture"),
            watermark=False,
            force=True,
        )
    assert out.read_bytes() == b"the earlier file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jpg", "photo.jpg"]  # no temp


def test_an_output_format_provkit_cannot_encode_names_the_output_file(tmp_path, photo_path):
    out = tmp_path / "o.heic"
    result = CliRunner().invoke(
        root, ["sign", str(photo_path), "-o", str(out), "--source-type", "digitalCapture"]
    )
    assert result.exit_code == 2
    assert f"error: {out}: provkit cannot encode pixels as image/heic" in result.output
    assert not out.exists()


def test_unwatermarked_asset_is_recorded_with_the_fingerprint_of_its_own_pixels(tmp_path, photos):
    import numpy as np
    from provkit.provenance.fingerprint import fingerprint_file, hamming

    rng = np.random.default_rng(3)
    noisy = np.clip(photos[1].astype(int) + rng.integers(-60, 61, photos[1].shape), 0, 255)
    src = tmp_path / "noisy.jpg"
    Image.fromarray(noisy.astype(np.uint8)).save(src, quality=95)
    issued = issue(
        src, tmp_path / "o.jpg", spec=ManifestSpec(source_type="digitalCapture"), watermark=False
    )
    stored = Ledger().get(issued.asset_id)
    actual = fingerprint_file(tmp_path / "o.jpg")
    assert hamming(int(stored.phash, 16), actual.phash) == 0
    assert hamming(bytes.fromhex(stored.pdq), actual.pdq) == 0


def test_a_created_asset_without_source_type_is_one_line_from_the_library(tmp_path, photo_path):
    out = tmp_path / "o.jpg"
    result = CliRunner().invoke(root, ["sign", str(photo_path), "-o", str(out)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0, result.output
    assert "needs a digital source type (--source-type" in result.output
    with pytest.raises(BadInput, match="--source-type"):
        issue(photo_path, out, spec=ManifestSpec())
    assert not out.exists() and Ledger().count() == 0
