"""Phishing signs: what in a message suggests it is not from whom it claims, offline.

`assess()` looks at a parsed message and returns `Sign`s, each with a short reason a user
can read. Nothing here touches the network or the store: what the user knows (who they
correspond with) comes in through the small `KnownCorrespondents` protocol, which the store
backs with its address index and tests back with a dict.

The signs:

- **Display-name spoofing**: a display name holding an address or a domain other than the
  real one, or the name of a known correspondent on an address they never used.
- **Lookalike domains**: IDN labels mixing scripts or written wholly in Latin-looking
  letters (see `confusables`), and near-misses of domains the user corresponds with
  (`paypa1.com` for `paypal.com`), after folding confusable characters.
- **Links**: anchor text showing one host while the target is another; targets with
  userinfo (`https://bank.example@evil.example/`), numeric hosts in any spelling
  (`http://3232235777/`, `0xC0.0250.1.1`), invalid or lookalike punycode, a known domain
  worn as a subdomain of another; forms asking for a password.
- **Reply-To / Sender** in another organisation than From.
- **Authentication-Results**: only the topmost header whose authserv-id is the user's own
  server's (`trusted_authserv_id`) is read; anything else is sender-supplied and ignored.
- **First-time sender**.

`safe_link_target()` vets a link the user wants to open: only http, https and mailto are
allowed, `mailto:` keeps only harmless fields (never `attach=`), and the full target is
returned for the confirmation prompt.

Hosts are compared by "registrable domain", approximated without the Public Suffix List:
the last two labels, or three under well-known second-level suffixes (`co.uk`) and shared
hosting platforms (`github.io`), where different owners share the last two labels.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import unquote

from tuimail.mail.confusables import edit_distance, restriction_problem, skeleton
from tuimail.mail.sanitize import sanitize_line
from tuimail.models import Address

if TYPE_CHECKING:
    from tuimail.mail.parse import ParsedMessage

__all__ = [
    "KnownCorrespondents",
    "LinkCheck",
    "Severity",
    "Sign",
    "SimpleCorrespondents",
    "assess",
    "numeric_host",
    "parse_authentication_results",
    "registrable_domain",
    "safe_link_target",
]

Severity = Literal["info", "warning", "danger"]
_RANK: dict[str, int] = {"danger": 0, "warning": 1, "info": 2}

# Work limits: a hostile message must not make assessing it slow.
_MAX_HTML = 2_000_000  # characters of HTML scanned per message
_MAX_LINKS = 500  # links checked per message
_MAX_LINK_SIGNS = 12  # link signs reported (the first few tell the story)
_MAX_URL = 65_536  # longest link safe_link_target accepts
_MAX_NAME = 300  # display names longer than this are cut before comparing


@dataclass(frozen=True, slots=True)
class Sign:
    """One phishing sign. `reason` is short, human, and safe to print (sanitized)."""

    kind: str
    reason: str
    severity: Severity


class Link(Protocol):
    """A link as `render` reports it: the text the reader sees and the real target."""

    @property
    def text(self) -> str: ...

    @property
    def target(self) -> str: ...


class KnownCorrespondents(Protocol):
    """What the user's mail history says. Addresses are compared case-insensitively."""

    def is_known(self, addr: str) -> bool:
        """True if mail was ever received from or sent to `addr`."""
        ...

    def names(self) -> Mapping[str, set[str]]:
        """Display name -> the addresses seen with it."""
        ...

    def domains(self) -> set[str]:
        """Domains of known addresses (lower case, Unicode or punycode)."""
        ...


class SimpleCorrespondents:
    """An in-memory `KnownCorrespondents`, built from addresses (tests, one-off tools)."""

    def __init__(self, addresses: Iterable[Address | str] = ()) -> None:
        self._addrs: set[str] = set()
        self._names: dict[str, set[str]] = {}
        for item in addresses:
            addr = item if isinstance(item, str) else item.addr
            self._addrs.add(addr.casefold())
            if isinstance(item, Address) and item.name:
                self._names.setdefault(item.name, set()).add(addr.casefold())

    def is_known(self, addr: str) -> bool:
        return addr.casefold() in self._addrs

    def names(self) -> Mapping[str, set[str]]:
        return self._names

    def domains(self) -> set[str]:
        return {a.rpartition("@")[2] for a in self._addrs if "@" in a}


# --- small helpers ------------------------------------------------------------------------


def _show(s: str, limit: int = 60) -> str:
    """Untrusted text as it may appear inside a reason: one safe line, cut to `limit`."""
    s = sanitize_line(s)
    return s if len(s) <= limit else s[: limit - 1] + "…"


_INVISIBLE = re.compile(
    "[\u00ad\u034f\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]"
)


def _nfkc(s: str) -> str:
    """Compatibility-folded text with invisible characters removed, as the eye reads it."""
    return unicodedata.normalize("NFKC", _INVISIBLE.sub("", s))


