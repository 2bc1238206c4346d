"""The C2PA asset rubric v1.0: signals, integrity outcomes and conforming products.

The rubric files shipped in ``provenance/data/c2pa/`` (C2PA, CC BY 4.0) define the
signals as json-formula expressions over crJSON. provkit implements the same rules in
Python, reading the rubric's own lists (inception actions, non-editorial actions,
GenAI source types, the integrity code lists) from the shipped files, and cites the
rubric rule id for every signal it reports.

Per manifest node (:func:`node_signals`):

- inception signals, from the ``digitalSourceType`` of the ``c2pa.created`` /
  ``c2pa.opened`` actions of the ``c2pa.actions.v2`` assertion (only v2 actions count),
  and ``mediaUnknownProvenance`` for a ``c2pa.ingredient.v3`` assertion without an
  active manifest (provkit checks every v3 ingredient, not only the first);
- transformation signals, from the other actions: ``nonEditorial`` (the rubric's
  allow-list), ``perceptibleGenAI`` / ``perceptibleNonGenAI`` /
  ``perceptiblePossiblyGenAI`` by their source type, and ``ambiguousActions`` (no
  actions, ``allActionsIncluded`` not true, custom or unknown actions, or actions
  gathered rather than created by the claim generator).

A signal the signer's Conforming Products List record disallows (e.g. a generator
claiming ``capturedMedia``) is reported as not credible and left out of the signals a
policy sees.
"""

from __future__ import annotations

import functools
import json
import re

from provkit.provenance.core.der import fields as der_fields
from provkit.provenance.trust import data_file

SIGNALS_FILE = "asset-rubric-signals-local.yml"
INTEGRITY_FILE = "asset-rubric-integrity.yml"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"

INCEPTION = {
    "blankCanvas": ["http://c2pa.org/digitalsourcetype/empty"],
    "capturedMedia": [IPTC + "digitalCapture", IPTC + "computationalCapture"],
    "capturedMediaStitched": [IPTC + "compositeCapture"],
    "compositionMayContainGenAI": [IPTC + "composite"],
    "fullyGenAIMedia": [IPTC + "trainedAlgorithmicMedia"],
    "mediaUnknownProvenance": None,  # an ingredient without a manifest
    "nonGenAIDigitalCreation": [IPTC + "digitalCreation"],
    "partlyGenAICreation": [IPTC + "compositeWithTrainedAlgorithmicMedia"],
    "screenCaptureMayContainGenAI": [IPTC + "screenCapture"],
}
TRANSFORMATION = (
    "ambiguousActions",
    "nonEditorial",
    "perceptibleGenAI",
    "perceptibleNonGenAI",
    "perceptiblePossiblyGenAI",
)
#: Signals that say "captured by a camera"; never credible from a record that disallows them.
CAPTURE_SIGNALS = ("capturedMedia", "capturedMediaStitched")


#: The two rubric files parsed once, as JSON (``make rubrics`` writes it; a test holds it
#: equal to the YAML): verify reads the rubrics on every run, and parsing YAML (and
#: importing a YAML parser) cost as much as the C2PA read itself.
COMPILED_FILE = "rubrics.json"


