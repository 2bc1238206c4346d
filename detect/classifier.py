"""An AI-image classifier in the UnivFD manner: frozen CLIP features + a linear probe.

Training embeds every image several times: as decoded, re-compressed as JPEG at a
random quality, and resized by a random factor (then re-compressed). The same
augmentation is applied to BOTH classes, so the probe cannot separate them by file
format or compression (a known failure when real photos are JPEG and fakes PNG).

Features are standardised, a logistic-regression probe is fitted, and a Platt
sigmoid fitted on out-of-fold scores turns its margin into a calibrated
probability. Accuracy, AUC and Brier score are measured on source images held out
from training (all augmented copies of one source stay on the same side of the
split). The saved JSON names the CLIP model it was trained with; scoring with a
different model is refused.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from provkit.detect.clip import load_model
from provkit.provenance.core.clock import now_iso
from provkit.provenance.core.errors import BadInput, ConfigError
from provkit.provenance.core.extras import require
from provkit.provenance.core.files import atomic_write
from provkit.provenance.core.imageio import load_rgb

PROBE_FORMAT = "provkit-probe"
PROBE_VERSION = 1


@dataclass(frozen=True)
class Probe:
    """A fitted probe: P(AI) = sigmoid(a * (w . (x - mean) / std + b) + c)."""

    clip_model_id: str
    clip_spec: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    calib_a: float
    calib_b: float
    metrics: dict = field(default_factory=dict)
    trained: dict = field(default_factory=dict)

    def margin(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, np.float64) - np.asarray(self.mean)) / np.asarray(self.std)
        return x @ np.asarray(self.weights) + self.bias

    def probability(self, features: np.ndarray) -> np.ndarray:
        """Calibrated probability that each feature row comes from an AI-generated image."""
        z = self.calib_a * self.margin(np.atleast_2d(features)) + self.calib_b
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))

    def check_clip(self, clip) -> None:
        if clip.model_id != self.clip_model_id:
            raise ConfigError(
                f"probe was trained on CLIP {self.clip_model_id} but the loaded model is "
                f"{clip.model_id}; pass --clip {self.clip_spec}"
            )

    def score_images(self, images: Sequence, clip, *, batch_size: int = 32) -> np.ndarray:
        """P(AI) for paths / PIL images / arrays (raises BadInput for an unreadable file)."""
        self.check_clip(clip)
        return self.probability(clip.embed_images(images, batch_size=batch_size))

    def to_json(self) -> dict:
        return {
            "format": PROBE_FORMAT,
            "version": PROBE_VERSION,
            "clip": {"model_id": self.clip_model_id, "spec": self.clip_spec},
            "normalisation": {"mean": list(self.mean), "std": list(self.std)},
            "weights": list(self.weights),
            "bias": self.bias,
            "calibration": {"method": "platt", "a": self.calib_a, "b": self.calib_b},
            "metrics": self.metrics,
            "trained": self.trained,
        }

    def save(self, path, *, force: bool = True) -> Path:
        """Write the probe atomically; an existing file is replaced only with ``force``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write(path, json.dumps(self.to_json(), indent=1).encode(), overwrite=force)
        except FileExistsError:
            raise BadInput("output already exists (use --force to replace it)", path=path) from None
        return path

    @classmethod
    def load(cls, path) -> Probe:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError("no such probe file", path=path) from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"not a readable probe ({e})", path=path) from None
        if not isinstance(data, dict) or data.get("format") != PROBE_FORMAT:
            raise ConfigError("not a provkit probe file", path=path)
        if data.get("version") != PROBE_VERSION:
            raise ConfigError(f"probe version {data.get('version')} is not supported", path=path)
        try:
            mean, std = data["normalisation"]["mean"], data["normalisation"]["std"]
            weights = data["weights"]
            if not (len(mean) == len(std) == len(weights)):
                raise ValueError("normalisation and weights differ in length")
            return cls(
                clip_model_id=data["clip"]["model_id"],
                clip_spec=data["clip"]["spec"],
                mean=tuple(map(float, mean)),
                std=tuple(map(float, std)),
                weights=tuple(map(float, weights)),
                bias=float(data["bias"]),
                calib_a=float(data["calibration"]["a"]),
                calib_b=float(data["calibration"]["b"]),
                metrics=dict(data.get("metrics", {})),
                trained=dict(data.get("trained", {})),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"malformed probe ({e})", path=path) from None