def _words(s: str) -> frozenset[str]:
    return frozenset(s.split())


# --- hosts and domains --------------------------------------------------------------------

# Second-level labels under which registrations happen (example.co.uk, example.com.au).
_SECOND_LEVEL = _words(
    "ac co com edu gob gov gv govt go or org ne net mil nom sch ltd plc nhs int web"
)
# Shared platforms: every customer gets a subdomain, so the owner is the third label.
_SHARED_SUFFIXES = _words(
    """github.io gitlab.io blogspot.com herokuapp.com appspot.com azurewebsites.net
    cloudfront.net netlify.app pages.dev workers.dev vercel.app web.app firebaseapp.com
    wordpress.com sharepoint.com onmicrosoft.com ngrok.io ngrok-free.app glitch.me r2.dev
    duckdns.org s3.amazonaws.com amazonaws.com azureedge.net myshopify.com wixsite.com
    weebly.com godaddysites.com square.site notion.site webflow.io repl.co"""
)
# TLDs recognised when a bare name ("paypal.com") appears in text: without a scheme or
# "www.", only these make a word count as a host (so "main.rs" or "v1.2" do not). Country
# codes that are also common file extensions (.rs .pl .cc .sh .py .md) are left out.
_TEXT_TLDS = _words(
    """com net org edu gov mil int info biz io co me app dev xyz online site shop top club
    store tech cloud email live link pro page bank money pay finance support help news
    example test invalid uk de fr nl ru cn jp br it es ca au in ch se no pl be at dk fi us
    eu ie nz za kr tw hk sg mx ar cl pt gr cz hu ro tr ua il ir ly tk ml ga gq tv ws su by
    kz lt lv ee sk si hr bg"""
)


def _idna_dots(s: str) -> str:
    """IDNA label separators besides "." (ideographic and fullwidth full stops) as "."."""
    return s.replace("\u3002", ".").replace("\uff0e", ".").replace("\uff61", ".")


def _clean_host(host: str) -> str:
    """Lower-case, percent-decoded, NFKC host without a trailing dot (how browsers see it)."""
    if "%" in host:
        host = unquote(host, errors="replace")
    return _idna_dots(_nfkc(host).casefold()).rstrip(".")


def _label_to_unicode(label: str) -> tuple[str, bool]:
    """(Unicode form, valid) of one label; "xn--" labels are punycode-decoded."""
    if not label.startswith("xn--"):
        return label, True
    body = label[4:]
    # DNS labels are at most 63 octets; the punycode codec is quadratic, so never longer.
    if not body or len(label) > 63 or not body.isascii():
        return label, False
    try:
        decoded = body.encode("ascii").decode("punycode")
    except (UnicodeError, ValueError, IndexError, OverflowError):
        return label, False
    # A valid A-label decodes to non-ASCII letters, marks and digits that encode back to
    # the same label, in lower case (no controls, spaces or symbols hidden in punycode).
    if (
        decoded.isascii()
        or _label_to_ascii(decoded) != label
        or decoded != decoded.casefold()
        or not all(ch == "-" or unicodedata.category(ch)[0] in "LMN" for ch in decoded)
    ):
        return label, False
    return decoded, True


def _label_to_ascii(label: str) -> str:
    if label.isascii():
        return label
    try:
        return "xn--" + label.encode("punycode").decode("ascii")
    except UnicodeError:
        return label


def host_to_unicode(host: str) -> tuple[str, bool]:
    """(Unicode form of a cleaned host, every xn-- label valid)."""
    labels = [_label_to_unicode(label) for label in host.split(".")]
    return ".".join(text for text, _ in labels), all(ok for _, ok in labels)


def host_to_ascii(host: str) -> str:
    return ".".join(_label_to_ascii(label) for label in host.split("."))


def registrable_domain(host: str) -> str:
    """The part of `host` one owner registered (approximate, see the module docstring)."""
    host = _clean_host(host)
    if numeric_host(host) is not None or host.startswith("["):
        return host
    labels = [label for label in host.split(".") if label]
    if len(labels) <= 2:
        return ".".join(labels)
    take = 2
    if len(labels) >= 4 and ".".join(labels[-3:]) in _SHARED_SUFFIXES:
        take = 4
    elif ".".join(labels[-2:]) in _SHARED_SUFFIXES or (
        len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL
    ):
        take = 3
    return ".".join(labels[-take:])


def _org(host: str) -> str:
    """Registrable domain in Unicode: the unit "same organisation" is decided on."""
    return host_to_unicode(registrable_domain(host))[0]


def _ipv4_part(part: str) -> int | None:
    if not part:
        return None
    try:
        if part[:2] in ("0x", "0X"):
            return int(part[2:], 16) if part[2:] else 0
        if len(part) > 1 and part[0] == "0":
            return int(part[1:], 8)
        return int(part, 10) if part.isdigit() and part.isascii() else None
    except ValueError:
        return None


