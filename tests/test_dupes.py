"""``provkit dupes``: transformed copies of indexed photographs are found, others are not."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from provkit.detect.index import ReferenceIndex

from provkit.cli import root

INDEXED = [0, 2, 3, 6]  # astronaut, coffee, rocket, china
DISTINCT = [1, 4, 5]  # chelsea, camera, flower: never indexed


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def crop(img: Image.Image, left, top, right, bottom) -> Image.Image:
    w, h = img.size
    return img.crop(
        (round(w * left), round(h * top), round(w * (1 - right)), round(h * (1 - bottom)))
    )


TRANSFORMS = {
    "jpeg_q50": lambda im: jpeg(im, 50),
    "resize_half": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR),
    "crop_5pct_each_side": lambda im: crop(im, 0.05, 0.05, 0.05, 0.05),
    "crop_10pct_corner": lambda im: crop(im, 0.1, 0.1, 0, 0),
    "crop_20pct_each_side": lambda im: crop(im, 0.2, 0.2, 0.2, 0.2),
}


@pytest.fixture(scope="module")
def reference_db(tmp_path_factory, photos):
    """A database with one protected set holding four real photographs."""
    d = tmp_path_factory.mktemp("dupes")
    paths = []
    for i in INDEXED:
        p = d / f"ref{i}.jpg"
        Image.fromarray(photos[i]).save(p, quality=92)
        paths.append(p)
    db = d / "provkit.db"
    report = ReferenceIndex(db).add(
        "training", paths, protected=True, label="training data", metadata={"licence": "CC-BY-4.0"}
    )
    assert report.added == 4
    return db, d


def run(*args):
    return CliRunner().invoke(root, [str(a) for a in args])


@pytest.mark.parametrize("transform", list(TRANSFORMS))
def test_dupes_finds_transformed_copies_of_indexed_photographs(
    reference_db, photos, tmp_path, transform
):
    db, refs = reference_db
    for i in INDEXED:
        query = tmp_path / f"{transform}_{i}.png"
        TRANSFORMS[transform](Image.fromarray(photos[i])).save(query)
        r = run("dupes", query, "--db", db, "--json")
        assert r.exit_code == 0, r.output
        (report,) = json.loads(r.stdout)
        paths = [m["path"] for m in report["matches"]]
        assert paths == [str((refs / f"ref{i}.jpg").resolve())], (transform, i, report)


def test_dupes_rejects_distinct_photographs_and_their_copies(reference_db, photos, tmp_path):
    db, _ = reference_db
    queries = []
    for i in DISTINCT:
        img = Image.fromarray(photos[i])
        for name, fn in [("as_is", lambda x: x), *TRANSFORMS.items()]:
            p = tmp_path / f"distinct{i}_{name}.png"
            fn(img).save(p)
            queries.append(p)
    r = run("dupes", *queries, "--db", db, "--json")
    assert r.exit_code == 0
    assert [rep["matches"] for rep in json.loads(r.stdout)] == [[]] * len(queries)


def test_dupes_rejects_distinct_crops_of_the_same_scene(reference_db, photos, tmp_path):
    # Quadrants of an indexed photograph share its colours and texture, not its layout.
    db, _ = reference_db
    img = Image.fromarray(photos[0])
    w, h = img.size
    quads = []
    for k, (x, y) in enumerate([(0, 0), (w // 2, 0), (0, h // 2), (w // 2, h // 2)]):
        p = tmp_path / f"quad{k}.png"
        img.crop((x, y, x + w // 2, y + h // 2)).save(p)
        quads.append(p)
    reports = json.loads(run("dupes", *quads, "--db", db, "--json").stdout)
    assert all(not rep["matches"] for rep in reports)


def test_dupes_json_has_the_documented_keys(reference_db, tmp_path, photos):
    db, _ = reference_db
    query = tmp_path / "q.jpg"
    jpeg(Image.fromarray(photos[2]), 60).save(query)
    (report,) = json.loads(run("dupes", query, "--db", db, "--json").stdout)
    assert set(report) == {"path", "matches"}
    (m,) = report["matches"]
    assert set(m) == {
        "bank",
        "partner_id",
        "action",
        "set",
        "item_id",
        "path",
        "kind",
        "distance",
        "distances",
        "clip_similarity",
        "protected",
        "label",
        "added",
        "sha256",
        "exact",
        "metadata",
        "source_id",
    }
    assert m["source_id"] is None  # an image item, not an imported hash
    assert m["set"] == "training" and m["protected"] is True and m["label"] == "training data"
    assert set(m["distances"]) == {"pdq", "phash", "dhash"}
    assert m["kind"] in {"pdq", "phash"} and m["clip_similarity"] is None
    assert m["exact"] is False and m["metadata"] == {"licence": "CC-BY-4.0"}


def test_identical_file_is_flagged_exact(reference_db):
    db, refs = reference_db
    (report,) = json.loads(run("dupes", refs / "ref3.jpg", "--db", db, "--json").stdout)
    (m,) = report["matches"]
    assert m["exact"] is True and m["distance"] == 0


def test_fail_on_match_exits_1_only_when_something_matched(reference_db, photos, tmp_path):
    db, refs = reference_db
    other = tmp_path / "other.png"
    Image.fromarray(photos[1]).save(other)
    assert run("dupes", other, "--db", db, "--fail-on-match").exit_code == 0
    r = run("dupes", refs / "ref0.jpg", other, "--db", db, "--fail-on-match")
    assert r.exit_code == 1
    assert "1 near-duplicate(s)" in r.output and "no near-duplicates" in r.output


def test_bad_query_file_is_reported_and_the_others_searched(reference_db, tmp_path):
    db, refs = reference_db
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really")
    r = run("dupes", bad, refs / "ref0.jpg", "--db", db, "--json")
    assert r.exit_code == 2
    assert f"error: {bad}: " in r.stderr
    reports = json.loads(r.stdout)
    assert reports[0]["error"] and len(reports[1]["matches"]) == 1


def test_max_distance_tightens_and_loosens_the_match(reference_db, photos, tmp_path):
    db, _ = reference_db
    query = tmp_path / "q.png"
    crop(Image.fromarray(photos[3]), 0.08, 0.08, 0, 0).resize((300, 200)).save(query)
    index = ReferenceIndex(db)
    loose = index.search(query, max_distance={"pdq": 256, "phash": 64, "dhash": 64})
    assert len(loose) == 4  # every item is within the widest limits
    assert loose[0].path.endswith("ref3.jpg")
    assert index.search(query, max_distance=0) == []
    r = run(
        "dupes",
        query,
        "--db",
        db,
        "--max-distance",
        "pdq=256",
        "--max-distance",
        "phash=64",
        "--max-distance",
        "dhash=64",
        "--json",
    )
    assert len(json.loads(r.stdout)[0]["matches"]) == 4
    assert run("dupes", query, "--db", db, "--max-distance", "x=1").exit_code == 2


def test_unknown_index_name_is_refused(reference_db, tmp_path):
    db, refs = reference_db
    r = run("dupes", refs / "ref0.jpg", "--db", db, "--index", "nope")
    assert r.exit_code == 2 and "no bank named 'nope'" in r.output


def test_clip_similarity_is_reported_when_the_set_has_embeddings(tmp_path, photos):
    pytest.importorskip("open_clip")
    spec = "provkit-tiny-vit:random"
    paths = []
    for i in (0, 2):
        p = tmp_path / f"c{i}.png"
        Image.fromarray(photos[i]).save(p)
        paths.append(p)
    index = ReferenceIndex()
    report = index.add("with-clip", paths, clip=spec)
    assert report.added == 2 and report.clip_model == "provkit-tiny-vit:random"
    assert index.get_set("with-clip").with_clip == 2
    query = tmp_path / "q.jpg"
    jpeg(Image.fromarray(photos[0]), 70).save(query)
    m = index.search(query, clip=spec)[0]  # a random model calls everything similar: rank matters
    assert m.path.endswith("c0.png") and m.kind == "pdq"
    assert m.clip_similarity is not None and 0.9 < m.clip_similarity <= 1.0001
    r = run("dupes", query, "--json")
    first = json.loads(r.stdout)[0]["matches"][0]  # the set's own model is used by default
    assert first["clip_similarity"] == pytest.approx(m.clip_similarity)
    assert index.search(query, clip=False)[0].clip_similarity is None
    # CLIP alone can decide a match when the hashes are told to match nothing.
    only_clip = index.search(query, max_distance={"pdq": -1, "phash": -1, "dhash": -1, "clip": 0.5})
    assert only_clip and only_clip[0].kind == "clip"


def test_search_accepts_images_paths_and_fingerprints(reference_db, photos):
    db, _ = reference_db
    from provkit.provenance.fingerprint import fingerprint_image

    index = ReferenceIndex(db)
    img = Image.fromarray(photos[6])
    by_image = index.search(img)
    by_fp = index.search(fingerprint_image(img))
    assert [m.item_id for m in by_image] == [m.item_id for m in by_fp] and len(by_fp) == 1
    assert np.isfinite(by_fp[0].distance)


def test_a_set_whose_clip_model_is_gone_says_clip_was_not_checked(tmp_path, photos, monkeypatch):
    pytest.importorskip("open_clip")
    import provkit.detect.clip as clip_mod
    from provkit.detect.verdict import detect

    tiny = clip_mod.load_model("provkit-tiny-vit:random", device="cpu")
    import torch

    weights = tmp_path / "tiny.pt"
    torch.save(tiny.model.state_dict(), weights)
    ref = tmp_path / "r.png"
    Image.fromarray(photos[0]).save(ref)
    index = ReferenceIndex()
    index.add("embedded", [ref], clip=f"provkit-tiny-vit:{weights}")
    weights.unlink()
    monkeypatch.setattr(clip_mod, "_CACHE", {})  # as in a new process: the model must load again
    query = tmp_path / "q.jpg"
    jpeg(Image.fromarray(photos[0]), 70).save(query)
    (m,) = index.search(query)
    assert m.clip_similarity is None and "embedded" in index.clip_not_checked
    assert "not available" in index.clip_not_checked["embedded"]
    r = run("dupes", query, "--json")
    assert "embedded" in json.loads(r.stdout)[0]["clip_not_checked"]
    human = run("dupes", query)
    assert "CLIP similarity not checked for bank embedded" in human.stdout
    (item,) = [e for e in detect(query).evidence if e.kind == "duplicates"]
    assert "CLIP similarity not checked for bank embedded" in item.detail
