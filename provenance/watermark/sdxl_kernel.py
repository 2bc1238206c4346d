"""The Stable Diffusion XL mark reader of :mod:`provenance.watermark.thirdparty` as one
compiled pass (numba): every 8 x 8 pixel block is read once, in cache, for all four
readings (two channel orders x two colour domains), with the same arithmetic, operation
for operation, as the numpy path (OpenCV's fixed-point and float colour conversion,
PyWavelets' Haar filter, first maximum) -- so the same bits; ``tests/test_watermark_fast.py``
compares the two, and both with the reference reader, on photographs and noise.

Compiling takes a second or two the first time (numba caches the result next to this
file); without numba the numpy path runs.
"""

from __future__ import annotations

import numpy as np
from numba import njit  # optional: thirdparty imports this module only when numba is here


@njit(cache=True, nogil=True)
def block_scores(rgb, first_block, n_bits, sums):  # pragma: no cover - compiled
    """Add each 8 x 8 block's score to ``sums[reading, bit]`` (readings: BGR uint8,
    BGR float, RGB uint8, RGB float); ``rgb`` is uint8 H x W x 3, H and W multiples of
    8, and its first block is number ``first_block`` in row-major block order. Each row
    of blocks is converted to U first (contiguous loops the compiler vectorises), then
    each block's Haar approximation is formed and its largest AC magnitude (the first on
    ties) scored."""
    h64 = 0.7071067811865476
    h32 = np.float32(h64)
    cb = np.float64(np.float32(0.114))
    cg = np.float64(np.float32(0.587))
    cr32 = np.float32(0.299)
    u64 = np.float64(np.float32(0.492))
    nr, nc = rgb.shape[0] // 8, rgb.shape[1] // 8
    width = nc * 8
    ui = np.empty((2, 8, width), np.float64)  # U of one row of blocks, 8-bit path
    uf = np.empty((2, 8, width), np.float32)  # and float path
    red = np.empty(width, np.int64)
    green = np.empty(width, np.int64)
    blue = np.empty(width, np.int64)
    for bi in range(nr):
        for y in range(8):
            row = rgb[bi * 8 + y]
            for x in range(width):
                red[x], green[x], blue[x] = row[x, 0], row[x, 1], row[x, 2]
            for o in range(2):
                for x in range(width):
                    b, g, r = (blue[x], green[x], red[x]) if o == 0 else (red[x], green[x], blue[x])
                    # OpenCV's 8-bit BGR -> U (14-bit fixed point), then its float path
                    yy = (b * 1868 + g * 9617 + r * 4899 + 8192) >> 14
                    u = ((b - yy) * 8061 + ((128 << 14) + 8192)) >> 14
                    u = min(max(u, 0), 255)
                    ui[o, y, x] = np.float64(u)
                    rc = np.float64(np.float32(np.float32(r) * cr32))
                    t = np.float64(np.float32(np.float64(g) * cg + rc))
                    yf = np.float32(np.float64(b) * cb + t)
                    d = np.float64(np.float32(np.float32(b) - yf))
                    uf[o, y, x] = np.float32(d * u64 + 0.5)
        for bj in range(nc):
            k = (first_block + bi * nc + bj) % n_bits
            x0 = bj * 8
            for o in range(2):
                best = -1.0
                bestf = np.float32(-1.0)
                for i in range(4):
                    for j in range(4):
                        if i == 0 and j == 0:
                            continue
                        c1, c0 = x0 + 2 * j + 1, x0 + 2 * j
                        r1 = h64 * ui[o, 2 * i + 1, c1] + h64 * ui[o, 2 * i, c1]
                        r0 = h64 * ui[o, 2 * i + 1, c0] + h64 * ui[o, 2 * i, c0]
                        a = abs(h64 * r1 + h64 * r0)
                        best = max(best, a)
                        f1 = np.float32(h32 * uf[o, 2 * i + 1, c1]) + np.float32(
                            h32 * uf[o, 2 * i, c1]
                        )
                        f0 = np.float32(h32 * uf[o, 2 * i + 1, c0]) + np.float32(
                            h32 * uf[o, 2 * i, c0]
                        )
                        af = abs(np.float32(h32 * f1) + np.float32(h32 * f0))
                        bestf = max(bestf, af)
                if best % 36.0 > 18.0:
                    sums[2 * o, k] += 1.0
                if np.float32(bestf % np.float32(36.0)) > np.float32(18.0):
                    sums[2 * o + 1, k] += 1.0
