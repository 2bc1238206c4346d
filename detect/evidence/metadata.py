"""Metadata evidence: the XMP digital source type and generator marks (PNG text chunks,
EXIF Software, XMP CreatorTool), read by detect.metadata without decoding pixels."""

from __future__ import annotations

from provkit.detect.evidence.base import (
    AI_EDITED,
    AI_GENERATED,
    BaseCollector,
    Evidence,
    FileContext,
    Found,
    finding_of,
)
from provkit.detect.metadata import Metadata, read_metadata
from provkit.provenance.core.vocabulary import (
    AI_EDITED_TYPES,
    AI_GENERATED_TYPES,
    ALGORITHMIC_TYPES,
)


class MetadataCollector(BaseCollector):
    """``found["metadata"]``: :class:`detect.metadata.Metadata` as JSON."""

    name = "metadata"
    columns = (("xmp", finding_of("xmp")), ("generator_metadata", finding_of("generator-metadata")))

    def collect(self, ctx: FileContext) -> Found:
        items, meta = metadata_evidence(ctx.path)
        return Found(items, meta.to_json())

    def context(self, data) -> dict:
        data = data or {}
        return {
            "metadata": {
                "digital_source_type": data.get("digital_source_type"),
                "generator": data.get("generator"),
            }
        }


def metadata_evidence(path) -> tuple[list[Evidence], Metadata | None]:
    """XMP source type and generator marks. BadInput propagates (unreadable file)."""
    meta = read_metadata(path)
    items = []
    dst = meta.digital_source_type
    if dst in AI_GENERATED_TYPES or dst in ALGORITHMIC_TYPES:
        items.append(
            Evidence(
                "xmp",
                AI_GENERATED,
                "strong",
                f"XMP metadata declares the digital source type {dst} "
                "(unsigned metadata, but written by generators, rarely forged).",
                {"digital_source_type": dst},
            )
        )
    elif dst in AI_EDITED_TYPES:
        items.append(
            Evidence(
                "xmp",
                AI_EDITED,
                "strong",
                f"XMP metadata declares the digital source type {dst}.",
                {"digital_source_type": dst},
            )
        )
    elif dst:
        items.append(
            Evidence(
                "xmp",
                "source-type",
                "none",
                f"XMP metadata declares the digital source type {dst}; "
                "unsigned, so it is no proof of how the image was made.",
                {"digital_source_type": dst},
            )
        )
    else:
        items.append(
            Evidence(
                "xmp",
                "absent",
                "none",
                "No IPTC digital source type in XMP metadata." if meta.xmp else "No XMP metadata.",
                {},
            )
        )
    if meta.generator:
        detail = f"{meta.generator} generator metadata found in {meta.generator_source}"
        if meta.generator_detail and meta.generator_detail != meta.generator:
            detail += f": {meta.generator_detail!r}"
        items.append(
            Evidence(
                "generator-metadata",
                AI_GENERATED,
                "strong",
                detail + ".",
                {"generator": meta.generator, "source": meta.generator_source},
            )
        )
    else:
        note = "No generator metadata (PNG text chunks, EXIF Software, XMP CreatorTool)."
        if meta.camera:
            note += f" EXIF names a camera ({meta.camera}); that is unsigned and proves nothing."
        items.append(
            Evidence(
                "generator-metadata",
                "absent",
                "none",
                note,
                {"software": meta.software, "camera": meta.camera},
            )
        )
    return items, meta
