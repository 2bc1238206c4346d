"""The shared foundations: errors, workspace database, image loading, lazy CLI."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import pytest
from click.testing import CliRunner
from PIL import Image
from provkit.provenance.core import imageio, workspace
from provkit.provenance.core.errors import BadInput

from provkit.cli import root


def _png_header_bomb(path, width=60_000, height=60_000):
    """A valid PNG signature and IHDR declaring a huge image, with a token IDAT."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 10))
        + chunk(b"IEND", b"")
    )
    return path


def test_zero_byte_file_is_bad_input_naming_the_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(BadInput, match=r"empty\.jpg: empty file"):
        imageio.open_image(p)


def test_text_named_jpg_is_not_an_image(tmp_path):
    p = tmp_path / "note.jpg"
    p.write_text("not an image")
    with pytest.raises(BadInput, match="not an image"):
        imageio.open_image(p)


def test_truncated_jpeg_is_reported_as_truncated(tmp_path, photos):
    p = tmp_path / "cut.jpg"
    Image.fromarray(photos[0]).save(p, quality=90)
    p.write_bytes(p.read_bytes()[:4000])
    with pytest.raises(BadInput, match="truncated"):
        imageio.open_image(p)


def test_header_bomb_is_refused_before_decoding(tmp_path):
    p = _png_header_bomb(tmp_path / "bomb.png")
    with pytest.raises(BadInput, match="too large"):
        imageio.open_image(p)


def test_missing_file(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        imageio.sniff(tmp_path / "nope.png")


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "I;16"])
def test_any_mode_converts_to_rgb(mode):
    img = Image.new("RGB", (8, 8), (200, 100, 50)).convert(mode if mode != "I;16" else "L")
    if mode == "I;16":
        img = Image.new("I;16", (8, 8), 65535)
    out = imageio.to_rgb(img)
    assert out.mode == "RGB" and out.size == (8, 8)
    if mode == "I;16":
        assert out.getpixel((0, 0)) == (255, 255, 255)


def test_database_uses_wal_and_migrations_run_once(tmp_path):
    db = workspace.connect(tmp_path / "x.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    calls = []
    steps = [lambda d: calls.append(1) or d["t"].create({"id": int}, pk="id")]
    assert workspace.migrate(db, "demo", steps) == 1
    assert workspace.migrate(db, "demo", steps) == 1
    assert calls == [1] and "t" in db.table_names()


def test_help_lists_every_command_without_importing_torch():
    code = (
        "import sys; from provkit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'c2pa' not in sys.modules, 'c2pa imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    for name in ("sign", "verify", "generate", "detect", "policy", "audit", "watermark"):
        assert name in out.stdout


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(root, ["frobnicate"])
    assert result.exit_code == 2


def test_connect_for_reading_refuses_a_missing_database_and_creates_nothing(tmp_path):
    typo = tmp_path / "sub" / "typo.db"
    with pytest.raises(BadInput, match="no such database") as info:
        workspace.connect(typo, create=False)
    assert str(typo) in str(info.value) and not typo.parent.exists()
    workspace.connect(typo).execute("CREATE TABLE t (x)")  # writers still create it
    assert workspace.connect(typo, create=False)["t"].exists()


def test_bmp_files_are_recognised_by_their_signature_and_text_starting_bm_is_not(tmp_path):
    bmp = tmp_path / "a.bmp"
    Image.new("RGB", (32, 16), (10, 20, 30)).save(bmp)
    assert imageio.sniff(bmp) == "image/bmp"
    assert imageio.load_rgb(bmp).size == (32, 16)
    text = tmp_path / "b.bmp"
    text.write_text("BMW service history, 2019 to 2024\n")
    with pytest.raises(BadInput, match="not an image"):
        imageio.sniff(text)


def test_opening_a_migrated_database_again_takes_no_write_lock(tmp_path):
    from provkit.provenance.ledger import Ledger

    path = tmp_path / "w.db"
    Ledger(path)  # creates and migrates
    db = workspace.connect(path)
    statements = []
    db.conn.set_trace_callback(statements.append)
    for _ in range(3):
        Ledger(db).count()
    assert not any("BEGIN" in s or "CREATE" in s for s in statements), statements
    steps = []
    assert workspace.migrate(db, "t.extra", [lambda d: steps.append(1)]) == 1
    assert workspace.migrate(db, "t.extra", [lambda d: steps.append(1)]) == 1
    assert steps == [1]


def test_atomic_write_keeps_the_old_file_on_failure_and_can_refuse_to_replace(tmp_path):
    import stat

    from provkit.provenance.core.files import atomic_file, atomic_write

    dest = tmp_path / "f.bin"
    atomic_write(dest, b"one")
    with pytest.raises(RuntimeError), atomic_file(dest) as f:
        f.write(b"half")
        raise RuntimeError("writer failed")
    assert dest.read_bytes() == b"one" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    with pytest.raises(FileExistsError):
        atomic_write(dest, b"two", overwrite=False)
    assert dest.read_bytes() == b"one" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    atomic_write(tmp_path / "k" / "secret", b"s", mode=0o600)
    assert stat.S_IMODE((tmp_path / "k" / "secret").stat().st_mode) == 0o600
    atomic_write(tmp_path / "new.bin", b"n", overwrite=False)
    assert (tmp_path / "new.bin").read_bytes() == b"n"


def test_json_output_turns_every_non_finite_number_into_null_in_one_walk():
    import datetime as dt
    import json
    import math
    from pathlib import Path

    import numpy as np

    from provkit.options import dumps

    calls = []

    class Value:
        def to_json(self):
            calls.append(1)
            return {
                "score": math.nan,
                "parts": (np.float32("inf"), 1.5, np.int64(3)),
                "when": dt.date(2024, 5, 1),
                "where": Path("/a/b"),
                "raw": b"\x01\xff",
                "ok": np.bool_(True),
                "tags": {"x"},
            }

    text = dumps({"items": [Value()], "n": -math.inf, 2: "two"})
    assert calls == [1]
    assert json.loads(text) == {
        "items": [
            {
                "score": None,
                "parts": [None, 1.5, 3],
                "when": "2024-05-01",
                "where": "/a/b",
                "raw": "01ff",
                "ok": True,
                "tags": ["x"],
            }
        ],
        "n": None,
        "2": "two",
    }
    assert "NaN" not in text and "Infinity" not in text
