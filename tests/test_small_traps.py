"""The small traps a new user fell into, each pinned."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from provkit.provenance import keys
from provkit.provenance.core.vocabulary import DIGITAL_SOURCE_TYPES
from provkit.provenance.issue import issue
from provkit.provenance.manifest import ManifestSpec

from provkit.cli import root

ROOT = Path(__file__).resolve().parent.parent


def test_a_sec1_ec_key_imports_and_signs_and_the_imported_root_is_trusted_locally(
    tmp_path, photo_path
):
    ca_cert, _, leaf_cert, leaf_key = keys.make_chain("Example News")
    chain = tmp_path / "chain.pem"
    chain.write_bytes(keys._pem(leaf_cert) + keys._pem(ca_cert))
    sec1 = tmp_path / "key.pem"  # what `openssl ecparam -genkey` writes
    sec1.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    assert b"BEGIN EC PRIVATE KEY" in sec1.read_bytes()
    runner = CliRunner()
    imported = runner.invoke(root, ["keys", "import", "--chain", str(chain), "--key", str(sec1)])
    assert imported.exit_code == 0, imported.output
    out = tmp_path / "signed.jpg"
    signed = runner.invoke(
        root,
        [
            "sign",
            str(photo_path),
            "-o",
            str(out),
            "--source-type",
            "digitalCapture",
            "--no-watermark",
        ],
    )
    assert signed.exit_code == 0, signed.output
    verified = runner.invoke(root, ["verify", str(out)])
    assert verified.exit_code == 0 and "TRUSTED" in verified.output, verified.output
    assert "trusted: local workspace CA" in verified.output
    assert "not on your trust list" not in verified.output


def test_source_types_match_in_any_case_and_are_listed_in_help(tmp_path, photo_path):
    out = tmp_path / "s.jpg"
    issued = issue(
        photo_path, out, spec=ManifestSpec(source_type="digitalcapture"), watermark=False
    )
    assert issued.source_type == "digitalCapture"
    runner = CliRunner()
    listed = runner.invoke(root, ["ledger", "list", "--source-type", "DIGITALCAPTURE"])
    assert issued.asset_id in listed.output and listed.output.startswith("ASSET ID")
    none = runner.invoke(root, ["ledger", "list", "--source-type", "trainedalgorithmicmedia"])
    assert "no assets with source type trainedAlgorithmicMedia (1 issued in all)" in none.output
    for command in (["sign", "--help"], ["ledger", "list", "--help"]):
        text = " ".join(runner.invoke(root, command).output.split())
        assert all(name in text for name in DIGITAL_SOURCE_TYPES), command


def test_list_commands_print_column_headers(tmp_path, photo_path):
    from provkit.detect.index import ReferenceIndex

    ReferenceIndex(None).add("archive", [photo_path], workers=1)
    runner = CliRunner()
    assert runner.invoke(root, ["index", "list"]).output.startswith("NAME\tITEMS")
    assert runner.invoke(root, ["policy", "list"]).output.startswith("PACK VERSION")


def test_every_environment_variable_is_documented_in_one_place():
    used = set()
    for folder in ("provkit", "provenance", "detect", "generate", "policies"):
        for path in (ROOT / folder).rglob("*.py"):
            used |= set(re.findall(r"PROVKIT_[A-Z_]+", path.read_text(encoding="utf-8")))
    doc = (ROOT / "docs" / "environment.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(PROVKIT_[A-Z_]+)`", doc, re.MULTILINE))
    assert used - documented == set(), used - documented
    assert {
        "PROVKIT_DEBUG",
        "PROVKIT_MAX_PIXELS",
        "PROVKIT_PROBE",
        "PROVKIT_SEARCH_THREADS",
    } <= documented