def compile_rubrics() -> bytes:
    """The shipped rubric YAML files as the JSON :data:`COMPILED_FILE` holds."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = {
        name: list(yaml.load_all(data_file(name), Loader=loader))
        for name in (SIGNALS_FILE, INTEGRITY_FILE)
    }
    return (
        json.dumps(docs, default=str, sort_keys=True, ensure_ascii=False, indent=0) + "\n"
    ).encode()


@functools.cache
def _compiled() -> dict:
    return json.loads(data_file(COMPILED_FILE))


def _load(name: str) -> tuple[dict, list[dict]]:
    """A rubric file: its header document (metadata, variables) and its rules."""
    docs = _compiled()[name]
    header = docs[0] or {}
    rules = [r for d in docs[1:] for r in (d or []) if isinstance(r, dict)]
    return header, rules


@functools.lru_cache(maxsize=1)
def rubric() -> dict:
    """The signals rubric: variables, rules by signal name, metadata."""
    header, rules = _load(SIGNALS_FILE)
    by_signal = {}
    for r in rules:
        m = re.match(r"^(inception|transformation):signal_(\w+)$", r.get("id", ""))
        if m:
            by_signal[m.group(2)] = {
                "id": r["id"],
                "group": m.group(1),
                "text": ((r.get("reportText") or {}).get("true") or {}).get("en"),
            }
    meta = header.get("rubric_metadata") or {}
    v = header.get("variables") or {}
    return {
        "variables": {k.lstrip("$"): [str(x).strip() for x in val] for k, val in v.items()},
        "rules": by_signal,
        "name": meta.get("name"),
        "version": meta.get("version"),
        "date": str(meta.get("date") or "")[:10],
    }


@functools.lru_cache(maxsize=1)
def integrity_rubric() -> dict:
    header, rules = _load(INTEGRITY_FILE)
    v = header.get("variables") or {}
    return {
        "codes": {k.lstrip("$"): set(val) for k, val in v.items()},
        "rules": {r["id"]: r for r in rules if r.get("id")},
        "version": (header.get("rubric_metadata") or {}).get("version"),
    }


# --------------------------------------------------------------------------- nodes


def node_from_reader(manifest: dict) -> dict:
    """A crJSON-shaped node from a Reader JSON manifest (assertions keyed by label;
    ingredients as ``c2pa.ingredient.v3`` entries). Reader JSON does not say which
    assertions were gathered, so that part of ``ambiguousActions`` is not checked."""
    assertions = {}
    for a in manifest.get("assertions") or []:
        if a.get("label"):
            assertions[a["label"]] = a.get("data")
    for ing in manifest.get("ingredients") or []:
        label = ing.get("label") or "c2pa.ingredient.v3"
        assertions.setdefault(label, {"activeManifest": ing.get("active_manifest")})
    return {"label": manifest.get("label"), "assertions": assertions, "claim.v2": {}}


def _actions(node: dict) -> list[dict]:
    data = (node.get("assertions") or {}).get("c2pa.actions.v2")
    acts = data.get("actions") if isinstance(data, dict) else None
    return [a for a in acts or [] if isinstance(a, dict)]


def _created_with(node: dict, dsts, inception) -> bool:
    return any(
        a.get("action") in inception and a.get("digitalSourceType") in dsts for a in _actions(node)
    )


def raw_signals(node: dict) -> dict:
    """``{signal name: True}`` for each rubric signal the node's manifest gives."""
    v = rubric()["variables"]
    inception = set(v.get("inception_actions") or ("c2pa.created", "c2pa.opened"))
    non_editorial = set(v.get("non_editorial_actions") or ())
    genai = set(v.get("genai_dst_types") or ())
    possibly = set(v.get("possibly_genai_dst_types") or ())
    out = {}
    for name, dsts in INCEPTION.items():
        if dsts is not None and _created_with(node, dsts, inception):
            out[name] = True
    assertions = node.get("assertions") or {}
    for label, data in assertions.items():
        if (
            label.split("__")[0] == "c2pa.ingredient.v3"
            and isinstance(data, dict)
            and not data.get("activeManifest")
        ):
            out["mediaUnknownProvenance"] = True
    acts = _actions(node)
    data = assertions.get("c2pa.actions.v2")
    gathered = (node.get("claim.v2") or {}).get("gathered_assertions") or []
    if (
        not acts
        or not (isinstance(data, dict) and data.get("allActionsIncluded") is True)
        or any(a.get("action") and not str(a["action"]).startswith("c2pa.") for a in acts)
        or any(a.get("action") == "c2pa.unknown" for a in acts)
        or any("c2pa.actions" in str(g.get("url", "")) for g in gathered if isinstance(g, dict))
    ):
        out["ambiguousActions"] = True
    if any(a.get("action") in non_editorial for a in acts):
        out["nonEditorial"] = True
    perceptible = [
        a
        for a in acts
        if a.get("action") and a["action"] not in inception and a["action"] not in non_editorial
    ]
    if any(a.get("digitalSourceType") in genai for a in perceptible):
        out["perceptibleGenAI"] = True
    if any(
        a.get("digitalSourceType") is not None and a["digitalSourceType"] not in genai
        for a in perceptible
    ):
        out["perceptibleNonGenAI"] = True
    if any(a.get("digitalSourceType") in possibly for a in perceptible):
        out["perceptiblePossiblyGenAI"] = True
    return out


