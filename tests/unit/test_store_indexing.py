"""Text extracted from HTML for the search index (never displayed)."""

from __future__ import annotations

import pytest

from tuimail.store.indexing import html_words


@pytest.mark.parametrize(
    ("html", "words", "absent"),
    [
        ("<p>Hello <b>world</b></p>", ["Hello", "world"], ["<p>", "<b>"]),
        ("a<script>var secret=1</script>b", ["a", "b"], ["secret"]),
        ("a<STYLE type=x>.c{}</style >b", ["a", "b"], [".c{}"]),
        ("visible<script>never closed", ["visible"], ["never"]),
        ("x &amp; y &#27; z", ["x", "y", "z"], ["&amp;", "&#27;"]),
        ("1 < 2 and 3 > 2", ["1", "2", "3"], []),
    ],
)
def test_html_words(html: str, words: list[str], absent: list[str]) -> None:
    text = html_words(html)
    for word in words:
        assert word in text
    for bad in absent:
        assert bad not in text


def test_unclosed_tags_keep_their_text_and_finish() -> None:
    # One million unclosed `<` used to make the tag pattern quadratic.
    text = html_words("<" * 1_000_000 + "tail")
    assert text.endswith("tail")
