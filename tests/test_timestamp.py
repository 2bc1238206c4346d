"""Time-stamped signatures, from a real RFC 3161 authority on loopback (tests/tsa.py).

`provkit sign --tsa URL` asks the authority to time-stamp the signature; verify reports
the time-stamp apart from the signer: its time, the SDK's codes, and whether the C2PA
TSA Trust List issued the authority's certificate (this test authority is on no list,
and provkit must say so rather than count it).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from PIL import Image
from provkit.provenance.ledger import list_ as ledger_list
from provkit.provenance.verify import verify_file

from provkit.cli import root
from tests.fixtures_verify import sdk_read
from tests.tsa import TsaServer


@pytest.fixture
def tsa():
    with TsaServer() as server:
        yield server


@pytest.fixture
def photo(tmp_path, photos):
    path = tmp_path / "photo.jpg"
    Image.fromarray(photos[0]).save(path, quality=90)
    return path


def sign(*args):
    return CliRunner().invoke(root, ["sign", *map(str, args), "--source-type", "digitalCapture"])


def test_sign_with_a_tsa_carries_a_time_stamp_verify_reports_apart_from_the_signer(
    tsa, photo, tmp_path
):
    out = tmp_path / "stamped.jpg"
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result = sign(photo, "-o", out, "--tsa", tsa.url)
    assert result.exit_code == 0, result.output
    assert tsa.authority.requests >= 1

    report = verify_file(out)
    assert report.state == sdk_read(out)["state"] == "trusted"  # the signer: local CA
    stamp = report.timestamp
    assert stamp["present"] and "timeStamp.validated" in stamp["codes"]
    when = dt.datetime.fromisoformat(stamp["time"])
    assert before - dt.timedelta(seconds=5) <= when <= dt.datetime.now(dt.UTC)
    # the test authority is on no TSA list: reported, never counted as trusted
    assert stamp["tsa_trust_source"] is None and "timeStamp.untrusted" in stamp["codes"]
    assert "not on the C2PA TSA Trust List" in stamp["sentence"]
    assert report.to_json()["c2pa"]["timestamp"]["time"] == stamp["time"]

    text = CliRunner().invoke(root, ["verify", str(out)]).output
    assert f"signed at:    {stamp['time']} (time-stamp)" in text
    assert "TRUSTED" in text  # the signer's trust is not lowered by the TSA's


def test_an_unstamped_signature_says_it_has_no_time_stamp(photo, tmp_path):
    out = tmp_path / "plain.jpg"
    assert sign(photo, "-o", out).exit_code == 0
    stamp = verify_file(out).timestamp
    assert stamp["present"] is False and stamp["time"] is None
    assert "signed at:" not in CliRunner().invoke(root, ["verify", str(out)]).output


def test_the_workspace_configuration_names_the_tsa_once(tsa, photo, tmp_path, monkeypatch):
    from provkit.provenance.core.workspace import home

    (home() / "provkit.toml").write_text(f'[sign]\ntsa = "{tsa.url}"\n')
    shown = json.loads(CliRunner().invoke(root, ["config", "show", "--json"]).output)
    assert {"key": "sign.tsa", "value": tsa.url, "from": str(home() / "provkit.toml")} in shown[
        "settings"
    ]
    out = tmp_path / "configured.jpg"
    assert sign(photo, "-o", out).exit_code == 0
    assert tsa.authority.requests == 1 and verify_file(out).timestamp["present"]


def test_a_tsa_that_does_not_answer_fails_the_sign_in_one_line_and_writes_nothing(
    tsa, photo, tmp_path
):
    url = tsa.url
    tsa.stop()  # nothing listens there now
    out = tmp_path / "never.jpg"
    result = sign(photo, "-o", out, "--tsa", url)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "did not answer" in lines[0]
    assert "never.jpg" in lines[0] and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
    assert list(ledger_list()) == []


@pytest.mark.parametrize("url", ["ftp://tsa.example/", "not a url", "file:///etc/passwd"])
def test_a_tsa_address_that_is_not_http_is_refused_before_signing(photo, tmp_path, url):
    result = sign(photo, "-o", tmp_path / "x.jpg", "--tsa", url)
    assert result.exit_code == 2 and "http:// or https://" in result.stderr
    assert not (tmp_path / "x.jpg").exists()
