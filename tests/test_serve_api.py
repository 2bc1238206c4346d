"""The HTTP API through httpx against the real app: tokens, limits, verbs, sets, lookup,
the soft-binding resolution API, and errors that are 4xx JSON naming the cause."""

from __future__ import annotations

import asyncio
import base64
import io
import sqlite3
import threading
import time

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image
from provkit.detect.index import ReferenceIndex
from provkit.provenance.issue import issue
from provkit.provenance.manifest import ManifestSpec
from provkit.provenance.verify import verify_file

from provkit.cli import root
from provkit.server import tokens
from provkit.server.app import create_app
from provkit.server.http import ApiError, CpuPool, ServiceConfig
from tests.fixtures_serve import jpeg, make_app, tampered_copy, token


def upload(path, name=None):
    return ("files", (name or path.name, path.read_bytes(), "image/jpeg"))


# ------------------------------------------------------------------ status and tokens


def test_status_is_503_until_the_reference_sets_are_loaded(workspace):
    app = make_app(workspace)
    client = TestClient(app)  # no lifespan: nothing loaded yet
    r = client.get("/status")
    assert r.status_code == 503 and r.json()["status"] == "INDEX-NOT-LOADED"
    assert client.get("/status/live").status_code == 200
    with TestClient(app) as started:  # the sets load in the background, then it is ready
        for _ in range(100):
            r = started.get("/status")
            if r.status_code == 200:
                break
            time.sleep(0.05)
        assert r.json()["status"] == "ready"


def test_every_verb_needs_a_token_and_the_right_scope(api, workspace, signed_jpeg):
    path, _ = signed_jpeg
    r = api.post("/v1/verify", files=[upload(path)])
    assert r.status_code == 401 and "read" in r.json()["error"]
    assert r.headers["www-authenticate"] == "Bearer"
    reader = token(workspace, "reader", "read")
    r = api.post("/v1/sign", files={"file": ("a.jpg", path.read_bytes())}, headers=reader)
    assert r.status_code == 403 and "sign" in r.json()["error"]
    assert api.get("/v1/audit", headers=reader).status_code == 403
    bad = {"Authorization": "Bearer pk_not-a-real-token"}
    assert api.get("/v1/ledger", headers=bad).status_code == 401
    assert api.get("/v1/ledger", headers={"Authorization": "Basic eDp5"}).status_code == 401
    assert api.get("/v1/ledger", headers=reader).status_code == 200


def test_a_revoked_or_expired_token_stops_working(api, workspace):
    headers = token(workspace, "temp", "read")
    assert api.get("/v1/ledger", headers=headers).status_code == 200
    tokens.revoke("temp", workspace / "provkit.db")
    assert api.get("/v1/ledger", headers=headers).status_code == 401
    created = tokens.create("short", ["read"], expires="1h", db=workspace / "provkit.db")
    db = sqlite3.connect(workspace / "provkit.db")
    db.execute("UPDATE api_tokens SET expires = '2000-01-01T00:00:00+00:00' WHERE name = 'short'")
    db.commit()
    r = api.get("/v1/ledger", headers={"Authorization": f"Bearer {created.secret}"})
    assert r.status_code == 401 and "expired" in r.json()["error"]


def test_only_a_hash_of_the_token_is_stored(workspace):
    created = tokens.create("desk", ["read", "sign"], db=workspace / "provkit.db")
    raw = b"".join(p.read_bytes() for p in workspace.glob("provkit.db*"))
    assert created.secret.encode() not in raw
    assert tokens.authenticate(created.secret, workspace / "provkit.db").name == "desk"


def test_public_read_opens_reads_but_never_writes(workspace, signed_jpeg):
    path, _ = signed_jpeg
    with TestClient(make_app(workspace, public_read=True)) as client:
        r = client.post("/v1/verify", files=[upload(path)])
        assert r.status_code == 200 and r.json()[0]["c2pa"]["state"] == "trusted"
        r = client.post("/v1/sign", files={"file": ("a.jpg", path.read_bytes())})
        assert r.status_code == 401
        assert client.post("/v1/sets", json={"name": "x"}).status_code == 401


