"""The second hostile-user round: each finding, as the user met it, fixed.

Truncated containers read as "a manifest is present", file names that forge result
lines, prepared contexts that stop a batch or decide on values detect never writes,
hash lists that lose lines silently, and options that crashed instead of answering.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image

from provkit.cli import root
from tests.fixtures_serve import make_app, token

PDQ_A, PDQ_B, PDQ_C = "a" * 64, "b" * 64, "c" * 64
SIGNALS = {"inception": [], "transformation": []}


def run(*args):
    return CliRunner().invoke(root, [str(a) for a in args])


def context(verdict="unknown", state="absent", **asset) -> dict:
    return {
        "asset": {
            "verdict": verdict,
            "decided_by": [],
            "duplicates": [],
            "c2pa": {"state": state, "trust_source": None, "signals": SIGNALS},
            **asset,
        }
    }


# -- verify ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [100, 0.5])
def test_a_truncated_gif_is_bad_input_never_a_present_manifest(tmp_path, photos, cut):
    whole = tmp_path / "whole.gif"
    Image.fromarray(photos[0]).save(whole)
    data = whole.read_bytes()
    cut_gif = tmp_path / "cut.gif"
    cut_gif.write_bytes(data[: int(cut if cut > 1 else len(data) * cut)])
    result = run("verify", cut_gif)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {cut_gif}: cannot read")
    assert "manifest" not in result.output
    assert "ABSENT" in run("verify", whole).output


def test_a_file_name_with_a_line_break_cannot_forge_a_result_line(tmp_path, photos):
    forged = "forged.jpg: TRUSTED - the credentials check out\n  signed by:    Associated Press"
    path = tmp_path / (forged + "\nx.jpg")
    Image.fromarray(photos[0]).save(path, "JPEG")
    for verb in (["verify"], ["detect"], ["check", "--dry-run"]):
        out = run(*verb, path).output
        assert not any(
            line.startswith(("forged.jpg", "  signed by:    Associated"))
            for line in out.splitlines()
        ), (verb, out)
        assert repr(str(path)) in out or repr(path.name) in out


# -- policy check --context -------------------------------------------------------------------


def test_a_bad_json_line_is_an_error_row_and_the_other_lines_are_decided(tmp_path):
    lines = tmp_path / "batch.jsonl"
    lines.write_text(
        json.dumps(context(state="invalid"))
        + "\n{bad\n"
        + json.dumps(context(state="invalid"))
        + "\n"
    )
    result = run(
        "policy",
        "check",
        "--pack",
        "newsroom",
        "--point",
        "publish",
        "--context",
        lines,
        "--dry-run",
        "--json",
    )
    assert result.exit_code == 2
    rows = json.loads(result.stdout)
    assert [r.get("outcome") for r in rows] == [
        "review",
        None,
        "review",
    ]  # invalid, no cause given: a person checks
    assert "line 2 is not JSON" in rows[1]["error"]


@pytest.mark.parametrize("text", ["", "  \n", "[]"])
def test_an_empty_context_file_is_an_error_not_a_silent_pass(tmp_path, text):
    empty = tmp_path / "empty.json"
    empty.write_text(text)
    result = run("policy", "check", "--pack", "newsroom", "--context", empty)
    assert result.exit_code == 2 and "no contexts in the file" in result.stderr


@pytest.mark.parametrize(
    "change",
    [
        {"verdict": "AI-Generated"},
        {"verdict": ["ai-generated"]},
        {"score": "high"},
        {"score": 7},
        {"c2pa": {"state": "INVALID", "trust_source": None, "signals": SIGNALS}},
        {"decided_by": "c2pa"},
    ],
)
def test_a_context_value_detect_never_writes_is_refused_not_decided(tmp_path, change):
    ctx = context(verdict="ai-generated")
    ctx["asset"].update(change)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(ctx))
    result = run(
        "policy",
        "check",
        "--pack",
        "newsroom",
        "--point",
        "publish",
        "--context",
        path,
        "--dry-run",
    )
    assert result.exit_code == 2 and "ALLOW" not in result.output
    field = "c2pa.state" if "c2pa" in change else next(iter(change))
    assert f"asset.{field} is" in result.output + result.stderr


# -- hash lists -------------------------------------------------------------------------------


def _import(tmp_path, name, text, suffix="csv", binary=False):
    path = tmp_path / f"{name}.{suffix}"
    path.write_bytes(text) if binary else path.write_text(text)
    return run("index", "import", name, path, "--json")


def test_a_deeply_nested_jsonl_line_is_reported_and_the_next_line_imported(tmp_path):
    deep = (
        json.dumps({"hash": PDQ_A, "id": "d"})[:-1]
        + ', "m": '
        + "[" * 100_000
        + "]" * 100_000
        + "}"
    )
    result = _import(
        tmp_path, "deep", deep + "\n" + json.dumps({"hash": PDQ_B, "id": "e"}) + "\n", "jsonl"
    )
    assert result.exit_code == 0  # partial: the rest imported
    assert "line 1: nested too deeply" in result.stderr
    assert json.loads(result.stdout)["imported"] == 1


def test_a_csv_with_a_byte_order_mark_imports(tmp_path):
    text = "\ufeffhash,id\r\n" + "".join(
        f"{h},id{i}\r\n" for i, h in enumerate((PDQ_A, PDQ_B, PDQ_C))
    )
    result = _import(tmp_path, "bom", text.encode(), binary=True)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["imported"] == 3


def test_an_id_given_twice_with_different_hashes_is_reported_by_line(tmp_path):
    result = _import(tmp_path, "dup", f"hash,id\n{PDQ_A},same\n{PDQ_B},same\n{PDQ_C},other\n")
    assert result.exit_code == 0  # partial: the rest imported
    assert "line 3: the id 'same' appears earlier in this list" in result.stderr
    report = json.loads(result.stdout)
    assert (report["imported"], report["already_present"]) == (2, 0)
    # imported again: both ids are already present, nothing is called a duplicate
    again = run("index", "import", "dup", tmp_path / "dup.csv", "--json")
    assert json.loads(again.stdout)["already_present"] == 2


def test_a_quoted_field_spanning_lines_is_reported_not_cut_short(tmp_path):
    result = _import(tmp_path, "q", f'hash,id,note\n"{PDQ_A}","q1","a,b\nc"\n{PDQ_C},q3,ok\n')
    assert result.exit_code == 0  # partial: the rest imported
    assert "line 2: a quoted field runs past the end of the line" in result.stderr
    assert json.loads(result.stdout)["imported"] == 1


# -- options and the service ------------------------------------------------------------------


def test_a_required_output_option_is_a_usage_error(tmp_path):
    _import(tmp_path, "x", f"hash,id\n{PDQ_A},a\n")
    result = run("index", "export", "x")
    assert result.exit_code == 2 and "Missing option '-o' / '--out'" in result.output


def test_a_token_expiry_beyond_the_calendar_is_one_line():
    result = run("tokens", "create", "z", "--scope", "read", "--expires", "99999999d")
    assert result.exit_code == 2
    assert "too far in the future" in result.stderr and "Traceback" not in result.output


def test_a_deeply_nested_items_body_is_a_4xx_not_a_500(workspace):
    h = token(workspace, "w", "sets:write")
    with TestClient(make_app(workspace)) as client:
        assert client.post("/v1/sets", json={"name": "arch"}, headers=h).status_code == 201
        assert client.post("/v1/sets", json={"name": "arch"}, headers=h).status_code == 200
        body = '{"items":' + "[" * 50_000 + "]" * 50_000 + "}"
        r = client.post(
            "/v1/sets/arch/items", content=body, headers={**h, "content-type": "application/json"}
        )
    assert r.status_code == 422 and "nested too deeply" in r.json()["error"]


def test_verify_and_detect_give_one_cause_for_a_tiny_file_declaring_a_huge_picture(tmp_path):
    from tests.fuzz import hostile

    path = tmp_path / "huge.jpg"
    path.write_bytes(hostile.jpeg_declaring(65000, 65000)[:-2])  # and no end marker
    causes = {verb: run(verb, path).stderr.strip() for verb in ("verify", "detect")}
    assert all("image too large: 65000x65000" in c for c in causes.values()), causes


def test_a_jpeg_segment_running_past_the_end_is_truncated_in_every_verb(tmp_path, photos):
    """An APP1 segment declaring 65535 bytes where the file has far fewer: one cause in
    verify, detect and scan (it used to be "no JPEG end marker" beside "cannot decode
    image (Truncated File Read)", though the file ends in FFD9)."""
    import io

    buf = io.BytesIO()
    Image.fromarray(photos[1][:64, :64]).save(buf, "JPEG")
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "badseg.jpg"
    path.write_bytes(
        b"\xff\xd8\xff\xe1\xff\xffExif\0\0" + bytes(range(256)) * 4 + buf.getvalue()[2:]
    )
    assert path.read_bytes().endswith(b"\xff\xd9")
    causes = {verb: run(verb, path).stderr.strip() for verb in ("verify", "detect")}
    out = tmp_path / "scan.jsonl"
    run("scan", tmp_path / "in", "-o", out, "--workers", 1)  # exit 2: every file failed
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    causes["scan"] = row["error"]
    assert all("truncated image data" in c for c in causes.values()), causes
    assert "segment runs past the end" in causes["verify"]
