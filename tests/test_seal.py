"""Sealing: every generated image leaves watermarked, signed, recorded and checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from provkit.generate import Generator, generate
from provkit.generate.generator import GenerationFailed
from provkit.generate.runlog import generations, quarantine_dir
from provkit.provenance.core.errors import ConfigError, Refused
from provkit.provenance.ledger import Ledger
from provkit.provenance.verify import verify_file


def c2pa_of(path):
    return verify_file(path).to_json()["c2pa"]


def only_action(c2pa, name):
    (action,) = [a for a in c2pa["actions"] if a["action"] == name]
    return action


@pytest.fixture
def out(tmp_path):
    return tmp_path / "out"


def test_builtin_output_is_trusted_algorithmic_media_with_agent_and_do_not_train(out):
    (img,) = Generator("builtin", out_dir=out).generate("a quiet harbour", seed=5, size="128x128")
    c2pa = c2pa_of(img.path)
    assert c2pa["state"] == "trusted"  # signed by this workspace's own identity
    assert c2pa["digital_source_type"] == "algorithmicMedia"
    created = only_action(c2pa, "c2pa.created")
    assert created["software_agent"].startswith("provkit-builtin (model=cppn-h")
    assert created["parameters"]["seed"] == 5
    assert (created["parameters"]["width"], created["parameters"]["height"]) == (128, 128)
    assert set(c2pa["training_mining"].values()) == {"notAllowed"}
    assert c2pa["asset_id"] == img.asset_id
    assert img.manifest_label == c2pa["manifest_label"]
    assert Path(img.path).parent == out and img.asset_id in Path(img.path).name


def test_prompt_is_recorded_only_as_its_sha256_unless_asked(out):
    prompt = "my secret client brief"
    (quiet,) = Generator("builtin", out_dir=out).generate(prompt, size="128x128")
    params = only_action(c2pa_of(quiet.path), "c2pa.created")["parameters"]
    assert params["prompt_sha256"] == hashlib.sha256(prompt.encode()).hexdigest()
    assert "prompt" not in params and "secret" not in Path(quiet.path).name
    assert b"secret client" not in quiet.bytes

    (loud,) = Generator("builtin", out_dir=out, record_prompt=True).generate(prompt, size="128x128")
    assert only_action(c2pa_of(loud.path), "c2pa.created")["parameters"]["prompt"] == prompt
    assert Path(loud.path).name.startswith("my-secret-client-brief-")


def test_allow_training_marks_every_use_allowed(out):
    (img,) = Generator("builtin", out_dir=out, allow_training=True).generate("x", size="128x128")
    assert set(c2pa_of(img.path)["training_mining"].values()) == {"allowed"}


def test_every_output_is_in_the_ledger_and_carries_its_asset_id_in_the_watermark(out):
    from provkit.provenance import watermark
    from provkit.provenance.ledger import Ledger

    images = Generator("builtin", out_dir=out).generate("ledger check", n=2, size="256x256")
    for img in images:
        row = Ledger().get(img.asset_id)
        assert row is not None and row.sha256 == hashlib.sha256(img.bytes).hexdigest()
        decoded = watermark.decode(img.open())
        assert decoded is not None and decoded.payload.hex() == img.asset_id


def test_image_to_image_records_the_init_image_as_parent(out, photo_path):
    (img,) = Generator("builtin", out_dir=out).generate(
        "recolour", init_image=photo_path, size="128x128", strength=0.4
    )
    c2pa = c2pa_of(img.path)
    assert [i["relationship"] for i in c2pa["ingredients"]] == ["parentOf"]
    assert c2pa["ingredients"][0]["title"] == "photo.jpg"
    edited = only_action(c2pa, "c2pa.edited")
    assert edited["digital_source_type"].endswith("algorithmicMedia")
    assert edited["parameters"]["strength"] == 0.4
    assert c2pa["state"] == "trusted"


def test_same_seed_twice_into_one_folder_never_overwrites(out):
    gen = Generator("builtin", out_dir=out)
    a = gen.generate("same", seed=1, size="128x128")[0]
    b = gen.generate("same", seed=1, size="128x128")[0]
    assert a.path != b.path and Path(a.path).exists() and Path(b.path).exists()
    assert Image.open(a.path).size == (128, 128)


def flaky_model(request):
    """Seed 2 breaks; the others are fine."""
    return [
        np.full((128, 128, 3), 40 * (s % 5), np.uint8) if s != 2 else "broken"
        for s in request.seeds
    ]


def test_a_failed_image_leaves_the_finished_ones_sealed_and_recorded(out):
    run = generate("p", backend="callable", model="test_seal:flaky_model", n=4, seed=0, out_dir=out)
    assert [s.seed for s in run.sealed] == [0, 1, 3]
    (failure,) = run.failed
    assert failure.seed == 2 and failure.stage == "backend" and "want a PIL image" in failure.error
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(s.path).name for s in run.sealed)
    log = {r["idx"]: r["status"] for r in generations(run_id=run.run_id)}
    assert log == {0: "released", 1: "released", 2: "failed", 3: "released"}
    with pytest.raises(GenerationFailed) as e:
        Generator("callable", model="test_seal:flaky_model", out_dir=out).generate("p", n=3, seed=1)
    assert e.value.exit_code == 1 and len(e.value.run.sealed) == 2


def test_there_is_no_option_that_skips_sealing(out):
    for option in ({"seal": False}, {"watermark": False}, {"sign": False}):
        with pytest.raises(ConfigError):
            Generator("builtin", out_dir=out, **option)


calls = []


def counting_model(request):
    calls.append(request.prompt)
    return [Image.new("RGB", (32, 32), "red")] * request.count


def test_policy_deny_on_the_request_refuses_before_the_backend_runs(out):
    from provkit.policies import AuditLog

    calls.clear()
    with pytest.raises(Refused, match="real person"):
        generate(
            "portrait of Taylor Swift",
            backend="callable",
            model="test_seal:counting_model",
            out_dir=out,
            policy="studio",
        )
    assert calls == [] and not (out.exists() and any(out.iterdir()))
    assert [r["status"] for r in generations()] == ["refused"]
    assert AuditLog().verify().ok


def test_output_near_a_protected_image_is_withheld_in_quarantine(out, tmp_path, photos):
    from provkit.detect.index import ReferenceIndex

    ref = tmp_path / "stock.png"
    Image.fromarray(photos[2]).save(ref)
    ReferenceIndex().add("licensed-stock", [ref], protected=True)

    def copy_model(request):
        return [Image.open(ref).convert("RGB")]

    run = Generator(copy_model_backend(copy_model), out_dir=out, policy="studio").run("a cup")
    assert run.sealed == () and run.protected_sets == "checked against licensed-stock"
    (withheld,) = run.failed
    assert withheld.stage == "policy" and "protected reference image" in withheld.error
    assert not any(out.iterdir())
    assert Path(withheld.quarantined_path).parent == quarantine_dir()
    assert Path(withheld.quarantined_path).exists()
    (row,) = generations(status="withheld")
    assert row["asset_id"] == withheld.asset_id
    asset = Ledger().get(withheld.asset_id)
    assert asset.status == "withheld" and asset.path == withheld.quarantined_path


def test_protected_hit_without_a_policy_is_reported_with_the_image(out, tmp_path, photos):
    from provkit.detect.index import ReferenceIndex

    ref = tmp_path / "optout.png"
    Image.fromarray(photos[3]).save(ref)
    ReferenceIndex().add("opt-out", [ref], protected=True)
    ReferenceIndex().add("moodboard", [ref], protected=False)
    run = Generator(
        copy_model_backend(lambda r: [Image.open(ref).convert("RGB")]), out_dir=out
    ).run("rocket")
    (img,) = run.sealed
    assert [d["set"] for d in img.duplicates] == ["opt-out"]
    assert img.duplicates[0]["protected"] is True


def test_review_outcome_holds_the_output_for_review(out, tmp_path):
    pack = tmp_path / "hold.yaml"
    pack.write_text(
        "pack: hold\nversion: '1'\ndefault: allow\nfail_closed: deny\nrules:\n"
        "  - id: hold-everything\n    points: [generate.output]\n    when: 'true'\n"
        "    outcome: review\n    reason: Every output is reviewed by a person first.\n"
    )
    run = generate("x", out_dir=out, size="128x128", policy=str(pack))
    (held,) = run.failed
    assert held.stage == "review" and "reviewed by a person" in held.error
    assert Path(held.quarantined_path).exists() and not any(out.iterdir())


def copy_model_backend(fn):
    from provkit.generate.backends.callable import CallableBackend

    return CallableBackend(fn, name="copier", version="1")


def test_results_arrive_in_order_whether_sealed_on_the_worker_thread_or_inline(out):
    from provkit.generate.backends.callable import CallableBackend
    from provkit.generate.request import GenerationRequest
    from provkit.generate.seal import SealOptions, seal_all

    backend = CallableBackend(flaky_model, name="flaky", version="1")
    request = GenerationRequest("p", seed=0, count=5, width=128, height=128)
    outcomes = {}
    for overlap in (True, False):
        seen = []
        run = seal_all(
            backend,
            request,
            SealOptions(out_dir=out / str(overlap)),
            on_result=lambda r, seen=seen: seen.append((type(r).__name__, r.seed)),
            overlap=overlap,
        )
        assert seen == sorted(seen, key=lambda x: x[1])
        outcomes[overlap] = seen
        assert all(verify_file(s.path).state == "trusted" for s in run.sealed)
    assert outcomes[True] == outcomes[False]
    assert ("GenerationFailure", 2) in outcomes[True] and len(outcomes[True]) == 5


def test_output_whose_policy_decision_raises_is_quarantined_and_recorded_withheld(out, monkeypatch):
    import sqlite3

    from provkit.generate import checks

    real_decide = checks.decide

    def decide_breaks_on_output(pack, point, context, **kw):
        if point == "generate.output":
            raise sqlite3.OperationalError("database is locked")
        return real_decide(pack, point, context, **kw)

    monkeypatch.setattr(checks, "decide", decide_breaks_on_output)
    run = generate("x", out_dir=out, size="128x128", policy="studio")
    assert run.sealed == ()
    (failure,) = run.failed
    assert failure.stage == "policy" and "database is locked" in failure.error
    assert not any(out.iterdir())
    assert Path(failure.quarantined_path).parent == quarantine_dir()
    assert Path(failure.quarantined_path).exists()
    (row,) = generations(run_id=run.run_id)
    assert row["status"] == "withheld" and row["path"] == failure.quarantined_path
    asset = Ledger().get(failure.asset_id)
    assert asset.status == "withheld" and asset.path == failure.quarantined_path


def test_failed_protected_set_check_holds_the_output_for_review(out, monkeypatch):
    from provkit.generate import checks
    from provkit.provenance.core.errors import BadInput

    def search_fails(self, image):
        raise BadInput("the reference index is unreadable")

    monkeypatch.setattr(checks.ProtectedCheck, "search", search_fails)
    run = generate("x", out_dir=out, size="128x128")
    (held,) = run.failed
    assert held.stage == "review" and "protected-set check failed" in held.error
    assert not any(out.iterdir()) and Path(held.quarantined_path).exists()
    assert Ledger().get(held.asset_id).status == "review"


def test_released_output_is_in_the_output_folder_and_the_ledger_points_there(out):
    from provkit.generate.runlog import staging_dir

    (img,) = generate("x", out_dir=out, size="128x128").sealed
    assert Path(img.path).parent == out and Path(img.path).exists()
    asset = Ledger().get(img.asset_id)
    assert asset.status == "issued" and asset.path == img.path
    assert verify_file(img.path).state == "trusted"
    assert not any(staging_dir().iterdir())


def test_output_is_recorded_staged_in_staging_until_its_checks_release_it(out, monkeypatch):
    from provkit.generate import checks
    from provkit.generate.runlog import staging_dir
    from provkit.provenance.core.workspace import connect

    seen = []
    real_search = checks.ProtectedCheck.search

    def search_and_look(self, image):
        seen.extend(connect().execute("SELECT status, path FROM assets").fetchall())
        return real_search(self, image)

    monkeypatch.setattr(checks.ProtectedCheck, "search", search_and_look)
    (img,) = generate("x", out_dir=out, size="128x128").sealed
    ((status, path),) = seen
    assert status == "staged" and Path(path).parent.parent == staging_dir()
    assert Ledger().get(img.asset_id).status == "issued"


def only_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def sha256_of(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("overlap", [False, True])
def test_interrupt_during_the_checks_quarantines_the_output_and_records_it_withheld(
    out, monkeypatch, overlap
):
    from provkit.generate import checks
    from provkit.generate.backends.builtin import BuiltinBackend
    from provkit.generate.request import GenerationRequest
    from provkit.generate.runlog import staging_dir
    from provkit.generate.seal import SealOptions, seal_all

    def search_interrupted(self, image):
        raise KeyboardInterrupt

    monkeypatch.setattr(checks.ProtectedCheck, "search", search_interrupted)
    request = GenerationRequest("x", seed=0, count=2, width=128, height=128)
    with pytest.raises(KeyboardInterrupt):
        seal_all(BuiltinBackend(), request, SealOptions(out_dir=out), overlap=overlap)
    assert only_files(out) == [] and only_files(staging_dir()) == []
    rows = generations()
    assert rows and {r["status"] for r in rows} == {"withheld"}
    for row in rows:
        asset = Ledger().get(row["asset_id"])
        assert asset.status == "withheld" and "interrupted" in asset.status_reason
        assert Path(asset.path).parent == quarantine_dir() and asset.path == row["path"]
        assert sha256_of(asset.path) == asset.sha256
    assert len(only_files(quarantine_dir())) == len(rows)


@pytest.fixture
def out_on_another_file_system(out, monkeypatch):
    """``out`` behaves as a separate file system: a link or rename between it and
    anywhere else fails with EXDEV, as the kernel does."""
    import errno
    import os

    real_link, real_rename = os.link, os.rename

    def crosses(src, dst) -> bool:
        return (out in Path(src).parents) != (out in Path(dst).parents)

    def link(src, dst, *a, **kw):
        if crosses(src, dst):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_link(src, dst, *a, **kw)

    def rename(src, dst, *a, **kw):
        if crosses(src, dst):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_rename(src, dst, *a, **kw)

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "rename", rename)
    return out


def test_release_to_another_file_system_copies_the_whole_file_and_ends_issued(
    out_on_another_file_system,
):
    from provkit.generate.runlog import staging_dir

    out = out_on_another_file_system
    (img,) = generate("x", out_dir=out, size="128x128").sealed
    assert only_files(out) == [Path(img.path)] and only_files(staging_dir()) == []
    asset = Ledger().get(img.asset_id)
    assert asset.status == "issued" and asset.path == img.path
    assert sha256_of(img.path) == asset.sha256 == img.sha256
    assert verify_file(img.path).state == "trusted"


def test_copy_failing_midway_leaves_no_partial_file_and_withholds_the_output(
    out_on_another_file_system, monkeypatch
):
    import errno
    import shutil

    from provkit.generate.runlog import staging_dir

    out = out_on_another_file_system
    real_copy = shutil.copyfileobj

    def disk_fills_halfway(fsrc, fdst, length=0):
        if staging_dir() not in Path(fsrc.name).parents:
            return real_copy(fsrc, fdst, length)
        data = fsrc.read()
        fdst.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", disk_fills_halfway)
    run = generate("x", out_dir=out, size="128x128")
    assert run.sealed == ()
    (failure,) = run.failed
    assert failure.stage == "policy" and "No space left on device" in failure.error
    assert only_files(out) == [] and only_files(staging_dir()) == []
    assert Path(failure.quarantined_path).parent == quarantine_dir()
    asset = Ledger().get(failure.asset_id)
    assert asset.status == "withheld" and asset.path == failure.quarantined_path
    assert sha256_of(asset.path) == asset.sha256  # the quarantined copy is whole
    (row,) = generations(run_id=run.run_id)
    assert row["status"] == "withheld" and row["path"] == failure.quarantined_path


@pytest.mark.parametrize("cross_device", [False, True])
def test_release_never_replaces_a_file_already_at_the_destination(
    tmp_path, monkeypatch, cross_device
):
    import errno
    import os

    from provkit.provenance.core.files import atomic_move

    src, dest = tmp_path / "staged.png", tmp_path / "out" / "final.png"
    dest.parent.mkdir()
    src.write_bytes(b"sealed output")
    dest.write_bytes(b"someone else's file")
    if cross_device:

        def no_links(*a, **kw):
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(os, "link", no_links)
        monkeypatch.setattr(os, "rename", no_links)
    with pytest.raises(FileExistsError):
        atomic_move(src, dest)
    assert dest.read_bytes() == b"someone else's file"
    assert src.read_bytes() == b"sealed output"
    assert only_files(dest.parent) == [dest]


def test_protected_match_reaches_policy_the_same_way_from_generate_and_detect(
    out, tmp_path, photos
):
    from provkit.detect.index import ReferenceIndex
    from provkit.detect.verdict import detect
    from provkit.generate import checks
    from provkit.provenance.core.workspace import connect

    ref = tmp_path / "stock.png"
    Image.fromarray(photos[2]).save(ref)
    ReferenceIndex().add("licensed-stock", [ref], protected=True, label="stock")
    image = Image.open(ref).convert("RGB")
    (from_generate,) = checks.ProtectedCheck(connect()).search(image)
    (from_detect,) = detect(ref).policy_context()["duplicates"]
    assert isinstance(from_generate["item"], str) and from_generate["item"] == str(ref)
    assert from_generate["age_days"] is not None and 0 <= from_generate["age_days"] < 1
    assert from_detect["item"] == from_generate["item"]
    assert {k: v for k, v in from_detect.items() if k != "age_days"} == {
        k: v for k, v in from_generate.items() if k != "age_days"
    }


def test_negative_prompt_is_recorded_only_as_its_sha256_unless_asked(out):
    from provkit.generate.request import GenerationRequest

    negative = "blurry, watermark of a rival studio"
    (img,) = Generator("builtin", out_dir=out).generate(
        "x", negative_prompt=negative, size="128x128"
    )
    params = only_action(c2pa_of(img.path), "c2pa.created")["parameters"]
    digest = hashlib.sha256(negative.encode()).hexdigest()
    assert params["negative_prompt_sha256"] == digest and "negative_prompt" not in params
    request = GenerationRequest("x", negative_prompt=negative)
    assert request.negative_prompt_sha256 == digest
    assert request.to_json(record_prompt=False)["negative_prompt_sha256"] == digest
    assert GenerationRequest("x").negative_prompt_sha256 is None


def test_error_text_names_the_file_for_provkit_errors_and_the_type_for_others():
    from provkit.provenance.core.errors import BadInput, describe

    assert describe(BadInput("truncated", path="a.png")) == "a.png: truncated"
    assert describe(BadInput("truncated", path="a.png"), with_path=False) == "truncated"
    assert describe(KeyError("x")) == "KeyError: 'x'"
