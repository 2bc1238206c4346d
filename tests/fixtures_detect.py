"""Images for the detect tests: crops of real photographs, and generator-like fakes.

The fakes mimic two artefacts of image generators: smooth, saturated CPPN-style
patterns, and the periodic checkerboard left by transposed-convolution upsampling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def real_crops(
    photos: list[np.ndarray], n: int, size: int = 128, seed: int = 0
) -> list[np.ndarray]:
    """``n`` distinct crops of real photographs (RGB uint8)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        y, x = rng.integers(0, h - size), rng.integers(0, w - size)
        out.append(np.ascontiguousarray(photo[y : y + size, x : x + size]))
    return out


def generator_like(n: int, size: int = 128, seed: int = 1) -> list[np.ndarray]:
    """``n`` synthetic images: CPPN gradients with 2x checkerboard upsampling artefacts."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    r = np.sqrt(xx**2 + yy**2)
    out = []
    for _ in range(n):
        w = rng.normal(0, 3, (4, 3))
        feats = np.stack([xx, yy, r, np.ones_like(r)], -1)
        img = np.tanh(np.sin(feats @ w * rng.uniform(1, 4)))  # smooth, saturated
        img = (img + 1) / 2
        half = img[::2, ::2]
        up = np.repeat(np.repeat(half, 2, 0), 2, 1)[:size, :size]
        checker = ((np.indices((size, size)).sum(0) % 2) * 2 - 1)[..., None] * 0.04
        img = np.clip(up + checker, 0, 1)
        out.append((img * 255).astype(np.uint8))
    return out


def save_all(arrays: list[np.ndarray], folder: Path, fmt: str = "png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, arr in enumerate(arrays):
        p = folder / f"{i:03d}.{fmt}"
        Image.fromarray(arr).save(p, quality=90) if fmt == "jpg" else Image.fromarray(arr).save(p)
        paths.append(p)
    return paths