def test_tokens_cli_prints_the_token_once_and_lists_without_it(workspace):
    runner = CliRunner()
    r = runner.invoke(
        root, ["tokens", "create", "ci", "--scope", "read", "--scope", "sign", "--expires", "30d"]
    )
    assert r.exit_code == 0, r.output
    secret = r.output.split()[0]
    assert secret.startswith("pk_")
    listed = runner.invoke(root, ["tokens", "list"])
    assert "ci" in listed.output and secret not in listed.output
    assert runner.invoke(root, ["tokens", "revoke", "ci"]).exit_code == 0
    assert "revoked" in runner.invoke(root, ["tokens", "list"]).output
    bad = runner.invoke(root, ["tokens", "create", "x", "--scope", "read", "--expires", "soon"])
    assert bad.exit_code == 2 and "--expires" in bad.output


def test_serve_refuses_a_public_address_while_no_token_exists(workspace):
    r = CliRunner().invoke(root, ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert r.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in r.output and "tokens create" in r.output


# ------------------------------------------------------------------ verbs


def test_verify_answers_like_verify_json_with_upload_names(api, workspace, signed_jpeg, tmp_path):
    path, issued = signed_jpeg
    bad = tampered_copy(path, tmp_path / "tampered.jpg")
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    h = token(workspace, "desk", "read")
    r = api.post(
        "/v1/verify",
        headers=h,
        files=[upload(path, "ok.jpg"), upload(bad, "bad.jpg"), upload(text, "notes.txt")],
    )
    assert r.status_code == 200
    rows = r.json()
    assert [row["path"] for row in rows] == ["ok.jpg", "bad.jpg", "notes.txt"]
    assert rows[0]["c2pa"]["state"] == "trusted"
    assert rows[0]["c2pa"]["asset_id"] == issued.asset_id
    assert rows[1]["c2pa"]["state"] == "invalid"
    assert rows[2]["error"] == (
        "not an image or other file C2PA can carry (unrecognised file signature)"
    )
    assert "/tmp" not in r.text and str(workspace) not in r.text


def test_uploads_are_deleted_when_the_request_ends(api, workspace, signed_jpeg):
    path, _ = signed_jpeg
    h = token(workspace, "desk", "read")
    api.post("/v1/verify", files=[upload(path)], headers=h)
    api.post("/v1/hash", files={"file": ("x.bin", b"garbage")}, headers=h)
    assert list((workspace / "tmp").iterdir()) == []


def test_upload_over_the_limit_is_413(workspace, signed_jpeg):
    path, _ = signed_jpeg
    with TestClient(make_app(workspace, public_read=True, max_upload=20_000)) as client:
        r = client.post("/v1/verify", files=[upload(path)])
        assert r.status_code == 413 and "limit" in r.json()["error"]
        assert client.get("/status/live").status_code == 200


def test_image_over_the_pixel_limit_is_422(workspace, photos, monkeypatch):
    from provkit.provenance.core import imageio

    app = make_app(workspace, public_read=True)
    monkeypatch.setenv("PROVKIT_MAX_PIXELS", "10000")  # provkit's own limit, read when used
    assert imageio.max_pixels() == 10_000
    with TestClient(app) as client:
        r = client.post("/v1/hash", files={"file": ("big.jpg", jpeg(photos[0]))})
    assert r.status_code == 422 and "too large" in r.json()["error"]
    assert "big.jpg" in r.json()["error"]


def test_a_full_queue_answers_503_with_retry_after():
    pool = CpuPool(threads=1, queue=0, time_limit=5)
    release = threading.Event()

    async def scenario():
        first = asyncio.ensure_future(pool.run(release.wait, 5))
        await asyncio.sleep(0.05)
        with pytest.raises(ApiError) as e:
            await pool.run(lambda: None)
        release.set()
        await first
        return e.value

    err = asyncio.run(scenario())
    assert err.status == 503 and err.headers["Retry-After"] == "1"
    assert pool.pending == 0
    pool.close()


def test_over_the_time_limit_is_503_and_the_slot_comes_back():
    pool = CpuPool(threads=1, queue=0, time_limit=0.1)
    release = threading.Event()

    async def scenario():
        with pytest.raises(ApiError) as e:
            await pool.run(release.wait, 5)
        release.set()
        for _ in range(100):
            if pool.pending == 0:
                break
            await asyncio.sleep(0.01)
        return e.value, await pool.run(lambda: "again")

    err, again = asyncio.run(scenario())
    assert err.status == 503 and "limit of 0.1 s" in err.message and again == "again"
    pool.close()


def test_reading_work_past_the_time_limit_is_stopped_and_writing_work_finishes():
    """A read past the limit stops in its thread (its slot comes back long before the
    work would have ended); a write (``stop=False``) answers 503 too but completes."""
    pool = CpuPool(threads=1, queue=0, time_limit=0.2)
    seen: dict = {"loops": 0}

    def reader():  # 30 s of Python work unless stopped
        end = time.monotonic() + 30
        while time.monotonic() < end:
            seen["loops"] += 1
        seen["reader_finished"] = True

    def writer():
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            pass
        seen["writer_finished"] = True

    async def until(condition):
        for _ in range(1000):
            if condition():
                return
            await asyncio.sleep(0.01)

    async def scenario():
        with pytest.raises(ApiError) as stopped:
            await pool.run(reader)
        await until(lambda: pool.pending == 0)
        assert pool.pending == 0 and "reader_finished" not in seen and seen["loops"] > 0
        again = await pool.run(lambda: "again")  # the same thread serves the next call
        with pytest.raises(ApiError) as late:
            await pool.run(writer, stop=False)
        await until(lambda: "writer_finished" in seen)
        return stopped.value, late.value, again

    stopped, late, again = asyncio.run(scenario())
    assert stopped.status == late.status == 503 and again == "again"
    assert seen.get("writer_finished") and pool.stopped == 1 and pool.pending == 0
    pool.close()


@pytest.mark.parametrize(
    "send",
    [
        {"data": b"{not json", "headers": {"content-type": "application/json"}},
        {"json": {"name": ""}},
        {"json": ["a list"]},
        {"data": b"name=x", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    ],
)
def test_bad_request_bodies_are_4xx_json(api, workspace, send):
    h = token(workspace, "w", "sets:write")
    headers = {**h, **send.pop("headers", {})}
    r = api.post("/v1/sets", headers=headers, **send)
    assert 400 <= r.status_code < 500
    assert r.json()["status"] == r.status_code and r.json()["error"]


def test_a_non_multipart_upload_is_4xx(api, workspace):
    h = token(workspace, "r", "read")
    r = api.post("/v1/verify", headers={**h, "content-type": "image/jpeg"}, content=b"\xff\xd8")
    assert r.status_code == 422 and "files" in r.json()["error"]


def test_policy_check_is_audited_with_the_token_name(api, workspace, signed_jpeg):
    path, _ = signed_jpeg
    h = token(workspace, "editor-7", "read", "audit:read")
    r = api.post(
        "/v1/policy/check",
        params={"pack": "newsroom", "point": "publish"},
        files=[upload(path), upload(path, "again.jpg")],
        headers=h,
    )
    assert r.status_code == 200 and [d["outcome"] for d in r.json()] == ["allow", "allow"]
    page = api.get("/v1/audit", params={"limit": 1}, headers=h).json()
    assert page["rows"][0]["actor"] == "editor-7" and page["next_after"] == 1
    rest = api.get("/v1/audit", params={"after": 1}, headers=h).json()
    assert [row["seq"] for row in rest["rows"]] == [2] and rest["next_after"] is None
    assert api.get("/v1/audit/verify", headers=h).json()["ok"] is True
    r = api.post(
        "/v1/policy/check", params={"pack": "/etc/passwd"}, files=[upload(path)], headers=h
    )
    assert r.status_code == 422 or r.status_code == 404


def test_sign_returns_the_sealed_file_and_its_asset_id(api, workspace, photo_path):
    h = token(workspace, "studio", "sign", "read")
    r = api.post(
        "/v1/sign",
        headers=h,
        data={"source_type": "digitalCapture"},
        files={"file": ("photo.jpg", photo_path.read_bytes(), "image/jpeg")},
    )
    assert r.status_code == 200, r.text
    asset_id = r.headers["x-provkit-asset-id"]
    out = workspace / "returned.jpg"
    out.write_bytes(r.content)
    report = verify_file(out, db=workspace / "provkit.db")
    assert report.state == "trusted" and report.asset_id == asset_id
    shown = api.get(f"/v1/ledger/{asset_id}", headers=h).json()
    assert shown["asset_id"] == asset_id and shown["manifest"]
    assert api.get(f"/v1/ledger/{asset_id}/file", headers=h).content == r.content
    assert api.get("/v1/ledger/0000000000000000", headers=h).status_code == 404
    assert asset_id in [a["asset_id"] for a in api.get("/v1/ledger", headers=h).json()]


def test_generate_returns_a_sealed_image(api, workspace):
    h = token(workspace, "studio", "generate")
    r = api.post(
        "/v1/generate",
        headers=h,
        json={"prompt": "a lighthouse", "seed": 3, "width": 128, "height": 128},
    )
    assert r.status_code == 200, r.text
    out = workspace / "gen.png"
    out.write_bytes(r.content)
    report = verify_file(out, db=workspace / "provkit.db")
    assert report.asset_id == r.headers["x-provkit-asset-id"]
    assert report.digital_source_type == "algorithmicMedia"  # the builtin is no trained model


# ------------------------------------------------------------------ sets, hash and lookup


def test_sets_from_uploads_and_hashes_are_searchable_at_once(api, workspace, photos):
    w = token(workspace, "ops", "banks:write", "banks:read", "read")
    assert (
        api.post(
            "/v1/sets", json={"name": "archive", "label": "photo archive"}, headers=w
        ).status_code
        == 201
    )
    r = api.post(
        "/v1/sets/archive/items",
        headers=w,
        data={"metadata": '{"licence": "CC0"}'},
        files=[
            ("files", ("coffee.jpg", jpeg(photos[2]))),
            ("files", ("junk.jpg", b"\xff\xd8\xff\xe0 not really")),
        ],
    )
    body = r.json()
    assert r.status_code == 200 and body["added"] == 1 and body["failed"] == 1
    assert body["errors"][0]["path"] == "junk.jpg"
    signals = api.post("/v1/hash", files={"file": ("q.jpg", jpeg(photos[2], 70))}, headers=w).json()
    assert set(signals) >= {"pdq", "pdq_quality", "phash", "dhash"}
    found = api.get("/v1/lookup", params={"signal": signals["pdq"]}, headers=w).json()
    assert found["archive"][0]["distance"] <= 31
    item = found["archive"][0]["bank_content_id"]
    thumb = api.get(f"/v1/sets/archive/items/{item}/thumbnail", headers=w)
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 160
    # a hash exchange's list: no images, only PDQ hex and ids
    other = "f" * 64
    r = api.post(
        "/v1/sets/partner/items",
        headers=w,
        json={"items": [{"pdq": other, "id": "case-17", "metadata": {"src": "x"}}, {"pdq": "zz"}]},
    )
    assert r.json()["added"] == 1 and r.json()["failed"] == 1
    hit = api.get(
        "/v1/lookup", params={"signal": "f" * 63 + "e", "index": "partner"}, headers=w
    ).json()
    assert hit == {
        "partner": [
            {
                "bank_content_id": hit["partner"][0]["bank_content_id"],
                "distance": 1,
                "partner_id": "case-17",
                "metadata": {"src": "x"},
            }
        ]
    }
    dupes = api.post(
        "/v1/dupes", files=[("files", ("q.jpg", jpeg(photos[2], 70)))], headers=w
    ).json()
    assert dupes[0]["matches"][0]["path"] == "upload:coffee.jpg"
    assert dupes[0]["matches"][0]["metadata"]["licence"] == "CC0"
    both = api.post("/v1/lookup", files={"file": ("q.jpg", jpeg(photos[2], 70))}, headers=w)
    assert both.json()["matches"]["archive"] and both.json()["signals"]["pdq"]
    assert api.delete("/v1/sets/partner", headers=w).json()["removed_items"] == 1
    assert (
        api.get("/v1/lookup", params={"signal": other, "index": "partner"}, headers=w).status_code
        == 404
    )
    assert [s["name"] for s in api.get("/v1/sets", headers=w).json()] == ["archive"]


def test_sets_changed_by_the_cli_are_reloaded_without_restart(api, workspace, photos, tmp_path):
    r = token(workspace, "r", "read")
    src = tmp_path / "a.jpg"
    src.write_bytes(jpeg(photos[3]))
    ReferenceIndex(workspace / "provkit.db").add("later", [src])
    signal = api.post("/v1/hash", files={"file": ("a.jpg", src.read_bytes())}, headers=r).json()[
        "pdq"
    ]
    for _ in range(50):  # the refresher runs every 0.2 s in these tests
        got = api.get("/v1/lookup", params={"signal": signal}, headers=r)
        if got.status_code == 200 and got.json().get("later"):
            break
        time.sleep(0.1)
    assert got.json()["later"][0]["distance"] == 0
    status = api.get("/status").json()
    assert status["sets"]["sets"]["later"]["items"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"signal": "abc"},
        {"signal": "g" * 64},
        {"signal": "0" * 64, "signal_type": "md5"},
        {"signal": "0" * 16, "signal_type": "phash", "max_distance": 300},
    ],
)
def test_malformed_lookups_are_4xx(api, workspace, params):
    r = api.get("/v1/lookup", params=params, headers=token(workspace, "r", "read"))
    assert 400 <= r.status_code < 500 and r.json()["error"]


