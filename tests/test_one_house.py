"""The house: one import name with the CLI's verbs, no identity made behind the user's back,
one spelling of the training statement, and nothing a command passes over unsaid."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from PIL import Image
from provkit.provenance import keys

import provkit
from provkit.cli import root


def run(*args, ok=(0,)):
    result = CliRunner().invoke(root, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code in ok, result.output
    return result


@pytest.fixture
def no_dev_identity(monkeypatch):
    monkeypatch.delenv("PROVKIT_DEV_IDENTITY", raising=False)


def test_import_provkit_is_light_and_names_the_verbs():
    code = (
        "import sys, provkit; assert [m for m in sys.modules if m.startswith('provkit')]"
        " == ['provkit'], sorted(sys.modules); "
        "from provkit import sign, verify, check, scan, dupes, recover, detect, generate; "
        "assert callable(detect) and callable(generate)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_the_python_verbs_answer_as_the_cli_does(photo_path, tmp_path):
    signed = tmp_path / "signed.jpg"
    issued = provkit.sign(
        photo_path, signed, source_type="digitalCapture", author="A. Reporter", allow_training=False
    )
    report = provkit.verify(signed)
    assert report.state == "trusted"
    assert report.asset_id == issued.asset_id
    cli = json.loads(run("verify", "--json", signed).output)
    assert cli[0]["c2pa"]["state"] == "trusted"
    (bad,) = [
        r for r in provkit.verify([signed, tmp_path / "missing.jpg"]) if not hasattr(r, "state")
    ]
    assert "no such file" in str(bad)
    assert provkit.detect(signed).verdict == provkit.detect.detect(signed).verdict
    record = provkit.check(signed, pack="newsroom", dry_run=True)
    assert record.decision is not None


def test_signing_without_an_identity_names_keys_init(no_dev_identity, photo_path, tmp_path):
    result = run(
        "sign", photo_path, "-o", tmp_path / "out.jpg", "--source-type", "digitalCapture", ok=(2,)
    )
    assert "provkit keys init" in result.output
    assert not (tmp_path / "out.jpg").exists()
    assert not (keys.keys_dir() / "chain.pem").exists()
    result = run(
        "generate", "a harbour", "-n", "1", "--size", "128x128", "-o", tmp_path / "gen", ok=(2,)
    )
    assert "provkit keys init" in result.output
    assert not list((tmp_path / "gen").glob("*.png")) if (tmp_path / "gen").exists() else True
    # keys init still works afterwards: nothing was created on the way
    run("keys", "init")


def test_dev_identity_flag_creates_one_when_asked(no_dev_identity, photo_path, tmp_path):
    run(
        "sign",
        photo_path,
        "-o",
        tmp_path / "out.jpg",
        "--source-type",
        "digitalCapture",
        "--dev-identity",
    )
    assert (keys.keys_dir() / "chain.pem").exists()


def test_keys_init_force_says_what_becomes_of_the_old_ca(photo_path, tmp_path):
    run("keys", "init")
    signed = tmp_path / "old.jpg"
    run("sign", photo_path, "-o", signed, "--source-type", "digitalCapture")
    out = json.loads(run("keys", "init", "--force", "--json").output)
    retired = out["retired_ca"]
    assert "still verify as trusted" in retired["effect"]
    assert json.loads(run("verify", "--json", signed).output)[0]["c2pa"]["state"] == "trusted"
    text = run("keys", "init", "--force").output
    assert "To stop trusting them" in text and "rm " in text
    # following the advice works: the first retired CA no longer vouches for its file
    from pathlib import Path

    Path(retired["path"]).unlink()
    assert (
        json.loads(run("verify", "--json", signed, ok=(0, 1)).output)[0]["c2pa"]["state"] == "valid"
    )


def _training(path) -> set[str] | None:
    import c2pa

    with c2pa.Reader(str(path)) as reader:
        store = json.loads(reader.json())
    manifest = store["manifests"][store["active_manifest"]]
    for a in manifest["assertions"]:
        if a["label"] == "cawg.training-mining":
            return {e["use"] for e in a["data"]["entries"].values()}
    return None


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ((), None),
        (("--no-training",), {"notAllowed"}),
        (("--allow-training",), {"allowed"}),
        (("--no-train",), {"notAllowed"}),  # the old spelling, hidden for one release
    ],
)
def test_sign_states_training_with_the_one_flag(photo_path, tmp_path, flags, expected):
    out = tmp_path / "out.jpg"
    run("sign", photo_path, "-o", out, "--source-type", "digitalCapture", *flags)
    assert _training(out) == expected


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ((), {"notAllowed"}),
        (("--allow-training",), {"allowed"}),
        (("--no-training",), {"notAllowed"}),
    ],
)
def test_generate_states_training_with_the_same_flag(tmp_path, flags, expected):
    run(
        "generate",
        "a harbour",
        "-n",
        "1",
        "--size",
        "128x128",
        "--seed",
        "3",
        "-o",
        tmp_path / "gen",
        *flags,
    )
    (png,) = (tmp_path / "gen").glob("*.png")
    assert _training(png) == expected


def test_the_training_flag_reads_the_same_in_both_helps():
    for verb in ("sign", "generate"):
        assert "--allow-training / --no-training" in run(verb, "--help").output


def test_scan_says_which_files_it_skipped_and_why(tmp_path, photos):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photos[0]).resize((128, 128)).save(folder / "a.jpg")
    (folder / "report.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    (folder / "notes.txt").write_text("hello")
    result = CliRunner().invoke(
        root, ["scan", str(folder), "-o", str(tmp_path / "out.jsonl"), "--workers", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["scanned"] == 1
    assert {(s["path"].rsplit("/", 1)[-1], s["reason"]) for s in summary["skipped"]} == {
        ("notes.txt", "text, not an image"),
        ("report.pdf", "a PDF, not a still image"),
    }
    assert "skipped" in result.stderr and "report.pdf" in result.stderr


def test_the_version_is_written_once_in_step_with_pyproject():
    import tomllib
    from pathlib import Path

    from provkit.provenance.core import about

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert about.VERSION == project["project"]["version"] == provkit.__version__


def test_the_compiled_rubrics_are_the_shipped_yaml():
    from provkit.provenance import signals
    from provkit.provenance.trust import data_file

    assert data_file(signals.COMPILED_FILE) == signals.compile_rubrics(), (
        "the rubric YAML changed: run `make rubrics`"
    )


def test_verify_of_a_signed_file_loads_neither_numpy_nor_cryptography(photo_path, tmp_path):
    """What keeps `provkit verify` a light process (bench/cli.py measures it)."""
    signed = tmp_path / "signed.jpg"
    provkit.sign(photo_path, signed, source_type="digitalCapture")
    code = (
        "import sys; from provkit.cli import main\n"
        "try:\n    main(['verify', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'cryptography.x509', 'yaml', 'scipy') "
        "if m in sys.modules]\nprint('HEAVY', heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(signed)], capture_output=True, text=True, check=False
    )
    assert "TRUSTED" in out.stdout, out.stderr
    assert "HEAVY []" in out.stdout


def test_the_storage_backend_is_one_setting_and_an_unknown_one_is_refused(workspace):
    from provkit.provenance.core import stores

    from provkit.server import tokens

    assert stores.backend() == "sqlite"
    assert isinstance(tokens.token_store(), tokens.SqliteTokenStore)
    (workspace / "provkit.toml").write_text('[storage]\nbackend = "postgresql"\n')
    result = run("tokens", "list", ok=(2,))
    assert "unknown storage backend 'postgresql'" in result.output
    assert "provkit.toml" in result.output