def numeric_host(host: str) -> str | None:
    """The IP address a host really is, in the WHATWG URL spelling rules, or None.

    Browsers read `3232235777`, `0xC0A80101`, `0300.0250.1.1` and `192.168.257` as IPv4
    addresses; all become a dotted quad here. Bracketed IPv6 literals are returned as is.
    Returns "invalid" for a host that ends in a number but is not a valid address (a
    browser refuses it).
    """
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    parts = host.split(".")
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1] if parts else ""
    ends_in_number = bool(last) and (
        (last.isascii() and last.isdigit())
        or (last[:2] in ("0x", "0X") and all(c in "0123456789abcdefABCDEF" for c in last[2:]))
    )
    if not ends_in_number:
        return None
    if len(parts) > 4:
        return "invalid"
    numbers = [_ipv4_part(p) for p in parts]
    if any(n is None for n in numbers):
        return "invalid"
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        return "invalid"
    address = values[-1]
    for i, n in enumerate(values[:-1]):
        address += n << (8 * (3 - i))
    return ".".join(str((address >> shift) & 0xFF) for shift in (24, 16, 8, 0))


# --- URLs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Url:
    scheme: str  # lower case
    userinfo: str | None
    host: str  # cleaned (see _clean_host), "" when none
    rest: str  # path, query and fragment
    cleaned: str  # the URL with tabs/newlines removed and outer spaces stripped
    normalized: str  # scheme://authority/rest as a browser reads it ("" without authority)


_STRIP_OUTER = "".join(chr(c) for c in range(0x21))
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def _parse_url(url: str) -> _Url:
    """Split a URL the way a browser would (WHATWG), not the way `urlsplit` does.

    The differences matter: browsers drop tabs and newlines anywhere (`java\\tscript:`),
    treat `\\` as `/` in http(s) URLs (`https://evil\\@bank/` goes to `evil`), and take the
    *last* `@` as the end of the userinfo.
    """
    cleaned = url.strip(_STRIP_OUTER).replace("\t", "").replace("\n", "").replace("\r", "")
    m = _SCHEME.match(cleaned)
    if not m:
        return _Url("", None, "", cleaned, cleaned, "")
    scheme = m.group(1).lower()
    rest = cleaned[m.end() :]
    special = scheme in ("http", "https", "ftp", "ws", "wss", "file")
    if special:
        rest = rest.replace("\\", "/")
        rest = rest.lstrip("/")  # "http:evil.example" and "http:////evil" both mean a host
    elif rest.startswith("//"):
        rest = rest[2:]
    else:
        return _Url(scheme, None, "", rest, cleaned, "")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    normalized = f"{scheme}://{authority}{tail}"
    userinfo: str | None = None
    if "@" in authority:
        userinfo, _, authority = authority.rpartition("@")
    if authority.startswith("["):
        close = authority.find("]")
        host = authority[: close + 1] if close >= 0 else authority
    else:
        host = authority.rpartition(":")[0] if ":" in authority else authority
    return _Url(scheme, userinfo, _clean_host(host), tail, cleaned, normalized)


# A host written in visible text: with a scheme, after "www.", or a bare name whose TLD is
# in _TEXT_TLDS. Unicode letters are allowed (a spoof shows "pаypal.com").
_HOST_IN_TEXT = re.compile(
    r"(?:(?P<scheme>[a-z][a-z0-9+.\-]*)://(?:[^\s/@]*@)?)?"
    r"(?P<host>(?:[\w\-]+\.)+(?P<tld>[\w\-]{2,63}))\.?(?=$|[\s/:?#\"'<>)\],;!])",
    re.IGNORECASE,
)


def _hosts_in_text(text: str) -> list[str]:
    text = _idna_dots(_nfkc(text))
    hosts: list[str] = []
    for m in _HOST_IN_TEXT.finditer(text):
        host = _clean_host(m.group("host"))
        tld = host_to_unicode(host.rpartition(".")[2])[0]
        if tld.isdigit():
            continue
        if m.group("scheme") or host.startswith("www.") or tld in _TEXT_TLDS or not tld.isascii():
            hosts.append(host)
    return hosts


# --- sign builders ------------------------------------------------------------------------


