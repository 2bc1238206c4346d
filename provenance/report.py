"""The credential report of one file, built from a c2pa-python Reader's JSON.

:class:`VerifyReport` is what ``provkit verify`` prints; :func:`report_from_store`
reads signer, source type, actions, ingredients (each manifest expanded once),
soft bindings, training-and-mining rules and authors out of the store.

Why one module over 400 lines: the report is one dataclass and the one reading of a
store that fills it (signer with trust source and conforming product, failures with
their sentences, ingredients, signals, time-stamp, identity); split, every part would
import every other.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from provkit.provenance.capture import capture_details, claim_generator
from provkit.provenance.certs import cert_issuers, signer_chain
from provkit.provenance.core.vocabulary import source_type_name
from provkit.provenance.disclosure import SB942_ASSERTION, VISIBLE_ASSERTION
from provkit.provenance.manifest import ASSET_ASSERTION
from provkit.provenance.signals import (
    conforming_product,
    integrity,
    node_from_reader,
    node_signals,
    subject_of,
)
from provkit.provenance.status import (
    HARD_BINDING_CODES,
    entries,
    explain,
    list_entries,
    state_from_codes,
    status_codes,
)
from provkit.provenance.trust import tsa_source_for


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
    format: str | None = None
    #: Every failure as ``{code, where, url, sdk_explanation, sentence, hard_binding?}``.
    failure_details: list = field(default_factory=list)
    #: Rubric signals of the active manifest (see :mod:`provenance.signals`).
    signals: dict | None = None
    integrity: dict | None = None
    timestamp: dict | None = None
    cawg_identity: list = field(default_factory=list)
    thumbnail: dict | None = None
    #: The picture against its own claim thumbnail, when the hard binding fails (a hint).
    thumbnail_check: dict | None = None
    ingredient_failed_when_added: bool = False
    #: Why pixel-based steps (watermark, fingerprints, recovery) did not apply.
    notes: list = field(default_factory=list)
    #: For ``recovered`` and ``mismatch``: the pixels against the ledger's fingerprints of
    #: the asset (``match``, ``distance`` in bits, ``limits``).
    pixel_match: dict | None = None
    #: For a copy found by a soft binding: how it relates to the issued asset
    #: (:meth:`provenance.relation.Relation.to_json`: ``class`` same-pixels, transformed,
    #: locally-edited or not-this-asset, with what was measured).
    relation: dict | None = None
    #: Which issued asset a ``recovered`` or ``mismatch`` copy came from and what its
    #: credentials said (identification, not a validation of this copy).
    identified: dict | None = None
    #: Why the credentials fail, most serious first (:mod:`provenance.causes`):
    #: ``[{cause, codes, phrase, sentence, evidence?}]``; ``cause`` is the first.
    causes: list = field(default_factory=list)
    cause: str | None = None
    #: Ingredients whose credentials failed when added or now: ``[{title, when, cause}]``.
    failed_ingredients: list = field(default_factory=list)
    #: The app or device that wrote the claim (claim generator info, any vendor).
    generator: list = field(default_factory=list)
    #: Signed capture details (``device``, ``lens``, ``time``, ``location``), if any.
    capture: dict | None = None
    #: AI-content disclosures in the manifest: ``sb942`` (the SB 942 latent fields) and
    #: ``visible_labels`` (the explicit labels drawn before sealing); None without any.
    disclosure: dict | None = None

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
        if a.get("label") in labels or any(
            a.get("label", "").startswith(lb + "__") for lb in labels
        ):
            return a.get("data")
    return None


def _actions(manifest: dict) -> list[dict]:
    data = _assertion(manifest, "c2pa.actions.v2", "c2pa.actions") or {}
    out = []
    for a in data.get("actions", []):
        agent = a.get("softwareAgent")
        if isinstance(agent, dict):
            agent = " ".join(str(agent[k]) for k in ("name", "version") if agent.get(k))
        item = {
            "action": a.get("action"),
            "software_agent": agent,
            "digital_source_type": source_type_name(a.get("digitalSourceType")),
        }
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
    return {
        "common_name": info.get("common_name"),
        # c2pa-rs reports the signing certificate's organisation as "issuer"
        "organization": info.get("issuer"),
        "issuer": (cert_issuers or {}).get(serial),
        "time": info.get("time"),
        "alg": info.get("alg"),
        "serial": serial,
    }


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
    return {
        k: (v.get("use") if isinstance(v, dict) else v)
        for k, v in (data.get("entries") or {}).items()
    }


def _authors(manifest: dict) -> list[str]:
    data = _assertion(manifest, "stds.schema-org.CreativeWork") or {}
    authors = data.get("author") or []
    return [a.get("name") for a in authors if isinstance(a, dict) and a.get("name")]


#: Most ingredient entries one report lists (a store can name the same manifests many times).
MAX_INGREDIENT_NODES = 256

#: The top line of a report whose tree holds a component that failed when it was added.
FAILED_WHEN_ADDED = "A component's credentials were invalid when it was added."


def _recorded_entries(ing: dict) -> list[dict]:
    """What the ingredient's validator recorded when it was added: the v3
    ``validation_results`` (active manifest and its own deltas), or the older plain
    ``validation_status`` list."""
    results = ing.get("validation_results")
    if results:
        return [dict(e, where="recorded") for e in entries(results)]
    return list_entries(ing.get("validation_status"))


def _deltas_for(walk: dict, parent_label: str | None, ing: dict) -> list[dict]:
    """The re-validation deltas the SDK reported for this ingredient assertion."""
    label = ing.get("label")
    if not label or not parent_label:
        return []
    suffix = f"{parent_label}/c2pa.assertions/{label}"
    out = []
    for delta in walk.get("deltas") or []:
        if str(delta.get("ingredientAssertionURI", "")).endswith(suffix):
            for s in (delta.get("validationDeltas") or {}).get("failure") or []:
                out.append(_entry_with(s, "re-validated"))
    return out


def _entry_with(s: dict, where: str) -> dict:
    e = list_entries([s])[0]
    e["where"] = where
    return e


def _is_recovery(manifest: dict) -> bool:
    """Whether ``manifest`` re-attached recovered credentials (provkit recover)."""
    return any("recovered_by" in (a.get("parameters") or {}) for a in _actions(manifest))


def _ingredient_sentence(state_recorded: str, recorded: list, deltas: list, expected: bool) -> str:
    if expected:
        return (
            "Its credentials were recovered from a ledger; only their binding to the original "
            "bytes fails, as expected for recovered credentials."
        )
    if state_recorded == "invalid":
        why = "; ".join(
            explain([e for e in recorded if e["code"] != "signingCredential.untrusted"])
        )
        return f"Its credentials were invalid when it was added: {why}"
    if deltas and {e["code"] for e in deltas} <= {"signingCredential.untrusted"}:
        was = "valid and trusted" if state_recorded == "trusted" else "valid"
        return (
            f"Its credentials were {was} when it was added; only today's trust verdict "
            "differs: its signer is not on the trust list used now."
        )
    if deltas:
        return "Its credentials changed since it was added: " + "; ".join(explain(deltas))
    if state_recorded == "trusted":
        return "Its credentials were valid and trusted when it was added."
    return "Its credentials were valid when it was added."


def _ingredients(
    store: dict,
    manifest: dict,
    cert_issuers,
    walk: dict | None = None,
    parent_label: str | None = None,
) -> list[dict]:
    """The ingredient tree under ``manifest``, each manifest expanded once.

    Each node carries what was recorded when it was added (``recorded_status``,
    ``state_recorded``), what re-validation found (``deltas``), its own ``state`` and a
    ``sentence``. A manifest met again (a shared ingredient, or a cycle back to an
    ancestor) is listed with ``"repeated": true`` and its label instead of being
    expanded again, and at most :data:`MAX_INGREDIENT_NODES` entries are listed in all;
    an entry ``{"omitted": N}`` says how many more there were."""
    if walk is None:
        walk = {"seen": set(), "left": MAX_INGREDIENT_NODES, "deltas": [], "nodes": {}}
    manifests = store.get("manifests") or {}
    out = []
    ingredients = manifest.get("ingredients") or []
    recovery = _is_recovery(manifest)
    for n, ing in enumerate(ingredients):
        if walk["left"] <= 0:
            out.append(
                {
                    "omitted": len(ingredients) - n,
                    "note": f"more ingredients not listed (at most "
                    f"{MAX_INGREDIENT_NODES} per report)",
                }
            )
            break
        walk["left"] -= 1
        label = ing.get("active_manifest")
        child = manifests.get(label) if label else None
        recorded = _recorded_entries(ing)
        deltas = _deltas_for(walk, parent_label, ing)
        failures = [e["code"] for e in recorded + deltas]
        state_recorded = state_from_codes([e["code"] for e in recorded])
        if not ing.get("validation_results") and not ing.get("validation_status"):
            state_recorded = "absent" if child is None else "valid"
        hard_only = (
            bool(set(failures) & HARD_BINDING_CODES)
            and set(failures) - {"signingCredential.untrusted"} <= HARD_BINDING_CODES
        )
        expected = recovery and hard_only
        state = state_from_codes(failures) if not expected else "valid"
        if (
            expected
            and "signingCredential.untrusted" not in failures
            and "signingCredential.trusted" in _success_codes(ing)
        ):
            state = "trusted"
        item = {
            "title": ing.get("title"),
            "relationship": ing.get("relationship"),
            "format": ing.get("format"),
            "manifest_label": label,
            "thumbnail": _thumbnail(ing) or (_thumbnail(child) if child else None),
            "recorded_status": recorded,
            "deltas": deltas,
            "state_recorded": state_recorded,
            "failures": failures,
            "failed_when_added": state_recorded == "invalid" and not expected,
        }
        missing = "ingredient.manifest.missing" in failures or any(
            f.get("code") == "ingredient.manifest.missing"
            and ing.get("label")
            and str(f.get("url") or "").endswith("c2pa.assertions/" + ing["label"])
            for f in walk.get("active") or []
        )
        if child is None and missing:
            item.update(
                state="invalid",
                failed_when_added=False,
                sentence=(
                    "It refers to a C2PA manifest that is missing from this file: "
                    "its credentials cannot be checked."
                ),
            )
            out.append(item)
            continue
        if child is None:
            item.update(
                state="absent",
                sentence="It carries no C2PA manifest (media of unknown provenance).",
            )
            out.append(item)
            continue
        item["sentence"] = _ingredient_sentence(state_recorded, recorded, deltas, expected)
        if expected:
            item["note"] = (
                "only the hard binding fails: the ingredient's bytes are not "
                "those its manifest was signed over (expected for recovered "
                "credentials)"
            )
        if label in walk["seen"]:
            item.update(
                state=state, repeated=True, explanation=explain(recorded + deltas), ingredients=[]
            )
        else:
            walk["seen"].add(label)
            item.update(
                state=state,
                explanation=explain(recorded + deltas),
                signer=_signer(child, cert_issuers),
                generator=claim_generator(child),
                digital_source_type=_source_type(child),
                actions=_actions(child),
                signals=node_signals(walk["nodes"].get(label) or node_from_reader(child)),
                ingredients=_ingredients(store, child, cert_issuers, walk, label),
            )
        out.append(item)
    return out


def _success_codes(ing: dict) -> list[str]:
    return status_codes(ing.get("validation_results"), "success")


def failed_when_added(ingredients: list) -> bool:
    """Whether any node of the tree failed validation when it was added."""
    return any(
        i.get("failed_when_added") or failed_when_added(i.get("ingredients") or [])
        for i in ingredients
    )


def _source_type(manifest: dict) -> str | None:
    for a in _actions(manifest):
        if a.get("digital_source_type"):
            return a["digital_source_type"]
    return None


def _disclosure(manifest: dict) -> dict | None:
    sb942 = _assertion(manifest, SB942_ASSERTION)
    visible = _assertion(manifest, VISIBLE_ASSERTION)
    if sb942 is None and visible is None:
        return None
    return {"sb942": sb942, "visible_labels": visible}


def _asset_id(manifest: dict) -> str | None:
    data = _assertion(manifest, ASSET_ASSERTION) or {}
    return data.get("asset_id")


def _link_layout(failures: list[dict]) -> list[dict]:
    """A data-hash mismatch reported beside a layout failure of the same binding follows
    from it (the ranges were hashed with the manifest in the wrong place): say so."""
    layout_urls = {e.get("url") for e in failures if e.get("hard_binding") == "layout"}
    out = []
    for e in failures:
        if (
            e.get("hard_binding") == "content"
            and e["code"] == "assertion.dataHash.mismatch"
            and e.get("url") in layout_urls
        ):
            e = dict(e, hard_binding="layout-consequence", sentence=LAYOUT_CONSEQUENCE)
        out.append(e)
    return out


LAYOUT_CONSEQUENCE = (
    "The content hash cannot match while the byte ranges are misplaced, so it "
    "does not show by itself that the content changed."
)


def _crjson_nodes(crjson: dict | None) -> dict:
    return {m.get("label"): m for m in (crjson or {}).get("manifests") or [] if m.get("label")}


#: Time-stamp codes that say the time-stamp itself does not hold, and their sentences.
TIMESTAMP_PROBLEMS = {
    "timeStamp.mismatch": (
        "The time-stamp does not match the signature: it proves nothing "
        "about when the manifest was signed."
    ),
    "timeStamp.malformed": "The time-stamp is malformed: it proves nothing about the signing time.",
    "timeStamp.outsideValidity": (
        "The time-stamp falls outside a certificate's validity "
        "period: it does not show the signature was made while the "
        "certificate was valid."
    ),
}


def _timestamp(manifest: dict, node: dict | None, results: dict | None, chain: list) -> dict:
    """Time-stamp facts, judged apart from the signer: present?, the SDK's codes, and
    whether the C2PA TSA Trust List issued the time-stamping certificate."""
    codes = []
    for key in ("success", "informational", "failure"):
        codes += [
            s.get("code")
            for s in ((results or {}).get("activeManifest") or {}).get(key) or []
            if str(s.get("code", "")).startswith("timeStamp.")
        ]
    sig = (node or {}).get("signature") or {}
    info = sig.get("timeStampInfo") or sig.get("timestampInfo")
    when = (manifest.get("signature_info") or {}).get("time")
    present = bool(info or codes)
    tsa = tsa_source_for(chain) if present else None
    broken = [c for c in codes if c in TIMESTAMP_PROBLEMS]
    if not present:
        sentence = (
            "The signature carries no trusted time-stamp; the signing time, if any, "
            "is the signer's own claim."
        )
    elif broken:
        sentence = TIMESTAMP_PROBLEMS[broken[0]]
        if not tsa:
            sentence += " Its authority is not on the C2PA TSA Trust List either."
    elif tsa:
        sentence = f"The signature is time-stamped by an authority on the {tsa}."
    else:
        sentence = (
            "The signature is time-stamped, but the time-stamp authority is not on the "
            "C2PA TSA Trust List."
        )
    return {
        "present": present,
        "time": when,
        "codes": codes,
        "tsa_trust_source": tsa,
        "info": info,
        "sentence": sentence,
    }


def _cawg(manifest: dict, results: dict | None) -> list[dict]:
    """CAWG identity assertions with their own status codes and trust, reported apart
    from the C2PA signer (a named actor's identity is a separate claim with its own
    trust anchors; provkit configures none, so well-formed ones read "not trusted")."""
    statuses = []
    for key in ("success", "informational", "failure"):
        for s in ((results or {}).get("activeManifest") or {}).get(key) or []:
            if str(s.get("code", "")).startswith("cawg."):
                statuses.append((key, s))
    out = []
    identities = [
        a
        for a in manifest.get("assertions") or []
        if a.get("label", "").split("__")[0] == "cawg.identity"
    ]
    labels = [a.get("label", "") for a in identities]
    for a in identities:
        label = a.get("label", "")
        data = a.get("data") or {}
        # A status whose URL names no identity assertion (the SDK names the manifest, or
        # none) belongs to the only identity assertion there is.
        mine = [
            (k, s)
            for k, s in statuses
            if _names(s, label) or (len(labels) == 1 and not any(_names(s, lb) for lb in labels))
        ]
        codes = [s.get("code") for _, s in mine]
        failures = [s.get("code") for k, s in mine if k == "failure"]
        if (
            failures
            and set(failures) <= CAWG_TRUST_ONLY
            and "cawg.x509.signature.validated" in codes
        ):
            trust = "signature valid, identity not trusted"
        elif failures:
            trust = "invalid"
        elif "cawg.identity.trusted" in codes:
            trust = "trusted"
        elif "cawg.identity.well-formed" in codes:
            trust = "well-formed, not trusted"
        else:
            trust = "not checked"
        payload = data.get("signer_payload") if isinstance(data.get("signer_payload"), dict) else {}
        out.append(
            {
                "label": label,
                "sig_type": payload.get("sig_type"),
                "roles": payload.get("role") or payload.get("roles"),
                "codes": codes,
                "trust": trust,
                "sentences": explain(list_entries([s for _, s in mine])),
            }
        )
    return out


#: Identity failures that only say the identity's credential is on no identity trust list.
CAWG_TRUST_ONLY = frozenset({"cawg.x509.credential.untrusted", "cawg.identity.untrusted"})


def _names(status: dict, label: str) -> bool:
    """Whether a status entry's URL names the assertion ``label`` (and not ``label__2``)."""
    url = str(status.get("url") or "")
    return url.endswith(("/" + label, "=" + label)) or url == label


