"""``provkit watermark embed/decode``: JSON shape, exit codes, safe writes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from click.testing import CliRunner
from PIL import Image

from provkit.cli import root

KEYS = {"path", "found", "payload", "confidence", "scheme", "third_party"}


def run(*args):
    return CliRunner().invoke(root, list(map(str, args)))


def test_embed_without_payload_writes_a_fresh_id_that_decodes(tmp_path, photo_path):
    out = tmp_path / "marked.png"
    r = run("watermark", "embed", photo_path, "-o", out, "--json")
    assert r.exit_code == 0, r.output
    made = json.loads(r.output)
    assert len(made["payload"]) == 16 and made["psnr"] >= 40
    r = run("watermark", "decode", out, "--json")
    assert r.exit_code == 0, r.output
    [row] = json.loads(r.output)
    assert set(row) == KEYS
    assert row["found"] is True and row["payload"] == made["payload"] and row["scheme"] == "provkit"
    assert row["third_party"] is None and 0.9 < row["confidence"] <= 1.0


def test_given_payload_is_embedded_and_jpeg_output_still_decodes(tmp_path, photo_path):
    out = tmp_path / "marked.jpg"
    assert (
        run("watermark", "embed", photo_path, "-o", out, "--payload", "00ff00ff00ff00ff").exit_code
        == 0
    )
    r = run("watermark", "decode", out)
    assert r.exit_code == 0 and "00ff00ff00ff00ff" in r.output


def test_embed_never_overwrites_the_input(photo_path):
    before = photo_path.read_bytes()
    r = run("watermark", "embed", photo_path, "-o", photo_path)
    assert r.exit_code == 2 and "refusing to overwrite the input" in r.output
    assert photo_path.read_bytes() == before


def test_bad_payloads_and_tiny_images_are_one_line_errors(tmp_path, photo_path):
    out = tmp_path / "x.png"
    r = run("watermark", "embed", photo_path, "-o", out, "--payload", "zz")
    assert r.exit_code == 2 and "hexadecimal" in r.output
    r = run("watermark", "embed", photo_path, "-o", out, "--payload", "0011")
    assert r.exit_code == 2 and "exactly 8 bytes" in r.output
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (100, 90)).save(tiny)
    r = run("watermark", "embed", tiny, "-o", out)
    assert r.exit_code == 2 and "tiny.png: image too small" in r.output
    assert not out.exists()


def test_decode_batch_reports_unmarked_and_bad_files_and_goes_on(tmp_path, photo_path):
    junk = tmp_path / "junk.jpg"
    junk.write_text("not an image")
    r = run("watermark", "decode", photo_path, junk, "--json")
    assert r.exit_code == 2
    rows = json.loads(r.output[r.output.index("[") :])
    assert rows[0]["found"] is False and set(rows[0]) == KEYS
    assert rows[1]["found"] is False and "not an image" in rows[1]["error"]


def test_decoding_never_imports_torch(tmp_path, photos):
    path = tmp_path / "p.png"
    Image.fromarray(np.ascontiguousarray(photos[0])).save(path)
    code = (
        "import sys; from provkit.provenance.watermark.files import decode; "
        f"decode({str(path)!r}); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
