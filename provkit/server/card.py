"""The desk's card of one image, in words: what an editor reads, built from the desk
record (:func:`provkit.server.desk.desk_record`) and rendered by ``card.html``.

:func:`card` answers, in plain sentences: the decision and its reasons, who issued the
credentials and what trusts them, when, the app or device that produced the file, the
capture details the signer put in the manifest, what happened (actions in order, each
with its tool), what it was made from (the ingredient tree, with thumbnails, states and
causes), what the credentials and the evidence say about AI and training, and where the
picture was seen before. Codes (status codes, action and source-type names, rule ids)
go only into ``codes``, which the page shows behind a "Technical details" toggle.
Nothing here is HTML: the template escapes every string.
"""

from __future__ import annotations

from provkit.answers import VERDICT_WORDS
from provkit.provenance.words import action_words, source_type_words, training_words

OUTCOME_WORDS = {"allow": "ALLOW", "label": "LABEL", "review": "REVIEW", "deny": "DENY"}
RELATIONSHIP_WORDS = {
    "parentOf": "the file it was edited from",
    "componentOf": "a part placed into it",
    "inputTo": "an input to a tool",
}
STATE_WORDS = {
    "trusted": "credentials valid; a trust source vouches for the signer",
    "valid": "credentials valid, but no trust source in use vouches for the signer",
    "invalid": "credentials do not check out",
    "absent": "no Content Credentials",
    "recovered": "credentials recovered from this workspace's ledger",
    "mismatch": "the watermark names an issued asset, but the pixels differ from it",
}
#: An ingredient's state: what its own credentials showed (trust is judged on the file).
NODE_WORDS = {
    "trusted": "its credentials are valid and were trusted",
    "valid": "its credentials are valid",
    "invalid": "its credentials do not check out",
    "absent": "it carries no credentials of its own",
}
EVIDENCE_WORDS = {
    "c2pa": "Content Credentials",
    "metadata": "Metadata",
    "watermark": "Watermark",
    "classifier": "Classifier",
    "duplicates": "Reference sets",
}
HASH_NAMES = {"pdq": "PDQ", "phash": "pHash", "dhash": "dHash", "clip": "CLIP"}
RECOVERED_BY = {"watermark": "the invisible watermark", "fingerprint": "the picture's fingerprints"}
#: Most ingredient nodes a card shows (the verify report bounds the tree too).
MAX_NODES = 200


def _cause_words(cause) -> str | None:
    """A failure's cause in words, whatever shape the report gives it."""
    if isinstance(cause, dict):
        for key in ("words", "sentence", "text", "summary"):
            if isinstance(cause.get(key), str):
                return cause[key]
        cause = cause.get("code") or cause.get("cause")
    if isinstance(cause, str) and cause:
        return cause.replace("_", " ").replace("-", " ").replace(".", " ").capitalize()
    return None


def _cause_code(cause) -> str | None:
    if isinstance(cause, dict):
        return cause.get("code") or cause.get("cause")
    return cause if isinstance(cause, str) else None


def thumb(ref, alt: str) -> dict | None:
    """``{"src"|"data_src", "alt"}`` for a thumbnail reference (``data`` is shown as it is;
    ``url`` is fetched by the page with the caller's token)."""
    if not isinstance(ref, dict):
        return None
    if isinstance(ref.get("data"), str) and ref["data"].startswith("data:image/"):
        return {"src": ref["data"], "alt": alt}
    if isinstance(ref.get("url"), str) and ref["url"].startswith("/v1/"):
        return {"data_src": ref["url"], "alt": alt}
    return None


def _signer_words(signer: dict | None) -> str | None:
    if not isinstance(signer, dict):
        return None
    who = signer.get("organization") or signer.get("common_name")
    if not who:
        return None
    name = signer.get("common_name")
    if name and who.lower() not in name.lower():
        who += f" ({name})"
    return who


def _issued(c: dict) -> list[str]:
    state = c.get("state")
    signer = c.get("signer")
    rec = c.get("recovered_manifest") or {}
    if state in ("recovered", "mismatch") and not signer:
        signer = rec.get("signer")
    who = _signer_words(signer)
    out = []
    if who:
        out.append(f"Signed by {who}.")
        cert = (signer or {}).get("issuer")
        if cert and cert not in who:
            out.append(f"Certificate issued by {cert}.")
        product = (signer or {}).get("conforming_product")
        if isinstance(product, dict) and product.get("product"):
            out.append(
                f"Conforming product: {product['product']}"
                + (f" by {product['vendor']}." if product.get("vendor") else ".")
            )
    source = (signer or {}).get("trust_source")
    if state == "invalid":
        out.append("The credentials do not check out, so they vouch for no one.")
    elif state == "trusted" or (state == "recovered" and source):
        out.append(f"Trusted through: {source or 'a configured trust anchor'}.")
    elif who:
        out.append("No trust source in use vouches for this signer (unrecognised source).")
    for ident in c.get("cawg_identity") or []:
        if isinstance(ident, dict):
            out.append(f"A named identity is attached; its own check: {ident.get('trust')}.")
    return out