def node_signals(node: dict, product: dict | None = None) -> dict:
    """The signals of one manifest node, each with its rubric rule id and sentence.

    ``product``: the signer's conforming-product record (:func:`conforming_product`);
    a signal its ``disallowedSignals`` names goes to ``not_credible``."""
    rules = rubric()["rules"]
    disallowed = (product or {}).get("disallowed_signals") or {}
    out = {"inception": [], "transformation": [], "not_credible": [], "rules": []}
    for name in raw_signals(node):
        group = "inception" if name in INCEPTION else "transformation"
        rule = rules.get(name, {})
        item = {
            "signal": name,
            "group": group,
            "rule_id": rule.get("id", f"{group}:signal_{name}"),
            "text": rule.get("text"),
        }
        if name in (disallowed.get(group) or []):
            item["not_credible"] = (
                f"the Conforming Products List record of "
                f"{product.get('product')} does not allow it to claim {name}"
            )
            out["not_credible"].append(name)
        else:
            out[group].append(name)
        out["rules"].append(item)
    return out


def policy_signals(signals: dict | None) -> dict:
    """The ``asset.c2pa.signals`` shape: credible signal names only."""
    s = signals or {}
    return {
        "inception": list(s.get("inception") or []),
        "transformation": list(s.get("transformation") or []),
    }


# --------------------------------------------------------------------------- integrity


def integrity(failure_codes, *, present: bool = True) -> dict:
    """The rubric's three integrity outcomes from the active manifest's failure codes.

    ``present``: whether validation results exist at all (the rubric's
    ``MISSING_VALIDATION_RESULTS`` otherwise fails all three)."""
    r = integrity_rubric()
    codes = list(failure_codes) if present else ["MISSING_VALIDATION_RESULTS"]
    out = {}
    for outcome, var, rule_id in (
        ("well_formed", "well_formed_error_codes", "validation:well_formed_success"),
        ("valid", "valid_error_codes", "validation:valid_success"),
        ("trusted", "trust_error_codes", "validation:trusted_success"),
    ):
        matches = [c for c in codes if c in r["codes"].get(var, set())]
        out[outcome] = {"passed": not matches, "rule_id": rule_id, "matches": matches}
    return out


# --------------------------------------------------------------------------- products


@functools.lru_cache(maxsize=1)
def products() -> list[dict]:
    return json.loads(data_file("conforming-products-list.json"))


@functools.lru_cache(maxsize=1)
def products_list_date() -> str | None:
    dates = [(r.get("dates") or {}).get("lastModification") for r in products()]
    dates = [d for d in dates if d]
    return max(dates) if dates else None


@functools.lru_cache(maxsize=1)
def _products_by_cn() -> dict:
    """Common name -> [(record, product DN without empty attributes)]."""
    out: dict = {}
    for rec in products():
        dn = {k: v for k, v in ((rec.get("product") or {}).get("DN") or {}).items() if v}
        if dn.get("CN"):
            out.setdefault(dn["CN"], []).append((rec, dn))
    return out


def conforming_product(subject: dict | None) -> dict | None:
    """The Conforming Products List record whose product DN the signing certificate's
    subject carries (every non-empty DN attribute equal), or None.

    ``subject``: ``{"CN": ..., "O": ..., "OU": ..., "C": ...}``."""
    if not subject or not subject.get("CN"):
        return None
    best = None
    for rec, dn in _products_by_cn().get(subject["CN"], []):
        if all(subject.get(k) == v for k, v in dn.items()) and (
            best is None or len(dn) > len(best[1])
        ):
            best = (rec, dn)
    if best is None:
        return None
    rec, dn = best
    p = rec["product"]
    assurance = p.get("assurance") or {}
    return {
        "product": dn.get("CN"),
        "vendor": rec.get("applicant") or dn.get("O"),
        "product_type": p.get("productType"),
        "status": rec.get("status"),
        "assurance_level": assurance.get("maxAssuranceLevel"),
        "min_version": p.get("minVersion"),
        "record_id": rec.get("recordId"),
        "disallowed_signals": {
            k: list(v or []) for k, v in (p.get("disallowedSignals") or {}).items()
        },
        "list": f"C2PA Conforming Products List ({products_list_date()})",
    }


def subject_of(der: bytes | None) -> dict | None:
    """``{"CN", "O", "OU", "C"}`` of a DER certificate's subject."""
    if not der:
        return None
    read = der_fields(der)
    if read is not None:
        return dict(read.subject)
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    oids = {
        "CN": NameOID.COMMON_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "C": NameOID.COUNTRY_NAME,
    }
    out = {}
    for k, oid in oids.items():
        attrs = cert.subject.get_attributes_for_oid(oid)
        if attrs:
            out[k] = attrs[0].value
    return out