# -- augmentation ---------------------------------------------------------------


#: The degraded copies every scored image is also scored as (the stability check).
STABILITY_JPEG_QUALITY = 75
STABILITY_SCALE = 0.75


def stability_variants(image: Image.Image) -> list[Image.Image]:
    """``[image, JPEG q75 copy, 0.75x resized copy]``: what delivery does to a picture.

    A detector whose score crosses its threshold between these is not telling the
    picture apart, only its encoding (scores jumping from 0.41 to 0.93 after
    recompression are a known complaint)."""
    rgb = image.convert("RGB") if image.mode != "RGB" else image
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=STABILITY_JPEG_QUALITY)
    jpeg = Image.open(io.BytesIO(buf.getvalue()))
    jpeg.load()
    w, h = rgb.size
    small = rgb.resize(
        (max(1, round(w * STABILITY_SCALE)), max(1, round(h * STABILITY_SCALE))), Image.BILINEAR
    )
    return [rgb, jpeg, small]


def augment_images(
    image: Image.Image, rng: np.random.Generator, copies: int = 2
) -> list[Image.Image]:
    """The image as given plus ``copies`` variants: JPEG re-compression and/or resizing."""
    out = [image]
    for i in range(copies):
        img = image
        if i % 2 == 1 or rng.random() < 0.5:
            scale = float(rng.uniform(0.5, 0.9))
            w, h = img.size
            img = img.resize((max(8, round(w * scale)), max(8, round(h * scale))), Image.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(60, 96)))
        buf.seek(0)
        img = Image.open(buf)
        img.load()
        out.append(img.convert("RGB"))
    return out


# -- training -------------------------------------------------------------------


