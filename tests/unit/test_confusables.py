"""Script detection, skeletons and the homograph check of `tuimail.mail.confusables`."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuimail.mail.confusables import (
    COMMON,
    INHERITED,
    edit_distance,
    restriction_problem,
    script_of,
    scripts_of,
    skeleton,
)


@pytest.mark.parametrize(
    ("ch", "script"),
    [
        ("a", "Latin"),
        ("Z", "Latin"),
        ("ü", "Latin"),
        ("ɡ", "Latin"),  # IPA script g: Latin, not a separate script
        ("ᴄ", "Latin"),  # small capital C
        ("ａ", "Latin"),  # fullwidth
        ("а", "Cyrillic"),
        ("ӏ", "Cyrillic"),
        ("ԁ", "Cyrillic"),
        ("ο", "Greek"),
        ("ἀ", "Greek"),
        ("օ", "Armenian"),
        ("Ꭺ", "Cherokee"),
        ("ꭰ", "Cherokee"),
        ("ა", "Georgian"),
        ("א", "Hebrew"),
        ("ب", "Arabic"),
        ("क", "Devanagari"),
        ("ก", "Thai"),
        ("東", "Han"),
        ("あ", "Hiragana"),
        ("カ", "Katakana"),
        ("한", "Hangul"),
        ("ㄅ", "Bopomofo"),
        ("ಕ", "Kannada"),  # outside the table: named after its Unicode block
        ("0", COMMON),
        ("-", COMMON),
        (".", COMMON),
        ("\u0301", INHERITED),  # combining acute
    ],
)
def test_script_of(ch: str, script: str) -> None:
    assert script_of(ch) == script


@pytest.mark.parametrize(
    ("label", "problem"),
    [
        # single-script names in any script are fine
        ("münchen", None),
        ("example", None),
        ("пример", None),  # Cyrillic, but п/м/и have no Latin twin
        ("δοκιμή", None),
        ("例え", None),
        ("東京abc", None),  # Han + Latin: allowed (Japanese/Chinese mix)
        ("한국abc", None),
        ("ひらがなカタカナ漢字", None),
        ("bücher-24", None),
        # mixing a Latin lookalike script into Latin
        ("pаypal", "mixes Cyrillic and Latin scripts"),
        ("gοogle", "mixes Greek and Latin scripts"),
        ("gօօgle", "mixes Armenian and Latin scripts"),
        ("Ꮯhase", "mixes Cherokee and Latin scripts"),
        ("ab한국東京あ", "mixes Han and Hangul and Hiragana and Latin scripts"),
        ("шоп-ελ", "mixes Cyrillic and Greek scripts"),
        ("abcא", "mixes Hebrew and Latin scripts"),
        # whole-script confusables: every letter has a Latin twin
        ("аррӏе", "is written in Cyrillic letters that look like Latin ones"),
        ("сосо", "is written in Cyrillic letters that look like Latin ones"),
        ("ραγ", "is written in Greek letters that look like Latin ones"),
        ("ᏟᎪᎢ", "is written in Cherokee letters that look like Latin ones"),
        ("օս", "is written in Armenian letters that look like Latin ones"),
    ],
)
def test_restriction_problem(label: str, problem: str | None) -> None:
    assert restriction_problem(label) == problem


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("paypal", "pаypal"),  # Cyrillic а
        ("paypal", "paypa1"),
        ("paypal", "PAYPAL"),
        ("apple", "аррӏе"),
        ("google", "gοοgle"),  # Greek omicrons
        ("google", "g00gle"),
        ("modern", "modem"),  # rn -> m
        ("www", "vvvvvv"),
        ("dear", "clear"),  # cl -> d
        ("example", "ｅｘａｍｐｌｅ"),  # fullwidth
        ("example", "𝐞𝐱𝐚𝐦𝐩𝐥𝐞"),  # mathematical bold
        ("google", "ɡoogle"),  # IPA script g
        ("cat", "ᏟᎪᎢ"),
        ("cat", "ꮯꭺꭲ"),  # Cherokee small letters
        ("coco", "ϲοϲο"),  # lunate sigma survives NFKC as c
    ],
)
def test_lookalikes_share_a_skeleton(a: str, b: str) -> None:
    assert skeleton(a) == skeleton(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [("paypal", "paypel"), ("mail", "mall"), ("apple", "appie"), ("münchen", "munchen")],
)
def test_different_looking_strings_keep_different_skeletons(a: str, b: str) -> None:
    assert skeleton(a) != skeleton(b)


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("paypal", "paypal", 0),
        ("paypal", "paypa", 1),
        ("paypal", "paypall", 1),
        ("paypal", "paypel", 1),
        ("paypal", "papyal", 1),  # adjacent swap
        ("paypal", "pyapla", 2),
        ("", "abc", 3),
        ("abc", "xyzabc", 3),
        ("kitten", "sitting", 3),
        ("a" * 50, "b" * 50, 4),  # capped at limit + 1
    ],
)
def test_edit_distance(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b) == distance
    assert edit_distance(b, a) == distance


@given(st.text(max_size=12), st.text(max_size=12))
def test_edit_distance_matches_definition_bounds(a: str, b: str) -> None:
    d = edit_distance(a, b, limit=30)
    assert d == edit_distance(b, a, limit=30)
    assert (d == 0) == (a == b)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))


@given(st.text(max_size=40))
def test_skeleton_and_scripts_never_raise_and_skeleton_is_stable(s: str) -> None:
    scripts_of(s)
    restriction_problem(s)
    folded = skeleton(s)
    assert isinstance(folded, str)
    # folding only ever maps to lower-case prototypes: no upper-case ASCII survives
    assert not any("A" <= ch <= "Z" for ch in folded)


def test_table_prototypes_are_lower_case_latin() -> None:
    from tuimail.mail.confusables import _CONFUSABLES

    for source, prototype in _CONFUSABLES.items():
        assert prototype == prototype.lower(), source
        assert all(
            script_of(ch) in ("Latin", COMMON)
            for ch in unicodedata.normalize("NFD", prototype)
            if not unicodedata.combining(ch)
        ), source
