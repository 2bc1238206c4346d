"""C2PA status codes: which mean what, the state they give, and sentences for people.

:data:`CODES` covers the standard status codes of the C2PA specification (claim,
claim signature, signing credential, time-stamp, assertion, hard binding, ingredient,
manifest, hashed URI, algorithm) plus the CAWG identity codes c2pa-rs reports. A code
the table does not know is explained by quoting the SDK's own explanation, so no
failure is ever dropped or left without words.

The hard-binding codes are told apart (:func:`hard_binding_kind`):
``content`` (the bytes the manifest covers changed), ``layout`` (the signed byte
ranges no longer line up with where the manifest sits in the file: a writer problem,
not evidence that the content changed), ``box`` and ``bmff`` (the box-based forms),
``collection``.

Why one module: it is the table of C2PA status codes, their groups and their sentences;
a table split in two helps no reader.
"""

from __future__ import annotations

from provkit.provenance.core.vocabulary import HARD_BINDING_CODES, STATES  # noqa: F401  (re-exported)

SUCCESS, INFORMATIONAL, FAILURE = "success", "informational", "failure"

#: code -> (kind, group, sentence). Groups: claim, signature, credential, timestamp,
#: assertion, hard-binding, ingredient, manifest, hashed-uri, algorithm, identity, general.
CODES: dict[str, tuple[str, str, str]] = {
    # -- success --
    "claimSignature.validated": (SUCCESS, "signature", "The claim signature is valid."),
    "claimSignature.insideValidity": (
        SUCCESS,
        "signature",
        "The signature was made while the certificate was valid.",
    ),
    "signingCredential.trusted": (SUCCESS, "credential", "The signer is on your trust list."),
    "signingCredential.ocsp.notRevoked": (
        SUCCESS,
        "credential",
        "The certificate's issuer says it is not revoked.",
    ),
    "timeStamp.validated": (SUCCESS, "timestamp", "The time-stamp is well-formed and matches."),
    "timeStamp.trusted": (SUCCESS, "timestamp", "The time-stamp authority is on the trust list."),
    "assertion.hashedURI.match": (SUCCESS, "assertion", "An assertion matches its recorded hash."),
    "assertion.dataHash.match": (
        SUCCESS,
        "hard-binding",
        "The file bytes are those that were signed.",
    ),
    "assertion.bmffHash.match": (
        SUCCESS,
        "hard-binding",
        "The media boxes are those that were signed.",
    ),
    "assertion.boxesHash.match": (
        SUCCESS,
        "hard-binding",
        "The file's boxes are those that were signed.",
    ),
    "assertion.collectionHash.match": (
        SUCCESS,
        "hard-binding",
        "Every file of the collection is as signed.",
    ),
    "assertion.accessible": (SUCCESS, "assertion", "A remote assertion could be fetched."),
    "ingredient.manifest.validated": (
        SUCCESS,
        "ingredient",
        "An ingredient's manifest matches its recorded hash.",
    ),
    "ingredient.claimSignature.validated": (
        SUCCESS,
        "ingredient",
        "An ingredient's signature matches its record.",
    ),
    # -- informational --
    "signingCredential.ocsp.skipped": (
        INFORMATIONAL,
        "credential",
        "Revocation (OCSP) was not checked online.",
    ),
    "signingCredential.ocsp.inaccessible": (
        INFORMATIONAL,
        "credential",
        "Revocation (OCSP) could not be checked: no answer.",
    ),
    "timeStamp.mismatch": (
        INFORMATIONAL,
        "timestamp",
        "The time-stamp does not match the signature.",
    ),
    "timeStamp.malformed": (INFORMATIONAL, "timestamp", "The time-stamp is malformed."),
    "timeStamp.outsideValidity": (
        INFORMATIONAL,
        "timestamp",
        "The time-stamp falls outside a certificate's validity period.",
    ),
    "timeStamp.untrusted": (
        INFORMATIONAL,
        "timestamp",
        "The time-stamp authority is not on your trust list.",
    ),
    "manifest.unknownProvenance": (
        INFORMATIONAL,
        "manifest",
        "The manifest cannot be interpreted by this validator.",
    ),
    "ingredient.unknownProvenance": (
        INFORMATIONAL,
        "ingredient",
        "An ingredient carries no manifest this validator can read.",
    ),
    "algorithm.deprecated": (
        INFORMATIONAL,
        "algorithm",
        "The manifest uses a deprecated algorithm.",
    ),
    # -- failure: claim --
    "claim.malformed": (FAILURE, "claim", "The claim is malformed."),
    "claim.missing": (FAILURE, "claim", "A referenced claim cannot be found."),
    "claim.multiple": (FAILURE, "claim", "The manifest holds more than one claim."),
    "claim.hardBindings.missing": (
        FAILURE,
        "claim",
        "The claim does not bind itself to the file's contents.",
    ),
    "claim.required.missing": (FAILURE, "claim", "The claim lacks a required field."),
    "claim.cbor.invalid": (FAILURE, "claim", "The claim's encoding (CBOR) is invalid."),
    # -- failure: signature and credential --
    "claimSignature.missing": (FAILURE, "signature", "The manifest has no signature."),
    "claimSignature.mismatch": (
        FAILURE,
        "signature",
        ("The signature does not match the claim (wrong key or altered claim)."),
    ),
    "claimSignature.outsideValidity": (
        FAILURE,
        "signature",
        ("The signature was made outside the certificate's validity period."),
    ),
    "signingCredential.untrusted": (FAILURE, "credential", "The signer is not on your trust list."),
    "signingCredential.invalid": (
        FAILURE,
        "credential",
        "The signing certificate is not valid for C2PA signing.",
    ),
    "signingCredential.revoked": (
        FAILURE,
        "credential",
        "The signing certificate has been revoked.",
    ),
    "signingCredential.ocsp.revoked": (
        FAILURE,
        "credential",
        "The signing certificate has been revoked by its issuer.",
    ),
    "signingCredential.ocsp.unknown": (
        FAILURE,
        "credential",
        ("The issuer does not know the signing certificate's revocation status."),
    ),
    "signingCredential.expired": (FAILURE, "credential", "The signing certificate has expired."),
    # -- failure: hard bindings --
    "assertion.dataHash.mismatch": (
        FAILURE,
        "hard-binding",
        "The file's bytes are not those that were signed.",
    ),
    "assertion.dataHash.malformed": (
        FAILURE,
        "hard-binding",
        "The data-hash binding is malformed.",
    ),
    "assertion.bmffHash.mismatch": (
        FAILURE,
        "hard-binding",
        "The media boxes (MP4/BMFF) are not those that were signed.",
    ),
    "assertion.bmffHash.malformed": (FAILURE, "hard-binding", "The BMFF binding is malformed."),
    "assertion.boxesHash.mismatch": (
        FAILURE,
        "hard-binding",
        "The file's boxes are not those that were signed.",
    ),
    "assertion.boxesHash.malformed": (FAILURE, "hard-binding", "The box binding is malformed."),
    "assertion.boxesHash.unknownBox": (
        FAILURE,
        "hard-binding",
        ("The file holds a box the signed box list does not name, or its boxes are out of order."),
    ),
    "assertion.collectionHash.mismatch": (
        FAILURE,
        "hard-binding",
        "A file of the collection changed after signing.",
    ),
    "assertion.collectionHash.incorrectFileCount": (
        FAILURE,
        "hard-binding",
        "A file of the collection is missing.",
    ),
    "assertion.collectionHash.invalidURI": (
        FAILURE,
        "hard-binding",
        ("The collection names a file by a path that is not allowed."),
    ),
    "assertion.collectionHash.malformed": (
        FAILURE,
        "hard-binding",
        "The collection binding is malformed.",
    ),
    "assertion.multiAssetHash.mismatch": (
        FAILURE,
        "hard-binding",
        "A part of the multi-part asset changed after signing.",
    ),
    "assertion.multiAssetHash.malformed": (
        FAILURE,
        "hard-binding",
        "The multi-part binding is malformed.",
    ),
    "assertion.multipleHardBindings": (
        FAILURE,
        "hard-binding",
        ("The manifest binds itself to the file in more than one way (only one is allowed)."),
    ),
    "assertion.hardBinding.redacted": (
        FAILURE,
        "hard-binding",
        "The binding to the file's contents was redacted.",
    ),
    "assertion.cloud-data.hardBinding": (
        FAILURE,
        "hard-binding",
        ("A binding to the file's contents is stored remotely, which is not allowed."),
    ),
    # -- failure: assertions --
    "assertion.hashedURI.mismatch": (
        FAILURE,
        "assertion",
        (
            "The manifest was altered after signing: an assertion does "
            "not match the hash the claim recorded."
        ),
    ),
    "assertion.missing": (
        FAILURE,
        "assertion",
        "The manifest refers to an assertion that is missing.",
    ),
    "assertion.undeclared": (
        FAILURE,
        "assertion",
        "The manifest holds an assertion its claim does not declare.",
    ),
    "assertion.inaccessible": (FAILURE, "assertion", "A remote assertion could not be fetched."),
    "assertion.notRedacted": (
        FAILURE,
        "assertion",
        "An assertion declared redacted is still present.",
    ),
    "assertion.selfRedacted": (FAILURE, "assertion", "A claim redacted one of its own assertions."),
    "assertion.required.missing": (FAILURE, "assertion", "An assertion lacks a required field."),
    "assertion.json.invalid": (FAILURE, "assertion", "An assertion's JSON is invalid."),
    "assertion.cbor.invalid": (FAILURE, "assertion", "An assertion's encoding (CBOR) is invalid."),
    "assertion.action.ingredientMismatch": (
        FAILURE,
        "assertion",
        "An action names an ingredient that cannot be found.",
    ),
    "assertion.action.redacted": (FAILURE, "assertion", "An action was redacted."),
    "assertion.action.malformed": (FAILURE, "assertion", "The action history is malformed."),
    "assertion.action.redactionMismatch": (
        FAILURE,
        "assertion",
        "A redaction action names no redacted assertion.",
    ),
    "assertion.cloud-data.actions": (
        FAILURE,
        "assertion",
        "An update manifest keeps its actions remotely.",
    ),
    "assertion.cloud-data.malformed": (
        FAILURE,
        "assertion",
        "A remote (cloud-data) assertion is malformed.",
    ),
    "assertion.outsideManifest": (
        FAILURE,
        "assertion",
        "The claim lists an assertion from another manifest.",
    ),
    "assertion.ingredient.malformed": (
        FAILURE,
        "assertion",
        "An ingredient assertion is malformed.",
    ),
    "assertion.metadata.disallowed": (
        FAILURE,
        "assertion",
        "A metadata assertion holds a field that is not allowed.",
    ),
    "assertion.external-reference.malformed": (
        FAILURE,
        "assertion",
        "An external reference is malformed.",
    ),
    "assertion.external-reference.hashMismatch": (
        FAILURE,
        "assertion",
        "An externally referenced file changed.",
    ),
    "assertion.alternativeContentRepresentation.hashMismatch": (
        FAILURE,
        "assertion",
        "An alternative representation of the content changed.",
    ),
    # -- failure: ingredients --
    "ingredient.hashedURI.mismatch": (
        FAILURE,
        "ingredient",
        "An ingredient's manifest was altered after it was added.",
    ),
    "ingredient.manifest.missing": (FAILURE, "ingredient", "An ingredient's manifest is missing."),
    "ingredient.manifest.mismatch": (
        FAILURE,
        "ingredient",
        ("An ingredient's manifest does not match the hash recorded when it was added."),
    ),
    "ingredient.claimSignature.missing": (
        FAILURE,
        "ingredient",
        "An ingredient's signature is missing.",
    ),
    "ingredient.claimSignature.mismatch": (
        FAILURE,
        "ingredient",
        ("An ingredient's signature does not match the one recorded when it was added."),
    ),
    # -- failure: manifest --
    "manifest.inaccessible": (FAILURE, "manifest", "The remote manifest could not be fetched."),
    "manifest.multipleParents": (
        FAILURE,
        "manifest",
        "The manifest names more than one parent ingredient.",
    ),
    "manifest.update.invalid": (
        FAILURE,
        "manifest",
        "An update manifest holds assertions it may not hold.",
    ),
    "manifest.update.wrongParents": (
        FAILURE,
        "manifest",
        "An update manifest does not have exactly one parent.",
    ),
    "manifest.timestamp.invalid": (
        FAILURE,
        "manifest",
        "A time-stamp manifest holds assertions it may not hold.",
    ),
    "manifest.timestamp.wrongParents": (
        FAILURE,
        "manifest",
        "A time-stamp manifest does not have exactly one parent.",
    ),
    "manifest.compressed.invalid": (FAILURE, "manifest", "The compressed manifest is invalid."),
    "manifest.unreferenced": (FAILURE, "manifest", "The store holds a manifest nothing refers to."),
    "manifest.unreadable": (
        FAILURE,
        "manifest",
        "A C2PA manifest is present but cannot be parsed.",
    ),
    # -- failure: hashed URIs, algorithms, general --
    "hashedURI.missing": (FAILURE, "hashed-uri", "Data the manifest points to cannot be found."),
    "hashedURI.mismatch": (
        FAILURE,
        "hashed-uri",
        "Data the manifest points to does not match its recorded hash.",
    ),
    "algorithm.unsupported": (
        FAILURE,
        "algorithm",
        "The manifest uses an algorithm this validator does not support.",
    ),
    "general.error": (FAILURE, "general", "The manifest could not be validated."),
    # -- CAWG identity assertions (judged apart from the C2PA signer) --
    "cawg.identity.well-formed": (SUCCESS, "identity", "An identity assertion is well-formed."),
    "cawg.identity.trusted": (SUCCESS, "identity", "An identity assertion's signer is trusted."),
    "cawg.identity.cbor.invalid": (
        FAILURE,
        "identity",
        "An identity assertion's encoding (CBOR) is invalid.",
    ),
    "cawg.identity.sig_type.unknown": (
        FAILURE,
        "identity",
        ("An identity assertion uses a signature type this validator does not know."),
    ),
    "cawg.identity.hard_binding_missing": (
        FAILURE,
        "identity",
        ("An identity assertion does not cover the binding to the file's contents."),
    ),
    "cawg.identity.assertion.mismatch": (
        FAILURE,
        "identity",
        ("An identity assertion refers to assertions that do not match."),
    ),
    "cawg.x509.signature.validated": (
        SUCCESS,
        "identity",
        "An identity assertion's X.509 signature is valid.",
    ),
    "cawg.x509.signature.invalid": (
        FAILURE,
        "identity",
        "An identity assertion's X.509 signature is invalid.",
    ),
    "cawg.ica.credential_valid": (
        SUCCESS,
        "identity",
        "An identity claims aggregator's credential is valid.",
    ),
    "cawg.identity.untrusted": (
        FAILURE,
        "identity",
        ("An identity assertion's signer is not on the identity trust list."),
    ),
    "cawg.identity.malformed": (FAILURE, "identity", "An identity assertion is malformed."),
    "cawg.identity.signature.mismatch": (
        FAILURE,
        "identity",
        "An identity assertion's signature does not match.",
    ),
    "cawg.identity.expired": (
        FAILURE,
        "identity",
        "An identity assertion's certificate has expired.",
    ),
    "cawg.x509.credential.untrusted": (
        FAILURE,
        "identity",
        (
            "An identity assertion's certificate is not on the "
            "identity trust list (its signature may still be "
            "valid)."
        ),
    ),
    "cawg.identity.pad.invalid": (
        FAILURE,
        "identity",
        "An identity assertion's padding is invalid.",
    ),
    "cawg.identity.assertion.duplicate": (
        FAILURE,
        "identity",
        ("An identity assertion refers to the same assertion twice."),
    ),
}

