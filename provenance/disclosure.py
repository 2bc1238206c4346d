"""Disclosure profiles: what each law asks a generated image to carry, written at sealing.

A :class:`Profile` names the regimes (``eu``, ``us-ca``, ``cn``) and who provides the
system. :func:`issue` (provenance/issue.py) applies it in the one sealing pass:

- every regime: the C2PA ``digitalSourceType`` and AI actions, the watermark and soft
  binding (as for every asset);
- ``us-ca`` (California SB 942 as amended by AB 853): the latent disclosure as the C2PA
  assertion :data:`SB942_ASSERTION`, schema::

      {"provider": str, "system": str, "system_version": str,
       "time": ISO 8601 UTC, "id": the asset id (16 hex), "law": str}

  The ledger keeps the manifest, and the watermark carries the asset id, so a stripped
  copy still yields these fields (``provenance.verify`` recovery);
- ``cn`` (GB 45438-2025): the ``TC260:AIGC`` XMP block (:mod:`provenance.tc260`) with
  ``ProduceID`` the asset id and ``ReservedCode1`` the pixel binding, written into the
  file before the C2PA signature, so the hard binding covers it;
- ``visible``: explicit labels drawn into the pixels before the watermark and the
  signature, recorded in the C2PA assertion :data:`VISIBLE_ASSERTION`::

      {"labels": [{"regime": "cn"|"eu", "text": str, "box": [x, y, w, h],
                   "text_height_px": int, "min_text_height_px": int,
                   "rendering": str}]}

The Chinese label "AI生成" is drawn with provkit's own stroke glyphs (straight strokes
on a grid, no font file: this system has no CJK font whose licence lets it ship). The
EU label is the text "AI-generated" in Pillow's bundled font; the EU's common icon is
not drawn (its final design is the Commission's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image
from provkit.provenance.core import config as config_lib
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.vocabulary import (
    AI_EDITED_TYPES,
    AI_GENERATED_TYPES,
    ALGORITHMIC_TYPES,
    source_type_name,
)

REGIMES = config_lib.DISCLOSURE_REGIMES
SB942_ASSERTION = "io.provkit.sb942"
VISIBLE_ASSERTION = "io.provkit.visible-label"
SB942_LAW = "California SB 942 (Bus. & Prof. Code 22757-22757.6) as amended by AB 853"
SB942_FIELDS = ("provider", "system", "system_version", "time", "id")
#: GB 45438: explicit text at least 5% of the image's shorter side; provkit draws 6%.
GB_MIN_RATIO = 0.05
DRAW_RATIO = 0.06
CN_TEXT = "AI生成"
EU_TEXT = "AI-generated"


@dataclass(frozen=True)
class Profile:
    """Which regimes to meet, and the names the disclosures carry."""

    regimes: tuple[str, ...] = ()
    provider: str | None = None
    system: str | None = None
    system_version: str | None = None
    cn_producer: str | None = None
    visible_label: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        bad = [r for r in self.regimes if r not in REGIMES]
        if bad:
            raise BadInput(f"unknown disclosure regime {bad[0]!r} (known: {', '.join(REGIMES)})")

    def wants(self, regime: str) -> bool:
        return regime in self.regimes

    def to_json(self) -> dict:
        return {
            "regimes": list(self.regimes),
            "provider": self.provider,
            "system": self.system,
            "system_version": self.system_version,
            "cn_producer": self.cn_producer,
            "visible_label": self.visible_label,
        }


def parse_regimes(text) -> tuple[str, ...]:
    """``"eu,us-ca"`` or a list -> ``("eu", "us-ca")``; BadInput for an unknown one."""
    if text is None:
        return ()
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in (str(i).strip().lower() for i in items):
        if not item:
            continue
        if item not in REGIMES:
            raise BadInput(f"unknown disclosure regime {item!r} (known: {', '.join(REGIMES)})")
        if item not in out:
            out.append(item)
    return tuple(out)


#: the source types whose content the disclosures describe (made or edited by AI)
DISCLOSED_TYPES = AI_GENERATED_TYPES | ALGORITHMIC_TYPES | AI_EDITED_TYPES


def is_ai(source_type: str | None) -> bool:
    """Whether a digital source type (short name or IRI) declares AI-made content."""
    return source_type_name(source_type) in DISCLOSED_TYPES


def profile(
    *,
    disclose=None,
    provider=None,
    system=None,
    system_version=None,
    cn_producer=None,
    visible_label: bool = False,
    config=None,
    default_system: str | None = None,
    default_version: str | None = None,
    source_type: str | None = "trainedAlgorithmicMedia",
) -> Profile | None:
    """The profile for one command: command-line values over ``[disclosure]`` in
    provkit.toml; None when no regime is asked for and no visible label either.

    ``source_type``: what the content declares. The workspace's regimes apply only to AI
    content (a camera photo signed in the same workspace gets no AI label); regimes asked
    for by name on content that is not AI are refused by :func:`provenance.issue.issue`."""
    if disclose is None and not visible_label and not is_ai(source_type):
        return None
    if config is None:
        config = config_lib.load()
    regimes = (
        parse_regimes(disclose)
        if disclose is not None
        else parse_regimes(config.get("disclosure.regimes"))
    )
    if not regimes and not visible_label:
        return None
    got = Profile(
        regimes=regimes,
        provider=config.get("disclosure.provider", provider),
        system=config.get("disclosure.system", system) or default_system,
        system_version=config.get("disclosure.system_version", system_version) or default_version,
        cn_producer=config.get("disclosure.cn_producer", cn_producer),
        visible_label=bool(visible_label),
    )
    if got.wants("us-ca") and not got.provider:
        raise BadInput(
            "the us-ca disclosure names the provider: give --provider or set "
            "[disclosure] provider in provkit.toml"
        )
    if got.wants("us-ca") and not got.system:
        raise BadInput(
            "the us-ca disclosure names the system: give --system or set "
            "[disclosure] system in provkit.toml"
        )
    if got.wants("us-ca") and not got.system_version:
        raise BadInput(
            "the us-ca disclosure names the system's version: give --system-version or set "
            "[disclosure] system_version in provkit.toml"
        )
    if got.wants("cn") and not (got.cn_producer or got.provider):
        raise BadInput(
            "the cn label names the producer: give --cn-producer or set "
            "[disclosure] cn_producer in provkit.toml"
        )
    return got


def sb942_assertion(p: Profile, *, asset_id: str, when: str) -> dict:
    return {
        "label": SB942_ASSERTION,
        "data": {
            "provider": p.provider,
            "system": p.system,
            "system_version": p.system_version or "",
            "time": when,
            "id": asset_id,
            "law": SB942_LAW,
        },
    }


def sb942_problems(data) -> list[str]:
    """What an SB 942 assertion lacks (empty: all five fields are there)."""
    if not isinstance(data, dict):
        return ["the assertion is not an object"]
    return [f"{k} is missing" for k in SB942_FIELDS if not str(data.get(k) or "").strip()]


# --------------------------------------------------------------------------- visible labels

#: Stroke glyphs on a 10 x 10 grid (x right, y down): each a list of polylines.
_GLYPHS: dict[str, list[list[tuple[float, float]]]] = {
    "A": [[(0.8, 10), (5, 0), (9.2, 10)], [(2.6, 6.4), (7.4, 6.4)]],
    "I": [[(5, 0), (5, 10)], [(3, 0), (7, 0)], [(3, 10), (7, 10)]],
    # 生: left-falling stroke, upper bar, middle bar, the vertical, the long bottom bar
    "生": [
        [(3.2, 0.3), (1.2, 4.0)],
        [(2.4, 2.6), (8.8, 2.6)],
        [(1.8, 5.8), (8.4, 5.8)],
        [(5.2, 0.3), (5.2, 9.2)],
        [(0.4, 9.4), (9.6, 9.4)],
    ],
    # 成: top bar, left falling stroke, inner bend with hook, slanted hook, cross stroke, dot
    "成": [
        [(1.6, 2.8), (9.6, 2.8)],
        [(2.2, 2.8), (2.2, 7.0), (0.6, 9.8)],
        [(2.2, 5.4), (4.8, 5.4), (4.8, 8.6), (3.9, 8.0)],
        [(5.2, 0.2), (6.0, 5.2), (9.6, 9.8), (9.8, 7.8)],
        [(8.9, 4.6), (5.4, 9.0)],
        [(7.2, 0.4), (8.4, 1.5)],
    ],
}


def _stroke_text(draw, text: str, x: int, y: int, height: int, fill) -> int:
    """Draw ``text`` with the stroke glyphs, cap height ``height`` px; the width used."""
    width = max(2, round(height * 0.13))
    cell = height
    gap = max(1, round(height * 0.25))
    cx = x
    for ch in text:
        if ch == " ":
            cx += cell // 2
            continue
        glyph = _GLYPHS[ch]
        w = cell if ord(ch) > 0x2E80 else round(cell * 0.75)
        sx = w / 10
        for line in glyph:
            pts = [(cx + px * sx, y + py * height / 10) for px, py in line]
            draw.line(pts, fill=fill, width=width, joint="curve")
            r = width / 2
            for px_, py_ in (pts[0], pts[-1]):
                draw.ellipse((px_ - r, py_ - r, px_ + r, py_ + r), fill=fill)
        cx += w + gap
    return cx - gap - x


def _stroke_width(text: str, height: int) -> int:
    gap = max(1, round(height * 0.25))
    total = sum(height if ord(ch) > 0x2E80 else round(height * 0.75) for ch in text)
    return total + gap * (len(text) - 1)


def render_labels(image: Image.Image, regimes) -> tuple[Image.Image, list[dict]]:
    """``image`` with the explicit labels drawn in, and their records.

    ``cn``: "AI生成" at the bottom left, text height 6% of the shorter side (GB 45438 asks
    at least 5%); ``eu`` or ``us-ca`` (SB 942's optional manifest disclosure), or no regime:
    "AI-generated" in the top right corner at the same height, recorded as the EU-style
    label (``regime: eu``). Each on a dark plate for contrast."""
    out = image.convert("RGB").copy()
    from PIL import ImageDraw  # only when a label is drawn: off verify's path

    draw = ImageDraw.Draw(out, "RGBA")
    short = min(out.size)
    height = max(12, round(short * DRAW_RATIO))
    minimum = int(-(-short * GB_MIN_RATIO // 1))
    pad = max(3, height // 3)
    margin = max(2, short // 50)
    records = []
    latin = "eu" in regimes or "us-ca" in regimes or not regimes
    if "cn" in regimes:
        w = _stroke_width(CN_TEXT, height)
        x, y = margin, out.height - margin - height - 2 * pad
        box = [x, y, w + 2 * pad, height + 2 * pad]
        draw.rectangle((x, y, x + box[2], y + box[3]), fill=(0, 0, 0, 170))
        _stroke_text(draw, CN_TEXT, x + pad, y + pad, height, (255, 255, 255, 255))
        records.append(
            {
                "regime": "cn",
                "text": CN_TEXT,
                "box": box,
                "text_height_px": height,
                "min_text_height_px": minimum,
                "position": "bottom-left",
                "rendering": "provkit stroke glyphs (no CJK font file)",
            }
        )
    if latin:
        from PIL import ImageFont

        font = ImageFont.load_default(size=height)
        left, top, right, bottom = draw.textbbox((0, 0), EU_TEXT, font=font)
        tw, th = right - left, bottom - top
        x, y = out.width - margin - tw - 2 * pad, margin
        box = [x, y, tw + 2 * pad, th + 2 * pad]
        draw.rectangle((x, y, x + box[2], y + box[3]), fill=(0, 0, 0, 170))
        draw.text((x + pad - left, y + pad - top), EU_TEXT, font=font, fill=(255, 255, 255, 255))
        records.append(
            {
                "regime": "eu",
                "text": EU_TEXT,
                "box": box,
                "text_height_px": th,
                "min_text_height_px": minimum,
                "position": "top-right",
                "rendering": "Pillow's bundled font; the EU common icon is not drawn",
            }
        )
    return out, records


def visible_assertion(records: list[dict], size: tuple[int, int]) -> dict:
    return {"label": VISIBLE_ASSERTION, "data": {"labels": records, "image_size": list(size)}}


def gb_size_ok(record: dict, size: tuple[int, int] | None = None) -> bool:
    """Whether a recorded label's text is at least 5% of the shorter side (of ``size``,
    the image as recorded, by default)."""
    short = min(size) if size else None
    need = record.get("min_text_height_px") if short is None else short * GB_MIN_RATIO
    try:
        return float(record.get("text_height_px") or 0) >= float(need or 0) > 0
    except (TypeError, ValueError):
        return False
