"""Recovery identifies and never vouches: a copy found by its watermark is related to the
issued pixels (same pixels, transformed, locally edited, not this asset), and only the
same pixels are vouched for.

Sources are signed once for the module (four photographs, two pictures of the built-in
generator); every copy is derived in memory and saved stripped of its metadata."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from provkit.provenance.core.errors import Refused
from provkit.provenance.issue import issue
from provkit.provenance.manifest import ManifestSpec
from provkit.provenance.relation import make_reference, relate

from provkit import policies
from tests.conftest import natural_photos
from tests.fixtures_recovery import EDITS, HONEST, edited_copy, encode, forged_mark

#: Every shipped pack at the points a stripped copy meets.
PACK_POINTS = [
    ("newsroom", "publish"),
    ("newsroom", "ingest"),
    ("platform", "ingest"),
    ("platform", "publish"),
    ("studio", "train"),
    ("cn-platform", "ingest"),
    ("eu-deployer", "publish"),
    ("us-ca-provider", "verify"),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("recovery-home")


@pytest.fixture(autouse=True)
def workspace(home, monkeypatch):
    """One workspace for the module (the signed sources are shared by every test)."""
    monkeypatch.setenv("PROVKIT_HOME", str(home))
    monkeypatch.delenv("PROVKIT_DB", raising=False)
    return home


@pytest.fixture(scope="module")
def sources(home, tmp_path_factory):
    """``[(asset_id, source type, signed pixels, kind)]``: photos signed as camera captures
    (one with an author and do-not-train), pictures of the built-in generator signed as
    algorithmic media. The asset ids are fixed: the watermark carries them, so every run
    tests the same marked pixels."""
    from provkit.generate.backends.builtin import BuiltinBackend

    out = tmp_path_factory.mktemp("sources")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROVKIT_HOME", str(home))
        mp.delenv("PROVKIT_DB", raising=False)
        photos = natural_photos()
        made = []
        for i, n in enumerate((0, 2, 1, 5)):  # astronaut, coffee, chelsea, china
            src = out / f"photo{i}.png"
            Image.fromarray(photos[n]).save(src)
            spec = ManifestSpec(
                source_type="digitalCapture",
                author="Ann Reporter" if i == 1 else None,
                no_train=i == 1,
            )
            issued = issue(src, out / f"signed{i}.png", spec=spec, asset_id=f"{i + 1:016x}")
            made.append((issued.asset_id, "digitalCapture", issued.path, "photo"))
        painter = BuiltinBackend()
        for i, prompt in enumerate(("portrait of a red fox in the snow", "a bowl of fruit")):
            picture = painter.paint(prompt, 3, 512, 384)
            spec = ManifestSpec(source_type=painter.describe().source_type, no_train=True)
            issued = issue(
                picture, out / f"generated{i}.png", spec=spec, asset_id=f"{0xA0 + i:016x}"
            )
            made.append((issued.asset_id, issued.source_type, issued.path, "generated"))
    return [(a, t, Image.open(p).convert("RGB"), k) for a, t, p, k in made]


@pytest.fixture(scope="module")
def copies(sources, tmp_path_factory):
    """``[(kind, name, path, source index)]``: every honest transformation and every local
    edit of every source (an object pasted from the next source's picture)."""
    out = tmp_path_factory.mktemp("copies")
    made = []
    for i, (_, _, img, _) in enumerate(sources):
        other = sources[(i + 1) % len(sources)][2]
        for name, fn in HONEST.items():
            p = out / f"{i}-{name}.png"
            fn(img).save(p)
            made.append(("honest", name, p, i))
        for j, name in enumerate(EDITS):
            p = out / f"{i}-{name}.png"
            edited_copy(name, img, seed=7 * i + j, other=other).save(p)
            made.append(("edited", name, p, i))
    return made


@pytest.fixture(scope="module")
def judged(copies, home):
    """Every copy through detect (verify with recovery, the watermark, the classifier) and
    every shipped pack."""
    from provkit.detect.verdict import Detector

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROVKIT_HOME", str(home))
        reports = list(Detector().run([p for _, _, p, _ in copies]))
    out = []
    for (kind, name, path, i), report in zip(copies, reports, strict=True):
        assert not isinstance(report, Exception), report
        context = {"asset": report.policy_context()}
        outcomes = {
            f"{pack}/{point}": policies.evaluate(pack, point, context)
            for pack, point in PACK_POINTS
        }
        out.append(
            {
                "kind": kind,
                "name": name,
                "path": path,
                "source": i,
                "c2pa": report.found.get("c2pa") or {},
                "verdict": report.verdict,
                "decisions": outcomes,
            }
        )
    return out


@pytest.mark.slow  # the whole test set through detect and every pack
def test_the_test_set_is_large_enough(copies):
    assert sum(k == "edited" for k, *_ in copies) >= 30
    assert sum(k == "honest" for k, *_ in copies) >= 30


@pytest.mark.slow  # the whole test set through detect and every pack
def test_no_locally_edited_copy_is_vouched_for_or_allowed_by_any_pack(judged):
    edited = [j for j in judged if j["kind"] == "edited"]
    vouched = [
        (j["source"], j["name"], (j["c2pa"].get("relation") or {}).get("class"))
        for j in edited
        if j["c2pa"].get("state") == "recovered"
        or (j["c2pa"].get("relation") or {}).get("class") in ("same-pixels", "transformed")
    ]
    assert vouched == []
    assert [j["name"] for j in edited if j["verdict"] == "camera/authentic-claimed"] == []
    allowed = [
        (j["source"], j["name"], k)
        for j in edited
        for k, d in j["decisions"].items()
        if d.outcome == "allow"
    ]
    assert allowed == []
    found = [
        j for j in edited if (j["c2pa"].get("relation") or {}).get("class") == "locally-edited"
    ]
    assert len(found) >= 0.9 * len(edited)  # the rest: no registration, "not this asset"


@pytest.mark.slow  # the whole test set through detect and every pack
def test_honest_copies_are_identified_with_their_asset_and_source_type(judged, sources):
    honest = [j for j in judged if j["kind"] == "honest"]
    ok = []
    for j in honest:
        asset_id, source_type, _, _ = sources[j["source"]]
        c = j["c2pa"]
        if (
            c.get("state") == "recovered"
            and c.get("asset_id") == asset_id
            and c.get("digital_source_type") == source_type
            and c["relation"]["class"] in ("same-pixels", "transformed")
        ):
            ok.append(j)
    missed = [(j["source"], j["name"], j["c2pa"].get("relation")) for j in honest if j not in ok]
    assert len(ok) >= 0.95 * len(honest), missed


def test_a_local_edit_is_reported_with_its_region(judged, sources):
    """The region reported covers the pixels the edit changed."""
    hits = 0
    edits = [
        j
        for j in judged
        if j["kind"] == "edited" and j["c2pa"]["relation"]["class"] == "locally-edited"
    ]
    for j in edits:
        signed = np.asarray(sources[j["source"]][2].convert("L"), dtype=float)
        copy = np.asarray(Image.open(j["path"]).convert("L"), dtype=float)
        ys, xs = np.nonzero(np.abs(copy - signed) > 40)
        left, top, right, bottom = j["c2pa"]["relation"]["region"]
        cy, cx = np.median(ys), np.median(xs)  # the middle of what the edit changed
        hits += left - 8 <= cx <= right + 8 and top - 8 <= cy <= bottom + 8
        assert j["c2pa"]["state"] == "mismatch"
        assert j["c2pa"]["identified"]["asset_id"] == sources[j["source"]][0]
    assert hits >= 0.9 * len(edits)


def test_a_transformed_copy_of_a_generated_picture_stays_ai_generated(judged):
    copies = [
        j
        for j in judged
        if j["kind"] == "honest"
        and j["source"] >= 4
        and (j["c2pa"].get("relation") or {}).get("class") == "transformed"
    ]
    assert copies
    for j in copies:
        assert j["verdict"] == "ai-generated", (j["name"], j["c2pa"].get("explanation"))
        assert j["decisions"]["platform/ingest"].outcome == "label"
        assert "ai-generated" in j["decisions"]["platform/ingest"].matched_rules
        assert j["decisions"]["studio/train"].outcome == "deny"


def test_a_cropped_copy_keeps_author_and_do_not_train_with_the_crop_stated(judged):
    (j,) = [j for j in judged if j["source"] == 1 and j["name"] == "crop-10-jpeg"]
    c = j["c2pa"]
    assert c["relation"]["class"] == "transformed"
    assert c["author"] == ["Ann Reporter"]
    assert c["training_mining"]["cawg.ai_generative_training"] == "notAllowed"
    assert all(0.08 <= v <= 0.12 for v in c["relation"]["crop"].values())
    assert "cropped" in c["relation"]["sentence"]
    assert any("not authenticated" in s for s in c["explanation"])
    assert j["decisions"]["studio/train"].outcome == "deny"
    assert j["decisions"]["newsroom/publish"].outcome == "review"


def test_only_the_same_pixels_reach_allow_through_recovery(judged):
    same = [
        j
        for j in judged
        if j["kind"] == "honest"
        and j["source"] < 4
        and j["c2pa"]["relation"]["class"] == "same-pixels"
    ]
    assert same and all(j["name"] in ("png", "jpeg-q85", "jpeg-q60", "webp-q75") for j in same)
    assert all(j["decisions"]["newsroom/publish"].outcome == "allow" for j in same)
    moved = [
        j
        for j in judged
        if j["kind"] == "honest"
        and j["source"] < 4
        and j["c2pa"]["relation"]["class"] == "transformed"
    ]
    assert all(j["decisions"]["newsroom/publish"].outcome == "review" for j in moved)


def _forged(sources, tmp_path):
    """An unrelated photograph carrying a mark that names the first source."""
    victim = sources[0][0]
    unrelated = Image.fromarray(natural_photos()[6])  # flower, never signed
    path = tmp_path / "forged.png"
    forged_mark(victim, unrelated).save(path)
    return victim, path


def test_a_forged_mark_gets_no_manifest_and_is_never_called_altered(sources, tmp_path):
    from click.testing import CliRunner
    from provkit.provenance.verify import verify_file

    from provkit.cli import root

    victim, path = _forged(sources, tmp_path)
    report = verify_file(path)
    assert report.state == "absent" and report.manifest_label is None
    assert report.relation["class"] == "not-this-asset"
    words = " ".join(report.explanation).lower()
    assert "altered" not in words and "edited after" not in words and victim in words
    result = CliRunner().invoke(root, ["check", str(path), "--json"])
    (record,) = json.loads(result.output)
    assert "altered" not in record["line"]
    decision = record["decision"]
    assert "altered-since-issued" not in decision["matched_rules"]
    assert not [r for r in decision["reasons"] if "altered" in r.lower()]
    assert not (record["asset"]["c2pa"].get("causes") or {}).get("content_altered")


def test_the_resolution_api_answers_only_for_matching_pixels(sources, tmp_path, home):
    """``/matches/byContent`` on a real server: the victim's manifest for an honest copy,
    nothing for the forged mark or a locally edited copy."""
    import httpx

    from tests.fixtures_serve import Server, token

    _, forged = _forged(sources, tmp_path)
    _, _, signed, _ = sources[1]
    honest = io.BytesIO()
    HONEST["resize-0.5-webp"](signed).save(honest, "PNG")
    edited = io.BytesIO()
    edited_copy("block", signed, seed=4, other=signed).save(edited, "PNG")
    h = token(home, "validator", "read")
    server = Server(home)
    try:

        def ask(body: bytes) -> list:
            r = httpx.post(
                server.url + "/matches/byContent",
                content=body,
                timeout=60,
                headers={**h, "content-type": "image/png"},
            )
            assert r.status_code == 200, r.text
            return r.json()["matches"]

        (match,) = ask(honest.getvalue())
        assert 90 <= match["similarityScore"] < 100
        assert ask(forged.read_bytes()) == []
        assert ask(edited.getvalue()) == []
    finally:
        server.stop()


def test_recover_records_what_was_measured_and_refuses_an_edited_copy(sources, tmp_path):
    from provkit.provenance.recover import recover
    from provkit.provenance.verify import verify_file

    asset_id, _, signed, _ = sources[3]
    cropped = tmp_path / "cropped.jpg"
    HONEST["crop-10-jpeg"](signed).save(cropped, quality=90)
    result = recover(cropped, tmp_path / "restored.jpg")
    assert result.asset_id == asset_id
    assert result.actions == ["c2pa.cropped", "c2pa.transcoded"]
    restored = verify_file(tmp_path / "restored.jpg")
    assert [a["action"] for a in restored.actions] == [
        "c2pa.opened",
        "c2pa.cropped",
        "c2pa.transcoded",
    ]
    assert restored.ingredients[0]["relationship"] == "parentOf"
    edited = tmp_path / "edited.png"
    edited_copy("caption", signed, seed=2, other=signed).save(edited)
    with pytest.raises(Refused, match="locally edited copy"):
        recover(edited, tmp_path / "no.png")
    assert not (tmp_path / "no.png").exists()


# -- the relation itself, over wide inputs ----------------------------------------------


@pytest.fixture(scope="module")
def coffee():
    img = Image.fromarray(natural_photos()[2])
    return img, make_reference(img)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scale=st.floats(0.4, 2.0), crop=st.tuples(*[st.floats(0, 0.1)] * 4), quality=st.integers(60, 95)
)
def test_any_honest_resize_crop_and_reencode_is_a_transformed_copy(coffee, scale, crop, quality):
    img, ref = coffee
    w, h = img.size
    left, top, right, bottom = crop
    copy = img.crop((round(w * left), round(h * top), w - round(w * right), h - round(h * bottom)))
    copy = copy.resize(
        (max(1, round(copy.width * scale)), max(1, round(copy.height * scale))),
        Image.Resampling.LANCZOS,
    )
    rel = relate(encode(copy, "JPEG", quality=quality), ref)
    assert rel.cls in ("transformed", "same-pixels"), rel.to_json()
    assert abs(rel.scale - scale) < 0.03


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    x=st.floats(0, 1),
    y=st.floats(0, 1),
    area=st.floats(0.02, 0.2),
    shade=st.integers(0, 255),
    scale=st.sampled_from([0.5, 1.0, 1.5]),
)
def test_any_painted_block_over_two_percent_is_a_local_edit(coffee, x, y, area, shade, scale):
    img, ref = coffee
    a = np.asarray(img).copy()
    h, w = a.shape[:2]
    bw, bh = int(w * np.sqrt(area)), int(h * np.sqrt(area))
    x0, y0 = int(x * (w - bw)), int(y * (h - bh))
    patch = a[y0 : y0 + bh, x0 : x0 + bw]
    if np.abs(patch.astype(int) - shade).mean() < 40:  # a block the colour of what it covers
        shade = 255 - shade  # changes nothing visible
    a[y0 : y0 + bh, x0 : x0 + bw] = shade
    copy = Image.fromarray(a).resize((round(w * scale), round(h * scale)))
    rel = relate(encode(copy, "PNG"), ref)
    assert rel.cls == "locally-edited", rel.to_json()
    left, top, right, bottom = rel.region
    assert left <= x0 + bw / 2 <= right and top <= y0 + bh / 2 <= bottom


