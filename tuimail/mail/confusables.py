"""Lookalike characters and script mixing, for spotting spoofed domains and names.

A compact, offline stand-in for the parts of Unicode UTS #39 ("Security Mechanisms") that
phishing detection needs. Python's `unicodedata` has no Script property and the full
confusables.txt is ~600 KB, so this module keeps two small tables:

- `_SCRIPT_RANGES`: code point ranges of the scripts that matter for lookalike domains
  (Latin, Greek, Cyrillic, Armenian, Cherokee, Georgian, Hebrew, Arabic, the CJK scripts,
  ...). A letter outside the table is given the first word of its Unicode name as its
  script ("DEVANAGARI LETTER KA" -> "Devanagari"), which is right for almost every block
  and, more importantly, never lumps two different scripts into one. Digits, punctuation
  and symbols are "Common"; combining marks are "Inherited" (they take no side).
- `_CONFUSABLES`: the prototypes of the UTS #39 confusables that attacks actually use:
  Cyrillic, Greek, Armenian and Cherokee letters that look like Latin ones (а/a, е/e, о/o,
  р/p, с/c, х/x, і/i, ј/j, ԁ/d, ν/v, ο/o, Ꭺ/a, ...), IPA look-alikes (ɡ/g, ɑ/a, ı/i), plus
  the digit and letter-pair tricks of typosquatting (1->l, 0->o, rn->m, vv->w, cl->d).

`skeleton(s)` folds a string with these tables (after NFKC and case folding, which already
turn fullwidth and mathematical letters into ASCII); two strings with the same skeleton
look alike. `restriction_problem(label)` says why a label mixes scripts in a way UTS #39's
"highly restrictive" profile forbids, or looks entirely like Latin while written in another
script (a whole-script confusable such as Cyrillic "аррӏе").
"""

from __future__ import annotations

import bisect
import unicodedata
from functools import lru_cache

__all__ = [
    "COMMON",
    "INHERITED",
    "LATIN_LOOKALIKE_SCRIPTS",
    "edit_distance",
    "restriction_problem",
    "script_of",
    "scripts_of",
    "skeleton",
]

COMMON = "Common"
INHERITED = "Inherited"

