"""``provkit generate``: JSON and text output, exit codes, every backend from the command line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fixtures_generate import TinyDCGAN, save_random_weights
from provkit.provenance.verify import verify_file

from provkit.cli import root


def run(*args):
    result = CliRunner().invoke(root, ["generate", *map(str, args)])
    return result


def test_json_lists_each_output_path_asset_id_manifest_label_and_seed(tmp_path):
    r = run("a quiet harbour", "-n", 2, "--seed", 40, "--size", "128x128", "-o", tmp_path, "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert [i["seed"] for i in data["images"]] == [40, 41]
    for img in data["images"]:
        assert img["path"].startswith(str(tmp_path)) and img["asset_id"] in img["path"]
        assert img["manifest_label"].startswith("urn:c2pa:")
        assert verify_file(img["path"]).state == "trusted"
    assert data["failed"] == [] and data["protected_sets"] == "no protected sets registered"


def test_human_output_names_each_sealed_file(tmp_path):
    r = run("x", "--size", "128x128", "--format", "jpeg", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    (path,) = list(tmp_path.iterdir())
    assert path.suffix == ".jpg" and f"sealed   {path}" in r.stdout
    assert "1 sealed" in r.stdout


def test_gan_backend_from_the_command_line(tmp_path):
    weights = save_random_weights(TinyDCGAN(), tmp_path / "g.pt")
    r = run(
        "ignored",
        "--backend",
        "gan",
        "--module",
        "fixtures_generate:TinyDCGAN",
        "--model",
        weights,
        "--latent-size",
        16,
        "--size",
        "128x128",
        "-o",
        tmp_path / "o",
        "--json",
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["backend"]["parameters"]["native_size"] == [32, 32]
    c2pa = verify_file(data["images"][0]["path"]).to_json()["c2pa"]
    assert c2pa["digital_source_type"] == "trainedAlgorithmicMedia"


def test_partial_failure_exits_1_and_lists_the_failed_image(tmp_path):
    r = run(
        "p",
        "--backend",
        "callable",
        "--model",
        "test_seal:flaky_model",
        "-n",
        3,
        "--seed",
        1,
        "-o",
        tmp_path,
        "--json",
    )
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert [i["seed"] for i in data["images"]] == [1, 3]
    assert [(f["seed"], f["stage"]) for f in data["failed"]] == [(2, "backend")]
    assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "12x"], "size must look like WIDTHxHEIGHT"),
        (["--model", "x"], "builtin backend takes no --model"),
        (["--backend", "nope"], "unknown backend 'nope'"),
        (["--backend", "diffusers"], "needs --model"),
        (["--init-image", "missing.png"], "missing.png: no such file"),
        (["--latent-size", "8"], "are for --backend gan|vae"),
    ],
)
def test_bad_usage_is_one_line_on_stderr_with_exit_2(tmp_path, args, message):
    r = run("p", *args, "-o", tmp_path)
    assert r.exit_code == 2
    assert message in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1


def test_policy_deny_exits_1_with_the_reason(tmp_path):
    r = run("pikachu drinking coca cola", "--policy", "studio", "-o", tmp_path)
    assert r.exit_code == 1
    assert "refused the request" in r.stderr and "trademark" in r.stderr
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_generate_help_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys; from provkit.cli import root; "
        "root.main(['generate', '--help'], standalone_mode=False); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


rendered = []


def recording_model(request):
    rendered.append(request.seeds)
    from PIL import Image

    return [Image.new("RGB", (request.width, request.height), "red")] * request.count


@pytest.mark.parametrize("size", ["64x64", "127x512", "96"])
def test_size_below_the_watermark_minimum_exits_2_before_the_backend_runs(tmp_path, size):
    rendered.clear()
    r = run(
        "p",
        "--backend",
        "callable",
        "--model",
        "test_generate_cli:recording_model",
        "--size",
        size,
        "-o",
        tmp_path,
    )
    assert r.exit_code == 2 and "from 128 to 8192" in r.stderr
    assert "--no-watermark" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert rendered == [] and not any(tmp_path.iterdir())


def test_a_backend_whose_own_size_is_too_small_is_refused_before_rendering(tmp_path):
    from provkit.generate import Generator
    from provkit.generate.backends.callable import CallableBackend
    from provkit.provenance.core.errors import BadInput

    rendered.clear()
    backend = CallableBackend(recording_model, name="small", version="1")
    backend.default_size = (32, 32)
    with pytest.raises(BadInput, match="width must be a whole number of pixels from 128"):
        Generator(backend, out_dir=tmp_path).run("p")
    assert rendered == []


def test_denied_request_with_json_prints_the_decision_on_stdout_and_exits_1(tmp_path):
    r = run("pikachu drinking coca cola", "--policy", "studio", "-o", tmp_path, "--json")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert data["refused"] is True and data["images"] == []
    assert data["request_decision"]["outcome"] == "deny"
    assert any("trademark" in reason for reason in data["request_decision"]["reasons"])
    assert "refused the request" in r.stderr and len(r.stderr.strip().splitlines()) == 1