def test_the_ledger_keeps_a_small_reference_rendition_of_the_issued_pixels(sources, home):
    from provkit.provenance.ledger import Ledger
    from provkit.provenance.relation import load_reference

    book = Ledger(home / "provkit.db")
    for asset_id, _, signed, _ in sources:
        blob = book.reference(asset_id)
        assert blob is not None and 2_000 < len(blob) < 64_000
        pixels, size = load_reference(blob)
        assert size == signed.size and max(pixels.shape) == 256


def test_an_asset_without_a_reference_is_compared_by_fingerprint_and_never_vouched_for(
    sources, tmp_path
):
    from provkit.provenance.issue import issue as issue_
    from provkit.provenance.ledger import Ledger
    from provkit.provenance.verify import verify_file

    db = tmp_path / "old.db"
    src = tmp_path / "src.png"
    sources[3][2].save(src)
    issued = issue_(
        src, tmp_path / "signed.png", spec=ManifestSpec(source_type="digitalCapture"), db=db
    )
    book = Ledger(db)
    with book.db.conn:  # a row issued before reference renditions were kept
        book.db.execute("UPDATE assets SET reference = NULL WHERE asset_id = ?", [issued.asset_id])
    copy = tmp_path / "copy.png"
    encode(Image.open(issued.path), "JPEG", quality=90).save(copy)
    report = verify_file(copy, db=db)
    assert report.state == "recovered" and report.relation["class"] == "transformed"
    assert "no reference rendition" in report.relation["reason"]
    assert (
        policies.evaluate(
            "newsroom",
            "publish",
            {
                "asset": {
                    "verdict": "unknown",
                    "c2pa": {
                        "state": "recovered",
                        "relation": "transformed",
                        "trust_source": "local workspace CA",
                    },
                }
            },
        ).outcome
        == "review"
    )


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    w=st.integers(1, 700),
    h=st.integers(1, 700),
    mode=st.sampled_from(["RGB", "L", "RGBA", "P", "1"]),
    seed=st.integers(0, 2**16),
)
def test_any_picture_gets_one_relation_and_no_error(coffee, w, h, mode, seed):
    """Odd sizes, modes and noise: one of the four classes, never an exception; noise is
    never the asset."""
    from provkit.provenance.relation import CLASSES

    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
    rel = relate(img, coffee[1])
    assert rel.cls in CLASSES and rel.cls == "not-this-asset", rel.to_json()