# (first, last, script), sorted by first code point, non-overlapping.
_SCRIPT_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0041, 0x005A, "Latin"),
    (0x0061, 0x007A, "Latin"),
    (0x00AA, 0x00AA, "Latin"),
    (0x00BA, 0x00BA, "Latin"),
    (0x00C0, 0x00D6, "Latin"),
    (0x00D8, 0x00F6, "Latin"),
    (0x00F8, 0x02AF, "Latin"),  # Latin-1 letters, Extended-A/B, IPA (ɡ ɑ ɩ are Latin)
    (0x0370, 0x03FF, "Greek"),
    (0x0400, 0x052F, "Cyrillic"),
    (0x0531, 0x058F, "Armenian"),
    (0x0590, 0x05FF, "Hebrew"),
    (0x0600, 0x06FF, "Arabic"),
    (0x0750, 0x077F, "Arabic"),
    (0x08A0, 0x08FF, "Arabic"),
    (0x0900, 0x097F, "Devanagari"),
    (0x0E00, 0x0E7F, "Thai"),
    (0x10A0, 0x10FF, "Georgian"),
    (0x1100, 0x11FF, "Hangul"),
    (0x13A0, 0x13FF, "Cherokee"),
    (0x1C80, 0x1C8F, "Cyrillic"),
    (0x1C90, 0x1CBF, "Georgian"),
    (0x1D00, 0x1D25, "Latin"),  # small capitals (ᴀ ᴄ ᴏ ...), favourites of spoofers
    (0x1D26, 0x1D2A, "Greek"),
    (0x1D2B, 0x1D2B, "Cyrillic"),
    (0x1D2C, 0x1D7F, "Latin"),
    (0x1E00, 0x1EFF, "Latin"),
    (0x1F00, 0x1FFF, "Greek"),
    (0x2C60, 0x2C7F, "Latin"),
    (0x2D00, 0x2D2F, "Georgian"),
    (0x2DE0, 0x2DFF, "Cyrillic"),
    (0x2E80, 0x2FDF, "Han"),
    (0x3005, 0x3007, "Han"),
    (0x3041, 0x309F, "Hiragana"),
    (0x30A0, 0x30FF, "Katakana"),
    (0x3105, 0x312F, "Bopomofo"),
    (0x3131, 0x318F, "Hangul"),
    (0x31A0, 0x31BF, "Bopomofo"),
    (0x31F0, 0x31FF, "Katakana"),
    (0x3400, 0x4DBF, "Han"),
    (0x4E00, 0x9FFF, "Han"),
    (0xA640, 0xA69F, "Cyrillic"),
    (0xA720, 0xA7FF, "Latin"),
    (0xAB30, 0xAB6F, "Latin"),
    (0xAB70, 0xABBF, "Cherokee"),
    (0xAC00, 0xD7AF, "Hangul"),
    (0xF900, 0xFAFF, "Han"),
    (0xFB00, 0xFB06, "Latin"),
    (0xFB13, 0xFB17, "Armenian"),
    (0xFB1D, 0xFB4F, "Hebrew"),
    (0xFB50, 0xFDFF, "Arabic"),
    (0xFE70, 0xFEFF, "Arabic"),
    (0xFF21, 0xFF3A, "Latin"),
    (0xFF41, 0xFF5A, "Latin"),
    (0xFF66, 0xFF9F, "Katakana"),
    (0xFFA0, 0xFFDC, "Hangul"),
    (0x20000, 0x323AF, "Han"),
)
_RANGE_STARTS = tuple(first for first, _, _ in _SCRIPT_RANGES)

# Scripts whose letters are mistaken for Latin ones: mixing them with Latin, or writing a
# label only with their Latin-looking letters, is the classic IDN homograph attack.
LATIN_LOOKALIKE_SCRIPTS = frozenset({"Cyrillic", "Greek", "Armenian", "Cherokee"})

# UTS #39 "highly restrictive": one script, or one of these East Asian combinations
# (Latin is allowed with them because Japanese, Chinese and Korean text mixes in Latin).
_ALLOWED_MIXES: tuple[frozenset[str], ...] = (
    frozenset({"Latin", "Han", "Hiragana", "Katakana"}),
    frozenset({"Latin", "Han", "Bopomofo"}),
    frozenset({"Latin", "Han", "Hangul"}),
)

# Lookalike -> Latin prototype (lower case). Keys are what remains after NFKC + casefold,
# plus the few upper-case forms that casefold does not reach (Cherokee folds to upper case).
# fmt: off
_CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "с": "c", "ԁ": "d", "е": "e", "ҽ": "e", "һ": "h", "і": "i", "ї": "ï",
    "ј": "j", "ӏ": "l", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "у": "y", "ү": "y",
    "ԝ": "w", "х": "x",
    # Greek
    "α": "a", "ϲ": "c", "ι": "i", "ϳ": "j", "κ": "k", "η": "n", "ο": "o", "ρ": "p",
    "υ": "u", "ν": "v", "ω": "w", "χ": "x", "γ": "y",
    # Armenian
    "ց": "g", "հ": "h", "յ": "j", "ո": "n", "օ": "o", "գ": "q", "զ": "q", "ս": "u",
    "ա": "w",
    # Cherokee (upper case: Python case-folds Cherokee small letters to capitals)
    "Ꭺ": "a", "Ᏼ": "b", "Ꮯ": "c", "Ꭰ": "d", "Ꭼ": "e", "Ꮐ": "g", "Ꮋ": "h", "Ꭵ": "i",
    "Ꭻ": "j", "Ꮶ": "k", "Ꮮ": "l", "Ꮇ": "m", "Ꮎ": "o", "Ꮲ": "p", "Ꮢ": "r", "Ꮪ": "s",
    "Ꭲ": "t", "Ꮩ": "v", "Ꮃ": "w", "Ꮤ": "w", "Ꮓ": "z",
    # Latin look-alikes outside ASCII (IPA letters, small capitals, dotless letters)
    "ɑ": "a", "ɡ": "g", "ı": "i", "ɩ": "i", "ɪ": "i", "ȷ": "j", "ʏ": "y", "ᴀ": "a",
    "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ᴊ": "j", "ᴋ": "k", "ʟ": "l",
    "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v",
    "ᴡ": "w", "ᴢ": "z", "ƅ": "b",
    # Typosquatting digits and symbols (not UTS #39 prototypes, but read the same way)
    "0": "o", "1": "l", "|": "l", "ǀ": "l",
}
# fmt: on
# Letter pairs that read as one letter in most fonts (applied after the single characters).
_PAIRS: tuple[tuple[str, str], ...] = (("rn", "m"), ("vv", "w"), ("cl", "d"))


