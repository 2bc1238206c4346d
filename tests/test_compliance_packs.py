"""The compliance packs (cn-platform, eu-deployer, us-ca-provider) judged on real files.

Every file is made here through provkit's own verbs from real photographs (scikit-image,
scikit-learn) and the built-in generator, never written as a hand-made context; each
context comes from ``detect`` exactly as ``provkit policy check FILE`` builds it. The
photoreal "generator output" is a real photograph signed with the source type
trainedAlgorithmicMedia, as a photoreal generator signs its output (the built-in
generator draws abstract patterns and declares algorithmicMedia).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from provkit.detect.verdict import policy_context_for_file
from provkit.generate import Generator
from provkit.policies import evaluate, lint_pack, load_pack, test_pack
from provkit.provenance import tc260
from provkit.provenance.disclosure import Profile
from provkit.provenance.issue import issue
from provkit.provenance.manifest import ManifestSpec

from tests.fixtures_provenance import strip_and_degrade

PACKS = ["cn-platform", "eu-deployer", "us-ca-provider"]
PRODUCER = "001913100000000000XKEXAMPLE"


def third_party_tc260_png(
    rgb, path: Path, *, producer: str, produce_id: str, label: str = "1"
) -> Path:
    """A PNG carrying another producer's GB 45438 implicit label, written with Pillow's
    own iTXt writer (not provkit's), ReservedCode1 in that producer's own form."""
    value = {
        "Label": label,
        "ContentProducer": producer,
        "ProduceID": produce_id,
        "ReservedCode1": "c2lnbmF0dXJlLW9mLWFub3RoZXItcHJvZHVjZXI=",
        "ContentPropagator": "",
        "PropagateID": "",
        "ReservedCode2": "",
    }
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        'rdf:about="" xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/"><TC260:AIGC>'
        + json.dumps(value).replace("&", "&amp;").replace("<", "&lt;")
        + "</TC260:AIGC></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    Image.fromarray(rgb).save(path, pnginfo=info)
    return path


def _generated(folder: Path, seed: int, **disclosure) -> Path:
    gen = Generator("builtin", out_dir=folder, **disclosure)
    (sealed,) = gen.generate("a harbour at dawn", n=1, seed=seed, size=(384, 320))
    return Path(sealed.path)


def _signed(photo, folder: Path, name: str, source_type: str, disclosure=None) -> Path:
    raw = folder / f"raw-{name}.jpg"
    Image.fromarray(photo).save(raw, quality=92)
    out = folder / f"{name}.jpg"
    issue(raw, out, spec=ManifestSpec(source_type=source_type), disclosure=disclosure)
    raw.unlink()
    return out


def build_compliance_set(folder: Path, photos) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["camera"] = _signed(photos[0], folder, "camera", "digitalCapture")
    files["photoreal_ai"] = _signed(photos[1], folder, "photoreal-ai", "trainedAlgorithmicMedia")
    files["photoreal_ai_eu_label"] = _signed(
        photos[2],
        folder,
        "photoreal-ai-labelled",
        "trainedAlgorithmicMedia",
        Profile(regimes=("eu",), visible_label=True),
    )
    files["ai_edited"] = _signed(
        photos[3], folder, "ai-edited", "compositeWithTrainedAlgorithmicMedia"
    )
    files["cn_labelled"] = _generated(
        folder / "cn-labelled", 11, disclose="cn", cn_producer=PRODUCER, visible_label=True
    )
    files["cn_implicit_only"] = _generated(
        folder / "cn-implicit", 12, disclose="cn", cn_producer=PRODUCER
    )
    files["cn_stripped"] = strip_and_degrade(
        files["cn_labelled"], folder / "cn-stripped.jpg", quality=82, scale=0.75
    )
    files["plain_generated"] = _generated(folder / "plain", 13)
    files["usca"] = _generated(folder / "usca", 14, disclose="us-ca", provider="Example Studio")
    files["usca_stripped"] = strip_and_degrade(
        files["usca"], folder / "usca-stripped.jpg", quality=80, scale=0.6
    )
    files["third_party_tc260"] = third_party_tc260_png(
        photos[5],
        folder / "other-producer.png",
        producer="002ANOTHERPRODUCER",
        produce_id="xyz-2026-0001",
    )
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a lighthouse at dusk\nNegative prompt: blurry\n"
        "Steps: 30, Sampler: DPM++ 2M, CFG scale: 7, Seed: 42",
    )
    files["a1111"] = folder / "a1111.png"
    Image.fromarray(photos[6]).save(files["a1111"], pnginfo=info)
    return files


@pytest.fixture(scope="module")
def compliance(tmp_path_factory, photos):
    home = tmp_path_factory.mktemp("compliance-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROVKIT_HOME", str(home))
        for var in ("PROVKIT_DB", "PROVKIT_PROBE", "PROVKIT_CLIP"):
            mp.delenv(var, raising=False)
        files = build_compliance_set(tmp_path_factory.mktemp("compliance"), photos)
        contexts = {n: {"asset": policy_context_for_file(p)} for n, p in files.items()}
    return files, contexts


AIGC = "AI生成 (AI-generated)"
#: name -> {(pack, point): (outcome, rules, labels)}
EXPECTED = {
    "camera": {
        ("cn-platform", "ingest"): ("allow", [], []),
        ("cn-platform", "publish"): ("allow", [], []),
        ("eu-deployer", "publish"): ("allow", [], []),
        ("us-ca-provider", "verify"): ("allow", [], []),
    },
    "photoreal_ai": {
        ("cn-platform", "ingest"): ("label", ["ai-without-implicit-label"], [AIGC]),
        ("cn-platform", "publish"): ("deny", ["publish-needs-explicit-label"], []),
        ("eu-deployer", "publish"): ("label", ["deepfake-like-ai"], ["AI-generated"]),
        ("us-ca-provider", "verify"): (
            "review",
            ["ai-output-without-latent-disclosure"],
            ["no SB 942 latent disclosure"],
        ),
    },
    "photoreal_ai_eu_label": {
        ("eu-deployer", "publish"): ("allow", [], []),
        ("cn-platform", "publish"): ("deny", ["publish-needs-explicit-label"], []),
    },
    "ai_edited": {
        ("eu-deployer", "publish"): ("label", ["ai-manipulated-photo"], ["AI-manipulated"]),
        ("cn-platform", "ingest"): ("label", ["ai-without-implicit-label"], [AIGC]),
    },
    "cn_labelled": {
        ("cn-platform", "ingest"): ("label", ["implicit-label-declares-ai"], [AIGC]),
        ("cn-platform", "publish"): ("label", ["publish-labelled"], [AIGC]),
        ("eu-deployer", "publish"): ("allow", [], []),
    },
    "cn_implicit_only": {
        ("cn-platform", "ingest"): ("label", ["implicit-label-declares-ai"], [AIGC]),
        ("cn-platform", "publish"): ("deny", ["publish-needs-explicit-label"], []),
    },
    # stripped: the TC260 block is gone with the metadata; the watermark still says AI
    "cn_stripped": {("cn-platform", "ingest"): ("label", ["ai-without-implicit-label"], [AIGC])},
    "plain_generated": {
        ("cn-platform", "ingest"): ("label", ["ai-without-implicit-label"], [AIGC]),
        ("eu-deployer", "publish"): ("allow", [], []),
        ("us-ca-provider", "verify"): (
            "review",
            ["ai-output-without-latent-disclosure"],
            ["no SB 942 latent disclosure"],
        ),
    },
    "usca": {("us-ca-provider", "verify"): ("allow", [], [])},
    "usca_stripped": {("us-ca-provider", "verify"): ("allow", [], [])},
    "third_party_tc260": {
        ("cn-platform", "ingest"): ("label", ["implicit-label-declares-ai"], [AIGC]),
        ("cn-platform", "publish"): ("deny", ["publish-needs-explicit-label"], []),
        ("eu-deployer", "publish"): ("label", ["deepfake-like-ai"], ["AI-generated"]),
        ("us-ca-provider", "verify"): ("allow", [], []),
    },
    "a1111": {
        ("cn-platform", "ingest"): ("label", ["ai-without-implicit-label"], [AIGC]),
        ("eu-deployer", "publish"): ("label", ["deepfake-like-ai"], ["AI-generated"]),
    },
}
CASES = [(name, pack, point) for name, table in EXPECTED.items() for pack, point in table]


@pytest.mark.parametrize(
    ("name", "pack", "point"), CASES, ids=[f"{n}-{p}-{pt}" for n, p, pt in CASES]
)
def test_compliance_packs_decide_right_on_real_files(compliance, name, pack, point):
    _, contexts = compliance
    outcome, rules, labels = EXPECTED[name][(pack, point)]
    decision = evaluate(load_pack(pack), point, contexts[name])
    assert (decision.outcome, sorted(decision.matched_rules), list(decision.labels)) == (
        outcome,
        sorted(rules),
        labels,
    ), (name, decision.reasons)
    assert not decision.failed_rules


@pytest.mark.parametrize("name", PACKS)
def test_compliance_pack_lints_clean_and_passes_its_own_cases(name):
    assert lint_pack(name) == []
    results = test_pack(name)
    assert len(results) >= 10
    assert [(r.name, r.problems) for r in results if not r.passed] == []


def test_another_producers_implicit_label_is_read_with_its_producer_and_id(compliance):
    _, contexts = compliance
    asset = contexts["third_party_tc260"]["asset"]
    assert asset["disclosure"]["tc260"]["producer"] == "002ANOTHERPRODUCER"
    assert asset["disclosure"]["tc260"]["produce_id"] == "xyz-2026-0001"
    assert asset["verdict"] == "ai-generated" and asset["decided_by"] == ["tc260"]
    decision = evaluate(load_pack("cn-platform"), "ingest", contexts["third_party_tc260"])
    assert any("producer 002ANOTHERPRODUCER, id xyz-2026-0001" in r for r in decision.reasons)


def test_a_stripped_copy_keeps_its_sb942_fields_through_the_watermark(compliance):
    _, contexts = compliance
    original = contexts["usca"]["asset"]["disclosure"]["sb942"]
    stripped = contexts["usca_stripped"]["asset"]
    assert stripped["c2pa"]["state"] == "recovered"
    assert stripped["disclosure"]["sb942"] == original
    assert original["complete"] and original["provider"] == "Example Studio"


def test_us_ca_provider_pack_withholds_an_output_without_the_latent_disclosure(tmp_path):
    bare = Generator("builtin", out_dir=tmp_path / "bare", policy="us-ca-provider").run(
        "a harbour", 1, seed=3, size=(256, 256)
    )
    assert not bare.sealed and bare.failed[0].stage == "policy"
    assert "SB 942" in bare.failed[0].error
    assert not list((tmp_path / "bare").glob("*.png"))
    disclosed = Generator(
        "builtin",
        out_dir=tmp_path / "ok",
        policy="us-ca-provider",
        disclose="us-ca",
        provider="Example Studio",
    ).run("a harbour", 1, seed=3, size=(256, 256))
    assert not disclosed.failed and len(disclosed.sealed) == 1
    assert disclosed.sealed[0].disclosures["sb942"]["provider"] == "Example Studio"


def test_the_tc260_block_of_a_generated_file_is_bound_to_its_pixels(compliance):
    files, _ = compliance
    data = files["cn_labelled"].read_bytes()
    block = tc260.read_bytes(data, "image/png")
    assert block.well_formed and tc260.check_binding(block.fields["ReservedCode1"], data) == "valid"