#: Sentences for a hard-binding failure once the picture was compared (or could not be).
CONTENT_SHOWN = (
    "The file's bytes are not those that were signed, and the picture no longer "
    "looks like the thumbnail signed with it: its contents changed after signing."
)
CONTENT_NOT_SHOWN = (
    "The file's bytes are not those that were signed, but the picture still "
    "looks like the thumbnail signed with it: nothing shows that the content "
    "changed."
)
CONTENT_NOT_COMPARED = (
    "The file's bytes are not those that were signed; no signed thumbnail "
    "could be compared with the content, so a change to the content is not "
    "shown."
)
#: A BMFF hash assertion the SDK could not use (reported as a mismatch with such words).
BMFF_MALFORMED = (
    "The BMFF hash assertion is malformed (it cannot be checked); this does not "
    "show that the audio, video or image data changed."
)
_MALFORMED_MARKERS = (
    "malformed",
    "could not parse",
    "invalid",
    "unsupported",
    "missing",
    "decode",
    "cbor",
)

#: The layout form of ``assertion.dataHash.mismatch``.
LAYOUT_SENTENCE = (
    "The signed byte ranges do not line up with where the manifest sits in the "
    "file (often a writer that moved the manifest, e.g. when re-saving metadata): "
    "this does not by itself show that the content changed."
)
_LAYOUT_MARKERS = ("exclusion", "manifest location", "out of range", "exclusions")


