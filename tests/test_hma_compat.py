"""The HMA-compatible surface, driven as a client of OpenMediaMatch drives it: plain
``requests`` calls with its paths, query parameters, multipart field names and JSON
shapes, against ``provkit serve`` in a child process on 127.0.0.1.

A partner's hash list imported with its own ids and columns answers lookups with those
ids and that metadata, over the HMA routes and over provkit's own ``/v1`` API."""

from __future__ import annotations

import csv
import io
import json

import pytest
import requests
from click.testing import CliRunner
from PIL import Image
from provkit.detect.lookup import hash_file

from provkit.cli import root
from provkit.server import tokens
from tests.fixtures_serve import Server


def _flip(hexed: str, bits: int) -> str:
    v = int(hexed, 16) ^ ((1 << bits) - 1)
    return f"{v:064x}"


def _jpeg(arr) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory, photos):
    """A workspace with a partner bank (ids tx-*, category and tags columns, --action
    deny), a writer token, and ``provkit serve --public-read`` on it."""
    home = tmp_path_factory.mktemp("hma")
    mp = pytest.MonkeyPatch()
    mp.setenv("PROVKIT_HOME", str(home))
    files = []
    for i, arr in enumerate(photos[:3]):
        p = home / f"p{i}.jpg"
        p.write_bytes(_jpeg(arr))
        files.append(p)
    pdq = [hash_file(p)["pdq"] for p in files]
    listed = home / "partner.csv"
    with open(listed, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "hash", "category", "tags"])
        w.writerow(["tx-0001", pdq[0], "spam", "a;b"])
        w.writerow(["tx-0002", pdq[1], "scam", "c"])
    r = CliRunner().invoke(root, ["bank", "import", "partner", str(listed), "--action", "deny"])
    assert r.exit_code == 0, r.output
    secret = tokens.create("curator", ["read", "sets:write"], db=home / "provkit.db").secret
    server = Server(home, "--public-read")
    try:
        yield server.url, {"Authorization": f"Bearer {secret}"}, pdq, files
    finally:
        server.stop()
        mp.undo()


def test_raw_lookup_answers_content_ids_and_distances(served):
    url, _, pdq, _ = served
    r = requests.get(
        f"{url}/m/raw_lookup", params={"signal_type": "pdq", "signal": _flip(pdq[1], 5)}, timeout=10
    )
    assert r.status_code == 200
    (content_id,) = r.json()["matches"]
    assert isinstance(content_id, int)
    r = requests.get(
        f"{url}/m/raw_lookup",
        params={"signal_type": "pdq", "signal": pdq[1], "include_distance": "true"},
        timeout=10,
    )
    assert r.json() == {"matches": [{"bank_content_id": content_id, "distance": "0"}]}
    none = requests.get(
        f"{url}/m/raw_lookup", params={"signal_type": "pdq", "signal": "0" * 64}, timeout=10
    )
    assert none.json() == {"matches": []}
    bad = requests.get(
        f"{url}/m/raw_lookup", params={"signal_type": "pdq", "signal": "zz"}, timeout=10
    )
    assert bad.status_code == 400 and "hex" in bad.json()["error"]


def test_lookup_answers_per_bank_with_the_partner_id_and_metadata(served):
    url, _, pdq, _ = served
    r = requests.get(
        f"{url}/m/lookup", params={"signal_type": "pdq", "signal": _flip(pdq[0], 3)}, timeout=10
    )
    assert r.status_code == 200
    (m,) = r.json()["partner"]
    assert (m["partner_id"], m["metadata"], m["distance"]) == (
        "tx-0001",
        {"category": "spam", "tags": "a;b"},
        "3",
    )
    # the same over provkit's own API
    v1 = requests.get(
        f"{url}/v1/lookup", params={"signal": _flip(pdq[0], 3), "bank": "partner"}, timeout=10
    ).json()
    assert v1["partner"][0]["partner_id"] == "tx-0001"
    assert v1["partner"][0]["metadata"]["category"] == "spam"
    assert v1["partner"][0]["bank_content_id"] == m["bank_content_id"]


def test_hashing_and_lookup_of_an_upload_and_no_fetching_of_urls(served, photos):
    url, _, pdq, files = served
    r = requests.post(
        f"{url}/h/hash",
        files={"photo": ("p1.jpg", files[1].read_bytes(), "image/jpeg")},
        timeout=30,
    )
    assert r.status_code == 200 and r.json() == {"pdq": pdq[1]}
    r = requests.post(
        f"{url}/m/lookup",
        files={"photo": ("p1.jpg", files[1].read_bytes(), "image/jpeg")},
        timeout=30,
    )
    assert r.json()["pdq"]["partner"][0]["partner_id"] == "tx-0002"
    for path in ("/h/hash", "/m/lookup"):
        refused = requests.get(
            f"{url}{path}", params={"url": "http://169.254.169.254/"}, timeout=10
        )
        assert refused.status_code == 422 and "does not fetch" in refused.json()["error"]


