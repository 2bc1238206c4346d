"""Lean verify answers: manifest thumbnails are named by URL (fetched with the same
token for a few minutes), embedded only when asked (``?thumbnails=inline``, ``provkit
verify --json --thumbnails``), and the kept copies expire."""

from __future__ import annotations

import base64
import io
import json
import time

from click.testing import CliRunner
from PIL import Image
from provkit.provenance.issue import issue
from provkit.provenance.manifest import ManifestSpec

from provkit.cli import root
from provkit.server.thumbnails import FolderThumbnailStore
from tests.fixtures_provenance import flip_pixel_bytes
from tests.fixtures_serve import token


def _signed_megapixel(tmp_path, photos, db):
    """A 1000x1000 photograph signed as an edit of a signed original (two thumbnails)."""
    raw = tmp_path / "raw.jpg"
    Image.fromarray(photos[0]).resize((1000, 1000)).save(raw, quality=90)
    original = tmp_path / "original.jpg"
    issue(raw, original, spec=ManifestSpec(source_type="digitalCapture"), watermark=False, db=db)
    edited = tmp_path / "edited.jpg"
    Image.open(original).convert("RGB").save(edited, quality=88)
    out = tmp_path / "signed.jpg"
    issue(
        edited,
        out,
        spec=ManifestSpec(
            action="edited", source_type="digitalCapture", ingredients=((original, "parentOf"),)
        ),
        db=db,
    )
    return out


def _upload(path, name=None):
    return ("files", (name or path.name, path.read_bytes(), "image/jpeg"))


def test_a_verify_answer_for_a_signed_megapixel_jpeg_is_small_and_names_thumbnails_by_url(
    api, workspace, photos, tmp_path
):
    signed = _signed_megapixel(tmp_path, photos, workspace / "provkit.db")
    assert Image.open(signed).size == (1000, 1000)
    h = token(workspace, "platform", "read")
    r = api.post("/v1/verify", files=[_upload(signed)], headers=h)
    assert r.status_code == 200
    assert len(r.content) < 20_000, len(r.content)
    c = r.json()[0]["c2pa"]
    assert c["state"] == "trusted"
    urls = [c["thumbnail"]["url"], c["ingredients"][0]["thumbnail"]["url"]]
    assert all(u.startswith("/v1/verify/thumbnail/") for u in urls) and urls[0] != urls[1]
    assert "data:" not in r.text
    for url in urls:  # reachable with the same token, a real picture
        got = api.get(url, headers=h)
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
        assert got.headers["x-content-type-options"] == "nosniff"
        assert Image.open(io.BytesIO(got.content)).size[0] > 0
        assert api.get(url).status_code == 401  # same auth as verify
        other = token(workspace, f"other-{url[-4:]}", "read")
        assert api.get(url, headers=other).status_code == 404  # only for the one it answered
    guessed = "/v1/verify/thumbnail/" + "A" * 22
    assert api.get(guessed, headers=h).status_code == 404
    assert api.get("/v1/verify/thumbnail/..%2f..%2fprovkit.db", headers=h).status_code == 404

    inline = api.post(
        "/v1/verify", params={"thumbnails": "inline"}, files=[_upload(signed)], headers=h
    )
    thumbnail = inline.json()[0]["c2pa"]["thumbnail"]
    data = thumbnail["data"]
    assert data.startswith("data:image/jpeg;base64,") and "url" not in thumbnail
    fetched = api.get(urls[0], headers=h).content
    assert base64.b64decode(data.split(",", 1)[1]) == fetched  # the same picture
    assert len(inline.content) > len(r.content) + len(fetched)
    bare = api.post(
        "/v1/verify", params={"thumbnails": "none"}, files=[_upload(signed)], headers=h
    ).json()[0]["c2pa"]
    assert set(bare["thumbnail"]) == {"format", "identifier"}
    bad = api.post("/v1/verify", params={"thumbnails": "all"}, files=[_upload(signed)], headers=h)
    assert bad.status_code == 422


def test_a_broken_binding_names_its_thumbnail_hint_by_url(api, workspace, photos, tmp_path):
    signed = _signed_megapixel(tmp_path, photos, workspace / "provkit.db")
    tampered = tmp_path / "tampered.jpg"
    tampered.write_bytes(flip_pixel_bytes(signed.read_bytes(), count=8, before_end=3000))
    h = token(workspace, "desk", "read")
    r = api.post("/v1/verify", files=[_upload(tampered)], headers=h)
    c = r.json()[0]["c2pa"]
    assert c["state"] == "invalid" and len(r.content) < 20_000
    assert c["thumbnail_check"]["url"] == c["thumbnail"]["url"]
    assert "data" not in c["thumbnail_check"]


def test_verify_json_embeds_thumbnails_only_with_the_flag(workspace, photos, tmp_path):
    signed = _signed_megapixel(tmp_path, photos, workspace / "provkit.db")
    lean = CliRunner().invoke(root, ["verify", "--json", str(signed)])
    full = CliRunner().invoke(root, ["verify", "--json", "--thumbnails", str(signed)])
    assert lean.exit_code == 0 and full.exit_code == 0, lean.output + full.output
    assert len(lean.output) < 20_000 and "data:image" not in lean.output
    c = json.loads(full.output)[0]["c2pa"]
    assert c["thumbnail"]["data"].startswith("data:image/jpeg;base64,")
    assert c["ingredients"][0]["thumbnail"]["data"].startswith("data:image/jpeg;base64,")


def test_kept_thumbnails_expire_and_the_folder_is_bounded(tmp_path):
    store = FolderThumbnailStore(tmp_path / "t", ttl=0.3, max_bytes=2510)
    first = store.keep(b"a" * 1000, "image/jpeg")
    handles = {first} | {store.keep(b"b" * 1000, "image/png") for _ in range(3)}
    assert len(handles) == 4 and all(len(h) == 22 for h in handles)  # 128 random bits each
    assert store.keep(b"<svg/>", "image/svg+xml") is None  # never served: it can hold script
    assert store.get("../" + first) is None and store.get("") is None
    mine = store.keep(b"c" * 10, "image/jpeg", "editor")
    assert store.get(mine, "editor") == (b"c" * 10, "image/jpeg")
    assert store.get(mine) is None and store.get(mine, "someone-else") is None
    store.sweep()  # past the size cap: the oldest go first
    assert store.get(first) is None
    assert sum(store.get(h) is not None for h in handles) == 2
    time.sleep(0.4)
    assert all(store.get(h) is None for h in handles)  # expired: gone
    store.sweep()
    assert list((tmp_path / "t").iterdir()) == []