def hard_binding_kind(code: str, explanation: str | None = None) -> str | None:
    """``content``, ``layout``, ``box``, ``bmff``, ``collection``, or None (not a binding)."""
    if code == "assertion.dataHash.mismatch":
        low = (explanation or "").lower()
        return "layout" if any(m in low for m in _LAYOUT_MARKERS) else "content"
    if code.startswith("assertion.boxesHash."):
        return "box"
    if code.startswith("assertion.bmffHash."):
        low = (explanation or "").lower()
        if code.endswith(".malformed") or any(m in low for m in _MALFORMED_MARKERS):
            return "bmff-malformed"
        return "bmff"
    if code.startswith(("assertion.collectionHash.", "assertion.multiAssetHash.")):
        return "collection"
    if code in HARD_BINDING_CODES:
        return "content"
    return None


def sentence(code: str, explanation: str | None = None) -> str:
    """One plain sentence for a status code; an unknown code quotes the SDK's explanation."""
    kind = hard_binding_kind(code, explanation)
    if kind == "layout":
        return LAYOUT_SENTENCE
    if kind == "bmff-malformed":
        return BMFF_MALFORMED
    entry = CODES.get(code)
    if entry is not None:
        return entry[2]
    if explanation:
        return f"Validation reported {code}: {explanation.rstrip('.')}."
    return f"Validation reported {code}."