def test_curation_creates_fills_switches_off_and_empties_a_bank(served, photos):
    url, auth, _, _ = served
    s = requests.Session()
    s.headers.update(auth)
    assert requests.post(f"{url}/c/banks", json={"name": "X"}, timeout=10).status_code == 401
    r = s.post(f"{url}/c/banks", json={"name": "HMA_TEST_BANK", "enabled": True}, timeout=10)
    assert r.status_code == 201
    assert r.json()["name"] == "HMA_TEST_BANK" and r.json()["matching_enabled_ratio"] == 1.0
    names = [b["name"] for b in s.get(f"{url}/c/banks", timeout=10).json()]
    assert {"HMA_TEST_BANK", "partner"} <= set(names)
    assert s.post(f"{url}/c/banks", json={}, timeout=10).status_code == 400
    again = s.post(f"{url}/c/banks", json={"name": "HMA_TEST_BANK"}, timeout=10)
    assert again.status_code == 403  # HMA's answer to a bank that exists
    # content from a file upload, with the partner's id and metadata
    image = _jpeg(photos[3])
    r = s.post(
        f"{url}/c/bank/HMA_TEST_BANK/content",
        files={"photo": ("x.jpg", image, "image/jpeg")},
        data={"metadata": json.dumps({"content_id": "p-9", "json": {"category": "x"}})},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    content_id, signal = r.json()["id"], r.json()["signals"]["pdq"]
    assert isinstance(content_id, int) and len(signal) == 64
    got = s.get(f"{url}/c/bank/HMA_TEST_BANK/content/{content_id}", timeout=10).json()
    assert (got["id"], got["partner_id"], got["metadata"]["category"]) == (content_id, "p-9", "x")
    assert got["bank"] == {"name": "HMA_TEST_BANK", "matching_enabled_ratio": 1.0}
    assert {"disable_until_ts", "collab_metadata", "original_media_uri"} <= set(got)
    assert "signals" not in got  # only with include_signals=true, as in HMA
    with_signals = s.get(
        f"{url}/c/bank/HMA_TEST_BANK/content/{content_id}",
        params={"include_signals": "true"},
        timeout=10,
    ).json()
    assert with_signals["signals"]["pdq"] == signal
    found = s.get(
        f"{url}/m/lookup", params={"signal_type": "pdq", "signal": signal}, timeout=10
    ).json()
    assert found["HMA_TEST_BANK"][0]["bank_content_id"] == content_id
    only = s.get(
        f"{url}/m/lookup",
        params={"signal_type": "pdq", "signal": signal, "banks": "partner"},
        timeout=10,
    ).json()
    assert "HMA_TEST_BANK" not in only  # banks= limits the banks, as in HMA
    status = s.get(f"{url}/m/index/status", params={"signal_type": "pdq"}, timeout=10).json()
    assert set(status) == {"pdq"} and status["pdq"]["present"] is True
    assert status["pdq"]["size"] >= 3 and status["pdq"]["built_to"] > 0
    # a signal added directly
    hexed = "ab" * 32
    r = s.post(
        f"{url}/c/bank/HMA_TEST_BANK/signal",
        json={"pdq": hexed, "metadata": {"content_id": "sig-1"}},
        timeout=10,
    )
    assert r.status_code == 200 and r.json()["partner_id"] == "sig-1"
    raw = s.get(
        f"{url}/m/raw_lookup", params={"signal_type": "pdq", "signal": hexed}, timeout=10
    ).json()["matches"]
    assert raw == [r.json()["id"]]
    # switched off: no matches, items kept; back on: matches again
    r = s.put(f"{url}/c/bank/HMA_TEST_BANK", json={"enabled": False}, timeout=10)
    assert r.status_code == 200 and r.json()["matching_enabled_ratio"] == 0.0
    off = s.get(
        f"{url}/m/lookup", params={"signal_type": "pdq", "signal": signal}, timeout=10
    ).json()
    assert "HMA_TEST_BANK" not in off
    assert (
        s.put(f"{url}/c/bank/HMA_TEST_BANK", json={"enabled_ratio": 0.5}, timeout=10).status_code
        == 400
    )
    s.put(f"{url}/c/bank/HMA_TEST_BANK", json={"enabled": True}, timeout=10)
    # one item deleted by its content id, another by the partner's id
    assert s.delete(f"{url}/c/bank/HMA_TEST_BANK/content/{content_id}", timeout=10).json() == {
        "deleted": 1
    }
    assert s.get(f"{url}/c/bank/HMA_TEST_BANK/content/{content_id}", timeout=10).status_code == 404
    assert s.delete(f"{url}/v1/banks/HMA_TEST_BANK/items/sig-1", timeout=10).status_code == 200
    assert s.get(
        f"{url}/m/raw_lookup", params={"signal_type": "pdq", "signal": hexed}, timeout=10
    ).json() == {"matches": []}
    assert s.delete(f"{url}/c/bank/HMA_TEST_BANK", timeout=10).json() == {"message": "Done"}
    assert s.get(f"{url}/c/bank/HMA_TEST_BANK", timeout=10).status_code == 404


def test_provkit_bank_routes_set_the_action_and_the_old_paths_still_answer(served):
    url, auth, pdq, _ = served
    r = requests.patch(
        f"{url}/v1/banks/partner", json={"max_distance": {"pdq": 2}}, headers=auth, timeout=10
    )
    assert r.status_code == 200 and r.json()["max_distance"] == {"pdq": 2}
    assert r.json()["action"] == "deny"
    try:
        far = requests.get(
            f"{url}/v1/lookup", params={"signal": _flip(pdq[0], 3)}, timeout=10
        ).json()
        assert far["partner"] == []  # 3 bits, beyond the bank's own 2
    finally:
        requests.patch(
            f"{url}/v1/banks/partner", json={"max_distance": None}, headers=auth, timeout=10
        )
    old = requests.get(f"{url}/v1/sets", timeout=10)
    assert (
        old.status_code == 200 and old.json() == requests.get(f"{url}/v1/banks", timeout=10).json()
    )
    spec = requests.get(f"{url}/openapi.json", timeout=10).json()["paths"]
    assert "/v1/banks" in spec and "/v1/sets" not in spec and "/m/raw_lookup" in spec
