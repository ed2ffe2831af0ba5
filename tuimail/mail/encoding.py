"""Decoding of untrusted message bytes: charsets, RFC 2047 encoded words, RFC 2231 parameters,
base64 and quoted-printable. Everything here is tolerant: bad input degrades, never raises.
"""

from __future__ import annotations

import binascii
import codecs
import re
from functools import lru_cache

__all__ = [
    "decode_b64",
    "decode_bytes",
    "decode_qp",
    "decode_transfer",
    "decode_words",
    "flatten",
    "parse_params",
    "resolve_charset",
]

# Labels mail software writes that mean something else in practice (the WHATWG Encoding
# Standard's choices, which every browser and most mail clients follow): "iso-8859-1" mail
# is really windows-1252, "gb2312" is really GBK/GB18030, and so on.
_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "big5": "big5hkscs",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "utf8": "utf-8",
    "unicode-1-1-utf-7": "utf-7",
}
# Labels that say nothing: decode as UTF-8 if valid, else windows-1252.
_UNKNOWN = frozenset(
    {"", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "unknown", "default", "x-user-defined"}
)
# Text codecs that are not charsets, or that are slow on hostile input (punycode is
# quadratic): never used, whatever the message declares.
_BLOCKED = frozenset(
    {"punycode", "idna", "unicode-escape", "raw-unicode-escape", "undefined", "mbcs", "oem"}
)


@lru_cache(maxsize=256)
def resolve_charset(label: str | None) -> str | None:
    """The Python codec for a declared charset label, or None when unknown or unusable."""
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()
    if len(name) > 40:
        return None
    if name in _UNKNOWN:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if info.name in _BLOCKED or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _fallback(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, bool]:
    """Decode `data` declared as `charset`. Returns (text, clean): clean is False when the
    charset was unusable or the bytes were invalid in it (the text is still the best guess).
    """
    codec = resolve_charset(charset)
    if codec is None:
        bogus = charset is not None and charset.strip().strip("\"'").lower() not in _UNKNOWN
        try:
            return data.decode("utf-8"), not bogus
        except UnicodeDecodeError:
            return data.decode("cp1252", "replace"), not bogus
    try:
        return data.decode(codec), True
    except UnicodeDecodeError:
        pass
    except Exception:  # a codec failing in another way on hostile input
        return _fallback(data), False
    if codec == "utf-8":
        # Mislabelled 8-bit text is far more common than broken UTF-8.
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("utf-8", "replace"), False
        return text, False
    try:
        return data.decode(codec, "replace"), False
    except Exception:
        return _fallback(data), False


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_JUNK = bytes(sorted(set(range(256)) - set(_B64_ALPHABET)))


def decode_b64(data: bytes) -> tuple[bytes, bool]:
    """Lenient base64: skips junk and whitespace, tolerates missing or extra padding."""
    cleaned = data.translate(None, b" \t\r\n")
    try:
        return binascii.a2b_base64(cleaned, strict_mode=True), True
    except (binascii.Error, ValueError):
        pass
    # Keep only the alphabet (padding is recomputed); translate is linear and allocates once.
    body = cleaned.translate(None, _B64_JUNK)
    rem = len(body) % 4
    if rem == 1:
        body = body[:-1]
    elif rem:
        body += b"=" * (4 - rem)
    try:
        return binascii.a2b_base64(body), False
    except (binascii.Error, ValueError):
        return b"", False


def decode_qp(data: bytes) -> bytes:
    """Quoted-printable; invalid escapes are kept literally (binascii is tolerant)."""
    return binascii.a2b_qp(data)


def decode_transfer(data: bytes, cte: str) -> tuple[bytes, bool]:
    """Undo a Content-Transfer-Encoding. Unknown encodings return the data unchanged."""
    cte = cte.strip().lower()
    if cte == "base64":
        return decode_b64(data)
    if cte == "quoted-printable":
        return decode_qp(data), True
    return data, True


# --- RFC 2047 -------------------------------------------------------------------------------

# Lenient: encoded text may hold spaces (broken mailers); '?' never appears in it.
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,80})\?([bBqQ])\?([^?]*)\?=")


