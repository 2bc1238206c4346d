"""Classifier evidence: a calibrated probe on frozen CLIP features (detect.classifier,
detect.clip); run batched over a chunk of files. Loads torch only when a probe or a
CLIP model is configured."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from detect.classifier import Probe
from detect.clip import load_model
from detect.evidence.base import (
    AI_GENERATED,
    BaseCollector,
    Evidence,
    FileContext,
    Found,
    Options,
    finding_of,
    not_checked,
)
from provenance.core.errors import describe


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
            reason = ("no probe configured (train one with `provkit detect train`, "
                      "then pass --probe)")
            if self.clip is None:
                reason = "no CLIP model or probe configured (--clip ARCH:/path/to/weights, --probe)"
            return [Found([not_checked("classifier", reason)], None) for _ in ctxs]
        try:
            feats = self.clip.embed_images([c.image for c in ctxs])
            probs = self.probe.probability(feats)
        except Exception as e:  # noqa: BLE001
            why = f"classifier failed ({describe(e, with_path=False)})"
            return [Found([not_checked("classifier", why)], None) for _ in ctxs]
        threshold = self.options.threshold
        return [Found([classifier_evidence(float(p), self.probe, threshold)], float(p))
                for p in probs]

    def context(self, data) -> dict:
        return {"score": data}


def classifier_evidence(probability: float, probe, threshold: float = 0.8) -> Evidence:
    """One item from a calibrated probe probability."""
    metrics = probe.metrics or {}
    auc = metrics.get("heldout_auc")
    quality = f" (probe held-out AUC {auc:.3f})" if isinstance(auc, (int, float)) else ""
    data = {"probability": float(probability), "threshold": threshold,
            "clip_model_id": probe.clip_model_id, "heldout_auc": auc}
    if probability >= threshold:
        return Evidence("classifier", AI_GENERATED, "moderate",
                        f"The CLIP classifier gives probability {probability:.2f} that the image "
                        f"is AI-generated{quality}.", data)
    if probability <= 1 - threshold:
        return Evidence("classifier", "no-ai-signal", "none",
                        f"The CLIP classifier gives probability {probability:.2f} of AI{quality}; "
                        "a classifier cannot show that an image is authentic.", data)
    return Evidence("classifier", "inconclusive", "weak",
                    f"The CLIP classifier is unsure: probability {probability:.2f} of AI{quality}.",
                    data)
