"""``provkit comply`` and ``provkit label``: a file against one law's disclosure
requirements, and a platform's propagator fields added to a GB 45438 implicit label.

:func:`comply` reads a file once (its C2PA credentials, recovered through the watermark
when stripped; its XMP; its watermark) and answers, for each requirement of the regime
(docs/compliance.md lists them with their sources), ``present``, ``absent``,
``invalid`` or ``not checked``, with the evidence in words. A requirement the law
leaves to circumstances (a deployer's visible label, the Chinese explicit label outside
the cases the measures name) is reported but not required unless ``visible=True``.
It is a check of what the file carries, never legal advice.

:func:`label` rewrites a file's TC260 block with the propagator's fields. The coded
pixels are copied unchanged; a file with a C2PA manifest gets a new manifest (action
``c2pa.edited.metadata``) with the original as its ``parentOf`` ingredient, since any
metadata change breaks the original's hard binding.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

from provkit.provenance import disclosure as disclosure_lib
from provkit.provenance import keys, tc260
from provkit.provenance import watermark as watermark_lib
from provkit.provenance.core import imageio
from provkit.provenance.core.errors import BadInput, ProvkitError
from provkit.provenance.core.files import atomic_file
from provkit.provenance.core.guard import reading
from provkit.provenance.core.vocabulary import (
    AI_EDITED_TYPES,
    AI_GENERATED_TYPES,
    ALGORITHMIC_TYPES,
    source_type_iri,
)
from provkit.provenance.ledger import Ledger
from provkit.provenance.manifest import provkit_agent, read_store, sign_stream
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
        return {"id": self.id, "requirement": self.text, "status": self.status,
                "required": self.required, "evidence": self.evidence}


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
        return {"path": self.path, "regime": self.regime, "passed": self.passed,
                "missing": self.missing,
                "requirements": [r.to_json() for r in self.requirements]}


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
        raise BadInput(f"{mime} is not a still image; the disclosure checks read pixels and XMP",
                       path=p)
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
        return Requirement("machine-readable", text, "present",
                           f"a {state} C2PA manifest declares {dst}")
    if state == "invalid":
        return Requirement("machine-readable", text, "invalid",
                           "the C2PA manifest does not validate: "
                           + "; ".join(s.c2pa.get("failures") or []))
    if state in SIGNED:
        return Requirement("machine-readable", text, "absent",
                           f"the {state} manifest declares {dst or 'no source type'}, not AI")
    if state == "recovered":
        return Requirement("machine-readable", text, "absent",
                           "the file carries no manifest (stripped); the ledger's copy was "
                           "recovered through the watermark")
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


def _sb942(s: _Seen) -> Requirement:
    text = ("Latent disclosure (SB 942 22757.3(b)): provider, system name and version, time "
            "of creation, unique identifier")
    state = s.c2pa.get("state")
    sb = (s.c2pa.get("disclosure") or {}).get("sb942")
    if sb is None:
        why = "no SB 942 assertion in the manifest" if state in SIGNED else \
            "no manifest, in the file or recovered through the watermark"
        return Requirement("latent-disclosure", text, "absent", why)
    problems = disclosure_lib.sb942_problems(sb)
    fields = (f"provider {sb.get('provider')}, system {sb.get('system')} "
              f"{sb.get('system_version')}, time {sb.get('time')}, id {sb.get('id')}")
    if state == "invalid":
        return Requirement("latent-disclosure", text, "invalid",
                           f"{fields}, in a manifest that does not validate")
    if problems:
        return Requirement("latent-disclosure", text, "invalid",
                           f"{fields}: {'; '.join(problems)}")
    where = ("recovered from the provider's ledger through the watermark (the file's own "
             "metadata was stripped)") if state == "recovered" else f"in the {state} manifest"
    if state == "recovered" and (s.c2pa.get("recovered_manifest") or {}).get("state") \
            not in SIGNED:
        return Requirement("latent-disclosure", text, "invalid",
                           f"{fields}, {where}, but that manifest does not re-validate")
    return Requirement("latent-disclosure", text, "present", f"{fields}, {where}")


def _detectable(s: _Seen) -> Requirement:
    text = ("Detectable by the provider's detection tool, and as permanent as feasible "
            "(a watermark that survives stripping)")
    if not s.mark or s.mark.get("third_party"):
        return Requirement("detectable", text, "absent",
                           "no provkit watermark reads from the pixels")
    if s.ledger_knows:
        return Requirement("detectable", text, "present",
                           f"the watermark (asset id {s.mark.get('payload')}) resolves in this "
                           "ledger, as provkit serve --public-detection answers")
    return Requirement("detectable", text, "not checked",
                       f"the watermark reads (asset id {s.mark.get('payload')}), but only the "
                       "provider's ledger resolves it and this is not it")


def _visible(s: _Seen, regime: str, text: str, required: bool,
             rid: str | None = None) -> Requirement:
    visible = (s.c2pa.get("disclosure") or {}).get("visible_labels") or {}
    labels = [x for x in visible.get("labels") or [] if isinstance(x, dict)
              and x.get("regime") == regime]
    state = s.c2pa.get("state")
    rid = rid or f"visible-label-{regime}"
    if not labels:
        return Requirement(rid, text, "absent", "no visible label recorded in the manifest",
                           required)
    size = visible.get("image_size")
    size = tuple(size) if isinstance(size, list) and len(size) == 2 else None
    x = labels[0]
    words = (f"{x.get('text')!r} drawn {x.get('position')} before sealing, text "
             f"{x.get('text_height_px')} px")
    if state not in SIGNED + ("recovered",):
        return Requirement(rid, text, "invalid", f"{words}, recorded in a manifest that does "
                                                 "not validate", required)
    if regime == "cn" and not disclosure_lib.gb_size_ok(x, size):
        return Requirement(rid, text, "invalid",
                           f"{words}: under 5% of the shorter side of {size}", required)
    how = "the hard binding vouches for the pixels" if state in SIGNED else \
        "recorded in the recovered manifest; whether this copy still shows it is not checked"
    return Requirement(rid, text, "present", f"{words} ({how})", required)


def _implicit(s: _Seen) -> list[Requirement]:
    text = ("Implicit label (GB 45438 / CAC measures Art. 5): XMP TC260:AIGC with Label, "
            "ContentProducer, ProduceID")
    block = s.tc260
    if block is None:
        return [Requirement("implicit-label", text, "absent",
                            "no TC260 AIGC block in the file's XMP")]
    f = block.fields
    words = (f"Label {f.get('Label')}, producer {f.get('ContentProducer') or '?'}, id "
             f"{f.get('ProduceID') or '?'}")
    if f.get("ContentPropagator"):
        words += f", propagator {f['ContentPropagator']} (id {f.get('PropagateID')})"
    out = [Requirement("implicit-label", text,
                       "present" if block.well_formed else "invalid",
                       words if block.well_formed else f"{words}: {'; '.join(block.problems)}")]
    code = f.get("ReservedCode1")
    binding = tc260.check_binding(code, s.data)
    btext = "ReservedCode1 binds the block to these pixels (provkit: SHA-256 of the RGB pixels)"
    if binding == "not checked":
        out.append(Requirement("label-binding", btext, "not checked",
                               "ReservedCode1 is empty or not provkit's form" if not code else
                               "ReservedCode1 is another producer's form; not checked",
                               required=False))
    else:
        out.append(Requirement(
            "label-binding", btext, "present" if binding == "valid" else "invalid",
            "the pixels hash to ReservedCode1" if binding == "valid" else
            "the pixels differ from those the block was written for (moved or edited)",
            required=True))
    ids = {x for x in (s.c2pa.get("asset_id"), (s.mark or {}).get("payload")) if x}
    if f.get("ProduceID") and ids:
        same = f["ProduceID"] in ids
        out.append(Requirement("produce-id", "ProduceID names this asset (the C2PA asset id or "
                               "the watermark)", "present" if same else "invalid",
                               f"ProduceID {f['ProduceID']}, asset {', '.join(sorted(ids))}",
                               required=False))
    return out


def _regime(s: _Seen, regime: str, visible: bool) -> list[Requirement]:
    if regime == "eu":
        return [
            _c2pa_marking(s),
            _watermark(s, "watermark", "Detectable marking: an imperceptible watermark in the "
                                       "pixels (Code of Practice, second layer)"),
            _visible(s, "eu", "Deployer's visible disclosure of deepfakes (Art. 50(4)): an "
                              "EU-style label", visible),
        ]
    if regime == "us-ca":
        return [
            _sb942(s),
            _detectable(s),
            _visible(s, "eu" if _has_label(s, "eu") or not _has_label(s, "cn") else "cn",
                     "Manifest (visible) disclosure, optional for the provider (SB 942 "
                     "22757.3(a)): a visible AI label", visible, rid="visible-label"),
        ]
    return [
        *_implicit(s),
        _visible(s, "cn", "Explicit label (GB 45438; CAC measures Art. 4): 'AI生成' visible, text at least 5% "
                          "of the shorter side (where the measures ask for one)", visible),
    ]


def _has_label(s: _Seen, regime: str) -> bool:
    visible = (s.c2pa.get("disclosure") or {}).get("visible_labels") or {}
    return any(isinstance(x, dict) and x.get("regime") == regime
               for x in visible.get("labels") or [])


def comply_file(path, regime: str, *, db=None, trust=None, visible: bool = False) -> Compliance:
    """One file against ``regime`` (``eu``, ``us-ca`` or ``cn``). ``visible``: the visible
    label is required too (publishing where the law asks for one)."""
    if regime not in REGIMES:
        raise BadInput(f"unknown regime {regime!r} (known: {', '.join(REGIMES)})")
    seen = _read(path, db=db, trust=trust)
    return Compliance(str(path), regime, tuple(_regime(seen, regime, visible)))


def comply(paths, *, regime: str, db=None, trust=None, visible: bool = False,
           progress=None) -> list[Compliance | ProvkitError]:
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


# --------------------------------------------------------------------------- label


@dataclass(frozen=True)
class Labelled:
    """What :func:`label` wrote."""

    path: str
    source: str
    tc260: dict
    resigned: bool
    manifest_label: str | None = None
    created_block: bool = False

    def to_json(self) -> dict:
        return dict(self.__dict__)


def label(source, out, *, propagator: str, propagate_id: str, create: str | None = None,
          force: bool = False, identity=None) -> Labelled:
    """``provkit label``: the file's TC260 block with ``ContentPropagator`` and
    ``PropagateID`` set (``ReservedCode2``: the pixel binding), written to ``out``.

    A file without a block is refused unless ``create`` gives the Label to write
    ("1", "2" or "3": the platform's own finding). A file with a C2PA manifest is
    re-signed with the workspace identity, the original as its parentOf ingredient."""
    src = Path(source)
    out = Path(out)
    if not propagator or not propagate_id:
        raise BadInput("give both --propagator and --propagate-id")
    with reading(src, "label"):
        mime = imageio.sniff(src)
        if mime not in tc260_mimes():
            raise BadInput(f"the TC260 label is written into JPEG, PNG and WebP, not {mime}",
                           path=src)
        if out.exists() and not force:
            raise BadInput("output already exists (use --force to replace it)", path=out)
        if out.exists() and out.resolve() == src.resolve():
            raise BadInput("output would overwrite the input; choose another -o path", path=out)
        data = src.read_bytes()
        block = tc260.read_bytes(data, mime)
        binding = tc260.binding_of_bytes(data)
        report = verify_file(src, recover=False)
    created = False
    if block is None:
        if create not in tc260.LABELS:
            raise BadInput("the file has no TC260 AIGC block to add to; give --create-label "
                           "1|2|3 to write one (1 AI-generated, 2 possibly, 3 suspected)",
                           path=src)
        value = tc260.make_value(producer="", produce_id="", label=create)
        created = True
    else:
        value = {k: block.fields.get(k, "") for k in tc260.FIELDS}
        value.update({k: v for k, v in block.fields.items() if k not in value})
    value.update(ContentPropagator=propagator, PropagateID=propagate_id, ReservedCode2=binding)
    dst = source_type_iri(report.digital_source_type) if report.digital_source_type else None
    payload = tc260.write(_without_c2pa(data, mime), mime, tc260.packet(value,
                                                                       digital_source_type=dst))
    signed = report.state not in ("absent",)
    manifest_label = None
    with atomic_file(out, overwrite=force) as f:
        if not signed:
            f.write(payload)
        else:
            identity = identity or keys.load_or_init()
            definition = {
                "claim_generator_info": [provkit_agent()], "title": out.name,
                "assertions": [{"label": "c2pa.actions.v2", "created": True, "data": {
                    "actions": [{"action": "c2pa.opened",
                                 "parameters": {"ingredientIds": ["ingredient0"]}},
                                {"action": "c2pa.edited.metadata", "softwareAgent": provkit_agent(),
                                 "parameters": {"description": (
                                     f"GB 45438 propagator fields added: {propagator}, "
                                     f"{propagate_id}")}}],
                    "allActionsIncluded": True}}]}
            # the pixels are the original's: its SB 942 fields and label record still hold
            carried = report.disclosure or {}
            for key, name in (("sb942", disclosure_lib.SB942_ASSERTION),
                              ("visible_labels", disclosure_lib.VISIBLE_ASSERTION)):
                if report.state in ("valid", "trusted") and isinstance(carried.get(key), dict):
                    definition["assertions"].append({"label": name, "data": carried[key]})
            try:
                store = sign_stream(definition, identity, mime, io.BytesIO(payload), f,
                                    ingredients=((src, "parentOf"),))
            except Exception as e:  # noqa: BLE001 - the SDK's refusal, in one line
                raise BadInput(f"re-signing failed: {e}", path=out) from None
            manifest_label = _active_label(store)
    return Labelled(str(out), str(src), value, signed, manifest_label, created)


def _active_label(store: bytes) -> str | None:
    try:
        return read_store(store).get("active_manifest")
    except Exception:  # noqa: BLE001
        return None


def _without_c2pa(data: bytes, mime: str) -> bytes:
    """The file without its embedded C2PA manifest store (JPEG APP11 JUMBF, PNG caBX,
    WebP C2PA chunk): the new manifest replaces it, the old one is its ingredient."""
    if mime == "image/jpeg":
        out, pos = [data[:2]], 2
        while pos + 4 <= len(data) and data[pos] == 0xFF and data[pos + 1] != 0xDA:
            (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
            seg = data[pos:pos + 2 + length]
            if not (data[pos + 1] == 0xEB and b"jumb" in seg[:64]):
                out.append(seg)
            pos += 2 + length
        out.append(data[pos:])
        return b"".join(out)
    if mime == "image/png":
        out, pos = [data[:8]], 8
        while pos + 8 <= len(data):
            length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
            if ctype != b"caBX":
                out.append(data[pos:pos + 12 + length])
            pos += 12 + length
            if ctype == b"IEND":
                break
        return b"".join(out)
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        ctype, length = struct.unpack("<4sI", data[pos:pos + 8])
        if ctype != b"C2PA":
            chunks.append(data[pos:pos + 8 + length + (length & 1)])
        pos += 8 + length + (length & 1)
    body = b"".join(chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body



# --------------------------------------------------------------------------- public detection


@dataclass(frozen=True)
class PublicAnswer:
    """What SB 942's free detection tool reports for one image: whether it carries a
    recognised AI disclosure, and the provenance data (provider, system and version,
    time, id), from the file's own manifest or resolved from its watermark through the
    ledger when the metadata was stripped. Nothing about the caller or the file name."""

    disclosure: bool
    ai_generated: bool | None
    provider: str | None = None
    system: str | None = None
    version: str | None = None
    time: str | None = None
    id: str | None = None
    resolved_by: str | None = None
    credentials: str = "absent"
    tc260: dict | None = None
    watermark: dict | None = None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["notes"] = list(self.notes)
        return d


def public_detect(path, *, db=None, trust=None) -> PublicAnswer:
    """``POST /public/v1/detect``: the SB 942 answer for one image (see
    :class:`PublicAnswer`). Reads only; keeps and records nothing."""
    report = verify_file(path, db=db, trust=trust)
    c = report.to_json()["c2pa"]
    state = c.get("state") or "absent"
    found = c.get("disclosure") or {}
    sb = found.get("sb942") if isinstance(found.get("sb942"), dict) else None
    block = found.get("tc260")
    mark = c.get("watermark")
    notes: list[str] = []
    fields: dict = {}
    resolved = None
    usable = state in SIGNED or (state == "recovered" and (
        c.get("recovered_manifest") or {}).get("state") in SIGNED)
    if sb and usable:
        fields = {"provider": sb.get("provider"), "system": sb.get("system"),
                  "version": sb.get("system_version"), "time": sb.get("time"), "id": sb.get("id")}
        resolved = ("the watermark, through the provider's ledger (the file's metadata was "
                    "stripped)") if state == "recovered" else "the file's C2PA manifest"
        notes.append("The SB 942 latent disclosure was read from " + resolved + ".")
    elif usable:
        created = next((a for a in c.get("actions") or [] if a.get("digital_source_type")), {})
        signer = c.get("signer") or {}
        fields = {"provider": signer.get("organization") or signer.get("common_name"),
                  "system": created.get("software_agent"), "version": None,
                  "time": signer.get("time"), "id": c.get("asset_id")}
        resolved = "the C2PA manifest (no SB 942 assertion; read from its signer and actions)"
        notes.append("No SB 942 assertion; the provider and system are the C2PA signer and "
                      "software agent.")
    elif state == "invalid":
        notes.append("A C2PA manifest is present but does not validate; nothing it says is "
                     "reported.")
    elif state == "mismatch":
        fields = {"id": c.get("asset_id")}
        resolved = "the watermark (the picture differs from what was issued)"
        notes.append("The watermark names an issued asset, but this picture differs from it: "
                     "only the id is reported.")
    dst = c.get("digital_source_type") if usable else None
    tc_ok = isinstance(block, dict) and block.get("well_formed")
    if tc_ok:
        f = block.get("fields") or {}
        notes.append(f"Implicit AI label (GB 45438): producer {f.get('ContentProducer')}, id "
                     f"{f.get('ProduceID')}, Label {f.get('Label')} (unsigned metadata).")
        fields.setdefault("id", f.get("ProduceID"))
    third = (mark or {}).get("third_party")
    if third:
        notes.append(f"{third} found in the pixels.")
    ai = True if (dst in AI_TYPES or (tc_ok and str((block.get("fields") or {}).get("Label"))
                                     == "1") or third or (sb and usable)) else None
    present = bool((sb and usable) or dst in AI_TYPES or tc_ok or third)
    if not present and not notes:
        notes.append("No recognised AI disclosure: no C2PA manifest, no GB 45438 label, no "
                     "watermark this service resolves. That is no proof the image was not "
                     "AI-generated.")
    wm = None
    if mark:
        wm = {"found": True, "scheme": mark.get("scheme"), "payload": mark.get("payload"),
              "third_party": third}
    return PublicAnswer(disclosure=present, ai_generated=ai, resolved_by=resolved,
                        credentials=state, tc260=block if isinstance(block, dict) else None,
                        watermark=wm, notes=tuple(notes),
                        **{k: fields.get(k) for k in ("provider", "system", "version",
                                                      "time", "id")})