def _domain_signs(domain: str, known_orgs: _KnownOrgs, where: str) -> list[Sign]:
    """Homograph and near-miss signs for one domain (`where` says whose domain it is)."""
    signs: list[Sign] = []
    host = _clean_host(domain)
    if not host or numeric_host(host) is not None:
        return signs
    unicode_host, valid = host_to_unicode(host)
    if not valid:
        signs.append(
            Sign("invalid-punycode", f"{where} {_show(host)} has invalid punycode", "warning")
        )
    ascii_tld = unicode_host.rpartition(".")[2].isascii()
    problem = None
    for label in unicode_host.split("."):
        if not label.isascii():
            problem = restriction_problem(label)
            # A label wholly in Cyrillic under .рф is Russian; under .com it imitates Latin.
            if problem and (problem.startswith("mixes") or ascii_tld):
                break
            problem = None
    shown = _show(unicode_host)
    if not unicode_host.isascii():
        shown += f" ({_show(host_to_ascii(unicode_host))})"
    imitated = _imitated_domain(unicode_host, known_orgs)
    if imitated is not None and imitated[1]:
        reason = f"{where} {shown} looks like {_show(imitated[0])}, which you correspond with"
        if problem:
            reason += f"; it {problem}"
        signs.append(Sign("lookalike-domain", reason, "danger"))
    elif problem:
        signs.append(Sign("lookalike-domain", f"{where} {shown} {problem}", "danger"))
    elif imitated is not None:
        reason = f"{where} {shown} differs by a letter or two from {_show(imitated[0])}"
        signs.append(Sign("lookalike-domain", reason + ", which you correspond with", "warning"))
    else:
        worn = _worn_domain(unicode_host, known_orgs)
        if worn is not None:
            signs.append(
                Sign(
                    "lookalike-domain",
                    f"{where} {shown} starts with {_show(worn)} but belongs to "
                    f"{_show(_org(unicode_host))}",
                    "warning",
                )
            )
    return signs


def _distance_limit(org: str) -> int:
    name = org.partition(".")[0]
    if len(name) < 5:
        return 0  # short names are too close to each other to judge by spelling
    return 1 if len(name) < 9 else 2


class _KnownOrgs:
    """The organisations the user corresponds with, indexed for fast lookalike checks.

    Exact lookalikes are found by skeleton. Near misses (at most 2 edits) keep the first or
    the last letter of the name and about its length, so each org is filed under
    (first letter, length) and (last letter, length) and a candidate is compared only with
    those buckets: a few dozen edit distances instead of one per known org.
    """

    def __init__(self) -> None:
        self.skeletons: dict[str, str] = {}  # org -> skeleton
        self._by_skeleton: dict[str, str] = {}
        self._buckets: dict[tuple[str, int], list[tuple[str, str]]] = {}
        self._answers: dict[str, tuple[str, bool] | None] = {}

    def add(self, org: str) -> None:
        if not org or org in self.skeletons:
            return
        folded = skeleton(org)
        self.skeletons[org] = folded
        self._by_skeleton.setdefault(folded, org)
        if _distance_limit(org):
            for key in _bucket_keys(folded, len(folded)):
                self._buckets.setdefault(key, []).append((org, folded))

    def __contains__(self, org: object) -> bool:
        return org in self.skeletons

    def imitated(self, org: str) -> tuple[str, bool] | None:
        """(known org, looks identical) when `org` imitates a known one, else None."""
        if not org or org in self.skeletons:
            return None
        if org in self._answers:
            return self._answers[org]
        folded = skeleton(org)
        answer: tuple[str, bool] | None = None
        exact = self._by_skeleton.get(folded)
        if exact is not None:
            answer = (exact, True)
        else:
            seen: set[str] = set()
            for length in range(len(folded) - 2, len(folded) + 3):
                for key in _bucket_keys(folded, length):
                    for known, known_folded in self._buckets.get(key, ()):
                        if known in seen:
                            continue
                        seen.add(known)
                        limit = _distance_limit(known)
                        if edit_distance(folded, known_folded, limit) <= limit:
                            answer = (known, False)
                            break
                    if answer is not None:
                        break
                if answer is not None:
                    break
        self._answers[org] = answer
        return answer

    def worn(self, host: str, org: str) -> str | None:
        """A known org used as leading labels of another org's host (bank.com.evil.io)."""
        if org in self.skeletons or not host.endswith(org):
            return None
        labels = host[: -len(org)].rstrip(".").split(".")
        for i in range(len(labels)):
            for j in range(len(labels), i + 1, -1):
                candidate = ".".join(labels[i:j])
                if candidate in self.skeletons:
                    return candidate
        return None


def _bucket_keys(folded: str, length: int) -> tuple[tuple[str, int], tuple[str, int]]:
    name = folded.partition(".")[0] or folded
    return (name[:1], length), ("$" + name[-1:], length)


def _imitated_domain(host: str, known_orgs: _KnownOrgs) -> tuple[str, bool] | None:
    return known_orgs.imitated(_org(host))


def _worn_domain(host: str, known_orgs: _KnownOrgs) -> str | None:
    return known_orgs.worn(host, _org(host))