def _platt(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    LogisticRegression = require(
        "clip", "sklearn.linear_model", what="probe training"
    ).LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=1000)
    lr.fit(scores.reshape(-1, 1), labels)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def train_probe(
    real_paths: Sequence,
    fake_paths: Sequence,
    clip_spec: str | None = None,
    *,
    clip=None,
    augment_copies: int | None = None,
    augment: bool = True,
    test_fraction: float = 0.25,
    C: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
    progress=None,
) -> Probe:
    """Fit a probe on CLIP features of real vs AI-generated images; metrics on held-out sources.

    ``clip`` may be a loaded :class:`~detect.clip.ClipModel`; otherwise ``clip_spec`` is
    loaded. Unreadable files are skipped and counted in ``trained["skipped"]``.
    """
    LogisticRegression = require(
        "clip", "sklearn.linear_model", what="probe training"
    ).LogisticRegression
    metrics = require("clip", "sklearn.metrics", what="probe training")
    accuracy_score, brier_score_loss, roc_auc_score = (
        metrics.accuracy_score,
        metrics.brier_score_loss,
        metrics.roc_auc_score,
    )
    selection = require("clip", "sklearn.model_selection", what="probe training")
    StratifiedGroupKFold, cross_val_predict = (
        selection.StratifiedGroupKFold,
        selection.cross_val_predict,
    )

    if clip is None:
        if not clip_spec:
            raise ConfigError("training a probe needs a CLIP model (--clip ARCH:/path/to/weights)")
        clip = load_model(clip_spec)
    copies = (2 if augment else 0) if augment_copies is None else augment_copies
    rng = np.random.default_rng(seed)

    sources = [(Path(p), 0) for p in real_paths] + [(Path(p), 1) for p in fake_paths]
    labels, groups, skipped, chunks = [], [], [], []
    pending: list[Image.Image] = []
    for gid, (path, label) in enumerate(sources):
        try:
            img = load_rgb(path)
        except BadInput as e:
            skipped.append(str(e))
            continue
        for variant in _variants(img, rng, copies):
            pending.append(variant)
            labels.append(label)
            groups.append(gid)
        if len(pending) >= 4 * batch_size:  # embed as we go: only features stay in memory
            chunks.append(clip.embed_images(pending, batch_size=batch_size))
            pending = []
        if progress:
            progress(1)
    labels, groups = np.array(labels), np.array(groups)
    n_real = len({g for g, y in zip(groups, labels) if y == 0})
    n_fake = len({g for g, y in zip(groups, labels) if y == 1})
    if n_real < 4 or n_fake < 4:
        raise BadInput(
            f"need at least 4 readable images of each class to train and test a probe "
            f"(got {n_real} real, {n_fake} AI-generated)"
        )
    if pending:
        chunks.append(clip.embed_images(pending, batch_size=batch_size))
    feats = np.concatenate(chunks)

    # Hold out whole source images, stratified by class.
    test_groups = set()
    for label in (0, 1):
        ids = np.unique(groups[labels == label])
        rng.shuffle(ids)
        test_groups.update(ids[: max(1, round(len(ids) * test_fraction))].tolist())
    test = np.isin(groups, list(test_groups))
    train = ~test

    mean = feats[train].mean(axis=0)
    std = feats[train].std(axis=0) + 1e-6
    x = (feats - mean) / std
    model = LogisticRegression(C=C, max_iter=5000)
    n_splits = int(
        min(
            5,
            np.bincount(labels[train]).min(),
            len(np.unique(groups[train & (labels == 0)])),
            len(np.unique(groups[train & (labels == 1)])),
        )
    )
    if n_splits >= 2:
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        oof = cross_val_predict(
            model, x[train], labels[train], groups=groups[train], cv=cv, method="decision_function"
        )
        a, b = _platt(oof, labels[train])
    else:  # too few sources for folds: the probe's own logistic output is the probability
        a, b = 1.0, 0.0
    model.fit(x[train], labels[train])
    probe = Probe(
        clip_model_id=clip.model_id,
        clip_spec=clip.spec,
        mean=tuple(map(float, mean)),
        std=tuple(map(float, std)),
        weights=tuple(map(float, model.coef_[0])),
        bias=float(model.intercept_[0]),
        calib_a=a,
        calib_b=b,
        trained={
            "at": now_iso(),
            "real_images": n_real,
            "ai_images": n_fake,
            "skipped": len(skipped),
            "skipped_reasons": skipped[:20],
            "augment_copies": copies,
            "train_rows": int(train.sum()),
            "test_rows": int(test.sum()),
            "test_sources": len(test_groups),
            "C": C,
            "seed": seed,
        },
    )
    p = probe.probability(feats[test])
    y = labels[test]
    metrics = {
        "heldout_accuracy": float(accuracy_score(y, p >= 0.5)),
        "heldout_auc": float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else math.nan,
        "heldout_brier": float(brier_score_loss(y, p)),
        "heldout_rows": int(test.sum()),
        "train_accuracy": float(
            accuracy_score(labels[train], probe.probability(feats[train]) >= 0.5)
        ),
    }
    object.__setattr__(probe, "metrics", metrics)
    return probe


@dataclass(frozen=True)
class Trained:
    """What ``provkit detect train`` wrote: the probe file and how well it did."""

    out: str
    probe: Probe

    def to_json(self) -> dict:
        return {
            "out": self.out,
            "clip": self.probe.clip_model_id,
            "metrics": self.probe.metrics,
            "trained": {k: v for k, v in self.probe.trained.items() if k != "skipped_reasons"},
        }


def train(
    real_paths: Sequence,
    fake_paths: Sequence,
    clip_spec: str | None = None,
    *,
    out,
    force: bool = False,
    **options,
) -> Trained:
    """``provkit detect train``: :func:`train_probe`, then the probe saved to ``out``
    (an existing file is replaced only with ``force``; checked before training)."""
    out = Path(out)
    if out.exists() and not force:
        raise BadInput("output already exists (use --force to replace it)", path=out)
    probe = train_probe(real_paths, fake_paths, clip_spec, **options)
    probe.save(out, force=force)
    return Trained(str(out), probe)


def _variants(img: Image.Image, rng, copies: int) -> list[Image.Image]:
    return augment_images(img, rng, copies) if copies > 0 else [img]