def _when(c: dict) -> list[str]:
    out = []
    signer = c.get("signer") or {}
    if signer.get("time"):
        out.append(f"Signed on {signer['time']}.")
    ts = c.get("timestamp") or {}
    if ts.get("sentence") and c.get("state") != "absent":
        out.append(ts["sentence"])
    return out


def _produced(c: dict) -> list[str]:
    tools = list(c.get("generator") or [])
    for a in c.get("actions") or []:
        agent = a.get("software_agent")
        if isinstance(agent, str) and agent and agent not in tools:
            tools.append(agent)
    return tools


def _capture(c: dict) -> list[tuple[str, str]]:
    names = {"device": "Device", "lens": "Lens", "time": "Capture time", "location": "Location"}
    cap = c.get("capture") or {}
    return [(names[k], str(cap[k])) for k in names if cap.get(k)]


def _happened(c: dict) -> list[str]:
    out = []
    for a in c.get("actions") or []:
        text = action_words(a.get("action"))
        text = text[0].upper() + text[1:]
        if a.get("software_agent"):
            text += f" with {a['software_agent']}"
        what = source_type_words(a.get("digital_source_type"))
        if what:
            text += f" ({what})"
        if a.get("when"):
            text += f", {a['when']}"
        out.append(text + ".")
    return out


def _node(ing: dict, budget: list) -> dict | None:
    if budget[0] <= 0:
        return None
    budget[0] -= 1
    if "omitted" in ing:
        return {"title": f"{ing['omitted']} more ingredients not listed", "children": []}
    title = ing.get("title") or "untitled"
    state = ing.get("state") or "absent"
    lines = []
    if ing.get("sentence"):
        lines.append(ing["sentence"])
    for f in ing.get("failure_details") or []:
        words = _cause_words(f.get("cause")) if isinstance(f, dict) else None
        if words:
            lines.append(words)
    if _cause_words(ing.get("cause")):
        lines.append(_cause_words(ing.get("cause")))
    who = _signer_words(ing.get("signer"))
    node = {
        "title": title,
        "relation": RELATIONSHIP_WORDS.get(ing.get("relationship"), "an ingredient"),
        "state": state,
        "state_words": NODE_WORDS.get(state, state),
        "signer": who,
        "what": source_type_words(ing.get("digital_source_type")),
        "lines": list(dict.fromkeys(lines)),
        "repeated": bool(ing.get("repeated")),
        "thumb": thumb(ing.get("thumbnail"), f"Thumbnail of the ingredient {title}"),
        "children": [],
    }
    for child in ing.get("ingredients") or []:
        made = _node(child, budget) if isinstance(child, dict) else None
        if made:
            node["children"].append(made)
    return node


def _ai(c: dict, check: dict) -> list[str]:
    out = []
    what = source_type_words(c.get("digital_source_type"))
    if what and c.get("state") != "absent":
        out.append(f"The credentials say: {what}.")
    sig = c.get("signals") or {}
    if "capturedMedia" in (sig.get("not_credible") or []):
        out.append("It claims a camera capture, but its product may not claim that.")
    verdict = check.get("verdict")
    if verdict:
        decided = ", ".join(EVIDENCE_WORDS.get(k, k) for k in check.get("decided_by") or [])
        out.append(
            f"Judged: {VERDICT_WORDS.get(verdict, verdict)}"
            + (f" (decided by {decided.lower()})." if decided else ".")
        )
    out += training_words(c.get("training_mining") or {})
    return out


def _evidence(check: dict) -> list[str]:
    out = []
    for e in check.get("evidence") or []:
        if e.get("finding") in ("none", "absent", "no match") or e.get("kind") == "c2pa":
            continue  # the credentials have their own sections
        kind = EVIDENCE_WORDS.get(e.get("kind"), str(e.get("kind") or "").capitalize())
        if e.get("finding") == "not checked":
            out.append(f"{kind}: not checked.")  # why (and how to enable it): in the details
            continue
        text = e.get("detail") or e.get("finding")
        if text:
            out.append(f"{kind}: {text}")
    return out


def _problems(c: dict) -> list[str]:
    out = [w for w in (_cause_words(c.get("cause")),) if w]
    for e in c.get("failure_details") or []:
        words = _cause_words(e.get("cause"))
        sentence = e.get("sentence") or ""
        if e.get("code") == "signingCredential.untrusted":
            continue  # said under "who issued it"
        out.append(f"{words}: {sentence}" if words and sentence else words or sentence)
    for s in c.get("explanation") or []:
        if s not in out and "not on your trust list" not in s:
            out.append(s)
    if (c.get("thumbnail_check") or {}).get("sentence"):
        out.append(c["thumbnail_check"]["sentence"])
    if c.get("recovered_by") and not any("recovered" in str(x) for x in out):
        how = RECOVERED_BY.get(c["recovered_by"].get("method"), "a soft binding")
        out.append(f"The credentials were found again through {how}.")
    out += [n for n in c.get("notes") or [] if isinstance(n, str)]
    return [x for x in dict.fromkeys(out) if x]


