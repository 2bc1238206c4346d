"""The ledger: every issued asset, found by id, content hash, manifest label or fingerprint."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from PIL import Image

from policies.errors import BadInput
from provenance.cli import root
from provenance.fingerprint import fingerprint_image
from provenance.ledger import Ledger
from tests.fixtures_provenance import signed_jpeg_fixture  # noqa: F401


def test_record_then_get_list_and_lookup_by_sha256(tmp_path):
    book = Ledger(tmp_path / "l.db")
    a = book.record(asset_id="00112233aabbccdd", sha256="ab" * 32, manifest_label="urn:c2pa:x",
                    signer={"common_name": "S"}, source_type="digitalCapture",
                    manifest_json={"title": "t"}, manifest_store=b"store")
    book.record(asset_id="ffeeddccbbaa9988", sha256="cd" * 32, source_type="humanEdits")
    assert book.get("00112233AABBCCDD") == a
    assert [x.asset_id for x in book.by_sha256("AB" * 32)] == ["00112233aabbccdd"]
    assert book.by_manifest_label("urn:c2pa:x").asset_id == a.asset_id
    assert {x.asset_id for x in book.list()} == {"00112233aabbccdd", "ffeeddccbbaa9988"}
    assert [x.asset_id for x in book.list(source_type="humanEdits")] == ["ffeeddccbbaa9988"]
    assert book.manifest_store(a.asset_id) == b"store"
    assert book.manifest_json(a.asset_id) == {"title": "t"}
    assert book.get("0000000000000000") is None


def test_asset_ids_are_unique(tmp_path):
    book = Ledger(tmp_path / "l.db")
    book.record(asset_id="00112233aabbccdd", sha256="ab" * 32)
    with pytest.raises(BadInput, match="already in the ledger"):
        book.record(asset_id="00112233aabbccdd", sha256="cd" * 32)
    assert book.count() == 1


def test_reopening_keeps_rows_and_runs_migrations_once(tmp_path):
    Ledger(tmp_path / "l.db").record(asset_id="00112233aabbccdd", sha256="ab" * 32)
    assert Ledger(tmp_path / "l.db").count() == 1


def _jpeg_copy(array, quality, scale=1.0):
    img = Image.fromarray(array)
    if scale != 1.0:
        img = img.resize((int(img.width * scale), int(img.height * scale)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def test_fingerprint_lookup_finds_a_recompressed_copy_and_nothing_for_other_photos(
        tmp_path, photos):
    book = Ledger(tmp_path / "l.db")
    for i, p in enumerate(photos[:4]):
        book.record(asset_id=f"{i:016x}", sha256=f"{i:064x}",
                    fingerprint=fingerprint_image(Image.fromarray(p)))
    hits = book.by_fingerprint(fingerprint_image(_jpeg_copy(photos[2], 70, 0.5)))
    assert hits and hits[0][0].asset_id == f"{2:016x}"
    assert hits[0][1]["phash"] <= 10 and hits[0][1]["pdq"] <= 31
    for other in photos[4:]:
        assert book.by_fingerprint(fingerprint_image(Image.fromarray(other))) == []


def test_cli_ledger_list_and_show(signed_jpeg):
    _, issued = signed_jpeg
    runner = CliRunner()
    listed = runner.invoke(root, ["ledger", "list", "--json"])
    assert listed.exit_code == 0
    assert [a["asset_id"] for a in json.loads(listed.output)] == [issued.asset_id]
    shown = runner.invoke(root, ["ledger", "show", issued.asset_id, "--json"])
    data = json.loads(shown.output)
    assert data["sha256"] == issued.sha256 and data["manifest"]["label"] == issued.manifest_label
    human = runner.invoke(root, ["ledger", "show", issued.asset_id])
    assert issued.asset_id in human.output and "manifest_label" in human.output
    missing = runner.invoke(root, ["ledger", "show", "0000000000000000"])
    assert missing.exit_code == 2 and "no asset" in missing.output


def test_every_ledger_command_takes_a_db_path(tmp_path, photo_path):
    db = tmp_path / "elsewhere.db"
    runner = CliRunner()
    signed = runner.invoke(root, ["sign", str(photo_path), "-o", str(tmp_path / "o.jpg"),
                                  "--source-type", "digitalCapture", "--no-watermark",
                                  "--db", str(db), "--json"])
    assert signed.exit_code == 0, signed.output
    assert Ledger(db).count() == 1 and Ledger().count() == 0
    listed = runner.invoke(root, ["ledger", "list", "--db", str(db), "--json"])
    assert len(json.loads(listed.output)) == 1
