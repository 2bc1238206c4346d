"""``provkit label``: a platform's propagator fields added to a GB 45438 implicit label.

:func:`label` rewrites a file's TC260 block with ``ContentPropagator`` and
``PropagateID`` (``ReservedCode2``: the pixel binding, :mod:`provenance.tc260`). The coded
pixels are copied unchanged; a file with a C2PA manifest gets a new manifest (action
``c2pa.edited.metadata``) with the original as its ``parentOf`` ingredient, since any
metadata change breaks the original's hard binding; the original's SB 942 fields and
visible-label record are carried into it (they describe the same pixels).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

from provkit.provenance import disclosure as disclosure_lib
from provkit.provenance import keys, tc260
from provkit.provenance.core import imageio
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.files import atomic_file
from provkit.provenance.core.guard import reading
from provkit.provenance.core.vocabulary import source_type_iri
from provkit.provenance.manifest import provkit_agent, read_store, sign_stream
from provkit.provenance.verify import verify_file

#: where the TC260 block is written
MIMES = ("image/jpeg", "image/png", "image/webp")


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


def label(
    source,
    out,
    *,
    propagator: str,
    propagate_id: str,
    create: str | None = None,
    force: bool = False,
    identity=None,
    dev_identity: bool = False,
) -> Labelled:
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
        if mime not in MIMES:
            raise BadInput(
                f"the TC260 label is written into JPEG, PNG and WebP, not {mime}", path=src
            )
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
            raise BadInput(
                "the file has no TC260 AIGC block to add to; give --create-label "
                "1|2|3 to write one (1 AI-generated, 2 possibly, 3 suspected)",
                path=src,
            )
        value = tc260.make_value(producer="", produce_id="", label=create)
        created = True
    else:
        value = {k: block.fields.get(k, "") for k in tc260.FIELDS}
        value.update({k: v for k, v in block.fields.items() if k not in value})
    value.update(ContentPropagator=propagator, PropagateID=propagate_id, ReservedCode2=binding)
    dst = source_type_iri(report.digital_source_type) if report.digital_source_type else None
    payload = tc260.write(
        _without_c2pa(data, mime), mime, tc260.packet(value, digital_source_type=dst)
    )
    signed = report.state not in ("absent",)
    manifest_label = None
    with atomic_file(out, overwrite=force) as f:
        if not signed:
            f.write(payload)
        else:
            identity = identity or keys.for_signing(dev_identity=dev_identity)
            definition = {
                "claim_generator_info": [provkit_agent()],
                "title": out.name,
                "assertions": [
                    {
                        "label": "c2pa.actions.v2",
                        "created": True,
                        "data": {
                            "actions": [
                                {
                                    "action": "c2pa.opened",
                                    "parameters": {"ingredientIds": ["ingredient0"]},
                                },
                                {
                                    "action": "c2pa.edited.metadata",
                                    "softwareAgent": provkit_agent(),
                                    "parameters": {
                                        "description": (
                                            f"GB 45438 propagator fields added: {propagator}, "
                                            f"{propagate_id}"
                                        )
                                    },
                                },
                            ],
                            "allActionsIncluded": True,
                        },
                    }
                ],
            }
            # the pixels are the original's: its SB 942 fields and label record still hold
            carried = report.disclosure or {}
            for key, name in (
                ("sb942", disclosure_lib.SB942_ASSERTION),
                ("visible_labels", disclosure_lib.VISIBLE_ASSERTION),
            ):
                if report.state in ("valid", "trusted") and isinstance(carried.get(key), dict):
                    definition["assertions"].append({"label": name, "data": carried[key]})
            try:
                store = sign_stream(
                    definition,
                    identity,
                    mime,
                    io.BytesIO(payload),
                    f,
                    ingredients=((src, "parentOf"),),
                )
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
            (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            seg = data[pos : pos + 2 + length]
            if not (data[pos + 1] == 0xEB and b"jumb" in seg[:64]):
                out.append(seg)
            pos += 2 + length
        out.append(data[pos:])
        return b"".join(out)
    if mime == "image/png":
        out, pos = [data[:8]], 8
        while pos + 8 <= len(data):
            length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
            if ctype != b"caBX":
                out.append(data[pos : pos + 12 + length])
            pos += 12 + length
            if ctype == b"IEND":
                break
        return b"".join(out)
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        ctype, length = struct.unpack("<4sI", data[pos : pos + 8])
        if ctype != b"C2PA":
            chunks.append(data[pos : pos + 8 + length + (length & 1)])
        pos += 8 + length + (length & 1)
    body = b"".join(chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body
