"""Why credentials fail: every validation failure classified into one cause.

The causes are the fixed vocabulary of :data:`provenance.core.vocabulary.CAUSES`.
:func:`cause_of` reads one failure entry (an SDK status code, its explanation, where it
was found); a hard-binding mismatch needs evidence besides the code: it is
``content_altered`` only when the picture is shown to differ from what was signed (the
claim thumbnail no longer looks like it), and ``container_layout`` otherwise (the bytes
no longer line up, but nothing shows the content changed). :func:`classify` groups a
report's failures by cause, most serious first, each with its codes and words;
:func:`with_causes` puts them on a :class:`~provenance.report.VerifyReport`.

The table of codes and causes is in docs/provenance.md.
"""

from __future__ import annotations

from dataclasses import replace

from provkit.provenance.core.vocabulary import (
    CAUSE_WORDS,
    CAUSES,
    CREDENTIAL_KINDS,
    HARD_BINDING_CODES,
)
from provkit.provenance.status import CONTENT_NOT_COMPARED, CONTENT_NOT_SHOWN, CONTENT_SHOWN

#: The codes that say the signature, or the claim it covers, does not hold.
SIGNATURE_BROKEN_CODES = frozenset(
    {
        "claimSignature.mismatch",
        "claimSignature.missing",
        "assertion.hashedURI.mismatch",
        "hashedURI.mismatch",
        "hashedURI.missing",
        "assertion.missing",
        "assertion.external-reference.hashMismatch",
        "assertion.alternativeContentRepresentation.hashMismatch",
    }
)

#: Codes of a manifest stored elsewhere that could not be fetched.
REMOTE_CODES = frozenset({"manifest.inaccessible", "assertion.inaccessible"})

#: Not a failure of validation: whether the signer is on a trust list is reported apart
#: (the state ``valid`` and the "unrecognised signer" words), never as a cause.
TRUST_ONLY = frozenset({"signingCredential.untrusted"})

#: Hard-binding codes that mean the binding itself is broken, not the content.
_LAYOUT_CODES = frozenset({"assertion.boxesHash.unknownBox"})


def cause_of(entry: dict, thumbnail_check: dict | None = None) -> str | None:
    """The cause of one failure entry (``{code, where, sdk_explanation, hard_binding?}``),
    or None for a code that is no failure of validation (an untrusted signer)."""
    code = entry.get("code") or "general.error"
    where = entry.get("where")
    if code in TRUST_ONLY:
        return None
    if where not in (None, "active manifest", "recorded", "re-validated"):
        return "ingredient_failed"  # a re-validation delta of an ingredient
    if code.startswith("cawg."):
        return "identity_problem"
    if code in SIGNATURE_BROKEN_CODES:
        return "signature_broken"
    if (
        code.startswith(("signingCredential.", "timeStamp."))
        or code == "claimSignature.outsideValidity"
    ):
        return "credential_problem"
    if code.startswith("ingredient."):
        return "ingredient_failed"
    if code in REMOTE_CODES:
        return "remote_not_fetched"
    kind = entry.get("hard_binding")
    if kind in ("layout", "layout-consequence") or code in _LAYOUT_CODES:
        return "container_layout"
    if kind == "bmff-malformed" or code.endswith(".malformed"):
        return "manifest_malformed"
    if kind or code in HARD_BINDING_CODES:
        shown = (thumbnail_check or {}).get("looks_alike") is False
        return "content_altered" if shown else "container_layout"
    return "manifest_malformed"


def _credential_kind(codes: list[str]) -> str | None:
    for prefix, words in CREDENTIAL_KINDS:
        if any(c == prefix or (prefix.endswith(".") and c.startswith(prefix)) for c in codes):
            return words
    return None


def _evidence(cause: str, entries: list[dict], thumbnail_check: dict | None) -> str | None:
    """What, besides the codes, decided a hard-binding cause."""
    if not any(e.get("hard_binding") for e in entries):
        return None
    hint = thumbnail_check or {}
    if hint.get("distance") is not None:
        looks = "no longer looks" if cause == "content_altered" else "still looks"
        return (
            f"the picture {looks} like the thumbnail signed with it (PDQ distance "
            f"{hint['distance']} of 256 bits)"
        )
    if cause == "container_layout" and not any(
        e.get("hard_binding") in ("layout", "layout-consequence") for e in entries
    ):
        return "no signed thumbnail could be compared with the picture"
    return None


def phrase(cause: str, codes=(), *, remote_url: str | None = None, title: str | None = None) -> str:
    """The ``provkit check`` phrase for a cause (with its detail where one is known)."""
    words = CAUSE_WORDS[cause][0]
    if cause == "credential_problem":
        kind = _credential_kind(list(codes))
        return f"{words}: {kind}" if kind else words
    if cause == "remote_not_fetched" and remote_url:
        return f"credentials stored at {remote_url}, not fetched"
    if cause == "ingredient_failed" and title:
        return f"built on a failed ingredient: {title}"
    return words


