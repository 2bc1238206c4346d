"""Copies of issued pictures for the recovery tests and bench/recovery.py: honest copies
(re-encoded, resized, cropped, framed) and locally edited ones (captions, clones, painted
blocks, objects pasted from another photograph), each with its metadata stripped (they
are decoded pixels, saved again by whoever uses them)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def encode(img: Image.Image, fmt: str, **kw) -> Image.Image:
    """``img`` saved as ``fmt`` in memory and decoded again (no metadata survives)."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, fmt, **kw)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out.convert("RGB")


def _resize(img, f, method=Image.Resampling.LANCZOS):
    return img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))), method)


def _crop(img, left, top, right, bottom):
    w, h = img.size
    return img.crop((round(w * left), round(h * top), w - round(w * right), h - round(h * bottom)))


def _screenshot(img, f=0.6, border=(236, 236, 236), pad=(40, 28, 40, 52)):
    small = _resize(img, f, Image.Resampling.BILINEAR)
    canvas = Image.new(
        "RGB", (small.width + pad[0] + pad[2], small.height + pad[1] + pad[3]), border
    )
    canvas.paste(small, (pad[0], pad[1]))
    return canvas


#: name -> honest transformation (each ends in an encode: no metadata).
HONEST = {
    "jpeg-q60": lambda im: encode(im, "JPEG", quality=60),
    "jpeg-q85": lambda im: encode(im, "JPEG", quality=85),
    "webp-q75": lambda im: encode(im, "WEBP", quality=75),
    "png": lambda im: encode(encode(im, "JPEG", quality=90), "PNG"),
    "resize-0.4-jpeg": lambda im: encode(_resize(im, 0.4), "JPEG", quality=85),
    "resize-0.5-webp": lambda im: encode(_resize(im, 0.5), "WEBP", quality=80),
    "resize-2.0-png": lambda im: encode(_resize(im, 2.0, Image.Resampling.BICUBIC), "PNG"),
    "crop-10-jpeg": lambda im: encode(_crop(im, 0.1, 0.1, 0.1, 0.1), "JPEG", quality=85),
    "crop-mixed-png": lambda im: encode(_crop(im, 0.06, 0.0, 0.02, 0.09), "PNG"),
    "screenshot-border": lambda im: encode(_screenshot(im), "PNG"),
    "screenshot-jpeg": lambda im: encode(
        _screenshot(im, 0.8, (20, 20, 20), (12, 60, 12, 12)), "JPEG", quality=80
    ),
}


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def caption(im, rng, other=None):
    """A fake caption written over the picture (white text with a dark outline)."""
    out = im.copy()
    w, h = out.size
    draw = ImageDraw.Draw(out)
    size = max(14, h // 9)
    y = int(h * rng.uniform(0.55, 0.8))
    draw.text(
        (w // 12, y),
        "BREAKING: FAKE",
        font=_font(size),
        fill=(255, 255, 255),
        stroke_width=max(2, size // 10),
        stroke_fill=(0, 0, 0),
    )
    return out


def caption_bar(im, rng, other=None):
    """A caption on a dark band across the lower part of the picture."""
    out = im.copy()
    w, h = out.size
    draw = ImageDraw.Draw(out)
    top = int(h * rng.uniform(0.7, 0.8))
    draw.rectangle((0, top, w, top + h // 10), fill=(16, 16, 16))
    draw.text(
        (w // 20, top + h // 60),
        "Officials deny it",
        font=_font(max(12, h // 14)),
        fill=(250, 250, 250),
    )
    return out


def _pick_region(a, rng, frac):
    h, w = a.shape[:2]
    bw, bh = int(w * np.sqrt(frac)), int(h * np.sqrt(frac))
    return bw, bh, int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))


def clone(im, rng, other=None, frac=0.06):
    """A patch of the picture copied over another part of it, the most different spot."""
    a = np.asarray(im).copy()
    h, w = a.shape[:2]
    bw, bh, sx, sy = _pick_region(a, rng, frac)
    best, at = -1.0, (0, 0)
    for _ in range(12):
        dx, dy = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        diff = float(
            np.abs(
                a[dy : dy + bh, dx : dx + bw].astype(int)
                - a[sy : sy + bh, sx : sx + bw].astype(int)
            ).mean()
        )
        if diff > best:
            best, at = diff, (dx, dy)
    dx, dy = at
    a[dy : dy + bh, dx : dx + bw] = a[sy : sy + bh, sx : sx + bw]
    return Image.fromarray(a)


def block(im, rng, other=None, frac=0.04):
    """A painted block: a flat colour far from what it covers."""
    a = np.asarray(im).copy()
    bw, bh, x, y = _pick_region(a, rng, frac)
    mean = a[y : y + bh, x : x + bw].reshape(-1, 3).mean(axis=0)
    a[y : y + bh, x : x + bw] = np.where(mean > 127, 20, 235).astype(np.uint8)
    return Image.fromarray(a)


def paste(im, rng, other=None, frac=0.05):
    """An object from another photograph pasted in (an elliptical cut-out)."""
    out = im.copy()
    a = np.asarray(im)
    bw, bh, x, y = _pick_region(a, rng, frac)
    src = other.resize((bw * 3, bh * 3)).crop((bw, bh, bw * 2, bh * 2))
    mask = Image.new("L", (bw, bh), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, bw - 1, bh - 1), fill=255)
    out.paste(src, (x, y), mask)
    return out


def small_block(im, rng, other=None):
    """A painted block over 2.5% of the picture."""
    return block(im, rng, other, frac=0.025)


def large_block(im, rng, other=None):
    """A painted block over 15% of the picture (an edit large enough to upset a
    registration that is not robust)."""
    return block(im, rng, other, frac=0.15)


#: name -> local edit (the copy is then saved as JPEG q90 or PNG by whoever uses it).
EDITS = {
    "caption": caption,
    "caption-bar": caption_bar,
    "clone": clone,
    "block": block,
    "small-block": small_block,
    "large-block": large_block,
    "paste": paste,
}


def edited_copy(name: str, im: Image.Image, seed: int, other: Image.Image) -> Image.Image:
    """The edit ``name`` of ``im``, metadata stripped (JPEG q90 for even seeds, else PNG)."""
    rng = np.random.default_rng(seed)
    out = EDITS[name](im, rng, other)
    return encode(out, "JPEG", quality=90) if seed % 2 == 0 else encode(out, "PNG")


def forged_mark(victim_id: str, image: Image.Image) -> Image.Image:
    """``image`` (not the victim's) carrying a provkit mark naming ``victim_id``: what
    anyone can write with the public scheme."""
    from provkit.provenance import watermark

    return watermark.embed(image, bytes.fromhex(victim_id))
