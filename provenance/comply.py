"""``provkit comply``: a file against one law's disclosure requirements.

:func:`comply` reads a file once (its C2PA credentials, recovered through the watermark
when stripped; its XMP; its watermark) and answers, for each requirement of the regime
(docs/compliance.md lists them with their sources), ``present``, ``absent``,
``invalid`` or ``not checked``, with the evidence in words. A requirement the law
leaves to circumstances (a deployer's visible label, the Chinese explicit label outside
the cases the measures name) is reported but not required unless ``visible=True``.
It is a check of what the file carries, never legal advice. ``provkit label``
(:mod:`provenance.labelling`) adds a platform's propagator fields to the GB 45438 label.

Why one module of over 400 lines: the checks of the three regimes share the one reading
of a file (``_Seen``) and the two values they fill (Requirement, Compliance); the
watermark and visible-label checks serve two regimes each, so split by regime every part
would import the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from provkit.provenance import disclosure as disclosure_lib
from provkit.provenance import tc260
from provkit.provenance import watermark as watermark_lib
from provkit.provenance.core import imageio
from provkit.provenance.core.errors import BadInput, ProvkitError
from provkit.provenance.core.guard import reading
from provkit.provenance.core.vocabulary import (
    AI_EDITED_TYPES,
    AI_GENERATED_TYPES,
    ALGORITHMIC_TYPES,
)
from provkit.provenance.ledger import Ledger
from provkit.provenance.verify import verify_file

REGIMES = disclosure_lib.REGIMES
STATUSES = ("present", "absent", "invalid", "not checked")
AI_TYPES = AI_GENERATED_TYPES | ALGORITHMIC_TYPES | AI_EDITED_TYPES
SIGNED = ("valid", "trusted")


@dataclass(frozen=True)
class Requirement:
    """One requirement of a regime, and what the file shows for it."""

    id: str
    text: str
    status: str
    evidence: str
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.required and self.status in ("absent", "invalid")

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "requirement": self.text,
            "status": self.status,
            "required": self.required,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Compliance:
    """One file against one regime."""

    path: str
    regime: str
    requirements: tuple[Requirement, ...] = ()

    @property
    def passed(self) -> bool:
        return not any(r.failed for r in self.requirements)

    @property
    def missing(self) -> list[str]:
        return [r.id for r in self.requirements if r.failed]

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "regime": self.regime,
            "passed": self.passed,
            "missing": self.missing,
            "requirements": [r.to_json() for r in self.requirements],
        }


@dataclass
class _Seen:
    """What one file carries, read once."""

    path: Path
    mime: str
    report: object
    c2pa: dict
    data: bytes
    mark: dict | None
    ledger_knows: bool | None
    tc260: tc260.AigcLabel | None = None
    extra: dict = field(default_factory=dict)


def _read(path, *, db=None, trust=None) -> _Seen:
    p = Path(path)
    report = verify_file(p, db=db, trust=trust)
    c2pa = report.to_json()["c2pa"]
    mime = report.format or imageio.sniff_media(p)
    if not imageio.is_image_mime(mime):
        raise BadInput(
            f"{mime} is not a still image; the disclosure checks read pixels and XMP", path=p
        )
    data = imageio.read_head(p, 256 << 20)
    mark = c2pa.get("watermark")
    if mark is None:
        with reading(p, "read its watermark"):
            decoded = watermark_lib.decode(imageio.open_image(p))
        mark = decoded.to_json() if decoded is not None else None
    knows = None
    if mark and not mark.get("third_party"):
        try:
            knows = Ledger(db).get(mark["payload"]) is not None
        except Exception:  # noqa: BLE001 - no ledger here: the id cannot be resolved
            knows = None
    block = tc260.read_bytes(data, mime) if mime in tc260_mimes() else None
    return _Seen(p, mime, report, c2pa, data, mark, knows, block)


def tc260_mimes() -> tuple[str, ...]:
    return ("image/jpeg", "image/png", "image/webp")


# --------------------------------------------------------------------------- requirements


def _c2pa_marking(s: _Seen) -> Requirement:
    text = "Machine-readable marking: C2PA Content Credentials declaring AI generation"
    state, dst = s.c2pa.get("state"), s.c2pa.get("digital_source_type")
    if state in SIGNED and dst in AI_TYPES:
        return Requirement(
            "machine-readable", text, "present", f"a {state} C2PA manifest declares {dst}"
        )
    if state == "invalid":
        return Requirement(
            "machine-readable",
            text,
            "invalid",
            "the C2PA manifest does not validate: " + "; ".join(s.c2pa.get("failures") or []),
        )
    parent = next(
        (
            i
            for i in s.c2pa.get("ingredients") or []
            if i.get("relationship") == "parentOf"
            and i.get("digital_source_type") in AI_TYPES
            and i.get("state") in SIGNED
        ),
        None,
    )
    if state in SIGNED and parent is not None:
        return Requirement(
            "machine-readable",
            text,
            "present",
            f"a {state} C2PA manifest whose parent ingredient "
            f"({parent.get('title')}, {parent.get('state')}) declares "
            f"{parent.get('digital_source_type')}",
        )
    if state in SIGNED:
        return Requirement(
            "machine-readable",
            text,
            "absent",
            f"the {state} manifest declares {dst or 'no source type'}, not AI",
        )
    if state == "recovered":
        return Requirement(
            "machine-readable",
            text,
            "absent",
            "the file carries no manifest (stripped); the ledger's copy was "
            "recovered through the watermark",
        )
    return Requirement("machine-readable", text, "absent", "no C2PA manifest in the file")


def _watermark(s: _Seen, rid: str, text: str) -> Requirement:
    if not s.mark:
        return Requirement(rid, text, "absent", "no watermark reads from the pixels")
    if s.mark.get("third_party"):
        return Requirement(rid, text, "present", f"{s.mark['third_party']} reads from the pixels")
    words = f"provkit watermark reads from the pixels (asset id {s.mark.get('payload')})"
    if s.ledger_knows:
        words += "; this workspace's ledger resolves it"
    elif s.ledger_knows is False:
        words += "; this workspace's ledger does not know it (the provider's does)"
    return Requirement(rid, text, "present", words)


def _logged(s: _Seen) -> Requirement:
    text = "Logging of generated output (Code of Practice, optional): the provider's ledger"
    asset = s.c2pa.get("asset_id") or (s.mark or {}).get("payload")
    if s.ledger_knows:
        return Requirement(
            "logging",
            text,
            "present",
            f"asset {asset} is in this workspace's ledger",
            required=False,
        )
    return Requirement(
        "logging",
        text,
        "not checked" if asset else "absent",
        f"asset {asset} is not in this ledger (the provider's may hold it)"
        if asset
        else "no asset id to look up",
        required=False,
    )


def _sb942(s: _Seen) -> Requirement:
    text = (
        "Latent disclosure (SB 942 22757.3(b)): provider, system name and version, time "
        "of creation, unique identifier"
    )
    state = s.c2pa.get("state")
    sb = (s.c2pa.get("disclosure") or {}).get("sb942")
    if sb is None:
        why = (
            "no SB 942 assertion in the manifest"
            if state in SIGNED
            else "no manifest, in the file or recovered through the watermark"
        )
        return Requirement("latent-disclosure", text, "absent", why)
    problems = disclosure_lib.sb942_problems(sb)
    fields = (
        f"provider {sb.get('provider')}, system {sb.get('system')} "
        f"{sb.get('system_version')}, time {sb.get('time')}, id {sb.get('id')}"
    )
    if state == "invalid":
        return Requirement(
            "latent-disclosure", text, "invalid", f"{fields}, in a manifest that does not validate"
        )
    if problems:
        return Requirement("latent-disclosure", text, "invalid", f"{fields}: {'; '.join(problems)}")
    where = (
        (
            "recovered from the provider's ledger through the watermark (the file's own "
            "metadata was stripped)"
        )
        if state == "recovered"
        else f"in the {state} manifest"
    )
    if state == "recovered" and (s.c2pa.get("recovered_manifest") or {}).get("state") not in SIGNED:
        return Requirement(
            "latent-disclosure",
            text,
            "invalid",
            f"{fields}, {where}, but that manifest does not re-validate",
        )
    return Requirement("latent-disclosure", text, "present", f"{fields}, {where}")


def _detectable(s: _Seen) -> Requirement:
    text = (
        "Detectable by the provider's detection tool, and as permanent as feasible "
        "(a watermark that survives stripping)"
    )
    if not s.mark or s.mark.get("third_party"):
        return Requirement(
            "detectable", text, "absent", "no provkit watermark reads from the pixels"
        )
    if s.ledger_knows:
        return Requirement(
            "detectable",
            text,
            "present",
            f"the watermark (asset id {s.mark.get('payload')}) resolves in this "
            "ledger, as provkit serve --public-detection answers",
        )
    return Requirement(
        "detectable",
        text,
        "not checked",
        f"the watermark reads (asset id {s.mark.get('payload')}), but only the "
        "provider's ledger resolves it and this is not it",
    )


def _visible(
    s: _Seen, regime: str, text: str, required: bool, rid: str | None = None
) -> Requirement:
    visible = (s.c2pa.get("disclosure") or {}).get("visible_labels") or {}
    labels = [
        x for x in visible.get("labels") or [] if isinstance(x, dict) and x.get("regime") == regime
    ]
    state = s.c2pa.get("state")
    rid = rid or f"visible-label-{regime}"
    if not labels:
        return Requirement(
            rid, text, "absent", "no visible label recorded in the manifest", required
        )
    size = visible.get("image_size")
    size = tuple(size) if isinstance(size, list) and len(size) == 2 else None
    x = labels[0]
    words = (
        f"{x.get('text')!r} drawn {x.get('position')} before sealing, text "
        f"{x.get('text_height_px')} px"
    )
    if state not in SIGNED + ("recovered",):
        return Requirement(
            rid,
            text,
            "invalid",
            f"{words}, recorded in a manifest that does not validate",
            required,
        )
    if regime == "cn" and not disclosure_lib.gb_size_ok(x, size):
        return Requirement(
            rid, text, "invalid", f"{words}: under 5% of the shorter side of {size}", required
        )
    how = (
        "the hard binding vouches for the pixels"
        if state in SIGNED
        else "recorded in the recovered manifest; whether this copy still shows it is not checked"
    )
    return Requirement(rid, text, "present", f"{words} ({how})", required)


def _implicit(s: _Seen) -> list[Requirement]:
    text = (
        "Implicit label (GB 45438 / CAC measures Art. 5): XMP TC260:AIGC with Label, "
        "ContentProducer, ProduceID"
    )
    block = s.tc260
    if block is None:
        return [
            Requirement("implicit-label", text, "absent", "no TC260 AIGC block in the file's XMP")
        ]
    f = block.fields
    words = (
        f"Label {f.get('Label')}, producer {f.get('ContentProducer') or '?'}, id "
        f"{f.get('ProduceID') or '?'}"
    )
    if f.get("ContentPropagator"):
        words += f", propagator {f['ContentPropagator']} (id {f.get('PropagateID')})"
    out = [
        Requirement(
            "implicit-label",
            text,
            "present" if block.well_formed else "invalid",
            words if block.well_formed else f"{words}: {'; '.join(block.problems)}",
        )
    ]
    code = f.get("ReservedCode1")
    binding = tc260.check_binding(code, s.data)
    btext = "ReservedCode1 binds the block to these pixels (provkit: SHA-256 of the RGB pixels)"
    if binding == "not checked":
        out.append(
            Requirement(
                "label-binding",
                btext,
                "not checked",
                "ReservedCode1 is empty or not provkit's form"
                if not code
                else "ReservedCode1 is another producer's form; not checked",
                required=False,
            )
        )
    else:
        out.append(
            Requirement(
                "label-binding",
                btext,
                "present" if binding == "valid" else "invalid",
                "the pixels hash to ReservedCode1"
                if binding == "valid"
                else "the pixels differ from those the block was written for (moved or edited)",
                required=True,
            )
        )
    ids = {x for x in (s.c2pa.get("asset_id"), (s.mark or {}).get("payload")) if x}
    if f.get("ProduceID") and ids:
        same = f["ProduceID"] in ids
        out.append(
            Requirement(
                "produce-id",
                "ProduceID names this asset (the C2PA asset id or the watermark)",
                "present" if same else "invalid",
                f"ProduceID {f['ProduceID']}, asset {', '.join(sorted(ids))}",
                required=False,
            )
        )
    return out


def _regime(s: _Seen, regime: str, visible: bool) -> list[Requirement]:
    if regime == "eu":
        return [
            _c2pa_marking(s),
            _watermark(
                s,
                "watermark",
                "Detectable marking: an imperceptible watermark in the "
                "pixels (Code of Practice, second layer)",
            ),
            _visible(
                s,
                "eu",
                "Deployer's visible disclosure of deepfakes (Art. 50(4)): an EU-style label",
                visible,
            ),
            _logged(s),
        ]
    if regime == "us-ca":
        return [
            _sb942(s),
            _detectable(s),
            _visible(
                s,
                "eu" if _has_label(s, "eu") or not _has_label(s, "cn") else "cn",
                "Manifest (visible) disclosure, optional for the provider (SB 942 "
                "22757.3(a)): a visible AI label",
                visible,
                rid="visible-label",
            ),
        ]
    return [
        *_implicit(s),
        _visible(
            s,
            "cn",
            "Explicit label (GB 45438; CAC measures Art. 4): 'AI生成' visible, text at least 5% "
            "of the shorter side (where the measures ask for one)",
            visible,
        ),
    ]


def _has_label(s: _Seen, regime: str) -> bool:
    visible = (s.c2pa.get("disclosure") or {}).get("visible_labels") or {}
    return any(
        isinstance(x, dict) and x.get("regime") == regime for x in visible.get("labels") or []
    )


def comply_file(path, regime: str, *, db=None, trust=None, visible: bool = False) -> Compliance:
    """One file against ``regime`` (``eu``, ``us-ca`` or ``cn``). ``visible``: the visible
    label is required too (publishing where the law asks for one)."""
    if regime not in REGIMES:
        raise BadInput(f"unknown regime {regime!r} (known: {', '.join(REGIMES)})")
    seen = _read(path, db=db, trust=trust)
    return Compliance(str(path), regime, tuple(_regime(seen, regime, visible)))


def comply(
    paths, *, regime: str, db=None, trust=None, visible: bool = False, progress=None
) -> list[Compliance | ProvkitError]:
    """``provkit comply``: :func:`comply_file` for each file; an unreadable file yields
    its error and the others go on."""
    if regime not in REGIMES:
        raise BadInput(f"unknown regime {regime!r} (known: {', '.join(REGIMES)})")
    out: list = []
    for p in paths:
        try:
            out.append(comply_file(p, regime, db=db, trust=trust, visible=visible))
        except BadInput as e:
            out.append(e)
        if progress:
            progress(1)
    return out