def classify(
    details: list[dict],
    *,
    thumbnail_check: dict | None = None,
    remote_url: str | None = None,
    fetched: bool = True,
) -> list[dict]:
    """The causes of ``details`` (failure entries), most serious first:
    ``[{cause, codes, phrase, sentence, evidence}]``; a remote manifest that was not
    fetched is a cause of its own (``fetched=False``)."""
    groups: dict[str, list[dict]] = {}
    for e in details:
        cause = cause_of(e, thumbnail_check)
        if cause is not None:
            groups.setdefault(cause, []).append(e)
    if remote_url and not fetched:
        groups.setdefault("remote_not_fetched", [])
    out = []
    for cause in CAUSES:
        if cause not in groups:
            continue
        codes = list(dict.fromkeys(e["code"] for e in groups[cause]))
        item = {
            "cause": cause,
            "codes": codes,
            "phrase": phrase(cause, codes, remote_url=remote_url),
            "sentence": CAUSE_WORDS[cause][1],
        }
        evidence = _evidence(cause, groups[cause], thumbnail_check)
        if evidence:
            item["evidence"] = evidence
            item["sentence"] = item["sentence"].rstrip(".") + f" ({evidence})."
        out.append(item)
    return out


def failed_ingredients(ingredients: list, limit: int = 64) -> list[dict]:
    """Every node of an ingredient tree whose credentials failed, when it was added or
    now: ``[{title, when, cause, codes, phrase}]`` (a recovered ingredient whose only
    failure is the expected binding is not counted)."""
    out: list[dict] = []

    def walk(nodes):
        for node in nodes:
            if len(out) >= limit or not isinstance(node, dict) or "omitted" in node:
                continue
            when = None
            if node.get("failed_when_added"):
                when, entries = "added", node.get("recorded_status") or []
            elif node.get("state") == "invalid" and not node.get("note"):
                when, entries = "now", node.get("deltas") or []
            if when:
                active = [dict(e, where="active manifest") for e in entries]
                found = classify(active, thumbnail_check=node.get("thumbnail_check"))
                cause = found[0]["cause"] if found else "ingredient_failed"
                out.append(
                    {
                        "title": node.get("title"),
                        "when": when,
                        "cause": cause,
                        "codes": [e["code"] for e in entries],
                        "phrase": phrase(cause, [e["code"] for e in entries]),
                    }
                )
            walk(node.get("ingredients") or [])

    walk(ingredients)
    return out


def reword_bindings(
    details: list[dict], explanation: list[str], thumbnail_check: dict | None
) -> tuple[list[dict], list[str]]:
    """Hard-binding sentences that say what the picture comparison showed: "its contents
    changed" only when the picture no longer looks like its signed thumbnail."""
    new_details, renamed = [], {}
    for e in details:
        if e.get("hard_binding") in ("content", "box", "bmff", "collection") and cause_of(
            e, thumbnail_check
        ) in ("content_altered", "container_layout"):
            if cause_of(e, thumbnail_check) == "content_altered":
                words = CONTENT_SHOWN
            elif (thumbnail_check or {}).get("distance") is not None:
                words = CONTENT_NOT_SHOWN
            else:
                words = CONTENT_NOT_COMPARED
            renamed[e["sentence"]] = words
            e = dict(e, sentence=words)
        new_details.append(e)
    text = list(dict.fromkeys(renamed.get(s, s) for s in explanation))
    return new_details, text


def with_causes(report, *, fetched: bool = True):
    """``report`` with its failure causes (``causes``), the primary one (``cause``) and
    its failed ingredients (``failed_ingredients``); an ingredient that failed is a cause
    too (``ingredient_failed``), named."""
    remote = report.remote_url if report.state == "absent" else None
    details, explanation = reword_bindings(
        report.failure_details or [], report.explanation or [], report.thumbnail_check
    )
    found = classify(
        details, thumbnail_check=report.thumbnail_check, remote_url=remote, fetched=fetched
    )
    bad = failed_ingredients(report.ingredients or [])
    if bad and not any(c["cause"] == "ingredient_failed" for c in found):
        found.append(
            {
                "cause": "ingredient_failed",
                "codes": [],
                "phrase": "",
                "sentence": CAUSE_WORDS["ingredient_failed"][1],
            }
        )
    for c in found:
        if c["cause"] == "ingredient_failed" and bad:
            names = ", ".join(str(b["title"] or "untitled") for b in bad[:3])
            how = "; ".join(
                dict.fromkeys(
                    f"{b['phrase']} when {'added' if b['when'] == 'added' else 'checked now'}"
                    for b in bad[:3]
                )
            )
            c["phrase"] = f"built on a failed ingredient: {names} ({how})"
            c["ingredients"] = [b["title"] for b in bad]
    found.sort(key=lambda c: CAUSES.index(c["cause"]))
    return replace(
        report,
        causes=found,
        cause=found[0]["cause"] if found else None,
        failed_ingredients=bad,
        failure_details=details,
        explanation=explanation,
    )