def _when_seen(m: dict) -> str | None:
    if m.get("published"):
        return f"published {m['published']}"
    added = m.get("added")
    return f"added to the set on {str(added)[:10]}" if added else None


def _meta_words(meta) -> str | None:
    if not isinstance(meta, dict):
        return None
    parts = []
    for k, v in meta.items():
        if k in ("published", "hash_only") or v in (None, "", [], {}):
            continue
        if isinstance(v, list):
            v = ", ".join(str(x) for x in v)
        elif isinstance(v, dict):
            continue
        parts.append(f"{str(k).replace('_', ' ')}: {v}")
    return "; ".join(parts) or None


def _seen(matches: list[dict]) -> list[dict]:
    out = []
    for m in matches:
        bank = m.get("bank") or m.get("set")
        item = (
            m.get("partner_id")
            or m.get("source_id")
            or m.get("content_id")
            or m.get("item")
            or m.get("path")
        )
        if isinstance(item, str) and "/" in item:
            item = item.rsplit("/", 1)[-1]
        if isinstance(item, str) and item.startswith("upload:"):
            item = item[len("upload:") :]
        text = f"{m.get('label') or bank}: {item or 'item ' + str(m.get('item_id'))}"
        kind = HASH_NAMES.get(m.get("kind"), m.get("kind"))
        details = [f"{kind} distance {m.get('distance')}"]
        when = _when_seen(m)
        if when:
            details.insert(0, when)
        if m.get("protected"):
            details.append("a protected set")
        if m.get("exact"):
            details.append("the identical file")
        meta = _meta_words(m.get("metadata"))
        if meta:
            details.append(meta)
        out.append(
            {
                "text": f"{text} ({'; '.join(details)})",
                "thumb": thumb(m.get("thumbnail"), f"Reference picture in {bank}"),
            }
        )
    return out


def _codes(c: dict, check: dict, decision: dict) -> list[tuple[str, str]]:
    codes = []
    if c.get("state"):
        codes.append(("State", str(c["state"])))
    if c.get("manifest_label"):
        codes.append(("Manifest", str(c["manifest_label"])))
    if _cause_code(c.get("cause")):
        codes.append(("Cause", str(_cause_code(c.get("cause")))))
    if c.get("actions"):
        codes.append(("Actions", ", ".join(str(a.get("action")) for a in c["actions"])))
    if c.get("digital_source_type"):
        codes.append(("Source type", str(c["digital_source_type"])))
    fails = [
        f"{e.get('code')}" + (f" [{_cause_code(e.get('cause'))}]" if e.get("cause") else "")
        for e in c.get("failure_details") or []
    ]
    if fails:
        codes.append(("Status codes", ", ".join(fails)))
    rules = [
        r.get("rule_id") for r in (c.get("signals") or {}).get("rules") or [] if isinstance(r, dict)
    ]
    if rules:
        codes.append(("Signals", ", ".join(str(r) for r in rules)))
    if decision.get("matched_rules"):
        codes.append(("Rules", ", ".join(str(r) for r in decision["matched_rules"])))
    if c.get("asset_id"):
        codes.append(("Asset id", str(c["asset_id"])))
    if check.get("verdict"):
        codes.append(("Verdict", str(check["verdict"])))
    for e in check.get("evidence") or []:
        if e.get("finding") == "not checked" and e.get("detail"):
            codes.append((f"Not checked: {e.get('kind')}", str(e["detail"])))
    return codes


def card(record: dict) -> dict:
    """The words of one record's card (see the module docstring)."""
    out = {
        "name": record.get("name"),
        "error": record.get("error"),
        "line": record.get("line"),
        "outcome": record.get("outcome"),
    }
    out["chip"] = OUTCOME_WORDS.get(out["outcome"] or "", "")
    if record.get("error"):
        return out
    check = record.get("check") or {}
    c = record.get("credentials") or check.get("credentials") or {}
    decision = check.get("decision") or {}
    budget = [MAX_NODES]
    out.update(
        decision={
            "pack": decision.get("pack"),
            "point": decision.get("point"),
            "reasons": list(decision.get("reasons") or []),
            "labels": list(decision.get("labels") or []),
        },
        state_words=STATE_WORDS.get(c.get("state"), c.get("state")),
        warning=c.get("state") in ("invalid", "mismatch"),
        thumb=thumb(c.get("thumbnail"), "Thumbnail signed with the credentials"),
        preview=record.get("preview"),
        issued=_issued(c),
        when=_when(c),
        produced=_produced(c),
        capture=_capture(c),
        happened=_happened(c),
        ingredients=[
            n
            for n in (_node(i, budget) for i in c.get("ingredients") or [] if isinstance(i, dict))
            if n
        ],
        ai=_ai(c, check),
        evidence=_evidence(check),
        problems=_problems(c),
        seen=_seen(record.get("seen") or []),
        seen_checked=check.get("duplicates_checked"),
        codes=_codes(c, check, decision),
    )
    return out
