"""Term lists: case-, accent- and width-insensitive whole-word and phrase matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from provkit.policies.terms import TermList, normalise

PEOPLE = TermList.from_lines("people", ["Taylor Swift", "Beyoncé", "Xi Jinping", "# comment", ""])


@pytest.mark.parametrize(
    "prompt, found",
    [
        ("a portrait of Taylor Swift", ["Taylor Swift"]),
        ("TAYLOR-SWIFT, on stage!", ["Taylor Swift"]),
        ("taylor\n\tswift", ["Taylor Swift"]),
        ("beyonce singing", ["Beyoncé"]),
        ("ＢＥＹＯＮＣＥ", ["Beyoncé"]),  # full-width letters
        ("tay\u200blor swift", ["Taylor Swift"]),  # zero-width space inside a word
        ("xi jinping and beyoncé", ["Xi Jinping", "Beyoncé"]),
        ("a swift taylor", []),  # words out of order
        ("taylorswift", []),  # not whole words
        ("beyoncéfan club", []),
        ("", []),
    ],
)
def test_terms_match_whole_words_after_normalising(prompt, found):
    assert PEOPLE.find(prompt) == found
    assert PEOPLE.matches(prompt) == bool(found)


def test_comments_and_blank_lines_are_not_terms():
    assert PEOPLE.terms == ("Taylor Swift", "Beyoncé", "Xi Jinping")


def test_none_and_non_text_never_match():
    assert not PEOPLE.matches(None) and PEOPLE.find(None) == []


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
separators = st.sampled_from([" ", ", ", "-", "  ", "\n", "! ", "/"])


@given(
    before=st.lists(words, max_size=4),
    after=st.lists(words, max_size=4),
    sep=separators,
    upper=st.booleans(),
)
def test_a_term_between_any_words_is_found(before, after, sep, upper):
    term = "Xi Jinping".upper() if upper else "xi jinping"
    prompt = sep.join([*before, term, *after])
    assert "Xi Jinping" in PEOPLE.find(prompt)


@given(st.text(max_size=40))
def test_normalise_is_idempotent(text):
    once = normalise(text)
    assert normalise(once) == once


def test_studio_pack_refuses_a_real_person_prompt_through_cel():
    from provkit.policies import evaluate

    d = evaluate("studio", "generate.request", {"request": {"prompt": "Tom  HANKS eating soup"}})
    assert d.outcome == "deny" and "Tom Hanks" in d.reasons[0]
