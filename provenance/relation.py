"""How a copy relates to the asset a soft binding (watermark or fingerprint) names.

A soft-binding match *identifies*: the copy came from asset X. It does not say the copy
is unedited. :func:`relate` compares the copy's pixels with the reference rendition the
ledger stored when X was issued (:func:`make_reference`: the issued pixels in grayscale,
long side :data:`REFERENCE_SIDE`, a few tens of KB) and names one relation:

``same-pixels``
    the issued geometry, and every block within re-encoding noise;
``transformed``
    resized, re-encoded, cropped (at most :data:`MAX_CROP` per edge) or padded with a
    uniform border, every block matching once registered; how much is measured;
``locally-edited``
    registered, but blocks covering :data:`LOCAL_EDIT_MIN` or more of the picture differ
    (a caption, a cloned patch, a painted block, a pasted object), with the region;
``not-this-asset``
    the pixels do not register to X's at all: a mark copied or forged onto another
    picture names X, but the picture is not X's.

Registration: uniform borders are stripped (a screenshot's frame), the copy is searched
over scale and offset against the reference at 1/4 size (normalised cross-correlation),
then refined to sub-pixel accuracy (Gauss-Newton on scale and offset per axis, robust
weights so an edit does not pull it). The registered copy and the reference are then
compared block by block (:data:`BLOCK` px at reference size) after a gain/offset fit.

Why one module over 400 lines: the reference rendition, the registration and the block
comparison share one pixel model (the sampler, the blur, the robust fit); split, each
part would import the others, and :func:`relate` is the only way in.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, PngImagePlugin

#: Long side of the reference rendition stored at issue time (grayscale PNG).
REFERENCE_SIDE = 256
#: Comparison block, in reference pixels.
BLOCK = 8
#: Most a transformed copy may be cropped per edge (a fraction of that side), with slack.
MAX_CROP = 0.10
#: Changed blocks covering at least this fraction of the compared area are a local edit.
LOCAL_EDIT_MIN = 0.005
#: A block differs when its mean absolute difference (grey levels, after the gain/offset
#: fit) exceeds this, or NOISE_FACTOR times the copy's own noise level if that is larger.
BLOCK_LIMIT = 9.0
NOISE_FACTOR = 5.0
#: A group of changed blocks counts only if one of them differs by this many times the
#: block limit (an edit's blocks do; the resampling error of an honest copy's fine texture
#: stays near the limit).
PEAK_FACTOR = 2.0
#: a block's limit is at least this times the issued picture's mean gradient there (grey
#: levels per pixel, on the reference grid), scaled up where the copy lost detail
EDGE_FACTOR = 1.0
#: Same geometry and every block under this (and RMS under SAME_RMS): same pixels.
SAME_BLOCK_LIMIT = 4.0
SAME_RMS = 2.0
#: Below this correlation, or above this changed fraction, the pixels are not the asset's.
MIN_CORRELATION = 0.6
MAX_CHANGED = 0.5
#: An unedited copy's registered pixels correlate at least this well with the reference
#: (honest copies measured at 0.996 and above); a looser fit is not the asset's picture.
MATCH_CORRELATION = 0.95
#: A copy is reduced to this long side before it is compared (bounded time and memory).
WORK_SIDE = 4 * REFERENCE_SIDE
#: A copy smaller than this (either side) cannot be compared.
MIN_SIDE = 32

CLASSES = ("same-pixels", "transformed", "locally-edited", "not-this-asset")
_SIZE_KEY = "provkit-size"


def make_reference(image: Image.Image) -> bytes:
    """The reference rendition of issued pixels: grayscale, long side REFERENCE_SIDE
    (area-averaged), PNG, with the issued size in a text chunk."""
    gray = image.convert("L")
    w, h = gray.size
    scale = min(1.0, REFERENCE_SIDE / max(w, h))
    small = (
        gray.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
        if scale < 1
        else gray
    )
    info = PngImagePlugin.PngInfo()
    info.add_text(_SIZE_KEY, f"{w}x{h}")
    buf = io.BytesIO()
    small.save(buf, "PNG", pnginfo=info, optimize=True)
    return buf.getvalue()


def load_reference(blob: bytes) -> tuple[np.ndarray, tuple[int, int]]:
    """``(reference pixels float32 (H, W), issued size (w, h))``."""
    img = Image.open(io.BytesIO(blob))
    img.load()
    w, h = (int(v) for v in img.text[_SIZE_KEY].split("x"))
    return np.asarray(img.convert("L"), dtype=np.float32), (w, h)


@dataclass(frozen=True)
class Relation:
    """How a copy relates to an issued asset (see the module docstring)."""

    cls: str
    #: Copy pixels per issued pixel (1.0: the issued size).
    scale: float | None = None
    #: Cropped off each edge, as a fraction of the issued side.
    crop: dict = field(default_factory=dict)
    #: Uniform border added around the picture, in copy pixels per edge.
    padding: dict = field(default_factory=dict)
    #: RMS grey-level difference of the registered copy (re-encoding noise).
    noise: float | None = None
    correlation: float | None = None
    #: Fraction of the compared area in changed blocks, and their bounding box in issued
    #: pixels ``[left, top, right, bottom]`` (locally-edited only).
    changed: float | None = None
    region: list | None = None
    reason: str | None = None

    def to_json(self) -> dict:
        return {
            "class": self.cls,
            "scale": self.scale,
            "crop": self.crop,
            "padding": self.padding,
            "noise": self.noise,
            "correlation": self.correlation,
            "changed": self.changed,
            "region": self.region,
            "reason": self.reason,
            "sentence": self.sentence(),
        }

    @property
    def vouches(self) -> bool:
        """Only the issued pixels themselves may be vouched for."""
        return self.cls == "same-pixels"

    @property
    def identifies(self) -> bool:
        """The copy is the asset's picture (same or honestly transformed)."""
        return self.cls in ("same-pixels", "transformed")

    def transforms(self) -> list[str]:
        """What was done to a transformed copy, as measured (words)."""
        out = []
        if self.scale is not None and abs(self.scale - 1) > 0.01:
            out.append(f"resized to {self.scale:.2f}x")
        cropped = {k: v for k, v in self.crop.items() if v >= 0.005}
        if cropped:
            out.append("cropped (" + ", ".join(f"{k} {v:.0%}" for k, v in cropped.items()) + ")")
        padded = {k: v for k, v in self.padding.items() if v > 0}
        if padded:
            out.append(
                "framed by a border (" + ", ".join(f"{k} {v} px" for k, v in padded.items()) + ")"
            )
        if self.noise is not None and self.noise >= 0.5:
            out.append(f"re-encoded (noise {self.noise:.1f} grey levels)")
        return out

    def sentence(self) -> str:
        if self.cls == "same-pixels":
            return (
                "Its pixels are the issued pixels (same size, every block within "
                "re-encoding noise)."
            )
        if self.cls == "transformed":
            what = self.transforms() or ["re-encoded"]
            return (
                "It is a transformed copy of the issued picture: "
                + ", ".join(what)
                + "; every block matches once registered."
            )
        if self.cls == "locally-edited":
            box = ", ".join(str(v) for v in self.region or [])
            return (
                f"It is a locally edited copy: {self.changed:.1%} of the picture differs "
                f"from what was issued, in the region [{box}] (left, top, right, bottom "
                "in issued pixels)."
            )
        return (
            "Its pixels are not the issued picture's"
            + (f" ({self.reason})" if self.reason else "")
            + "."
        )


