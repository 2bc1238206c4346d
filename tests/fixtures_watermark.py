"""Images and attacks for the watermark tests: real photographs, a synthetic render, and the
edits a platform applies to uploads (JPEG 50, half-size, 90% centre crop, brightness +20)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def jpeg(image: Image.Image, quality: int = 50) -> Image.Image:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def resize_half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.BICUBIC)


def crop_centre(image: Image.Image, keep: float = 0.9) -> Image.Image:
    w, h = image.size
    cw, ch = round(w * keep), round(h * keep)
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch))


def brighten(image: Image.Image, amount: int = 20) -> Image.Image:
    arr = np.asarray(image.convert("RGB"), np.int16) + amount
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


SINGLE = {"jpeg50": jpeg, "resize0.5": resize_half, "crop90": crop_centre, "bright+20": brighten}
#: Geometric edits first, JPEG last (the order an upload pipeline applies them).
ORDER = ["crop90", "resize0.5", "bright+20", "jpeg50"]


def _then(first, second):
    return lambda image: second(first(image))


def pairwise() -> dict:
    return {
        f"{a}+{b}": _then(SINGLE[a], SINGLE[b]) for i, a in enumerate(ORDER) for b in ORDER[i + 1 :]
    }


ATTACKS = {"none": lambda im: im, **SINGLE, **pairwise()}


def rendered_image(size=(640, 480), seed=0) -> Image.Image:
    """A synthetic 'generated' picture: smooth gradients, soft shapes and fine texture."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    img = np.stack([120 + 80 * np.sin(3 * x + 1), 100 + 90 * y, 160 - 60 * x * y], -1)
    for _ in range(6):
        cx, cy, r = rng.random(), rng.random() * h / w, 0.05 + 0.15 * rng.random()
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(-80, 80, 3)
    img += rng.normal(0, 4, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def psnr(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a, np.float64)
    y = np.asarray(b, np.float64)
    return float(10 * np.log10(255.0**2 / ((x - y) ** 2).mean()))
