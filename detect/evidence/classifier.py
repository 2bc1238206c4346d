"""Classifier evidence: a calibrated probe on frozen CLIP features (detect.classifier,
detect.clip); run batched over a chunk of files. Loads torch only when a probe or a
CLIP model is configured."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from provkit.detect.classifier import Probe, stability_variants
from provkit.detect.clip import load_model
from provkit.detect.evidence.base import (
    AI_GENERATED,
    BaseCollector,
    Evidence,
    FileContext,
    Found,
    Options,
    finding_of,
    not_checked,
)
from provkit.provenance.core.errors import describe


class ClassifierCollector(BaseCollector):
    """``found["classifier"]``: the probability of AI (None when not checked); the
    report's and the policy context's ``score``."""

    name = "classifier"
    columns = (("classifier", finding_of("classifier")),)
    batched = True

    def __init__(self, options: Options):
        super().__init__(options)
        self.probe = self.clip = None
        probe, clip = options.probe, options.clip
        if probe is not None:
            self.probe = Probe.load(probe) if isinstance(probe, (str, Path)) else probe
        if clip is not None or self.probe is not None:
            spec = clip if clip is not None else self.probe.clip_spec
            self.clip = load_model(spec) if isinstance(spec, str) else spec
            if self.probe is not None:
                self.probe.check_clip(self.clip)

    def collect(self, ctx: FileContext) -> Found:
        return self.collect_many([ctx])[0]

    def collect_many(self, ctxs: Sequence[FileContext]) -> list[Found]:
        if self.probe is None:
            reason = (
                "no probe configured (train one with `provkit detect train`, then pass --probe)"
            )
            if self.clip is None:
                reason = "no CLIP model or probe configured (--clip ARCH:/path/to/weights, --probe)"
            return [Found([not_checked("classifier", reason)], None) for _ in ctxs]
        try:  # each image and its degraded copies (the stability check), in one batch
            variants = [v for c in ctxs for v in stability_variants(c.image)]
            feats = self.clip.embed_images(variants)
            probs = self.probe.probability(feats).reshape(len(ctxs), -1)
        except Exception as e:  # noqa: BLE001
            why = f"classifier failed ({describe(e, with_path=False)})"
            return [Found([not_checked("classifier", why)], None) for _ in ctxs]
        threshold, low = self.options.threshold, self.options.low_threshold
        return [
            Found(
                [
                    classifier_evidence(
                        float(row[0]),
                        self.probe,
                        threshold,
                        variants=[float(x) for x in row[1:]],
                        low=low,
                    )
                ],
                float(row[0]),
            )
            for row in probs
        ]

    def context(self, data) -> dict:
        return {"score": data}


def classifier_evidence(
    probability: float, probe, threshold: float = 0.8, *, variants=(), low: float | None = None
) -> Evidence:
    """One item from a calibrated probe probability, with an abstain band and a
    stability check.

    At or above ``threshold`` the classifier reports AI; at or below ``low`` (default
    ``1 - threshold``) it sees no AI signal; in between it is ``unsure``. ``variants``:
    the probabilities of degraded copies (JPEG q75, 0.75x resized); when they fall on
    different sides of the threshold than the original, the result is ``unsure`` too:
    a score that flips with delivery cannot be relied on."""
    low = 1 - threshold if low is None else low
    metrics = probe.metrics or {}
    auc = metrics.get("heldout_auc")
    quality = f" (probe held-out AUC {auc:.3f})" if isinstance(auc, (int, float)) else ""
    variants = [float(v) for v in variants]
    sides = {p >= threshold for p in [probability, *variants]}
    stable = len(sides) == 1
    data = {
        "probability": float(probability),
        "threshold": threshold,
        "low_threshold": low,
        "variants": dict(zip(STABILITY_VARIANTS, variants, strict=False)),
        "stable": stable,
        "clip_model_id": probe.clip_model_id,
        "heldout_auc": auc,
    }
    if not stable:
        shown = ", ".join(
            f"{n} {v:.2f}" for n, v in zip(STABILITY_VARIANTS, variants, strict=False)
        )
        return Evidence(
            "classifier",
            "unsure",
            "weak",
            f"The CLIP classifier is unsure: probability {probability:.2f} of AI, but "
            f"degraded copies score {shown}, across the {threshold:.2f} threshold"
            f"{quality}.",
            data,
        )
    if probability >= threshold:
        return Evidence(
            "classifier",
            AI_GENERATED,
            "moderate",
            f"The CLIP classifier gives probability {probability:.2f} that the image "
            f"is AI-generated{quality}, stable under JPEG and resizing.",
            data,
        )
    if probability <= low:
        return Evidence(
            "classifier",
            "no-ai-signal",
            "none",
            f"The CLIP classifier gives probability {probability:.2f} of AI{quality}; "
            "a classifier cannot show that an image is authentic.",
            data,
        )
    return Evidence(
        "classifier",
        "unsure",
        "weak",
        f"The CLIP classifier is unsure: probability {probability:.2f} of AI, between "
        f"{low:.2f} and {threshold:.2f}{quality}.",
        data,
    )


#: Names of the degraded copies the classifier also scores (see detect.classifier).
STABILITY_VARIANTS = ("jpeg_q75", "resized_0.75")