def relate(
    image: Image.Image, reference: bytes, *, size: tuple[int, int] | None = None
) -> Relation:
    """The relation of ``image`` (a copy) to the asset whose reference rendition is
    ``reference``. ``size``: the copy's real size when ``image`` was decoded reduced."""
    ref, issued = load_reference(reference)
    full = size or image.size
    small = image.convert("L")
    if max(small.size) > WORK_SIDE:  # detail beyond 4x the reference's is never compared
        f = WORK_SIDE / max(small.size)
        small = small.resize(
            (max(1, round(small.width * f)), max(1, round(small.height * f))), Image.Resampling.BOX
        )
    gray = np.asarray(small, dtype=np.float32)
    if min(gray.shape) < MIN_SIDE or min(ref.shape) < 8:
        return Relation("not-this-asset", reason="too small to compare")
    best = _same_geometry(gray, full, issued, ref)
    for box in [] if best is not None else content_boxes(gray):
        found = _register(gray, box, ref)
        if found is not None and (best is None or found["score"] > best["score"]):
            best = found
    if best is None or best["ncc"] < MIN_CORRELATION:
        return Relation(
            "not-this-asset",
            correlation=None if best is None else round(best["ncc"], 3),
            reason="no scale and offset registers them",
        )
    return _compare(ref, issued, gray, full, best)


# -- registration ---------------------------------------------------------------------