def _link_signs(target: str, text: str, known_orgs: _KnownOrgs) -> list[Sign]:
    url = _parse_url(target)
    signs: list[Sign] = []
    if url.scheme in ("mailto", "tel", "cid", "") or url.scheme not in ("http", "https"):
        if url.scheme in ("javascript", "data", "vbscript", "file"):
            signs.append(
                Sign(
                    "link-scheme",
                    f"a link runs {url.scheme}: content; tuimail will not open it",
                    "warning",
                )
            )
        return signs
    shown_target = _show(url.cleaned)
    if url.userinfo is not None:
        fake = _hosts_in_text(url.userinfo)
        disguise = f" shows {_show(fake[0])} but" if fake else ""
        signs.append(
            Sign(
                "link-userinfo",
                f"a link{disguise} goes to {_show(url.host)} ({shown_target})",
                "danger",
            )
        )
    ip = numeric_host(url.host)
    if ip is not None:
        what = "an invalid numeric address" if ip == "invalid" else f"the numeric address {ip}"
        signs.append(Sign("link-ip", f"a link goes to {what} ({shown_target})", "warning"))
    elif url.host:
        for sign in _domain_signs(url.host, known_orgs, "a link to"):
            kind = "link-lookalike" if sign.kind == "lookalike-domain" else sign.kind
            signs.append(Sign(kind, sign.reason, sign.severity))
        target_org = _org(url.host)
        for shown in _hosts_in_text(text):
            shown_org = _org(shown)
            if shown_org and shown_org != target_org:
                signs.append(
                    Sign(
                        "link-mismatch",
                        f"a link shows {_show(host_to_unicode(shown)[0])} but goes to "
                        f"{_show(host_to_unicode(url.host)[0])}",
                        "danger",
                    )
                )
                break
    return signs


# --- HTML ---------------------------------------------------------------------------------


# One HTML tag. Attribute characters exclude "<", so a failed match stops at the next "<"
# and scanning stays linear even on "<b<b<b..." (html.parser is quadratic there: 2 s for
# 20,000 unclosed tags).
_TAG = re.compile(r"""<(/?)([A-Za-z][^\s/<>"']*)((?:[^<>"']|"[^"]*"|'[^']*')*)>""")
_ATTR = re.compile(r"""([^\s=/"'<>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?""")
_MAX_ANCHOR_TEXT = 2000