# ------------------------------------------------------------------ soft-binding resolution


def test_soft_binding_resolution_api_finds_a_stripped_copy(api, workspace, photo_path, tmp_path):
    from tests.fixtures_provenance import strip_and_degrade

    signed = tmp_path / "signed.jpg"
    issued = issue(
        photo_path,
        signed,
        spec=ManifestSpec(source_type="digitalCapture"),
        db=workspace / "provkit.db",
    )
    h = token(workspace, "validator", "read")
    algs = api.get("/services/supportedAlgorithms", headers=h).json()
    alg = algs["watermarks"][0]["alg"]
    value = base64.b64encode(bytes.fromhex(issued.asset_id)).decode()
    by_get = api.get("/matches/byBinding", params={"alg": alg, "value": value}, headers=h)
    by_post = api.post("/matches/byBinding", json={"alg": alg, "value": value}, headers=h)
    assert by_get.json() == by_post.json()
    (match,) = by_get.json()["matches"]
    assert match["manifestId"] == issued.manifest_label and 0 <= match["similarityScore"] <= 100
    stripped = strip_and_degrade(signed, tmp_path / "shared.jpg")
    r = api.post(
        "/matches/byContent",
        content=stripped.read_bytes(),
        headers={**h, "content-type": "image/jpeg"},
    )
    assert r.json()["matches"][0]["manifestId"] == issued.manifest_label
    store = api.get(f"/manifests/{issued.manifest_label}", headers=h)
    assert store.headers["content-type"] == "application/c2pa"
    from provkit.provenance.resolver import revalidate

    _, summary = revalidate(store.content)
    assert summary["label"] == issued.manifest_label
    assert api.get("/manifests/urn:nothing", headers=h).status_code == 404
    assert api.get(
        "/matches/byBinding", params={"alg": alg, "value": "AAAA"}, headers=h
    ).json() == {"matches": []}
    empty = api.post("/matches/byContent", content=b"", headers=h)
    assert empty.status_code == 400


