"""The checks around sealing: policy decisions and the protected reference-set search.

``generate.request`` is decided before the backend runs and ``generate.output`` for each
sealed image, with the decision context the policy engine documents. Outputs are searched
against reference sets registered as protected; the matches are a policy input.
"""

from __future__ import annotations

import functools
import getpass
import os

from PIL import Image
from provkit.detect.index import ReferenceIndex
from provkit.generate.request import BackendInfo, GenerationRequest
from provkit.generate.results import SealedImage
from provkit.policies.engine import decide as decide_policy
from provkit.policies.pack import load_pack
from provkit.provenance.core import context
from provkit.provenance.core.clock import now_iso, utc_now
from provkit.provenance.core.vocabulary import TRAINING_USES


def decide(pack, point: str, ctx: dict, *, db, subject: str | None):
    """Run one policy decision (appended to the audit log); None without a pack."""
    if pack is None:
        return None
    actor = ctx.get("actor") or {}
    return decide_policy(pack, point, ctx, db=db, actor=actor.get("id"), subject=subject)


def decision_json(decision) -> dict | None:
    if decision is None:
        return None
    if hasattr(decision, "to_json"):
        return decision.to_json()
    return dict(decision)


def outcome(decision) -> str:
    return getattr(decision, "outcome", None) or (decision or {}).get("outcome", "allow")


def reasons(decision) -> str:
    reasons = getattr(decision, "reasons", None) or []
    return "; ".join(str(r) for r in reasons) or "no reason given"


def load_policy(policy):
    if policy is None:
        return None
    return load_pack(policy)


def request_context(
    request: GenerationRequest, info: BackendInfo, *, actor: dict | None, allow_training: bool
) -> dict:
    return {
        "point": "generate.request",
        "actor": actor or default_actor(),
        "request": {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "backend": info.name,
            "model": info.model or "",
            "allow_training": allow_training,
        },
        "now": now_iso(),
    }


def output_context(base: dict, sealed: SealedImage, duplicates: list[dict]) -> dict:
    training = {
        u: "allowed" if base["request"]["allow_training"] else "notAllowed" for u in TRAINING_USES
    }
    ctx = dict(base)
    ctx["point"] = "generate.output"
    ctx["asset"] = context.asset(
        path=sealed.path,
        sha256=sealed.sha256,
        asset_id=sealed.asset_id,
        verdict="ai-generated",
        score=None,
        c2pa={
            "state": "valid",
            "digital_source_type": sealed.source_type,
            "signer": sealed.signer,
            "training_mining": training,
        },
        watermark=(
            {"found": True, "scheme": "provkit", "payload": sealed.asset_id}
            if sealed.watermarked
            else None
        ),
        metadata={"digital_source_type": sealed.source_type, "generator": sealed.software_agent},
        duplicates=duplicates,
        disclosure=_disclosure(sealed.disclosures),
    )
    ctx["now"] = now_iso()
    return ctx


def _disclosure(written: dict | None) -> dict:
    """``asset.disclosure`` of an output from what its seal wrote."""
    written = written or {}
    out: dict = {}
    block = written.get("tc260")
    if block:
        out["tc260"] = {
            "present": True,
            "label": block.get("Label"),
            "producer": block.get("ContentProducer"),
            "produce_id": block.get("ProduceID"),
            "well_formed": True,
        }
    sb = written.get("sb942")
    if sb:
        out["sb942"] = {
            "present": True,
            "complete": all(
                sb.get(k) for k in ("provider", "system", "system_version", "time", "id")
            ),
            "provider": sb.get("provider"),
            "system": sb.get("system"),
            "version": sb.get("system_version"),
            "time": sb.get("time"),
            "id": sb.get("id"),
        }
    labels = written.get("visible_labels") or []
    if labels:
        out["visible_label"] = {
            "present": True,
            "regimes": sorted({x.get("regime") for x in labels}),
            "meets_gb_size": any(
                x.get("regime") == "cn"
                and x.get("text_height_px", 0) >= x.get("min_text_height_px", 1)
                for x in labels
            ),
        }
    return out


def default_actor() -> dict:
    """The login name, with the role from $PROVKIT_ROLE (default ``artist``)."""
    return {"id": _user(), "role": os.environ.get("PROVKIT_ROLE", "artist"), "org": ""}


@functools.lru_cache(maxsize=1)
def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# --------------------------------------------------------------------------- protected sets


class ProtectedCheck:
    """Near-duplicate search of outputs against reference sets marked protected."""

    def __init__(self, db, enabled: bool = True):
        self.index = None
        self.sets: list[str] = []
        self.status = "not checked"
        if not enabled:
            self.status = "not checked (turned off)"
            return
        index = ReferenceIndex(db)
        self.sets = _protected_sets(index)
        if not self.sets:
            self.status = "no protected sets registered"
            return
        self.index = index
        self.status = "checked against " + ", ".join(self.sets)

    def search(self, image: Image.Image) -> list[dict]:
        """Matches in protected sets, as ``asset.duplicates`` entries of the policy context."""
        if self.index is None:
            return []
        now = utc_now()
        return [m.policy_json(now) for m in self.index.search(image, sets=self.sets)]


def _protected_sets(index) -> list[str]:
    return [s.name for s in index.sets() if s.protected]
