"""The credential report of one file, built from a c2pa-python Reader's JSON.

:class:`VerifyReport` is what ``provkit verify`` prints; :func:`report_from_store`
reads signer, source type, actions, ingredients (each manifest expanded once),
soft bindings, training-and-mining rules and authors out of the store.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from provenance.certs import cert_issuers
from provenance.manifest import ASSET_ASSERTION, source_type_name
from provenance.status import HARD_BINDING_CODES, explain, state_from_results, status_codes


@dataclass(frozen=True)
class VerifyReport:
    """The credential report for one file."""

    path: str
    state: str
    remote_url: str | None = None
    manifest_label: str | None = None
    title: str | None = None
    signer: dict | None = None
    digital_source_type: str | None = None
    actions: list = field(default_factory=list)
    ingredients: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    explanation: list = field(default_factory=list)
    soft_binding: list = field(default_factory=list)
    training_mining: dict = field(default_factory=dict)
    author: list = field(default_factory=list)
    asset_id: str | None = None
    recovered_by: dict | None = None
    recovered_manifest: dict | None = None
    watermark: dict | None = None
    #: For ``recovered`` and ``mismatch``: the pixels against the ledger's fingerprints of
    #: the asset (``match``, ``distance`` in bits, ``limits``).
    pixel_match: dict | None = None

    @property
    def ok(self) -> bool:
        if self.state == "recovered":
            return (self.recovered_manifest or {}).get("state") in ("valid", "trusted")
        return self.state in ("valid", "trusted")

    def to_json(self) -> dict:
        c2pa = {k: v for k, v in self.__dict__.items() if k != "path"}
        return {"path": self.path, "c2pa": c2pa}


def _assertion(manifest: dict, *labels):
    for a in manifest.get("assertions", []):
        if a.get("label") in labels or any(a.get("label", "").startswith(lb + "__")
                                           for lb in labels):
            return a.get("data")
    return None

def _actions(manifest: dict) -> list[dict]:
    data = _assertion(manifest, "c2pa.actions.v2", "c2pa.actions") or {}
    out = []
    for a in data.get("actions", []):
        agent = a.get("softwareAgent")
        if isinstance(agent, dict):
            agent = " ".join(str(agent[k]) for k in ("name", "version") if agent.get(k))
        item = {"action": a.get("action"), "software_agent": agent,
                "digital_source_type": source_type_name(a.get("digitalSourceType"))}
        if a.get("parameters"):
            params = {k: v for k, v in a["parameters"].items() if k != "ingredients"}
            if params:
                item["parameters"] = params
        if a.get("when"):
            item["when"] = a["when"]
        out.append(item)
    return out

def _signer(manifest: dict, cert_issuers: dict | None = None) -> dict | None:
    info = manifest.get("signature_info")
    if not info:
        return None
    serial = info.get("cert_serial_number")
    return {"common_name": info.get("common_name"),
            # c2pa-rs reports the signing certificate's organisation as "issuer"
            "organization": info.get("issuer"),
            "issuer": (cert_issuers or {}).get(serial),
            "time": info.get("time"), "alg": info.get("alg"), "serial": serial}

def _soft_bindings(manifest: dict) -> list[dict]:
    out = []
    for a in manifest.get("assertions", []):
        if a.get("label", "").split("__")[0] != "c2pa.soft-binding":
            continue
        data = a.get("data") or {}
        for block in data.get("blocks", []):
            try:
                value = base64.b64decode(block.get("value", "")).hex()
            except ValueError:
                value = None
            out.append({"alg": data.get("alg"), "value": value, "scope": block.get("scope")})
    return out

def _training(manifest: dict) -> dict:
    data = _assertion(manifest, "cawg.training-mining", "c2pa.training-mining") or {}
    return {k: (v.get("use") if isinstance(v, dict) else v)
            for k, v in (data.get("entries") or {}).items()}

def _authors(manifest: dict) -> list[str]:
    data = _assertion(manifest, "stds.schema-org.CreativeWork") or {}
    authors = data.get("author") or []
    return [a.get("name") for a in authors if isinstance(a, dict) and a.get("name")]

#: Most ingredient entries one report lists (a store can name the same manifests many times).
MAX_INGREDIENT_NODES = 256

def _ingredients(store: dict, manifest: dict, cert_issuers, walk: dict | None = None
                 ) -> list[dict]:
    """The ingredient tree under ``manifest``, each manifest expanded once.

    A manifest met again (a shared ingredient, or a cycle back to an ancestor) is
    listed with ``"repeated": true`` and its label instead of being expanded again,
    and at most :data:`MAX_INGREDIENT_NODES` entries are listed in all; an entry
    ``{"omitted": N}`` says how many more there were."""
    if walk is None:
        walk = {"seen": set(), "left": MAX_INGREDIENT_NODES}
    manifests = store.get("manifests") or {}
    out = []
    ingredients = manifest.get("ingredients") or []
    for n, ing in enumerate(ingredients):
        if walk["left"] <= 0:
            out.append({"omitted": len(ingredients) - n,
                        "note": f"more ingredients not listed (at most "
                                f"{MAX_INGREDIENT_NODES} per report)"})
            break
        walk["left"] -= 1
        label = ing.get("active_manifest")
        child = manifests.get(label) if label else None
        results = ing.get("validation_results")
        failures = status_codes(results)
        item = {"title": ing.get("title"), "relationship": ing.get("relationship"),
                "format": ing.get("format"), "manifest_label": label}
        if child is None:
            item.update(state="absent", failures=failures)
        elif label in walk["seen"]:
            item.update(state=state_from_results(results), failures=failures, repeated=True,
                        explanation=explain(failures), ingredients=[])
        else:
            walk["seen"].add(label)
            if set(failures) - {"signingCredential.untrusted"} <= HARD_BINDING_CODES and \
                    set(failures) & HARD_BINDING_CODES:
                item["note"] = ("only the hard binding fails: the ingredient's bytes are not "
                                "those its manifest was signed over (expected for recovered "
                                "credentials)")
            item.update(
                state=state_from_results(results), failures=failures,
                explanation=explain(failures), signer=_signer(child, cert_issuers),
                digital_source_type=_source_type(child), actions=_actions(child),
                ingredients=_ingredients(store, child, cert_issuers, walk))
        out.append(item)
    return out

def _source_type(manifest: dict) -> str | None:
    for a in _actions(manifest):
        if a.get("digital_source_type"):
            return a["digital_source_type"]
    return None

def _asset_id(manifest: dict) -> str | None:
    data = _assertion(manifest, ASSET_ASSERTION) or {}
    return data.get("asset_id")

def report_from_store(path, store: dict, *, state: str, failures: list, remote_url=None,
                      raw=b"", raw_end: int | None = None) -> VerifyReport:
    """A report from a Reader's JSON (``store``) and the state the SDK gave.

    ``raw``: the manifest store or file bytes (or a memory map; ``raw_end`` bounds
    where the manifest can be), for the issuer names in the certificate chains."""
    label = store.get("active_manifest")
    manifests = store.get("manifests") or {}
    manifest = manifests.get(label, {}) if label else {}
    serials = {(m.get("signature_info") or {}).get("cert_serial_number")
               for m in manifests.values()} - {None}
    issuers = cert_issuers(raw, raw_end, serials=serials) if serials and len(raw) else {}
    return VerifyReport(
        path=str(path), state=state, remote_url=remote_url, manifest_label=label,
        title=manifest.get("title"), signer=_signer(manifest, issuers),
        digital_source_type=_source_type(manifest), actions=_actions(manifest),
        ingredients=_ingredients(store, manifest, issuers,
                                 {"seen": {label}, "left": MAX_INGREDIENT_NODES}),
        failures=failures,
        explanation=explain(failures), soft_binding=_soft_bindings(manifest),
        training_mining=_training(manifest), author=_authors(manifest),
        asset_id=_asset_id(manifest),
    )
