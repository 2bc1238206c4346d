"""Receipts: ``sign``/``generate --receipt`` write an inclusion proof beside each output,
and ``verify --receipt --log-key`` checks it offline against the file's bytes."""

from __future__ import annotations

import json

from click.testing import CliRunner

from provkit.cli import root


def run(*args):
    return CliRunner().invoke(root, [str(a) for a in args])


def test_a_signed_file_and_its_receipt_verify_with_the_log_key(tmp_path, photo_path):
    assert run("keys", "init").exit_code == 0  # makes the log key too
    key = run("log", "key").output.strip()
    out = tmp_path / "signed.jpg"
    result = run(
        "sign", photo_path, "-o", out, "--source-type", "digitalCapture", "--receipt", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    receipt = tmp_path / "signed.jpg.receipt.json"
    assert data["receipt"] == str(receipt) and receipt.is_file()

    checked = run("verify", out, "--receipt", receipt, "--log-key", key)
    assert checked.exit_code == 0, checked.output
    assert f"issued by the workspace whose log key is {key}" in checked.output
    assert f"as asset {data['asset_id']}" in checked.output and "at position 0" in checked.output

    # other bytes with the same receipt: the receipt speaks of the asset, not of them
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(out.read_bytes() + b"\0")
    other = run("verify", copy, "--receipt", receipt, "--log-key", key, "--json")
    assert other.exit_code == 1
    assert "not the ones recorded" in json.loads(other.stdout)[0]["receipt"]["statement"]

    # a receipt whose entry was edited (a re-dated asset) fails
    doc = json.loads(receipt.read_text())
    doc["index"] = 1
    doc["size"] = 2
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    bad = run("verify", out, "--receipt", tmp_path / "bad.json", "--log-key", key)
    assert bad.exit_code == 1 and "NOT SHOWN" in bad.output


def test_a_receipt_already_there_is_never_replaced_silently(tmp_path, photo_path):
    assert run("log", "key", "--init").exit_code == 0
    out = tmp_path / "signed.jpg"
    (tmp_path / "signed.jpg.receipt.json").write_text("{}")
    result = run("sign", photo_path, "-o", out, "--source-type", "digitalCapture", "--receipt")
    assert result.exit_code == 2 and "use --force" in result.output and not out.exists()


def test_a_receipt_needs_a_log_key_before_any_signing(tmp_path, photo_path):
    out = tmp_path / "signed.jpg"
    result = run("sign", photo_path, "-o", out, "--source-type", "digitalCapture", "--receipt")
    assert result.exit_code == 2 and "log key --init" in result.output
    assert not out.exists()


def test_generate_writes_a_receipt_beside_each_image(tmp_path):
    assert run("log", "key", "--init").exit_code == 0
    key = run("log", "key").output.strip()
    result = run(
        "generate",
        "a quiet harbour",
        "-n",
        2,
        "--seed",
        3,
        "--size",
        "128x128",
        "-o",
        tmp_path,
        "--receipt",
        "--json",
    )
    assert result.exit_code == 0, result.output
    images = json.loads(result.stdout)["images"]
    for img in images:
        checked = run("verify", img["path"], "--receipt", img["receipt"], "--log-key", key)
        assert checked.exit_code == 0, checked.output
        assert f"as asset {img['asset_id']} (issued)" in checked.output