def _attrs(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for m in _ATTR.finditer(text):
        name = m.group(1).lower()
        value = m.group(2) or ""
        if value[:1] in ("'", '"'):
            value = value[1:-1]
        values.setdefault(name, html.unescape(value))
    return values


def _without_comments(markup: str) -> str:
    """`markup` with <!-- comments --> cut out (what is commented out is not shown)."""
    parts: list[str] = []
    pos = 0
    while True:
        start = markup.find("<!--", pos)
        if start < 0:
            parts.append(markup[pos:])
            break
        parts.append(markup[pos:start])
        end = markup.find("-->", start + 4)
        if end < 0:
            break
        pos = end + 3
    return "".join(parts)


@dataclass
class _HtmlScan:
    """Anchors (target, visible text) and forms of one HTML part."""

    links: list[tuple[str, str]]
    password_fields: int
    form_actions: list[str]


def _scan_html(markup: str) -> _HtmlScan:
    """Find links, forms and password fields with a linear tag scan (no tree, no parser
    state to exhaust): enough to see what an anchor shows and where it goes."""
    scan = _HtmlScan([], 0, [])
    markup = _without_comments(markup[:_MAX_HTML])
    href: str | None = None
    text: list[str] = []
    size = 0
    pos = 0

    def close_anchor() -> None:
        nonlocal href
        if href is not None:
            visible = html.unescape("".join(text))
            scan.links.append((href, _TAGLESS_SPACE.sub(" ", visible)))
        href = None

    for m in _TAG.finditer(markup):
        if href is not None and size < _MAX_ANCHOR_TEXT:
            piece = markup[pos : m.start()][: _MAX_ANCHOR_TEXT - size]
            text.append(piece)
            size += len(piece)
        pos = m.end()
        closing, tag = m.group(1), m.group(2).lower()
        if closing:
            if tag == "a":
                close_anchor()
            continue
        if tag not in ("a", "area", "form", "input", "img"):
            continue
        if tag in ("a", "area", "img") and len(scan.links) >= _MAX_LINKS:
            continue
        values = _attrs(m.group(3))
        if tag in ("a", "area") and "href" in values:
            close_anchor()
            if tag == "area":
                scan.links.append((values["href"], values.get("alt", "")))
            else:
                href, text, size = values["href"], [], 0
        elif tag == "form":
            scan.form_actions.append(values.get("action", ""))
        elif tag == "input" and values.get("type", "").strip().lower() == "password":
            scan.password_fields += 1
        elif tag == "img" and href is not None:
            text.append(" " + values.get("alt", "") + " ")
    if href is not None:
        text.append(markup[pos:][: max(0, _MAX_ANCHOR_TEXT - size)])
    close_anchor()
    return scan


_TAGLESS_SPACE = re.compile(r"\s+")


_TEXT_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'\]\)]+", re.IGNORECASE)


# --- Authentication-Results ---------------------------------------------------------------


def _strip_comments(value: str) -> str:
    """Remove (nested) comments outside quoted strings, linear in the input."""
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
            if depth == 0:
                out.append(ch)
            continue
        if ch == "\\":
            escaped = True
            if depth == 0:
                out.append(ch)
            continue
        if depth == 0 and ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
            continue
        elif not quoted and ch == ")" and depth:
            depth -= 1
            if depth == 0:
                out.append(" ")
            continue
        if depth == 0:
            out.append(ch)
    return "".join(out)


def _split_semicolons(value: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


@dataclass(frozen=True, slots=True)
class AuthResult:
    method: str  # "dmarc", "dkim", "spf", ... (lower case, version dropped)
    result: str  # "pass", "fail", "softfail", ... (lower case)
    properties: Mapping[str, str]  # "header.from" -> "example.com", ...


def parse_authentication_results(value: str) -> tuple[str, tuple[AuthResult, ...]]:
    """(authserv-id, results) of one Authentication-Results value (RFC 8601). Never raises;
    an unreadable value gives ("", ())."""
    value = _strip_comments(value.replace("\r", " ").replace("\n", " "))
    parts = _split_semicolons(value)
    head = parts[0].split()
    if not head:
        return "", ()
    authserv_id = head[0].strip('"').casefold()
    results: list[AuthResult] = []
    for part in parts[1:]:
        words = part.split()
        if not words or "=" not in words[0]:
            continue
        method, _, result = words[0].partition("=")
        props: dict[str, str] = {}
        for word in words[1:]:
            key, eq, val = word.partition("=")
            if eq:
                props[key.casefold()] = val.strip('"')
        results.append(AuthResult(method.partition("/")[0].casefold(), result.casefold(), props))
    return authserv_id, tuple(results)


def _auth_signs(values: Sequence[str], trusted_authserv_id: str) -> list[Sign]:
    trusted = trusted_authserv_id.strip().casefold()
    if not trusted:
        return []
    for value in values:  # top to bottom: the first match is the user's server's own
        authserv_id, results = parse_authentication_results(value)
        if authserv_id == trusted:
            break
    else:
        return []
    signs: list[Sign] = []
    by_method: dict[str, list[AuthResult]] = {}
    for r in results:
        by_method.setdefault(r.method, []).append(r)
    dmarc = by_method.get("dmarc", [])
    if any(r.result == "fail" for r in dmarc):
        domain = next((r.properties.get("header.from", "") for r in dmarc), "")
        about = f" for {_show(domain)}" if domain else ""
        signs.append(
            Sign(
                "dmarc-fail",
                f"DMARC failed{about}: the domain's owner did not authorize this message",
                "danger",
            )
        )
    dkim = by_method.get("dkim", [])
    if not any(r.result == "pass" for r in dkim) and any(
        r.result in ("fail", "permerror") for r in dkim
    ):
        signs.append(
            Sign("dkim-fail", "DKIM failed: the message's signature did not verify", "warning")
        )
    spf = by_method.get("spf", [])
    if any(r.result == "fail" for r in spf):
        signs.append(
            Sign(
                "spf-fail",
                "SPF failed: the sending server is not allowed to send for the domain",
                "warning",
            )
        )
    elif any(r.result == "softfail" for r in spf):
        signs.append(
            Sign(
                "spf-fail",
                "SPF soft-failed: the sending server is not listed for the domain",
                "info",
            )
        )
    return signs


# --- senders ------------------------------------------------------------------------------

_ADDR_IN_NAME = re.compile(r"[^\s<>@\"'(),;:]+@[^\s<>@\"'(),;:]+\.[^\s<>@\"'(),;:.]{2,}")
_NAME_WORDS = re.compile(r"[\w@.\-]+")


def _name_key(name: str) -> str:
    """A display name folded for comparison: confusables, case, order and punctuation."""
    words = _NAME_WORDS.findall(skeleton(_nfkc(name[:_MAX_NAME])))
    return " ".join(sorted(words))


def _display_name_signs(sender: Address, known: KnownCorrespondents) -> list[Sign]:
    signs: list[Sign] = []
    name = _nfkc(sender.name[:_MAX_NAME])
    real = sender.addr.casefold()
    shown_real = _show(sender.addr)
    for m in _ADDR_IN_NAME.finditer(name):
        claimed = m.group().strip(".").casefold()
        if claimed != real:
            signs.append(
                Sign(
                    "display-name-address",
                    f"the sender's name shows {_show(claimed)} but the address is {shown_real}",
                    "danger",
                )
            )
            return signs
    if "@" not in name:
        real_org = _org(sender.domain())
        for host in _hosts_in_text(name):
            if _org(host) != real_org:
                signs.append(
                    Sign(
                        "display-name-domain",
                        f"the sender's name shows {_show(host)} but the address is {shown_real}",
                        "warning",
                    )
                )
                return signs
    if known.is_known(sender.addr):
        return signs
    key = _name_key(name)
    if len(key.replace(" ", "")) < 3:
        return signs
    for known_name, addresses in known.names().items():
        if _name_key(known_name) != key:
            continue
        folded = {a.casefold() for a in addresses}
        if real in folded or not folded:
            continue
        usual = _show(sorted(folded)[0])
        signs.append(
            Sign(
                "display-name-known",
                f"the name {_show(sender.name)} is someone you know at {usual}, "
                f"but this came from {shown_real}",
                "danger",
            )
        )
        break
    return signs


def _reply_path_signs(
    sender: Address,
    reply_to: Sequence[Address],
    sender_header: Sequence[Address],
    known_orgs: _KnownOrgs,
    my_orgs: set[str],
) -> list[Sign]:
    signs: list[Sign] = []
    from_org = _org(sender.domain())
    for addr in reply_to:
        org = _org(addr.domain())
        if not org or org == from_org:
            continue
        usual = org in known_orgs or org in my_orgs
        signs.append(
            Sign(
                "reply-to",
                f"replies go to {_show(addr.addr)}, not to the sender's domain {_show(from_org)}",
                "info" if usual else "warning",
            )
        )
        break
    for addr in sender_header:
        org = _org(addr.domain())
        if org and org != from_org:
            signs.append(
                Sign(
                    "sender",
                    f"sent by {_show(addr.addr)} on behalf of {_show(sender.addr)}",
                    "info",
                )
            )
            break
    return signs


# --- the message --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What the signs are computed from; `assess` takes it from a `ParsedMessage`."""

    from_: tuple[Address, ...] = ()
    sender: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    authentication_results: tuple[str, ...] = ()  # header values, topmost first
    html_parts: tuple[str, ...] = ()
    text_parts: tuple[str, ...] = ()


def _facts(parsed: ParsedMessage) -> MessageFacts:
    env = parsed.envelope
    return MessageFacts(
        from_=env.from_,
        sender=env.sender,
        reply_to=env.reply_to,
        authentication_results=tuple(
            value for name, value in parsed.headers if name.lower() == "authentication-results"
        ),
        html_parts=(parsed.text_html,) if parsed.text_html else (),
        text_parts=(parsed.text_plain,) if parsed.text_plain else (),
    )


def assess(
    parsed: ParsedMessage,
    *,
    rendered_links: Sequence[Link] | None = None,
    known_correspondents: KnownCorrespondents,
    trusted_authserv_id: str = "",
    my_domains: Sequence[str] = (),
) -> tuple[Sign, ...]:
    """The phishing signs of a message, most severe first. Pure; never raises.

    `rendered_links` are the links `render` found (visible text, real target); without
    them the HTML and text parts are scanned here. `my_domains` are the user's own domains
    (a Reply-To there is expected).
    """
    links = (
        None
        if rendered_links is None
        else [(link.target, link.text) for link in rendered_links[:_MAX_LINKS]]
    )
    return assess_facts(
        _facts(parsed),
        links=links,
        known_correspondents=known_correspondents,
        trusted_authserv_id=trusted_authserv_id,
        my_domains=my_domains,
    )


def assess_facts(
    facts: MessageFacts,
    *,
    links: Sequence[tuple[str, str]] | None = None,
    known_correspondents: KnownCorrespondents,
    trusted_authserv_id: str = "",
    my_domains: Sequence[str] = (),
) -> tuple[Sign, ...]:
    """`assess` on already extracted facts; `links` are (target, visible text) pairs."""
    known = known_correspondents
    known_orgs = _KnownOrgs()
    for domain in known.domains():
        known_orgs.add(_org(domain))
    my_orgs = {_org(d) for d in my_domains}
    for org in my_orgs:
        known_orgs.add(org)

    signs: list[Sign] = []
    senders = [a for a in facts.from_ if a.addr]
    if len(senders) > 1:
        shown = ", ".join(_show(a.addr, 40) for a in senders[:3])
        signs.append(
            Sign(
                "multiple-from",
                f"the message names {len(senders)} senders ({shown}); replies go to all",
                "warning",
            )
        )
    domains_checked: set[str] = set()
    if senders:
        sender = senders[0]
        signs += _display_name_signs(sender, known)
        for who, addrs in (
            ("the sender's domain", senders),
            ("the Reply-To domain", list(facts.reply_to)),
            ("the Sender domain", list(facts.sender)),
        ):
            for addr in addrs[:5]:
                domain = addr.domain()
                if domain and domain not in domains_checked:
                    domains_checked.add(domain)
                    signs += _domain_signs(domain, known_orgs, who)
        signs += _reply_path_signs(sender, facts.reply_to, facts.sender, known_orgs, my_orgs)
        if not known.is_known(sender.addr):
            signs.append(
                Sign(
                    "first-time-sender",
                    f"first message from {_show(sender.addr)}",
                    "info",
                )
            )
    signs += _auth_signs(facts.authentication_results, trusted_authserv_id)

    pairs: list[tuple[str, str]] = list(links) if links is not None else []
    password_fields = 0
    forms: list[str] = []
    for markup in facts.html_parts:
        scan = _scan_html(markup)
        password_fields += scan.password_fields
        forms += scan.form_actions
        if links is None:
            pairs += scan.links
    if links is None:
        for text in facts.text_parts:
            for m in _TEXT_URL.finditer(text[:_MAX_HTML]):
                url = m.group().rstrip(".,;:!?")
                pairs.append((url if "://" in url else "http://" + url, url))
    if password_fields:
        signs.append(
            Sign(
                "password-form",
                "the message contains a form asking for a password; never type one into mail",
                "danger",
            )
        )
    elif forms:
        signs.append(Sign("form", "the message contains a form that sends what you type", "info"))
    link_signs: list[Sign] = []
    seen_targets: set[tuple[str, str]] = set()
    for target, text in pairs[:_MAX_LINKS]:
        if (target, text) in seen_targets:
            continue
        seen_targets.add((target, text))
        link_signs += _link_signs(target, text, known_orgs)
    signs += _dedupe(link_signs)[:_MAX_LINK_SIGNS]
    return tuple(sorted(_dedupe(signs), key=lambda s: _RANK[s.severity]))


def _dedupe(signs: Iterable[Sign]) -> list[Sign]:
    seen: set[tuple[str, str]] = set()
    out: list[Sign] = []
    for sign in signs:
        if (sign.kind, sign.reason) not in seen:
            seen.add((sign.kind, sign.reason))
            out.append(sign)
    return out


# --- opening a link -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkCheck:
    """Whether and what to open for a link the user chose.

    `target` is what to hand to the opener ("" when not allowed); `display` is the full
    target, terminal-safe, for the confirmation prompt (with the punycode form of an IDN
    host); `reason` says why it is refused; `dropped` names removed mailto fields; `signs`
    are warnings to show in the prompt.
    """

    allowed: bool
    target: str
    display: str
    scheme: str
    reason: str = ""
    dropped: tuple[str, ...] = ()
    signs: tuple[Sign, ...] = ()


_OPENABLE = ("http", "https", "mailto")
# RFC 6068 fields a mailto: link may set; everything else (attach=, attachment=, file=,
# from=, headers of the sender's choosing) is dropped.
_MAILTO_FIELDS = frozenset({"to", "cc", "bcc", "subject", "body", "in-reply-to", "references"})
_UNSAFE_CHARS = re.compile(
    "[\x00-\x20\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]"
)


def _percent_encode_unsafe(s: str) -> str:
    return _UNSAFE_CHARS.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), s)


