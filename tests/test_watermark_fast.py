"""The fast mark readers read what the reference readers read, and the order rule skips a
reader only where it cannot change the answer (and says so).

Oracles: the SDXL reader as first written (one reading at a time through PyWavelets) and
the provkit decoder as first written (row-by-row elimination, no pruning), on photographs,
marked copies and random noise of random shapes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from provkit.detect.evidence import Evidence
from provkit.detect.evidence.watermark import skip_reasons, watermark_evidence
from provkit.provenance import watermark
from provkit.provenance.watermark import provkit_scheme as pk
from provkit.provenance.watermark import thirdparty as tp

try:
    import numba  # noqa: F401

    ENGINES = [False, True]
except ImportError:  # numba is optional: the numpy path alone
    ENGINES = [False]


@pytest.fixture
def reference_decoder():
    pk.use_reference(True)
    yield
    pk.use_reference(False)


@settings(max_examples=25, deadline=None)
@given(st.integers(8, 300), st.integers(8, 300), st.integers(0, 2**32 - 1))
def test_fast_sdxl_readers_read_the_reference_bits_on_noise_of_any_shape(h, w, seed):
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    ref = tp._strip_bits(image, 48)
    for compiled in ENGINES:
        got = tp._fast_bits(image, 48, compiled)
        assert list(got) == list(ref)
        for key in ref:
            assert np.array_equal(got[key], ref[key]), (key, compiled)


def test_fast_sdxl_readers_read_the_reference_bits_on_photographs_and_marked_ones(photos):
    from tests.fixtures_realistic import _sdxl

    images = [Image.fromarray(p) for p in photos[:4]]
    marked = _sdxl(photos[5])
    if marked is not None:
        images.append(marked)
    for image in images:
        ref = tp._strip_bits(image, 48)
        for compiled in ENGINES:
            got = tp._fast_bits(image, 48, compiled)
            assert all(np.array_equal(got[k], ref[k]) for k in ref)
    if marked is not None:
        for engine in ["numpy", "reference"] + (["compiled"] if True in ENGINES else []):
            tp.use_engine(engine)
            (found,) = tp.third_party_marks(marked)
            assert found.third_party == tp.SDXL_NAME
        tp.use_engine(None)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_fast_elimination_gives_the_reference_matrix_and_pivots(seed):
    codec = pk.Codec()
    soft = np.random.default_rng(seed).normal(size=codec.generator.shape[1])
    g = codec.generator[:, np.argsort(-np.abs(soft), kind="stable")]
    m, pivots = pk._systematic(g)
    m_ref, pivots_ref = pk._systematic_reference(g)
    assert pivots == pivots_ref and m.dtype == m_ref.dtype and np.array_equal(m, m_ref)


def _decoded(images):
    out = []
    for im in images:
        d = watermark.decode(im)
        out.append(None if d is None else (d.payload, d.confidence))
    return out


def test_fast_decoder_reads_what_the_reference_decoder_reads(photos, reference_decoder):
    """Marked photographs (as they are, as JPEG, halved) and unmarked ones: the same
    payload and confidence, or nothing for both."""
    from tests.fixtures_watermark import jpeg

    rng = np.random.default_rng(3)
    images = []
    for p in photos[:4]:
        im = Image.fromarray(p)
        marked = watermark.embed(im, rng.bytes(8))
        half = marked.resize((marked.width // 2, marked.height // 2), Image.BICUBIC)
        images += [im, jpeg(im, 80), marked, jpeg(marked, 60), half]
    reference = _decoded(images)
    pk.use_reference(False)
    fast = _decoded(images)
    assert fast == reference
    assert sum(r is not None for r in reference) >= 8  # the marked copies were read


def _e(kind, finding, strength):
    return Evidence(kind, finding, strength, "")


def test_order_rule_skips_a_reader_only_where_it_cannot_change_the_answer():
    decisive_ai = [_e("c2pa", "ai-generated", "decisive")]
    decisive_capture = [_e("c2pa", "capture-claimed", "decisive")]
    # a decisive AI item decides: a strong generator mark cannot change it
    assert skip_reasons({"state": "trusted"}, decisive_ai)[1]
    # a trusted capture claim could be overturned by a generator's mark: read it
    assert skip_reasons({"state": "trusted"}, decisive_capture)[1] is None
    # provkit's mark is context; a manifest whose hard binding holds needs no reading
    assert skip_reasons({"state": "valid"}, [])[0]
    # no manifest, or a broken one: the mark may recover or contradict: read it
    for state in ("absent", "invalid", "recovered", "mismatch"):
        assert skip_reasons({"state": state}, [])[0] is None


def test_a_skipped_reader_says_not_checked_and_why(photos):
    image = Image.fromarray(photos[0])
    items, summary = watermark_evidence(
        image,
        {"state": "trusted", "asset_id": "00" * 8},
        skip_mark="skipped: test",
        skip_third_party="skipped: test",
    )
    assert [(e.kind, e.finding) for e in items] == [
        ("watermark", "not checked"),
        ("third-party-watermark", "not checked"),
    ]
    assert all(e.data.get("skipped") and "skipped" in e.detail for e in items)
    assert summary["found"] is False


def test_detect_skips_by_the_order_rule_and_all_evidence_reads_everything(tmp_path, photo_path):
    from click.testing import CliRunner
    from provkit.detect.verdict import detect
    from provkit.provenance.issue import issue
    from provkit.provenance.manifest import ManifestSpec

    from provkit.cli import root

    made = tmp_path / "made.jpg"
    issue(photo_path, made, spec=ManifestSpec(source_type="trainedAlgorithmicMedia"))
    quick, full = detect(made), detect(made, all_evidence=True)
    assert (
        (quick.verdict, [e.kind for e in quick.decided_by])
        == (full.verdict, [e.kind for e in full.decided_by])
        == ("ai-generated", ["c2pa"])
    )
    skipped = {e.kind for e in quick.evidence if e.data.get("skipped")}
    assert skipped == {"watermark", "third-party-watermark"}
    assert {e.kind: e.finding for e in full.evidence}["watermark"] == "provkit-mark"
    assert not any(e.data.get("skipped") for e in full.evidence)
    out = CliRunner().invoke(root, ["detect", str(made), "--all-evidence", "--json"])
    assert out.exit_code == 0, out.output
    assert '"provkit-mark"' in out.stdout