# ------------------------------------------------------------------ desk and report


def test_report_cli_writes_one_self_contained_file(workspace, signed_jpeg, tmp_path):
    path, _ = signed_jpeg
    out = tmp_path / "report.html"
    r = CliRunner().invoke(
        root,
        ["report", str(path), str(tmp_path / "missing.jpg"), "-o", str(out), "--pack", "newsroom"],
    )
    assert r.exit_code == 2, r.output  # one input unreadable: reported, and the exit says so
    html = out.read_text()
    assert "Trusted through" in html and "no such file" in html
    assert 'src="http' not in html and 'href="http' not in html and "<script" not in html
    assert "data:image/jpeg;base64," in html


def _png_bomb() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


def _broken_manifest(signed: bytes) -> bytes:
    data = bytearray(signed)
    at = data.find(b"jumb")
    for i in range(at + 40, at + 400):
        data[i] ^= 0xA5
    return bytes(data)


def test_hostile_uploads_get_a_reason_never_a_500(api, workspace, signed_jpeg):
    path, _ = signed_jpeg
    good = path.read_bytes()
    hostile = {
        "bomb.png": _png_bomb(),
        "half.jpg": good[: len(good) // 2],
        "mangled.jpg": _broken_manifest(good),
        "empty.jpg": b"",
        "fake.jpg": b"\xff\xd8\xff" + b"\0" * 100,
    }
    h = token(workspace, "r", "read")
    for name, data in hostile.items():
        files = [("files", (name, data, "image/jpeg"))]
        for route in ("/v1/verify", "/v1/detect"):
            r = api.post(route, files=files, headers=h)
            assert r.status_code == 200, (route, name, r.text)
            row = r.json()[0]
            assert row["path"] == name
            assert (
                row.get("error")
                or row.get("c2pa", {}).get("state") in ("invalid", "absent")
                or row.get("verdict")
            ), (route, name, row)
        r = api.post("/v1/hash", files={"file": (name, data)}, headers=h)
        assert r.status_code in (200, 422), (name, r.text)
        if r.status_code == 422:
            assert name in r.json()["error"]
        r = api.post("/desk/record", files={"file": (name, data)}, headers=h)
        assert r.status_code in (200, 422), (name, r.text)
    bomb = api.post("/v1/hash", files={"file": ("bomb.png", hostile["bomb.png"])}, headers=h)
    assert bomb.status_code == 422 and "too large" in bomb.json()["error"]
    r = api.post(
        "/v1/verify", files=[("files", ("mangled.jpg", hostile["mangled.jpg"]))], headers=h
    )
    assert r.json()[0].get("c2pa", {}).get("state") == "invalid" or r.json()[0].get("error")


def test_serve_max_pixels_is_the_limit_the_app_enforces(workspace, photos, monkeypatch):
    """``provkit serve --max-pixels N`` (create_app's ``max_pixels``) wins over the
    environment for the server process."""
    from provkit.provenance.core import imageio

    monkeypatch.delenv("PROVKIT_MAX_PIXELS", raising=False)
    cfg = ServiceConfig(
        db=str(workspace / "provkit.db"),
        out_dir=workspace / "served",
        temp_dir=workspace / "tmp",
        public_read=True,
    )
    try:
        with TestClient(create_app(cfg, refresh=0.2, max_pixels=10_000)) as client:
            assert client.get("/status").json()["max_pixels"] == 10_000
            r = client.post("/v1/hash", files={"file": ("big.jpg", jpeg(photos[0]))})
        assert r.status_code == 422 and "too large" in r.json()["error"]
    finally:
        imageio.set_max_pixels(None)
    assert imageio.max_pixels() == imageio.DEFAULT_MAX_PIXELS
