"""The shared foundations: errors, workspace database, image loading, lazy CLI."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import pytest
from click.testing import CliRunner
from PIL import Image

from policies import workspace
from policies.errors import BadInput
from provenance import imageio
from provenance.cli import root


def _png_header_bomb(path, width=60_000, height=60_000):
    """A valid PNG signature and IHDR declaring a huge image, with a token IDAT."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")
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
        "import sys; from provenance.cli import main\n"
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
