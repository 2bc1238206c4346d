"""The shared vocabulary: IPTC digital source types, training-and-mining uses, C2PA
status-code groups and verify states. Every package reads these names from here.
"""

from __future__ import annotations

from provkit.provenance.core.errors import BadInput

#: The IRI prefix of the IPTC digital source type vocabulary.
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"

#: The IPTC digital source type vocabulary (short names).
DIGITAL_SOURCE_TYPES = (
    "digitalCapture",
    "computationalCapture",
    "negativeFilm",
    "positiveFilm",
    "print",
    "humanEdits",
    "algorithmicallyEnhanced",
    "softwareImage",
    "digitalArt",
    "digitalCreation",
    "dataDrivenMedia",
    "trainedAlgorithmicMedia",
    "algorithmicMedia",
    "screenCapture",
    "virtualRecording",
    "composite",
    "compositeCapture",
    "compositeSynthetic",
    "compositeWithTrainedAlgorithmicMedia",
)

# The source types grouped by what they say about AI involvement (the verdict's groups).
AI_GENERATED_TYPES = frozenset({"trainedAlgorithmicMedia"})
#: Made by an algorithm with no trained model (generative art, provkit's built-in generator):
#: the verdict counts it as generated, and says so.
ALGORITHMIC_TYPES = frozenset({"algorithmicMedia"})
AI_EDITED_TYPES = frozenset({"compositeWithTrainedAlgorithmicMedia"})
SYNTHETIC_TYPES = frozenset(
    {
        "compositeSynthetic",
        "digitalCreation",
        "digitalArt",
        "softwareImage",
        "dataDrivenMedia",
        "virtualRecording",
    }
)
CAPTURE_TYPES = frozenset(
    {
        "digitalCapture",
        "computationalCapture",
        "negativeFilm",
        "positiveFilm",
        "print",
        "compositeCapture",
        "minorHumanEdits",
        "humanEdits",
        "algorithmicallyEnhanced",
    }
)
#: Neither a camera capture nor declared AI: the C2PA asset rubric's inception signals
#: ``compositionMayContainGenAI`` and ``screenCaptureMayContainGenAI``.
MAY_CONTAIN_AI_TYPES = frozenset({"composite", "screenCapture"})


def source_type_name(value: str | None) -> str | None:
    """The one normaliser: an IPTC IRI (``http://cv.iptc.org/.../trainedAlgorithmicMedia``,
    with or without a trailing slash or spaces) or a short name -> the short name; empty
    and None -> None."""
    if not value:
        return None
    value = value.strip()
    return value.rstrip("/").rsplit("/", 1)[-1] or None


def canonical_source_type(name: str) -> str:
    """The IPTC short name as the vocabulary spells it, matched without regard to case
    (``digitalcapture`` -> ``digitalCapture``); BadInput listing the names otherwise."""
    for known in DIGITAL_SOURCE_TYPES:
        if known.lower() == name.strip().lower():
            return known
    raise BadInput(
        f"unknown digital source type '{name}' (one of: {', '.join(DIGITAL_SOURCE_TYPES)})"
    )


def source_type_iri(name: str) -> str:
    """The IRI for a short IPTC name, in any case (an IRI is passed through); BadInput
    for an unknown name."""
    if name.startswith("http"):
        return name
    return IPTC + canonical_source_type(name)


#: Every use the training-and-data-mining assertion names (and can forbid).
TRAINING_USES = (
    "cawg.ai_inference",
    "cawg.ai_generative_training",
    "cawg.ai_training",
    "cawg.data_mining",
)

#: Hard-binding failures: the bytes are not those the manifest was signed over (always
#: reported for a standalone store, e.g. one recovered from the ledger).
HARD_BINDING_CODES = frozenset(
    {
        "assertion.dataHash.mismatch",
        "assertion.bmffHash.mismatch",
        "assertion.boxesHash.mismatch",
        "assertion.collectionHash.mismatch",
        "assertion.boxesHash.unknownBox",
        "assertion.collectionHash.incorrectFileCount",
        "assertion.multiAssetHash.mismatch",
    }
)

#: What verification can say about a file's credentials.
#: The verdicts of ``provkit detect`` (``asset.verdict`` in a decision context).
VERDICTS = ("ai-generated", "ai-edited", "camera/authentic-claimed", "unknown")
STATES = ("absent", "invalid", "valid", "trusted", "recovered", "mismatch")