def _same_geometry(gray, full, issued, ref) -> dict | None:
    """A copy of the issued size is first compared as it is: reduced exactly as the
    reference was (no registration, so no resampling error)."""
    if tuple(full) != tuple(issued):
        return None
    rh, rw = ref.shape
    P = _resize(gray, rw, rh)
    R = _blur(ref, 1.0)
    W = _blur(P, 1.0)
    _, _, weight = _robust_fit(R.ravel(), W.ravel())
    ncc = _wcorr(R.ravel(), W.ravel(), weight)
    if ncc < 0.97:
        return None
    return {
        "score": ncc,
        "ncc": ncc,
        "params": np.array([1.0, 0.0, 1.0, 0.0]),
        "box": (0, 0, gray.shape[1], gray.shape[0]),
        "P": P,
        "kx": rw / gray.shape[1],
        "ky": rh / gray.shape[0],
    }


def content_boxes(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """The whole copy, and the copy without a uniform border if it has one
    (``(left, top, right, bottom)`` boxes)."""
    h, w = gray.shape
    boxes = [(0, 0, w, h)]
    x0, y0, x1, y1 = 0, 0, w, h

    def flat(line, colour):
        return line.std() < 3.0 and abs(float(line.mean()) - colour) < 4.0

    corner = float(np.median([gray[0, 0], gray[0, -1], gray[-1, 0], gray[-1, -1]]))
    while y0 < y1 - MIN_SIDE and flat(gray[y0, x0:x1], corner):
        y0 += 1
    while y1 > y0 + MIN_SIDE and flat(gray[y1 - 1, x0:x1], corner):
        y1 -= 1
    while x0 < x1 - MIN_SIDE and flat(gray[y0:y1, x0], corner):
        x0 += 1
    while x1 > x0 + MIN_SIDE and flat(gray[y0:y1, x1 - 1], corner):
        x1 -= 1
    if (x0, y0, x1, y1) != (0, 0, w, h):
        boxes.append((x0, y0, x1, y1))
    return boxes


def _resize(a: np.ndarray, w: int, h: int) -> np.ndarray:
    img = Image.fromarray(a.astype(np.float32), "F")
    method = Image.Resampling.BOX if w < a.shape[1] else Image.Resampling.BILINEAR
    return np.asarray(img.resize((max(1, w), max(1, h)), method), dtype=np.float32)


def _register(gray: np.ndarray, box, ref: np.ndarray) -> dict | None:
    """Best scale and offset mapping the content ``box`` of the copy onto ``ref``."""
    x0, y0, x1, y1 = box
    content = gray[y0:y1, x0:x1]
    h, w = content.shape
    rh, rw = ref.shape
    lo = max((1 - MAX_CROP * 2.5) * rw / w, (1 - MAX_CROP * 2.5) * rh / h)
    hi = min(1.03 * rw / w, 1.03 * rh / h)
    if lo > hi:
        return None
    # P: the content at about the reference's scale (ref px per content px = kmax)
    kmax = hi
    pw, ph = max(8, round(w * kmax)), max(8, round(h * kmax))
    P = _resize(content, pw, ph)
    kx, ky = pw / w, ph / h
    f = 4 if min(rw, rh) >= 64 else 2
    small_ref = _resize(ref, max(4, round(rw / f)), max(4, round(rh / f)))
    small_ref = np.pad(small_ref, 2, mode="edge")
    best = None
    for k in np.geomspace(lo, hi, max(2, int(np.log(hi / lo) / np.log(1.02)) + 1)):
        tw, th = round(w * k / f), round(h * k / f)
        if tw < 4 or th < 4 or tw > small_ref.shape[1] or th > small_ref.shape[0]:
            continue
        t = _resize(P, tw, th)
        if t.std() < 1e-3:
            continue
        ncc = match_template(small_ref, t)
        iy, ix = np.unravel_index(int(np.argmax(ncc)), ncc.shape)
        if best is None or ncc[iy, ix] > best[0]:
            best = (
                float(ncc[iy, ix]),
                k,
                (ix - 2) * f,
                (iy - 2) * f,
                tw * f / (w * k),
                th * f / (h * k),
            )
    # ref x = ox + content_x * k ; P_x = content_x * kx  =>  P_x = (x - ox) * kx / k.
    # Candidates: the search's best, and the uncropped fit (a flat picture with an edit
    # can mislead the search).
    starts = [np.array([pw / rw, 0.0, ph / rh, 0.0])]
    if best is not None:
        _, k, ox, oy, _, _ = best
        starts.insert(0, np.array([kx / k, -ox * kx / k, ky / k, -oy * ky / k]))
    if (
        len(starts) == 2
        and np.abs(starts[0][[1, 3]] - starts[1][[1, 3]]).max() < 1.5
        and np.abs(starts[0][[0, 2]] - starts[1][[0, 2]]).max() < 0.01
    ):
        starts = starts[:1]
    out = None
    for start in starts:
        params, ncc = _refine(P, ref, start)
        if out is None or ncc > out["ncc"] + 1e-3:
            out = {
                "score": ncc,
                "ncc": ncc,
                "params": params,
                "box": box,
                "P": P,
                "kx": kx,
                "ky": ky,
            }
    return out


def match_template(image: np.ndarray, templ: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``templ`` at every position fully inside ``image``."""
    from scipy.signal import fftconvolve

    th, tw = templ.shape
    t = templ - templ.mean()
    num = fftconvolve(image, t[::-1, ::-1], mode="valid")
    integral = np.pad(np.cumsum(np.cumsum(image, 0), 1), ((1, 0), (1, 0)))
    integral2 = np.pad(np.cumsum(np.cumsum(image.astype(np.float64) ** 2, 0), 1), ((1, 0), (1, 0)))

    def window(ii):
        return ii[th:, tw:] - ii[:-th, tw:] - ii[th:, :-tw] + ii[:-th, :-tw]

    n = th * tw
    var = window(integral2) - window(integral) ** 2 / n
    den = np.sqrt(np.maximum(var, 0) * float((t * t).sum()))
    return np.where(den > 1e-6, num / np.maximum(den, 1e-6), 0.0)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(a, sigma) if sigma > 0 else a


def _sampler(params, shape, src_shape):
    """Separable bilinear sampling of a ``src_shape`` array on the reference grid
    (``u = a x + b``, ``v = c y + d``): a function of the array, and the inside mask."""
    a, b, c, d = params
    u = a * np.arange(shape[1]) + b
    v = c * np.arange(shape[0]) + d
    inside = ((v >= 0) & (v <= src_shape[0] - 1))[:, None] & ((u >= 0) & (u <= src_shape[1] - 1))[
        None, :
    ]
    uc, vc = np.clip(u, 0, src_shape[1] - 1), np.clip(v, 0, src_shape[0] - 1)
    u0 = np.minimum(np.floor(uc).astype(int), max(0, src_shape[1] - 2))
    v0 = np.minimum(np.floor(vc).astype(int), max(0, src_shape[0] - 2))
    fu, fv = (uc - u0)[None, :], (vc - v0)[:, None]
    u1 = np.minimum(u0 + 1, src_shape[1] - 1)
    v1 = np.minimum(v0 + 1, src_shape[0] - 1)

    def sample(arr):
        rows = arr[v0] * (1 - fv) + arr[v1] * fv
        return rows[:, u0] * (1 - fu) + rows[:, u1] * fu

    return sample, inside


def _warp(P: np.ndarray, params, shape):
    """P sampled on the reference grid, and the mask of samples inside P."""
    sample, inside = _sampler(params, shape, P.shape)
    return sample(P), inside


def _fit(r: np.ndarray, w: np.ndarray, weight=None) -> tuple[float, float]:
    """Gain and offset of ``w ~ g r + o`` (weighted least squares)."""
    weight = np.ones_like(r) if weight is None else weight
    sw = weight.sum() + 1e-9
    mr, mw = (weight * r).sum() / sw, (weight * w).sum() / sw
    var = (weight * (r - mr) ** 2).sum() / sw
    g = ((weight * (r - mr) * (w - mw)).sum() / sw) / var if var > 1e-6 else 1.0
    return float(g), float(mw - g * mr)


def _wcorr(r, w, weight) -> float:
    sw = weight.sum() + 1e-9
    mr, mw = (weight * r).sum() / sw, (weight * w).sum() / sw
    cov = (weight * (r - mr) * (w - mw)).sum()
    den = np.sqrt((weight * (r - mr) ** 2).sum() * (weight * (w - mw) ** 2).sum())
    return float(cov / den) if den > 1e-9 else 0.0


def _robust_fit(r: np.ndarray, w: np.ndarray, rounds: int = 3):
    """Gain, offset and Tukey weights of ``w ~ g r + o``, refitted on the inliers (an edit
    covering a fifth of the picture does not bias the fit)."""
    g, o = 1.0, float(np.median(w - r))  # copies keep the grey levels: start there
    weight = _tukey(w - (g * r + o))
    for _ in range(rounds):
        g, o = _fit(r, w, weight)
        weight = _tukey(w - (g * r + o))
    return g, o, weight


def _tukey(e: np.ndarray) -> np.ndarray:
    s = 1.4826 * np.median(np.abs(e)) + 0.5
    z = e / (4.685 * s)
    return np.where(np.abs(z) < 1, (1 - z * z) ** 2, 0.0)


def _refine(P, ref, params):
    """Gauss-Newton on (a, b, c, d) with Tukey weights (an edit does not pull it), at half
    size then at full size; returns (params, robust correlation at full size)."""
    if min(ref.shape) >= 64 and min(P.shape) >= 64:
        half = _resize(P, P.shape[1] // 2, P.shape[0] // 2)
        ref_half = _resize(ref, ref.shape[1] // 2, ref.shape[0] // 2)
        sx, sy = half.shape[1] / P.shape[1], half.shape[0] / P.shape[0]
        rx, ry = ref.shape[1] / ref_half.shape[1], ref.shape[0] / ref_half.shape[0]
        a, b, c, d = params  # u_half = sx (a rx x_half + b)
        coarse, _ = _gauss_newton(
            half, ref_half, np.array([sx * a * rx, sx * b, sy * c * ry, sy * d]), 15
        )
        a, b, c, d = coarse
        params = np.array([a / (sx * rx), b / sx, c / (sy * ry), d / sy])
    return _gauss_newton(P, ref, params, 8)


def _gauss_newton(P, ref, params, iterations):
    Pb, Rb = _blur(P, 1.0), _blur(ref, 1.0)
    gy, gx = np.gradient(Pb)
    ys, xs = np.mgrid[0 : Rb.shape[0], 0 : Rb.shape[1]].astype(np.float64)
    p = np.asarray(params, dtype=np.float64).copy()
    for _ in range(iterations):
        sample, inside = _sampler(p, Rb.shape, Pb.shape)
        if inside.sum() < 64:
            return p, 0.0
        w_, r_ = sample(Pb)[inside], Rb[inside]
        g, o, wt = _robust_fit(r_, w_)
        e = w_ - (g * r_ + o)
        Gx, Gy = sample(gx)[inside], sample(gy)[inside]
        J = np.stack([Gx * xs[inside], Gx, Gy * ys[inside], Gy], axis=1)
        Jw = J * wt[:, None]
        try:
            step = np.linalg.solve(Jw.T @ J + 1e-6 * np.eye(4), Jw.T @ e)
        except np.linalg.LinAlgError:
            break
        p = p - step
        if np.abs(step[[1, 3]]).max() < 0.01 and np.abs(step[[0, 2]]).max() < 2e-5:
            break
    sample, inside = _sampler(p, Rb.shape, Pb.shape)
    if inside.sum() < 64:
        return p, 0.0
    w_, r_ = sample(Pb)[inside], Rb[inside]
    _, _, weight = _robust_fit(r_, w_)
    return p, _wcorr(r_, w_, weight)


# -- comparison -----------------------------------------------------------------------


def _compare(ref, issued, gray, full, found) -> Relation:
    from scipy.ndimage import binary_erosion, label

    P, params, box = found["P"], found["params"], found["box"]
    rh, rw = ref.shape
    a, b, c, d = params
    # content px per ref px = a / kx; copy detail is lost where that is below 1
    detail = min(a / found["kx"], c / found["ky"])
    sigma = max(0.8, 0.7 / max(detail, 1e-3))
    W, inside = _warp(_blur(P, sigma * a), params, ref.shape)
    R = _blur(ref, sigma)
    inside = binary_erosion(inside, iterations=2)
    if inside.sum() < 64:
        return Relation("not-this-asset", reason="too little overlap")
    g, o, _ = _robust_fit(R[inside], W[inside])
    D = np.abs(W - (g * R + o))
    D[~inside] = 0
    # block means over blocks mostly inside the overlap
    by, bx = rh // BLOCK, rw // BLOCK
    Dc = D[: by * BLOCK, : bx * BLOCK].reshape(by, BLOCK, bx, BLOCK).sum(axis=(1, 3))
    Mc = inside[: by * BLOCK, : bx * BLOCK].reshape(by, BLOCK, bx, BLOCK).sum(axis=(1, 3))
    valid = Mc >= BLOCK * BLOCK * 0.75
    score = np.where(valid, Dc / np.maximum(Mc, 1), 0.0)
    noise = float(np.sqrt(np.mean(D[inside] ** 2)))
    typical = float(np.median(score[valid])) if valid.any() else 0.0
    limit = max(BLOCK_LIMIT, NOISE_FACTOR * typical)
    # resampling error grows with the issued picture's own contrast (hard edges, drawn text
    # such as a visible label): a block's limit rises with its mean gradient there, so an
    # honest resize of a sharp edge is not an edit, while an edit in a smooth area is judged
    # by the global limit alone
    gy, gx = np.gradient(R)
    grad = (
        np.hypot(gx, gy)[: by * BLOCK, : bx * BLOCK].reshape(by, BLOCK, bx, BLOCK).mean(axis=(1, 3))
    )
    edge = EDGE_FACTOR * grad * max(1.0, 1.0 / max(detail, 1e-3))
    block_limit = np.maximum(limit, edge)
    changed = valid & (score > block_limit)
    labels, n = label(changed, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())[1:] if n else np.array([], dtype=int)
    if n:  # a group of 3 blocks or more, one of them clearly changed (resampling is not)
        from scipy.ndimage import maximum

        peaks = np.asarray(maximum(score, labels, index=np.arange(1, n + 1)))
        groups = 1 + np.flatnonzero((sizes >= 3) & (peaks >= PEAK_FACTOR * limit))
        keep = np.isin(labels, groups)
    else:
        keep = changed & False
    frac = float(keep.sum() / max(valid.sum(), 1))
    # the correlation of what is left once the changed blocks are set aside
    rest = inside.copy()
    rest[: by * BLOCK, : bx * BLOCK] &= ~np.repeat(np.repeat(changed, BLOCK, 0), BLOCK, 1)
    corr = _wcorr(R[rest], W[rest], np.ones(int(rest.sum()))) if rest.sum() > 64 else 0.0
    # geometry, in issued pixels
    r = rw / issued[0]
    kx, ky = found["kx"], found["ky"]
    scale_x, scale_y = r * a / kx, r * c / ky  # copy px per issued px
    scale = float((scale_x + scale_y) / 2)
    x_lo, x_hi = -b / a, (P.shape[1] - 1 - b) / a  # the content's span on the ref grid
    y_lo, y_hi = -d / c, (P.shape[0] - 1 - d) / c
    crop = {
        "left": max(0.0, x_lo / rw),
        "top": max(0.0, y_lo / rh),
        "right": max(0.0, 1 - (x_hi + 1) / rw),
        "bottom": max(0.0, 1 - (y_hi + 1) / rh),
    }
    crop = {k: round(v, 3) for k, v in crop.items()}
    x0, y0, x1, y1 = box
    fw, fh = full
    sx, sy = fw / gray.shape[1], fh / gray.shape[0]
    padding = {
        "left": round(x0 * sx),
        "top": round(y0 * sy),
        "right": round((gray.shape[1] - x1) * sx),
        "bottom": round((gray.shape[0] - y1) * sy),
    }
    common = {
        "scale": round(scale * (sx + sy) / 2, 3),
        "crop": crop,
        "padding": padding,
        "noise": round(noise, 2),
        "correlation": round(corr, 3),
    }
    if corr < MIN_CORRELATION or frac > MAX_CHANGED or max(crop.values()) > MAX_CROP * 2.5:
        return Relation(
            "not-this-asset",
            **common,
            changed=round(frac, 4),
            reason="the registered pixels do not match",
        )
    if frac < LOCAL_EDIT_MIN and corr < MATCH_CORRELATION:
        return Relation(
            "not-this-asset",
            **common,
            changed=round(frac, 4),
            reason="the registered pixels match only loosely",
        )
    if frac >= LOCAL_EDIT_MIN:
        ys, xs = np.nonzero(keep)
        region = [
            int(xs.min() * BLOCK / r),
            int(ys.min() * BLOCK / r),
            int(min(issued[0], (xs.max() + 1) * BLOCK / r)),
            int(min(issued[1], (ys.max() + 1) * BLOCK / r)),
        ]
        return Relation("locally-edited", **common, changed=round(frac, 4), region=region)
    same_geometry = (
        tuple(full) == tuple(issued) and not any(padding.values()) and max(crop.values()) < 0.005
    )
    if same_geometry and float(score[valid].max(initial=0)) < SAME_BLOCK_LIMIT and noise < SAME_RMS:
        return Relation("same-pixels", **{**common, "scale": 1.0}, changed=round(frac, 4))
    return Relation("transformed", **common, changed=round(frac, 4))