def entries(results: dict | None, key: str = "failure") -> list[dict]:
    """Every status entry of ``key`` in a validation-results object, each with a sentence,
    where it was found (``active manifest`` or the ingredient's URI) and, for hard
    bindings, their kind. Nothing is deduplicated away: two failures give two entries."""
    if not results:
        return []
    out = []
    for s in (results.get("activeManifest") or {}).get(key) or []:
        out.append(_entry(s, "active manifest"))
    for delta in results.get("ingredientDeltas") or []:
        where = delta.get("ingredientAssertionURI") or "an ingredient"
        for s in (delta.get("validationDeltas") or {}).get(key) or []:
            out.append(_entry(s, where))
    return out


def _entry(s: dict, where: str) -> dict:
    code = s.get("code") or "general.error"
    expl = s.get("explanation")
    item = {
        "code": code,
        "where": where,
        "url": s.get("url"),
        "sdk_explanation": expl,
        "sentence": sentence(code, expl),
    }
    kind = hard_binding_kind(code, expl)
    if kind:
        item["hard_binding"] = kind
    return item


def list_entries(statuses: list | None) -> list[dict]:
    """Entries from a plain status list (an ingredient's recorded ``validation_status``)."""
    return [_entry(s, "recorded") for s in statuses or [] if isinstance(s, dict)]


def explain(codes) -> list[str]:
    """Plain sentences for status codes or entries, each sentence once, in order."""
    out = []
    for c in codes:
        s = c["sentence"] if isinstance(c, dict) else sentence(c)
        if s not in out:
            out.append(s)
    return out


def status_codes(results: dict | None, key: str = "failure") -> list[str]:
    return [e["code"] for e in entries(results, key)]


def state_from_codes(failures, successes=()) -> str:
    """The state validation codes imply: ``invalid`` on any failure other than an
    untrusted signer, else ``trusted`` when the SDK reported a trusted credential."""
    if any(c != "signingCredential.untrusted" for c in failures):
        return "invalid"
    return "trusted" if "signingCredential.trusted" in successes else "valid"


def state_from_results(results: dict | None) -> str:
    """The state a set of recorded validation results implies (for ingredients)."""
    return state_from_codes(status_codes(results), status_codes(results, "success"))