def script_of(ch: str) -> str:
    """The script of one character: a name like "Latin", or COMMON / INHERITED."""
    cp = ord(ch)
    i = bisect.bisect_right(_RANGE_STARTS, cp) - 1
    if i >= 0:
        first, last, script = _SCRIPT_RANGES[i]
        if first <= cp <= last:
            if unicodedata.category(ch).startswith("M"):
                return INHERITED
            return script
    category = unicodedata.category(ch)
    if category.startswith("M"):
        return INHERITED
    if not category.startswith("L"):
        return COMMON
    name = unicodedata.name(ch, "")
    # "CJK COMPATIBILITY IDEOGRAPH-..." and friends: the ranges above catch the common ones.
    return name.split(" ", 1)[0].capitalize() if name else "Unknown"


def scripts_of(s: str) -> frozenset[str]:
    """The real scripts used in `s` (Common and Inherited characters are left out)."""
    return frozenset(script for script in map(script_of, s) if script not in (COMMON, INHERITED))


def _is_allowed_mix(scripts: frozenset[str]) -> bool:
    return len(scripts) <= 1 or any(scripts <= allowed for allowed in _ALLOWED_MIXES)


def _fold_chars(s: str) -> str:
    return "".join(_CONFUSABLES.get(ch, ch) for ch in s)


@lru_cache(maxsize=4096)
def skeleton(s: str) -> str:
    """A folded form of `s`: strings that look alike have equal skeletons.

    NFKC (fullwidth and mathematical letters to ASCII), case folding, the confusables
    table, then the letter pairs (rn->m, vv->w, cl->d). Not reversible; compare only.
    """
    s = _fold_chars(s)  # before NFKC: it would turn lunate sigma into a non-lookalike
    s = _fold_chars(unicodedata.normalize("NFKC", s).casefold())
    for pair, single in _PAIRS:
        s = s.replace(pair, single)
    return s


def restriction_problem(label: str) -> str | None:
    """Why `label` (one domain label, in Unicode) looks like a homograph, or None.

    - "mixes X and Y scripts": not allowed by UTS #39's highly restrictive profile.
    - "written in X letters that look like Latin": a whole-script confusable, e.g. Cyrillic
      "аррӏе" shown where "apple" is expected. Only reported for the lookalike scripts,
      so that ordinary single-script names ("пример", "münchen") pass.
    """
    scripts = scripts_of(label)
    if not _is_allowed_mix(scripts):
        return "mixes " + " and ".join(sorted(scripts)) + " scripts"
    if len(scripts) == 1:
        (script,) = scripts
        if script in LATIN_LOOKALIKE_SCRIPTS and skeleton(label).isascii():
            return f"is written in {script} letters that look like Latin ones"
    return None


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count 1), capped at `limit` + 1.

    The cap keeps comparisons of unrelated long strings cheap: once every cell of a row
    exceeds `limit`, the answer is known to be "more than `limit`".
    """
    if a == b:
        return 0
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)
