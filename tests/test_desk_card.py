"""The desk's card over HTTP, without a browser: words instead of codes, manifest text
escaped, and a file that cannot be checked answered with a card saying why."""

from __future__ import annotations

import re

from provkit.provenance.manifest import ManifestSpec

from provkit.server.card import card
from provkit.server.desk import desk_record
from tests.fixtures_desk import hostile_file
from tests.fixtures_serve import token


def test_manifest_text_reaches_the_card_escaped(api, workspace, photos, tmp_path):
    path = hostile_file(tmp_path, photos)
    r = api.post(
        "/desk/record",
        files={"file": ("hostile.jpg", path.read_bytes(), "image/jpeg")},
        data={"pack": "newsroom"},
        headers=token(workspace, "desk", "read"),
    )
    assert r.status_code == 200
    html = r.text
    assert "<script" not in html and "<svg" not in html and "<img src=x" not in html
    assert "&lt;svg onload=alert(3)&gt;" in html and "&lt;/dd&gt;&lt;script&gt;" in html
    assert 'onerror="' not in html.replace("onerror=&#34;", "").replace("onerror=&quot;", "")
    assert re.search(r'data-outcome="(allow|label|review|deny)"', html)


def test_a_file_that_cannot_be_checked_gets_a_card_saying_why(api, workspace):
    r = api.post(
        "/desk/record",
        files={"file": ("notes.jpg", b"not an image at all", "image/jpeg")},
        headers=token(workspace, "desk", "read"),
    )
    assert r.status_code == 200
    assert 'data-error="' in r.text and "notes.jpg" in r.text and "not an image" in r.text
    assert (
        api.post(
            "/desk/record",
            files={"file": ("a.jpg", b"x", "image/jpeg")},
            data={"pack": "nosuch"},
            headers=token(workspace, "d2", "read"),
        ).status_code
        == 404
    )


def test_the_card_speaks_in_words_and_keeps_codes_for_the_details(workspace, photo_path, tmp_path):
    from provkit.provenance.issue import issue

    signed = tmp_path / "signed.jpg"
    issue(
        photo_path,
        signed,
        spec=ManifestSpec(source_type="digitalCapture", no_train=True),
        db=workspace / "provkit.db",
    )
    v = card(desk_record(signed, db=workspace / "provkit.db", dry_run=True))
    assert v["chip"] == "ALLOW" and v["error"] is None
    words = [
        v["state_words"],
        *v["issued"],
        *v["when"],
        *v["produced"],
        *v["happened"],
        *v["ai"],
        *v["evidence"],
        *v["problems"],
        *v["decision"]["reasons"],
    ]
    text = " ".join(words)
    assert "Created with provkit" in text and "captured with a camera" in text
    assert "Do not use for training generative AI" in text
    assert not re.search(r"c2pa\.|cawg\.|digitalCapture|\{'|urn:", text), text
    codes = dict(v["codes"])
    assert codes["Actions"] == "c2pa.created" and codes["State"] == "trusted"


def test_a_failure_cause_is_shown_in_words_whatever_its_shape():
    """A cause given as a code or as ``{code, words}`` reads as words on the card and as
    the code in the details; an ingredient's cause reads on its node."""
    c2pa = {
        "state": "invalid",
        "failure_details": [
            {
                "code": "assertion.dataHash.mismatch",
                "sentence": "The bytes differ.",
                "cause": "content_altered",
            },
            {
                "code": "claimSignature.mismatch",
                "sentence": "The signature does not hold.",
                "cause": {"code": "signature_broken", "words": "Signature or claim broken"},
            },
        ],
        "ingredients": [
            {
                "title": "part.jpg",
                "relationship": "componentOf",
                "state": "invalid",
                "cause": {"code": "ingredient_failed", "words": "An ingredient failed"},
                "thumbnail": None,
                "ingredients": [],
            }
        ],
    }
    v = card(
        {
            "name": "x.jpg",
            "line": "l",
            "outcome": "deny",
            "credentials": c2pa,
            "check": {"decision": {"outcome": "deny"}},
        }
    )
    assert "Content altered: The bytes differ." in v["problems"]
    assert "Signature or claim broken: The signature does not hold." in v["problems"]
    assert "An ingredient failed" in v["ingredients"][0]["lines"]
    codes = dict(v["codes"])["Status codes"]
    assert "assertion.dataHash.mismatch [content_altered]" in codes
    assert "claimSignature.mismatch [signature_broken]" in codes