def _thumbnail(manifest: dict) -> dict | None:
    t = manifest.get("thumbnail")
    if not isinstance(t, dict):
        return None
    return {"format": t.get("format"), "identifier": t.get("identifier")}


def report_from_store(
    path,
    store: dict,
    *,
    state: str,
    failures: list | None = None,
    remote_url=None,
    raw=b"",
    raw_end: int | None = None,
    trust=None,
    crjson: dict | None = None,
    mime: str | None = None,
) -> VerifyReport:
    """A report from a Reader's JSON (``store``) and the state the SDK gave.

    ``failures``: the failure codes to report (default: every failure of the active
    manifest and of every ingredient the SDK re-validated). ``raw``: the manifest
    store or file bytes (or a memory map; ``raw_end`` bounds where the manifest can be),
    for the certificate chains. ``trust``: the :class:`~provenance.trust.Trust` the
    SDK was given, to name the source that made a trusted signer trusted. ``crjson``:
    the Reader's crJSON, for the rubric signals (Reader JSON otherwise)."""
    label = store.get("active_manifest")
    manifests = store.get("manifests") or {}
    manifest = manifests.get(label, {}) if label else {}
    results = store.get("validation_results")
    details = _link_layout(entries(results))
    if failures is None:
        failures = [e["code"] for e in details]
    else:
        wanted = list(failures)
        details = [e for e in details if e["code"] in wanted] or [
            list_entries([{"code": c}])[0] for c in wanted
        ]
    serials = {
        (m.get("signature_info") or {}).get("cert_serial_number") for m in manifests.values()
    } - {None}
    has_raw = serials and len(raw)
    issuers = cert_issuers(raw, raw_end, serials=serials) if has_raw else {}
    serial = (manifest.get("signature_info") or {}).get("cert_serial_number")
    chain = signer_chain(raw, raw_end, serial=serial) if has_raw and serial else []
    nodes = _crjson_nodes(crjson)
    node = nodes.get(label)
    subject = subject_of(chain[0]) if chain else None
    if subject is None and node:
        subject = ((node.get("signature") or {}).get("certificateInfo") or {}).get("subject")
    product = conforming_product(subject)
    signer = _signer(manifest, issuers)
    if signer is not None:
        source = None
        # The SDK calls a trusted signer's manifest "valid" when only an identity
        # assertion failed: the signer is still the one its trust source vouches for.
        vouched = state in ("trusted", "recovered") or (
            state == "valid" and "signingCredential.trusted" in status_codes(results, "success")
        )
        if vouched and trust is not None:
            source = trust.source_for(chain) if chain else None
            if source is None and node:  # the chain is not in the raw bytes (e.g. SVG)
                source = trust.source_for_issuer(
                    ((node.get("signature") or {}).get("certificateInfo") or {}).get("issuer")
                )
        if (state == "trusted" or vouched) and state != "recovered" and source is None:
            source = "a configured trust anchor"
        signer["trust_source"] = source if vouched else None
        signer["subject"] = subject
        signer["conforming_product"] = product
    sig = node_signals(node or node_from_reader(manifest), product) if manifest else None
    walk = {
        "seen": {label},
        "left": MAX_INGREDIENT_NODES,
        "deltas": (results or {}).get("ingredientDeltas") or [],
        "nodes": nodes,
        "active": ((results or {}).get("activeManifest") or {}).get("failure") or [],
    }
    ingredients = _ingredients(store, manifest, issuers, walk, label)
    explanation = explain(details)
    if failed_when_added(ingredients):
        explanation = [FAILED_WHEN_ADDED, *explanation]
    active_fails = [
        s.get("code") for s in ((results or {}).get("activeManifest") or {}).get("failure") or []
    ]
    return VerifyReport(
        path=str(path),
        state=state,
        remote_url=remote_url,
        manifest_label=label,
        title=manifest.get("title"),
        signer=signer,
        format=mime or manifest.get("format"),
        digital_source_type=_source_type(manifest),
        actions=_actions(manifest),
        ingredients=ingredients,
        failures=failures,
        failure_details=details,
        explanation=explanation,
        soft_binding=_soft_bindings(manifest),
        training_mining=_training(manifest),
        author=_authors(manifest),
        asset_id=_asset_id(manifest),
        signals=sig,
        integrity=integrity(active_fails, present=results is not None) if manifest else None,
        timestamp=_timestamp(manifest, node, results, chain) if manifest else None,
        cawg_identity=_cawg(manifest, results),
        thumbnail=_thumbnail(manifest),
        ingredient_failed_when_added=failed_when_added(ingredients),
        generator=claim_generator(manifest),
        capture=capture_details(manifest),
        disclosure=_disclosure(manifest),
    )
