"""The journeys across packages: what a studio makes, a newsroom and a platform can check."""

from __future__ import annotations

import json

from click.testing import CliRunner
from PIL import Image
from provkit.detect.verdict import detect
from provkit.generate import Generator
from provkit.policies import decide, load_pack
from provkit.provenance.verify import verify_file

from provkit.cli import root


def test_a_builtin_image_verifies_is_called_generated_and_needs_a_label_to_publish(tmp_path):
    generator = Generator("builtin", out_dir=tmp_path)
    (sealed,) = generator.generate("a quiet harbour at dawn", n=1, seed=3, size=(256, 256))
    report = verify_file(sealed.path).to_json()["c2pa"]
    assert report["state"] == "trusted"
    assert report["digital_source_type"] == "algorithmicMedia"
    assert report["training_mining"]["cawg.ai_generative_training"] == "notAllowed"

    detected = detect(sealed.path)
    assert detected.verdict == "ai-generated"
    assert [e.kind for e in detected.decided_by] == ["c2pa"]

    decision = decide(load_pack("newsroom"), "publish", {"asset": detected.policy_context()})
    assert decision.outcome != "allow"


def test_a_stripped_and_recompressed_generated_image_is_still_traced_to_its_manifest(tmp_path):
    generator = Generator("builtin", out_dir=tmp_path)
    (sealed,) = generator.generate("lanterns", n=1, seed=5, size=(512, 512))
    shared = tmp_path / "shared.jpg"
    img = Image.open(sealed.path).convert("RGB")
    img.resize((256, 256)).save(shared, quality=70)  # no metadata survives
    report = verify_file(shared).to_json()["c2pa"]
    assert report["state"] == "recovered"
    assert report["recovered_by"]["method"] == "watermark"
    assert report["asset_id"] == sealed.asset_id
    assert detect(shared).verdict == "ai-generated"


def test_too_small_to_watermark_is_a_one_line_error_naming_the_file(tmp_path):
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (100, 100), (40, 90, 200)).save(tiny)
    result = CliRunner().invoke(
        root,
        ["sign", str(tiny), "-o", str(tmp_path / "out.png"), "--source-type", "digitalCapture"],
    )
    assert result.exit_code == 2
    assert "tiny.png" in result.output and "--no-watermark" in result.output
    assert "Traceback" not in result.output
    ok = CliRunner().invoke(
        root,
        [
            "sign",
            str(tiny),
            "-o",
            str(tmp_path / "out.png"),
            "--source-type",
            "digitalCapture",
            "--no-watermark",
            "--json",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["watermarked"] is False


def test_verify_and_recover_with_a_mistyped_db_fail_and_create_nothing(tmp_path, photo_path):
    missing = tmp_path / "typo.db"
    for args in (
        ["verify", str(photo_path)],
        ["recover", str(photo_path), "-o", str(tmp_path / "r.jpg")],
    ):
        result = CliRunner().invoke(root, [*args, "--db", str(missing)])
        assert result.exit_code == 2, result.output
        assert "no such database" in result.output
        assert not missing.exists()


def noise_model(request):
    """A 'model' whose outputs are uniform noise: too noise-like to carry a readable mark."""
    import numpy as np

    return [
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))
        for _ in range(request.count)
    ]


def test_an_output_that_cannot_carry_a_readable_mark_is_sealed_without_claiming_one(
    tmp_path, monkeypatch
):
    from provkit.generate import seal

    # Whether a mark reads back from noise depends on the payload: about 1 asset id in 40
    # does on this picture (and is then rightly kept). None of these ids does.
    ids = iter(f"{0x0123456789ABCDEF + i * 7919:016x}" for i in range(24))
    monkeypatch.setattr(seal, "new_asset_id", lambda: next(ids))
    generator = Generator(
        "callable", model="test_story:noise_model", out_dir=tmp_path, policy="studio"
    )
    (sealed,) = generator.generate("static", n=1, seed=1)
    assert sealed.watermarked is False and "does not read back" in sealed.watermark_skipped
    report = verify_file(sealed.path).to_json()["c2pa"]
    assert report["state"] == "trusted" and not report.get("soft_binding")
    from provkit.generate import checks

    context = checks.output_context({"request": {"allow_training": False}}, sealed, [])
    assert context["asset"]["watermark"]["found"] is False


def test_detect_and_scan_with_a_mistyped_db_fail_and_create_nothing(tmp_path, photo_path):
    missing = tmp_path / "typo.db"
    for args in (
        ["detect", str(photo_path)],
        ["scan", str(photo_path), "--out", str(tmp_path / "s.jsonl")],
    ):
        result = CliRunner().invoke(root, [*args, "--db", str(missing)])
        assert result.exit_code == 2, result.output
        assert "does not exist" in result.output
        assert not missing.exists() and not (tmp_path / "s.jsonl").exists()


def test_a_backend_module_that_fails_to_import_is_a_config_error_naming_it(tmp_path):
    broken = tmp_path / "broken_backend_mod.py"
    broken.write_text("raise RuntimeError('boom')\n")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        result = CliRunner().invoke(
            root,
            ["generate", "x", "--backend", "broken_backend_mod:Make", "-o", str(tmp_path / "out")],
        )
    finally:
        sys.path.remove(str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "broken_backend_mod:Make failed to import: RuntimeError: boom" in result.output
    assert "unexpected" not in result.output


def test_a_different_checkpoint_with_the_same_size_and_mtime_gets_its_own_hash(tmp_path):
    import hashlib
    import os

    from provkit.provenance.core.weights import weights_sha256

    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"A" * 1000)
    os.utime(ckpt, ns=(1_000_000_000, 1_000_000_000))
    first = weights_sha256(ckpt)
    ckpt.write_bytes(b"B" * 1000)  # what `cp -p` of another checkpoint looks like
    os.utime(ckpt, ns=(1_000_000_000, 1_000_000_000))
    assert weights_sha256(ckpt) == hashlib.sha256(b"B" * 1000).hexdigest() != first


def _first_identity(home):
    import os

    os.environ["PROVKIT_HOME"] = home
    from provkit.provenance import keys

    return keys.load_or_init().chain_pem


def test_processes_creating_the_first_identity_at_once_agree_on_one(workspace):
    import multiprocessing

    from provkit.provenance import keys

    with multiprocessing.get_context("spawn").Pool(4) as pool:
        chains = pool.map(_first_identity, [str(workspace)] * 4)
    assert len(set(chains)) == 1  # one identity, not one per process
    d = keys.keys_dir()
    assert (d / "chain.pem").read_bytes() == chains[0]
    assert (d / "ca.pem").read_bytes() in chains[0]  # the CA on disk is the chain's CA
    retired = d / "retired"
    assert not retired.exists() or not any(retired.iterdir())  # no CA was replaced


def test_a_terminated_generate_run_leaves_nothing_staged_or_unchecked(tmp_path, workspace):
    import os
    import signal
    import subprocess
    import sys
    import time

    from provkit.provenance.ledger import Ledger

    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "provkit.cli",
            "generate",
            "rain",
            "-n",
            "40",
            "--size",
            "256x256",
            "-o",
            str(out),
        ],
        env={**os.environ, "PROVKIT_HOME": str(workspace)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and any(out.glob("*.png"))):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    statuses = {a.status for a in Ledger().list()}
    assert statuses <= {"issued", "withheld"}, statuses  # never left "staged"
    released = {a.path for a in Ledger().list() if a.status == "issued"}
    assert {str(p) for p in out.glob("*.png")} == released