def _word_bytes(encoding: str, text: str) -> bytes:
    data = text.encode("utf-8", "surrogateescape")
    if encoding in "bB":
        return decode_b64(data)[0]
    return binascii.a2b_qp(data, header=True)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words. The result may hold any character (CR, LF, NUL...):
    callers flatten or sanitize it. Adjacent words in one charset are joined before decoding,
    so a multi-byte character split across words survives.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pos = 0
    pending = bytearray()
    pending_charset: str | None = None
    for m in _ENCODED_WORD.finditer(value):
        gap = value[pos : m.start()]
        if pending_charset is None or gap.strip(" \t\r\n"):
            if pending_charset is not None:
                out.append(decode_bytes(bytes(pending), pending_charset)[0])
                pending.clear()
                pending_charset = None
            out.append(gap)
        charset = m.group(1).split("*", 1)[0].lower()  # RFC 2231 language suffix
        data = _word_bytes(m.group(2), m.group(3))
        if pending_charset is not None and charset != pending_charset:
            out.append(decode_bytes(bytes(pending), pending_charset)[0])
            pending.clear()
        pending_charset = charset
        pending += data
        pos = m.end()
    if pending_charset is not None:
        out.append(decode_bytes(bytes(pending), pending_charset)[0])
    out.append(value[pos:])
    return "".join(out)


_FLATTEN = re.compile("[\x00\r\n]+")


def flatten(value: str) -> str:
    """A header value on one line: every run of NUL/CR/LF becomes a single space."""
    if "\x00" in value or "\r" in value or "\n" in value:
        value = _FLATTEN.sub(" ", value)
    return value


# --- parameters (Content-Type, Content-Disposition), RFC 2045 + RFC 2231 ---------------------

_PARAM_SPLIT = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|;|[^";]+', re.S)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_SECTION = re.compile(r"^([^*]+)\*(\d{1,4})(\*?)$")
_MAX_PARAMS = 200


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 1 and value[0] == '"':
        value = value[1:-1] if len(value) >= 2 and value.endswith('"') else value[1:]
        return _QUOTED_PAIR.sub(r"\1", value)
    return value


def _rfc2231_value(value: str, charset: str | None) -> str:
    data = _percent_decode(value)
    return decode_bytes(data, charset or "utf-8")[0]


_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def _percent_decode(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    return _PERCENT.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def parse_params(value: str) -> tuple[str, dict[str, str]]:
    """Split `type/subtype; a=b; c*=utf-8''x` into the lowercased first item and decoded
    parameters (names lowercased). RFC 2231 continuations and charsets are decoded; RFC 2047
    words inside quoted values too (a common violation of the rules that clients honour).
    """
    segments: list[str] = []
    current: list[str] = []
    for m in _PARAM_SPLIT.finditer(value):
        tok = m.group()
        if tok == ";":
            segments.append("".join(current))
            current = []
            if len(segments) > _MAX_PARAMS:
                break
        else:
            current.append(tok)
    else:
        segments.append("".join(current))
    main = segments[0].strip().lower() if segments else ""
    simple: dict[str, str] = {}
    extended: dict[str, str] = {}  # name*=charset'lang'value
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    for seg in segments[1:]:
        name, eq, raw = seg.partition("=")
        if not eq:
            continue
        name = name.strip().lower()
        if not name:
            continue
        if name.endswith("*") and "*" not in name[:-1]:
            extended.setdefault(name[:-1], raw.strip())
            continue
        sec = _SECTION.match(name)
        if sec:
            sections.setdefault(sec.group(1), {})[int(sec.group(2))] = (
                _unquote(raw) if not sec.group(3) else raw.strip().strip('"'),
                bool(sec.group(3)),
            )
            continue
        simple.setdefault(name, _unquote(raw))
    params: dict[str, str] = {}
    for name, val in simple.items():
        params[name] = flatten(decode_words(val)) if "=?" in val else val
    for name, parts in sections.items():
        ordered = [parts[i] for i in sorted(parts)]
        charset: str | None = None
        if ordered and ordered[0][1]:
            first = ordered[0][0]
            bits = first.split("'", 2)
            if len(bits) == 3:
                charset = bits[0] or None
                ordered[0] = (bits[2], True)
        pieces = bytearray()
        for text, encoded in ordered:
            pieces += _percent_decode(text) if encoded else text.encode("utf-8", "surrogateescape")
        params[name] = flatten(decode_bytes(bytes(pieces), charset or "utf-8")[0])
    for name, raw in extended.items():
        bits = raw.strip('"').split("'", 2)
        if len(bits) == 3:
            params[name] = flatten(_rfc2231_value(bits[2], bits[0] or None))
        else:
            params[name] = flatten(_rfc2231_value(bits[0], None))
    return main, params
