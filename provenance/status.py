"""C2PA status codes: which mean what, the state they give, and sentences for people."""

from __future__ import annotations

from provenance.core.vocabulary import HARD_BINDING_CODES, STATES  # noqa: F401  (re-exported)

#: Status code (prefix) -> a sentence a person can act on.
EXPLANATIONS = [
    ("assertion.dataHash.mismatch", "The pixels (or other file bytes) were changed after signing."),
    ("assertion.bmffHash.mismatch", "The file contents were changed after signing."),
    ("assertion.boxesHash.mismatch", "The file contents were changed after signing."),
    ("assertion.collectionHash.mismatch", "The file contents were changed after signing."),
    ("assertion.hashedURI.mismatch", ("The manifest was altered after signing: an assertion "
                                      "does not match the hash the claim recorded.")),
    ("assertion.missing", "The manifest refers to an assertion that is missing."),
    ("assertion.action.", "The manifest's action history is malformed."),
    ("claimSignature.mismatch", ("The signature does not match the claim (wrong key or altered "
                                 "claim).")),
    ("claimSignature.missing", "The manifest has no signature."),
    ("claimSignature.outsideValidity", ("The signature was made outside the certificate's "
                                        "validity period.")),
    ("signingCredential.untrusted", "The signer is not on your trust list."),
    ("signingCredential.invalid", "The signing certificate is not valid for C2PA signing."),
    ("signingCredential.revoked", "The signing certificate has been revoked."),
    ("signingCredential.expired", "The signing certificate has expired."),
    ("timeStamp.untrusted", "The time-stamp authority is not on your trust list."),
    ("timeStamp.mismatch", "The time-stamp does not match the signature."),
    ("ingredient.manifest.missing", "An ingredient's manifest is missing."),
    ("ingredient.hashedURI.mismatch", "An ingredient's manifest was altered."),
    ("manifest.", "The manifest store is malformed."),
    ("claim.", "The claim is malformed."),
    ("general.error", "The manifest could not be validated."),
]


def explain(codes) -> list[str]:
    """Plain sentences for SDK status codes, each sentence once, in code order."""
    out = []
    for code in codes:
        for prefix, sentence in EXPLANATIONS:
            if code == prefix or (prefix.endswith(".") and code.startswith(prefix)):
                if sentence not in out:
                    out.append(sentence)
                break
        else:
            sentence = f"Validation reported {code}."
            if sentence not in out:
                out.append(sentence)
    return out


def status_codes(results: dict | None, key: str = "failure") -> list[str]:
    if not results:
        return []
    codes = [s["code"] for s in (results.get("activeManifest") or {}).get(key, [])]
    for delta in results.get("ingredientDeltas") or []:
        codes += [s["code"] for s in (delta.get("validationDeltas") or {}).get(key, [])]
    return codes

def state_from_codes(failures, successes=()) -> str:
    """The state validation codes imply: ``invalid`` on any failure other than an
    untrusted signer, else ``trusted`` when the SDK reported a trusted credential."""
    if any(c != "signingCredential.untrusted" for c in failures):
        return "invalid"
    return "trusted" if "signingCredential.trusted" in successes else "valid"

def state_from_results(results: dict | None) -> str:
    """The state a set of recorded validation results implies (for ingredients)."""
    return state_from_codes(status_codes(results), status_codes(results, "success"))