#: Why credentials fail: every failure is classified into exactly one of these causes
#: (:mod:`provenance.causes`), most serious first. "Altered" is said only for
#: ``content_altered``: a hard-binding mismatch where the picture is also shown to differ
#: from what was signed (its signed thumbnail or an ingredient).
CAUSES = (
    "content_altered",
    "signature_broken",
    "manifest_malformed",
    "credential_problem",
    "identity_problem",
    "container_layout",
    "remote_not_fetched",
    "ingredient_failed",
)

#: cause -> (the phrase ``provkit check`` prints, the sentence reports and pages print).
CAUSE_WORDS = {
    "content_altered": (
        "content altered since signing",
        (
            "The content was altered after signing: the signed bytes no longer match and the "
            "picture differs from what was signed."
        ),
    ),
    "signature_broken": (
        "signature or claim broken",
        (
            "The signature or the claim it covers does not hold: the manifest was altered or "
            "signed with another key."
        ),
    ),
    "manifest_malformed": (
        "manifest malformed or unreadable",
        (
            "The manifest is malformed or cannot be read, so it cannot be validated; this "
            "shows nothing about the content."
        ),
    ),
    "credential_problem": (
        "credential problem",
        (
            "The signing credential does not hold (expired, revoked or not valid for signing); "
            "this shows nothing about the content."
        ),
    ),
    "identity_problem": (
        "identity assertion not verified",
        (
            "An identity assertion (CAWG) could not be verified; the C2PA signature is judged "
            "apart from it."
        ),
    ),
    "container_layout": (
        "signed bytes no longer line up; content not shown to differ",
        (
            "The file's bytes no longer line up with what was signed (often a metadata writer "
            "that moved the manifest); nothing shows that the content changed."
        ),
    ),
    "remote_not_fetched": (
        "credentials stored remotely, not fetched",
        (
            "The credentials are stored at an address outside the file and were not fetched, "
            "so nothing was validated."
        ),
    ),
    "ingredient_failed": (
        "an ingredient failed validation",
        (
            "The asset was built on an ingredient whose credentials failed validation (when it "
            "was added, or now)."
        ),
    ),
}

#: Credential-problem sub-kinds, for the check phrase (first match wins).
CREDENTIAL_KINDS = (
    ("signingCredential.expired", "certificate expired"),
    ("claimSignature.outsideValidity", "certificate expired when used"),
    ("signingCredential.revoked", "certificate revoked"),
    ("signingCredential.ocsp.revoked", "certificate revoked"),
    ("signingCredential.ocsp.unknown", "revocation status unknown"),
    ("signingCredential.invalid", "certificate not valid for signing"),
    ("timeStamp.", "time-stamp does not hold"),
)

#: The C2PA actions vocabulary (C2PA 2.x, "Actions"): the names a manifest's ``action``
#: may take without a namespace of its own. Any other action must be a custom one in
#: reverse-DNS form (``com.example.retouched``), see :data:`CUSTOM_ACTION`.
C2PA_ACTIONS = frozenset(
    {
        "c2pa.color_adjustments",
        "c2pa.converted",
        "c2pa.created",
        "c2pa.cropped",
        "c2pa.deleted",
        "c2pa.drawing",
        "c2pa.dubbed",
        "c2pa.edited",
        "c2pa.edited.metadata",
        "c2pa.enhanced",
        "c2pa.filtered",
        "c2pa.font.edited",
        "c2pa.managed",
        "c2pa.opened",
        "c2pa.orientation",
        "c2pa.placed",
        "c2pa.produced",
        "c2pa.published",
        "c2pa.redacted",
        "c2pa.removed",
        "c2pa.repackaged",
        "c2pa.resized",
        "c2pa.transcoded",
        "c2pa.translated",
        "c2pa.trimmed",
        "c2pa.unknown",
        "c2pa.versioned",
        "c2pa.watermarked",
    }
)
#: A custom action: a reverse-DNS name, lower-case labels, then the action's own name.
CUSTOM_ACTION = r"^[a-z][a-z0-9-]{0,62}(\.[a-z0-9][a-z0-9-]{0,62})+\.[A-Za-z][A-Za-z0-9_]{0,63}$"
