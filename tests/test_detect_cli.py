"""`provkit detect` and `provkit scan` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from PIL import Image, PngImagePlugin

from provkit.cli import root
from tests.fixtures_detect import generator_like, real_crops, save_all


def run(*args):
    return CliRunner().invoke(root, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def generated_png(tmp_path, photos):
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "harbour\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1")
    path = tmp_path / "gen.png"
    Image.fromarray(photos[2][:200, :200]).save(path, pnginfo=info)
    return path


def test_detect_json_has_the_documented_keys(generated_png):
    result = run("detect", "--json", generated_png)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"path", "verdict", "score", "evidence", "duplicates"} <= set(data)
    assert data["verdict"] == "ai-generated" and data["decided_by"] == ["generator-metadata"]
    assert all({"kind", "finding", "strength", "detail"} <= set(e) for e in data["evidence"])


def test_detect_human_output_names_verdict_and_every_item(generated_png):
    result = run("detect", generated_png)
    assert result.exit_code == 0
    assert "ai-generated" in result.output and "decided by: generator-metadata" in result.output
    assert "classifier (not checked)" in result.output
    verbose = run("detect", "-v", generated_png)
    assert "classifier: not checked" in verbose.output


def test_unreadable_file_is_one_line_exit_2_and_others_still_reported(generated_png, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    result = CliRunner().invoke(root, ["detect", "--json", str(empty), str(generated_png)])
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert [d.get("verdict") for d in data] == [None, "ai-generated"]
    assert "error: " in result.stderr and "empty.jpg: empty file" in result.stderr
    assert "Traceback" not in result.output


def test_fail_on_verdict_exits_1(generated_png, photo_path):
    assert run("detect", "--fail-on", "ai-generated", generated_png).exit_code == 1
    assert run("detect", "--fail-on", "ai-generated", photo_path).exit_code == 0


def test_train_then_detect_with_the_probe(tmp_path, photos):
    save_all(real_crops(photos, 16), tmp_path / "real", "jpg")
    save_all(generator_like(16), tmp_path / "fake", "png")
    probe = tmp_path / "probe.json"
    result = run(
        "detect",
        "train",
        "--real",
        tmp_path / "real",
        "--fake",
        tmp_path / "fake",
        "-o",
        probe,
        "--clip",
        "provkit-tiny-vit:random",
        "--json",
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert metrics["heldout_auc"] >= 0.8
    fake = save_all(generator_like(1, seed=77), tmp_path / "new", "png")[0]
    out = json.loads(run("detect", "--json", "--probe", probe, fake).stdout)
    item = next(e for e in out["evidence"] if e["kind"] == "classifier")
    assert out["score"] is not None and item["finding"] != "not checked"


def test_a_probe_for_another_clip_model_is_refused(tmp_path, photo_path):
    probe = tmp_path / "p.json"
    probe.write_text(
        json.dumps(
            {
                "format": "provkit-probe",
                "version": 1,
                "clip": {"model_id": "ViT-L-14:sha256:00", "spec": "ViT-L-14:/nowhere/weights.bin"},
                "normalisation": {"mean": [0.0], "std": [1.0]},
                "weights": [1.0],
                "bias": 0.0,
                "calibration": {"method": "platt", "a": 1.0, "b": 0.0},
            }
        )
    )
    result = CliRunner().invoke(root, ["detect", "--probe", str(probe), str(photo_path)])
    assert result.exit_code == 2 and "no CLIP checkpoint" in result.stderr
    result = CliRunner().invoke(
        root,
        ["detect", "--probe", str(probe), "--clip", "provkit-tiny-vit:random", str(photo_path)],
    )
    assert result.exit_code == 2 and "pass --clip ViT-L-14" in result.stderr


def test_detect_help_shows_both_forms():
    result = run("detect", "--help")
    assert "train" in result.output and "FILE..." in result.output


def test_scan_cli_prints_a_summary_per_verdict(tmp_path, generated_png, photo_path):
    out = tmp_path / "scan.csv"
    result = CliRunner().invoke(
        root, ["scan", str(tmp_path), "--out", str(out), "--workers", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["by_verdict"] == {"ai-generated": 1, "unknown": 1}
    assert "scanning" in result.stderr  # progress goes to stderr
    again = CliRunner().invoke(root, ["scan", str(tmp_path), "--out", str(out)])
    assert again.exit_code == 2 and "--resume" in again.stderr


def test_detect_modules_do_not_import_torch_until_a_model_is_needed(generated_png):
    code = (
        "import sys; from provkit.commands import detect as commands; from provkit.detect import verdict, evidence, metadata, scan, "
        "classifier; from provkit.detect.verdict import detect; "
        f"detect({str(generated_png)!r}); "
        "print('torch' in sys.modules, 'open_clip' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_detect_on_many_files_shows_progress_on_stderr_and_clean_json_on_stdout(tmp_path, photos):
    paths = save_all(real_crops(photos, 8, size=64), tmp_path / "many")
    result = run("detect", "--json", *paths)
    assert result.exit_code == 0, result.output
    assert "detecting" in result.stderr
    assert [r["path"] for r in json.loads(result.stdout)] == [str(p) for p in paths]


def test_scan_with_unreadable_rows_exits_2_and_still_writes_every_row(tmp_path, generated_png):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "scan.jsonl"
    result = CliRunner().invoke(
        root, ["scan", str(tmp_path), "--out", str(out), "--workers", "1", "--json"]
    )
    assert result.exit_code == 2
    summary = json.loads(result.stdout)
    assert summary["errors"] == 1 and summary["scanned"] == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(bool(r["error"]) for r in rows) == [False, True]


def test_scan_with_an_unknown_index_set_is_one_line_exit_2_and_writes_nothing(
    tmp_path, generated_png
):
    out = tmp_path / "scan.csv"
    result = CliRunner().invoke(root, ["scan", str(tmp_path), "--out", str(out), "--index", "nope"])
    assert result.exit_code == 2 and "no bank named nope" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_detect_with_an_index_set_in_a_workspace_without_sets_says_so(generated_png):
    result = run("detect", "--index", "archive", generated_png)
    assert result.exit_code == 2
    assert "no bank named archive" in result.stderr
    assert "no banks" in result.stderr