def safe_link_target(url: str) -> LinkCheck:
    """Vet a link before opening it. Only http(s) with a host and mailto are allowed."""
    if not isinstance(url, str):
        url = ""
    if len(url) > _MAX_URL:
        return LinkCheck(False, "", _show(url, 200), "", "the link is too long to be real")
    parsed = _parse_url(url)
    scheme = parsed.scheme
    if scheme not in _OPENABLE:
        what = f"{_show(scheme, 20)}: links" if scheme else "links without a scheme"
        return LinkCheck(
            False, "", _show(parsed.cleaned, 2000), scheme, f"tuimail does not open {what}"
        )
    if scheme == "mailto":
        return _mailto_check(parsed.cleaned)
    if not parsed.host:
        return LinkCheck(False, "", _show(parsed.cleaned, 2000), scheme, "the link has no host")
    # Open what a browser would read (`https:///x` is `https://x`, `\\` is `/`), and show it.
    target = _percent_encode_unsafe(parsed.normalized)
    display = _show(target, 2000)
    unicode_host = host_to_unicode(parsed.host)[0]
    if not unicode_host.isascii() or parsed.host != unicode_host:
        display += f"  (host {_show(unicode_host)} = {_show(host_to_ascii(unicode_host))})"
    signs = tuple(_link_signs(parsed.cleaned, "", _KnownOrgs()))
    return LinkCheck(True, target, display, scheme, signs=signs)


def _mailto_check(cleaned: str) -> LinkCheck:
    body = cleaned[len("mailto:") :]
    path, _, query = body.partition("?")
    kept: list[str] = []
    dropped: list[str] = []
    for field in query.split("&") if query else []:
        name = unquote(field.partition("=")[0], errors="replace").strip().casefold()
        if name in _MAILTO_FIELDS:
            kept.append(field)
        elif name:
            dropped.append(name)
    target = _percent_encode_unsafe("mailto:" + path + ("?" + "&".join(kept) if kept else ""))
    return LinkCheck(
        True,
        target,
        _show(target, 2000),
        "mailto",
        dropped=tuple(_show(d, 40) for d in dropped),
    )
