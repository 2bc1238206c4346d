"""The evidence registry: collectors in order, and everything derived from the list."""

from __future__ import annotations

from PIL import Image
from provkit.detect.evidence import (
    COLLECTORS,
    BaseCollector,
    Evidence,
    Found,
    csv_columns,
    finding_of,
)
from provkit.detect.scan import CSV_COLUMNS
from provkit.detect.verdict import Detector, detect


class Dimensions(BaseCollector):
    """The docs/detect.md example collector."""

    name = "dimensions"
    columns = (("dimensions", finding_of("dimensions")),)

    def collect(self, ctx):
        w, h = ctx.image.size
        item = Evidence(
            "dimensions",
            "small" if w * h < 256 * 256 else "large",
            "none",
            f"The image is {w}x{h} pixels.",
            {"width": w, "height": h},
        )
        return Found([item], {"width": w, "height": h})

    def report_json(self, data):
        return {"dimensions": data}

    def context(self, data):
        return {"score": None}


def test_scan_columns_are_the_registry_columns_in_order():
    names = [c for c, _ in csv_columns()]
    assert names == [
        "c2pa",
        "xmp",
        "generator_metadata",
        "watermark",
        "third_party_watermark",
        "classifier",
        "duplicates",
    ]
    assert CSV_COLUMNS == (
        "path",
        "verdict",
        "score",
        "decided_by",
        *names,
        "error",
        "outcome",
        "labels",
    )
    assert [c.name for c in COLLECTORS] == [
        "c2pa",
        "metadata",
        "disclosure",
        "watermark",
        "classifier",
        "duplicates",
    ]


def test_a_new_collector_adds_its_evidence_json_and_column(tmp_path, photos):
    path = tmp_path / "p.png"
    Image.fromarray(photos[0][:64, :80]).save(path)
    detector = Detector(db=tmp_path / "w.db", collectors=[*COLLECTORS, Dimensions])
    report = detect(path, detector=detector)
    (item,) = [e for e in report.evidence if e.kind == "dimensions"]
    assert item.finding == "small" and item.data == {"width": 80, "height": 64}
    assert report.to_json()["dimensions"] == {"width": 80, "height": 64}
    assert report.found["dimensions"] == {"width": 80, "height": 64}
    row = report.to_json()
    assert {c: cell(row) for c, cell in csv_columns([Dimensions])} == {"dimensions": "small"}
    assert report.policy_context()["c2pa"]["state"] == "absent"  # the others still ran


def test_a_collector_that_raises_badinput_stops_only_that_file(tmp_path, photos):
    from provkit.provenance.core.errors import BadInput

    class Picky(BaseCollector):
        name = "picky"

        def collect(self, ctx):
            if ctx.path.endswith("b.png"):
                raise BadInput("refused", path=ctx.path)
            return Found([], None)

    paths = []
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(photos[0][:64, :64]).save(tmp_path / name)
        paths.append(tmp_path / name)
    out = detect(paths, collectors=[Picky, *COLLECTORS], search_index=False)
    assert [type(r).__name__ for r in out] == ["DetectReport", "BadInput", "DetectReport"]
    assert "refused" in str(out[1])
