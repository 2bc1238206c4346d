"""The ledger: every issued asset, found by id, content hash, manifest label or fingerprint."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from PIL import Image
from provkit.provenance.core.errors import BadInput
from provkit.provenance.fingerprint import fingerprint_image
from provkit.provenance.ledger import Ledger

from provkit.cli import root


def test_record_then_get_list_and_lookup_by_sha256(tmp_path):
    book = Ledger(tmp_path / "l.db")
    a = book.record(
        asset_id="00112233aabbccdd",
        sha256="ab" * 32,
        manifest_label="urn:c2pa:x",
        signer={"common_name": "S"},
        source_type="digitalCapture",
        manifest_json={"title": "t"},
        manifest_store=b"store",
    )
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
    tmp_path, photos
):
    book = Ledger(tmp_path / "l.db")
    for i, p in enumerate(photos[:4]):
        book.record(
            asset_id=f"{i:016x}",
            sha256=f"{i:064x}",
            fingerprint=fingerprint_image(Image.fromarray(p)),
        )
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
    signed = runner.invoke(
        root,
        [
            "sign",
            str(photo_path),
            "-o",
            str(tmp_path / "o.jpg"),
            "--source-type",
            "digitalCapture",
            "--no-watermark",
            "--db",
            str(db),
            "--json",
        ],
    )
    assert signed.exit_code == 0, signed.output
    assert Ledger(db).count() == 1 and Ledger().count() == 0
    listed = runner.invoke(root, ["ledger", "list", "--db", str(db), "--json"])
    assert len(json.loads(listed.output)) == 1


@pytest.mark.parametrize("command", [["list"], ["show", "0011223344556677"]])
def test_ledger_readers_on_a_mistyped_db_fail_and_create_nothing(tmp_path, command):
    typo = tmp_path / "x" / "typo.db"
    result = CliRunner().invoke(root, ["ledger", *command, "--db", str(typo)])
    assert result.exit_code == 2, result.output
    assert f"{typo}: no such database" in result.output
    assert not typo.parent.exists()


def test_ledger_matches_with_the_fingerprint_module_thresholds(tmp_path, photos):
    from provkit.provenance import fingerprint as fpm
    from provkit.provenance.ledger import MAX_PDQ_DISTANCE, MAX_PHASH_DISTANCE

    assert (MAX_PDQ_DISTANCE, MAX_PHASH_DISTANCE) == (fpm.PDQ_MATCH, fpm.PHASH_MATCH)
    book = Ledger(tmp_path / "l.db")
    fp = fingerprint_image(Image.fromarray(photos[0]))
    flat = fpm.Fingerprint(
        sha256=None,
        phash=fp.phash ^ 0b111,
        dhash=fp.dhash,
        pdq=bytes(32),
        pdq_quality=fpm.PDQ_MIN_QUALITY - 1,
    )
    book.record(asset_id="0000000000000001", sha256="ab" * 32, fingerprint=flat)
    # a PDQ hash below the minimum quality is not compared; pHash alone decides
    ((asset, dist),) = book.by_fingerprint(fp)
    assert asset.asset_id == "0000000000000001" and dist == {"phash": 3}


def test_fingerprint_lookups_see_rows_written_and_removed_since_the_last_lookup(tmp_path, photos):
    from provkit.provenance.fingerprint import Fingerprint

    path = tmp_path / "l.db"
    book = Ledger(path)
    fps = [fingerprint_image(Image.fromarray(p)) for p in photos[:3]]
    assert book.by_fingerprint(fps[0]) == []
    book.record(asset_id="00000000000000a0", sha256="a0" * 32, fingerprint=fps[0])
    assert [a.asset_id for a, _ in book.by_fingerprint(fps[0])] == ["00000000000000a0"]
    other = Ledger(path)  # another connection writes
    other.record(asset_id="00000000000000b1", sha256="b1" * 32, fingerprint=fps[1])
    ((asset, dist),) = book.by_fingerprint(fps[1])
    assert asset.asset_id == "00000000000000b1" and dist == {"phash": 0, "pdq": 0}
    same_db = Ledger(book.db)  # another Ledger on the same connection removes one
    assert same_db.forget("00000000000000b1")
    same_db.record(asset_id="00000000000000c2", sha256="c2" * 32, fingerprint=fps[2])
    assert book.by_fingerprint(fps[1]) == []
    assert [a.asset_id for a, _ in book.by_fingerprint(fps[2])] == ["00000000000000c2"]
    flat = Fingerprint(sha256=None, phash=fps[2].phash, dhash=0, pdq=None, pdq_quality=None)
    assert [a.asset_id for a, d in book.by_fingerprint(flat)] == ["00000000000000c2"]
