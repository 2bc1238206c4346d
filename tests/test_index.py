"""Reference sets: add, list, stats, remove; bad files in a batch; cache invalidation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from provkit.detect.index import CROPS, ReferenceIndex, read_sources
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.imageio import image_paths

from provkit.cli import root


@pytest.fixture
def folder(tmp_path, photos):
    """Four real photographs as PNG and JPEG files in a folder with a subfolder."""
    d = tmp_path / "refs"
    (d / "sub").mkdir(parents=True)
    for i, arr in enumerate(photos[:4]):
        target = d / "sub" if i % 2 else d
        Image.fromarray(arr).save(target / f"p{i}.{'png' if i < 2 else 'jpg'}")
    (d / "notes.txt").write_text("not an image, and not picked up from a folder")
    return d


def run(*args):
    result = CliRunner().invoke(root, [str(a) for a in args])
    return result


def test_add_fingerprints_every_image_of_a_folder_recursively(folder):
    index = ReferenceIndex()
    report = index.add("archive", image_paths(folder), label="newsroom archive")
    assert (report.added, report.already_present, report.errors) == (4, 0, ())
    (s,) = index.sets()
    assert (s.name, s.items, s.label, s.protected) == ("archive", 4, "newsroom archive", False)


def test_adding_the_same_images_again_adds_nothing(folder):
    index = ReferenceIndex()
    index.add("a", image_paths(folder))
    again = index.add("a", image_paths(folder))
    assert (again.added, again.already_present) == (0, 4)
    assert index.get_set("a").items == 4


def test_bad_files_are_reported_and_the_rest_added(folder, tmp_path):
    (folder / "truncated.jpg").write_bytes((folder / "p2.jpg").read_bytes()[:300])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("hello")
    result = run("bank", "add", "train", folder)
    assert result.exit_code == 2
    assert "added 4" in result.output and "failed 3" in result.output
    for name in ("truncated.jpg", "empty.png", "text.jpg"):
        assert f"error: {folder / name}: " in result.output
    assert "Traceback" not in result.output
    assert ReferenceIndex().get_set("train").items == 4


def test_index_cli_add_list_stats_remove(folder):
    r = run(
        "bank",
        "add",
        "opt-out",
        folder,
        "--protected",
        "--label",
        "opt-out registry",
        "-m",
        "licence=CC-BY-4.0",
        "-m",
        "opt_out=true",
        "--json",
    )
    assert r.exit_code == 0, r.output
    added = json.loads(r.stdout)
    assert set(added) >= {"set", "added", "already_present", "failed", "errors", "seconds"}
    assert added["added"] == 4

    listed = json.loads(run("bank", "list", "--json").stdout)
    assert [(s["name"], s["items"], s["protected"]) for s in listed] == [("opt-out", 4, True)]
    assert "opt-out\t4 items\treport\ton\tprotected" in run("bank", "list").stdout

    stats = json.loads(run("bank", "stats", "opt-out", "--json").stdout)
    assert stats["items"] == 4 and stats["crop_fingerprints"] == 4 * len(CROPS)
    assert stats["low_quality_pdq"] == 0 and stats["label"] == "opt-out registry"

    one = run("bank", "remove", "opt-out", "--item", "1", "--json")
    assert json.loads(one.stdout) == {"set": "opt-out", "removed_items": 1, "removed_set": False}
    gone = run("bank", "remove", "opt-out", "--json")
    assert json.loads(gone.stdout)["removed_items"] == 3
    assert json.loads(run("bank", "list", "--json").stdout) == []


def test_unknown_set_is_one_line_error_with_exit_2():
    r = run("bank", "stats", "nope")
    assert r.exit_code == 2
    assert "no bank named 'nope'" in r.output and "Traceback" not in r.output
    with pytest.raises(BadInput):
        ReferenceIndex().remove("nope")


def test_list_file_paths_are_relative_to_the_list(folder, tmp_path):
    listing = folder / "list.txt"
    listing.write_text("# references\np0.png\n\nsub/p1.png\n/definitely/missing.jpg\n")
    paths = image_paths(listing)
    assert paths[:2] == [folder / "p0.png", folder / "sub" / "p1.png"]
    report = ReferenceIndex().add("s", paths)
    assert report.added == 2
    assert [p for p, _ in report.errors] == ["/definitely/missing.jpg"]


def test_jsonl_list_carries_per_item_metadata(folder):
    listing = folder / "items.jsonl"
    listing.write_text(
        json.dumps({"path": "p0.png", "source_url": "https://example.org/a", "opt_out": True})
        + "\n"
    )
    paths, meta = read_sources(listing)
    index = ReferenceIndex()
    index.add("reg", paths, item_metadata=meta, metadata={"licence": "none"})
    (match,) = index.search(folder / "p0.png")
    assert match.metadata == {
        "licence": "none",
        "source_url": "https://example.org/a",
        "opt_out": True,
    }


def test_search_sees_changes_made_after_the_set_was_loaded(folder, photos, tmp_path):
    index = ReferenceIndex()
    index.add("s", [folder / "p0.png"])
    extra = tmp_path / "extra.png"
    Image.fromarray(photos[5]).save(extra)
    assert index.search(extra) == []  # loads and caches the set
    other = ReferenceIndex()  # another handle on the same database (another process alike)
    other.add("s", [extra])
    assert [m.path for m in index.search(extra)] == [str(extra.resolve())]
    other.remove("s", [str(extra.resolve())])
    assert index.search(extra) == []


def test_image_fingerprints_survive_the_database_round_trip(folder):
    from provkit.provenance.fingerprint import fingerprint_file

    index = ReferenceIndex()
    index.add("s", [folder / "p2.jpg"])
    fp = fingerprint_file(folder / "p2.jpg")
    (m,) = index.search(fp)
    assert m.distances == {"pdq": 0, "phash": 0, "dhash": 0} and m.exact


def test_high_bit_hashes_are_stored_without_overflow(tmp_path):
    # A pHash with its top bit set does not fit SQLite's signed integers as is.
    arr = np.zeros((64, 64, 3), np.uint8)
    arr[:32] = 255
    path = tmp_path / "bright_top.png"
    Image.fromarray(arr).save(path)
    index = ReferenceIndex()
    index.add("s", [path])
    from provkit.provenance.fingerprint import fingerprint_file

    fp = fingerprint_file(path)
    assert fp.phash >= 2**63
    (m,) = index.search(fp)
    assert m.distances["phash"] == 0


def test_parallel_fingerprinting_keeps_order_and_survives_bad_files(tmp_path, photos):
    from provkit.detect.index import fingerprint_many

    paths = []
    for i in range(10):
        p = tmp_path / f"{i}.jpg"
        if i == 4:
            p.write_bytes(b"\xff\xd8\xff\xe0 broken")
        else:
            Image.fromarray(np.roll(photos[i % len(photos)], i * 7, axis=1)).save(p)
        paths.append(p)
    seen = []
    parallel = list(fingerprint_many(paths, workers=2, progress=seen.append))
    serial = list(fingerprint_many(paths, workers=1))
    assert [r[1] for r in parallel] == [str(p) for p in paths]
    assert parallel == serial and len(seen) == 10
    assert [r[0] for r in parallel].count("error") == 1 and parallel[4][0] == "error"


def test_dupes_without_any_reference_set_says_so(photo_path):
    r = run("dupes", photo_path)
    assert r.exit_code == 2 and "no banks" in r.output


def test_a_set_keeps_embeddings_of_one_clip_model_only(folder, tmp_path):
    pytest.importorskip("open_clip")
    import torch
    from provkit.detect.clip import load_model
    from provkit.provenance.core.errors import ConfigError

    tiny = load_model("provkit-tiny-vit:random")
    weights = tmp_path / "tiny.pt"
    torch.save(tiny.model.state_dict(), weights)
    index = ReferenceIndex()
    index.add("s", [folder / "p0.png"], clip=tiny)
    with pytest.raises(ConfigError, match="holds embeddings of provkit-tiny-vit:random"):
        index.add("s", [folder / "p2.jpg"], clip=f"provkit-tiny-vit:{weights}")
    # The same model may add more, and attaches embeddings to items that lacked one.
    index.add("s", [folder / "p2.jpg"])
    again = index.add("s", [folder / "p2.jpg"], clip=tiny)
    assert again.already_present == 1 and index.get_set("s").with_clip == 2
