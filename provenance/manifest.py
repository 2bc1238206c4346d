"""C2PA manifests: what provkit writes into them, and the SDK settings it reads them with.

:class:`ManifestSpec` is the value a caller fills (``provkit sign`` from its options,
the generator from its request); :func:`manifest_definition` turns it into the
manifest JSON c2pa-python's ``Builder`` takes; :func:`sign_stream` signs; and
:func:`context` builds the ``c2pa.Context`` (trust anchors, remote fetching) that
signing and validation share.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from provkit.provenance.core import about, imageio
from provkit.provenance.core.errors import BadInput
from provkit.provenance.core.vocabulary import (
    C2PA_ACTIONS,
    CUSTOM_ACTION,
    TRAINING_USES,
    canonical_source_type,
    source_type_iri,
)

#: Label of the small assertion that carries the provkit asset id.
ASSET_ASSERTION = "io.provkit.asset"
RELATIONSHIPS = ("parentOf", "componentOf", "inputTo")


def action_name(action: str) -> str:
    """``edited`` -> ``c2pa.edited``; a C2PA action or a custom one in reverse-DNS form
    (``com.example.retouched``) is kept; anything else is BadInput."""
    name = action if "." in action else f"c2pa.{action}"
    if name.startswith("c2pa."):
        if name not in C2PA_ACTIONS:
            raise BadInput(
                f"unknown C2PA action {action[:60]!r} (known: "
                f"{', '.join(sorted(a[5:] for a in C2PA_ACTIONS))}; or a custom "
                "action in reverse-DNS form, e.g. com.example.retouched)"
            )
        return name
    if not re.match(CUSTOM_ACTION, name):
        raise BadInput(
            f"custom action {action[:60]!r} must be in reverse-DNS form "
            "(lower-case domain labels, then a name: com.example.retouched)"
        )
    return name


@dataclass(frozen=True)
class ManifestSpec:
    """What to say in a manifest. Every field is optional except what C2PA needs.

    ``ingredients`` is a sequence of ``(path, relationship)``; a ``parentOf`` ingredient
    makes the first action ``c2pa.opened`` of that parent, as C2PA requires."""

    title: str | None = None
    source_type: str | None = None
    action: str | None = None
    software_agent: dict | None = None
    parameters: dict = field(default_factory=dict)
    author: str | None = None
    no_train: bool = False  # cawg.training-mining: every use notAllowed
    allow_training: bool = False  # cawg.training-mining: every use allowed
    ingredients: tuple = ()
    extra_assertions: tuple = ()

    def __post_init__(self):
        if self.source_type and not self.source_type.startswith("http"):
            # fail early on a misspelt type; any case is accepted and stored canonical
            object.__setattr__(self, "source_type", canonical_source_type(self.source_type))
        for _, rel in self.ingredients:
            if rel not in RELATIONSHIPS:
                raise BadInput(
                    f"unknown ingredient relationship '{rel}' (one of: {', '.join(RELATIONSHIPS)})"
                )

    @property
    def has_parent(self) -> bool:
        return any(rel == "parentOf" for _, rel in self.ingredients)

    def resolved_action(self) -> str:
        if self.action:
            return action_name(self.action)
        return "c2pa.edited" if self.has_parent else "c2pa.created"

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["ingredients"] = [[str(p), r] for p, r in self.ingredients]
        d["extra_assertions"] = list(self.extra_assertions)
        return d


def provkit_agent() -> dict:
    return {"name": about.NAME, "version": about.version()}


def soft_binding_assertion(alg: str, asset_id: str) -> dict:
    value = base64.b64encode(bytes.fromhex(asset_id)).decode()
    return {
        "label": "c2pa.soft-binding",
        "data": {"alg": alg, "blocks": [{"scope": {}, "value": value}]},
    }


def manifest_definition(
    spec: ManifestSpec, *, asset_id: str | None = None, soft_binding_alg: str | None = None
) -> dict:
    """The manifest JSON for ``Builder``: actions v2, authorship, training rules, bindings."""
    agent = {**provkit_agent(), **(spec.software_agent or {})}
    action = {"action": spec.resolved_action(), "softwareAgent": agent}
    if spec.source_type:
        action["digitalSourceType"] = source_type_iri(spec.source_type)
    elif action["action"] == "c2pa.created":
        raise BadInput(
            "a created asset needs a digital source type (--source-type, e.g. "
            "digitalCapture, trainedAlgorithmicMedia)"
        )
    if spec.parameters:
        action["parameters"] = dict(spec.parameters)
    actions = [action]
    if spec.has_parent:
        parents = [
            f"ingredient{i}" for i, (_, rel) in enumerate(spec.ingredients) if rel == "parentOf"
        ]
        if action["action"] in ("c2pa.created", "c2pa.opened"):
            raise BadInput(f"action {action['action']} cannot have a parentOf ingredient")
        actions.insert(0, {"action": "c2pa.opened", "parameters": {"ingredientIds": parents}})
    # provkit records every action it took, and the actions are its own statement
    # (created, not gathered): the rubric's ambiguousActions signal reads both.
    assertions = [
        {
            "label": "c2pa.actions.v2",
            "created": True,
            "data": {"actions": actions, "allActionsIncluded": True},
        }
    ]
    if spec.author:
        assertions.append(
            {
                "label": "stds.schema-org.CreativeWork",
                "data": {
                    "@context": "https://schema.org",
                    "@type": "CreativeWork",
                    "author": [{"@type": "Person", "name": spec.author}],
                },
            }
        )
    if spec.no_train and spec.allow_training:
        raise BadInput("a manifest cannot both allow and forbid AI training")
    if spec.no_train or spec.allow_training:
        use_value = "notAllowed" if spec.no_train else "allowed"
        assertions.append(
            {
                "label": "cawg.training-mining",
                "data": {"entries": {use: {"use": use_value} for use in TRAINING_USES}},
            }
        )
    if asset_id and soft_binding_alg:
        assertions.append(soft_binding_assertion(soft_binding_alg, asset_id))
    if asset_id:
        assertions.append({"label": ASSET_ASSERTION, "data": {"asset_id": asset_id}})
    assertions.extend(dict(a) for a in spec.extra_assertions)
    definition = {"claim_generator_info": [provkit_agent()], "assertions": assertions}
    if spec.title:
        definition["title"] = spec.title
    return definition


# --------------------------------------------------------------------------- SDK glue


def supported_mime(mime: str, path=None) -> str:
    """``mime`` if c2pa-python can embed a manifest in it, else BadInput."""
    import c2pa

    if mime not in c2pa.Builder.get_supported_mime_types():
        raise BadInput(f"C2PA cannot be embedded in {mime} files", path=path)
    return mime


def settings(
    *, trust_anchors: bytes | str | None = None, fetch_remote: bool = False, ocsp: bool = False
) -> dict:
    """SDK settings: anchors added to the SDK's own, trust checked, no network by default
    (remote manifests and OCSP revocation checks are fetched only when asked)."""
    s = {
        "verify": {
            "verify_trust": True,
            "remote_manifest_fetch": bool(fetch_remote),
            "ocsp_fetch": bool(ocsp),
        }
    }
    if trust_anchors:
        pem = trust_anchors.decode() if isinstance(trust_anchors, bytes) else trust_anchors
        s["trust"] = {"user_anchors": pem}
    return s


def context(
    *, trust_anchors: bytes | str | None = None, fetch_remote: bool = False, ocsp: bool = False
):
    """A ``c2pa.Context`` with :func:`settings` (one per distinct settings, reused)."""
    if isinstance(trust_anchors, str):
        trust_anchors = trust_anchors.encode()
    return _cached_context(trust_anchors or b"", bool(fetch_remote), bool(ocsp))


@functools.lru_cache(maxsize=8)
def _cached_context(trust_anchors: bytes, fetch_remote: bool, ocsp: bool = False):
    import c2pa

    return c2pa.Context.from_dict(
        settings(trust_anchors=trust_anchors, fetch_remote=fetch_remote, ocsp=ocsp)
    )


def read_anchor_file(path) -> bytes:
    """PEM trust anchors from a file; BadInput if unreadable or not PEM certificates."""
    p = Path(path)
    try:
        data = imageio.read_head(p, 64 << 20)  # a regular file only (never a pipe)
    except OSError as e:
        raise BadInput(f"cannot read trust anchors ({e.strerror or e})", path=p) from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise BadInput("no PEM certificates in trust anchor file", path=p)
    return data


def new_builder(definition, ctx=None):
    """A ``c2pa.Builder`` for ``definition`` (dict or JSON), always with provkit's settings.

    Every Builder provkit makes comes from here: without a Context the SDK's defaults
    apply, and they fetch remote manifests of ingredients (a file given as an ingredient
    could make provkit GET an address of its choosing)."""
    import c2pa

    text = definition if isinstance(definition, str) else json.dumps(definition)
    return c2pa.Builder(text, ctx if ctx is not None else context())


def resource_bytes(reader, identifier: str | None) -> bytes | None:
    """The bytes of one resource (a thumbnail) of an open SDK ``Reader``, or None when it
    is not named or the SDK cannot give it."""
    import c2pa

    if not identifier:
        return None
    buf = io.BytesIO()
    try:
        reader.resource_to_stream(identifier, buf)
    except c2pa.C2paError:
        return None
    return buf.getvalue() or None


def new_reader(mime: str, stream, ctx=None, *, manifest_data: bytes | None = None):
    """A ``c2pa.Reader``, always with provkit's settings (see :func:`new_builder`);
    ``manifest_data``: a manifest store kept outside the file (a sidecar, a fetched
    remote manifest) to validate the file against."""
    import c2pa

    return c2pa.Reader(mime, stream, manifest_data, context=ctx if ctx is not None else context())


def sign_stream(
    definition: dict, identity, mime: str, source, dest, *, ingredients=(), ctx=None
) -> bytes:
    """Sign ``source`` into ``dest`` with ``identity``; return the manifest store bytes.

    ``ingredients``: ``(path, relationship)`` pairs, labelled ``ingredient<i>`` so
    actions can refer to them. The Builder (and so every ingredient read) uses
    provkit's settings: no remote manifest is fetched."""
    builder = new_builder(definition, ctx)
    try:
        for i, (path, rel) in enumerate(ingredients):
            ing_mime = imageio.sniff_media(path)
            with imageio.open_regular(path) as f:
                builder.add_ingredient(
                    {"title": Path(path).name, "relationship": rel, "label": f"ingredient{i}"},
                    ing_mime,
                    f,
                )
        signer = identity.c2pa_signer()
        try:
            return builder.sign(signer, mime, source, dest)
        finally:
            signer.close()
    finally:
        builder.close()


def read_store(store: bytes, *, ctx=None, thumbnail: bool = False):
    """Parse a standalone manifest store (``application/c2pa``) into Reader JSON.

    With ``thumbnail=True`` return ``(json, thumbnail bytes or None)``: the active
    manifest's claim thumbnail, a small copy of the signed pixels."""

    reader = new_reader("application/c2pa", io.BytesIO(store), ctx)
    try:
        parsed = json.loads(reader.json())
        if not thumbnail:
            return parsed
        manifest = parsed.get("manifests", {}).get(parsed.get("active_manifest"), {})
        return parsed, resource_bytes(reader, (manifest.get("thumbnail") or {}).get("identifier"))
    finally:
        reader.close()
