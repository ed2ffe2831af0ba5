"""Terminal escapes and markup in every field of a message that reaches the screen.

Three places are checked, each on what is really shown:

1. `tuimail.mail.render` (what the viewer and `tuimail read` show), one row per
   (payload, field): every payload in every field, raw, RFC 2047-encoded, quoted-printable,
   base64, as HTML entities (decimal and hex), in link text, targets and image alt text,
   in RFC 2231 and encoded-word attachment names, in a bogus charset label.
2. The command line as a subprocess (`python -m tuimail sync/folders/list/search/read`,
   text and JSON) on a local Maildir account holding such messages and a folder whose
   name carries the payload.
3. The app (Pilot): the folder pane, message list and viewer showing those messages.

Oracle: no C0 control but TAB/LF, no DEL, no C1 control (as characters), no ESC, no bidi
override or zero-width character anywhere in the output; Textual markup in mail data
shows literally.
"""

# ruff: noqa: E501  (one case per row)
from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from adversarial_support import assert_bytes_terminal_safe, terminal_problems
from rich.console import Console
from textual.app import App

from tuimail.mail.parse import parse_message
from tuimail.mail.render import render_message

# fmt: off
PAYLOADS: list[tuple[str, str]] = [
    ("CSI clear screen", "\x1b[2J\x1b[H"),
    ("OSC title", "\x1b]0;pwned\x07"),
    ("OSC 8 hyperlink", "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"),
    ("OSC 52 clipboard", "\x1b]52;c;cm0gLXJmIH4K\x07"),
    ("DCS sixel", "\x1bPq#0;2;0;0;0\x1b\\"),
    ("DSR query", "\x1b[6n\x1b[21t"),
    ("C1 CSI", "\x9b31m\x9b2J"),
    ("C1 OSC and ST", "\x9d0;pwned\x9c"),
    ("BEL BS CR DEL NUL", "a\x07b\x08c\rd\x7fe\x00f"),
    ("VT FF", "a\x0bb\x0cc"),
    ("bidi and zero width", "\u202eexe.txt\u2066x\u2069\u200b\ufeff"),
    ("Textual markup", "[@click=app.quit]click[/] [bold red]x[/] [link=http://evil.example]y[/link]"),
]
# fmt: on


def _b64word(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


def _qp(text: str) -> str:
    return "".join(f"={b:02X}" for b in text.encode())


def _entities(text: str, hexa: bool) -> str:
    return "".join(f"&#x{ord(c):x};" if hexa else f"&#{ord(c)};" for c in text)


def _pct(text: str) -> str:
    return "".join(f"%{b:02X}" for b in text.encode())


def _msg(headers: str, body: str = "hello", ctype: str = "text/plain; charset=utf-8") -> bytes:
    return (
        "From: Ann <ann@example.org>\r\nTo: me@example.com\r\nSubject: s\r\n"
        "Date: Mon, 01 Jun 2026 10:00:00 +0200\r\nMessage-ID: <m@example.org>\r\n"
        f"{headers}MIME-Version: 1.0\r\nContent-Type: {ctype}\r\n\r\n{body}\r\n"
    ).encode("utf-8", "surrogatepass")


def _attachment(disposition: str, ctype_extra: str = "") -> bytes:
    body = (
        "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        f"--b\r\nContent-Type: application/octet-stream{ctype_extra}\r\n"
        f"Content-Disposition: {disposition}\r\nContent-Transfer-Encoding: base64\r\n\r\nQUFB\r\n--b--"
    )
    return _msg("", body, "multipart/mixed; boundary=b")


def _replace_header(raw: bytes, name: bytes, line: bytes) -> bytes:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = [x for x in head.split(b"\r\n") if not x.lower().startswith(name.lower() + b":")]
    return b"\r\n".join([line, *lines]) + b"\r\n\r\n" + body


# How each field carries a payload `p` (id, builder).
# fmt: off
FIELDS: list[tuple[str, Callable[[str], bytes]]] = [
    ("subject raw", lambda p: _replace_header(_msg(""), b"Subject", b"Subject: " + p.encode())),
    ("subject encoded word", lambda p: _replace_header(_msg(""), b"Subject", b"Subject: " + _b64word(p).encode())),
    ("from name raw", lambda p: _replace_header(_msg(""), b"From", b"From: " + p.encode() + b" <ann@example.org>")),
    ("from name encoded", lambda p: _replace_header(_msg(""), b"From", f"From: {_b64word(p)} <ann@example.org>".encode())),
    ("to and cc names", lambda p: _replace_header(_msg(f"Cc: {_b64word(p)} <c@example.org>\r\n"), b"To", f"To: {_b64word(p)} <me@example.com>".encode())),
    ("reply-to and sender names", lambda p: _msg(f"Reply-To: {_b64word(p)} <r@other.example>\r\nSender: {_b64word(p)} <s@other.example>\r\n")),
    ("date header", lambda p: _replace_header(_msg(""), b"Date", b"Date: " + p.encode())),
    ("plain body 8bit", lambda p: _msg("", f"before {p} after")),
    ("plain body quoted-printable", lambda p: _msg("Content-Transfer-Encoding: quoted-printable\r\n", f"before {_qp(p)} after")),
    ("plain body base64", lambda p: _msg("Content-Transfer-Encoding: base64\r\n", base64.b64encode(f"before {p} after".encode()).decode())),
    ("plain body latin-1", lambda p: _msg("", f"before {p} after", "text/plain; charset=iso-8859-1")),
    ("html body raw", lambda p: _msg("", f"<p>before {p} after</p>", "text/html; charset=utf-8")),
    ("html decimal entities", lambda p: _msg("", f"<p>{_entities(p, False)}</p>", "text/html")),
    ("html hex entities", lambda p: _msg("", f"<p>{_entities(p, True)}</p>", "text/html")),
    ("html link text and target", lambda p: _msg("", f"<a href=\"http://a.example/{_entities(p, True)}\">{_entities(p, False)}</a>", "text/html")),
    ("html image alt and title", lambda p: _msg("", f"<img alt=\"{_entities(p, False)}\" title=\"{_entities(p, True)}\" src=\"cid:x\">", "text/html")),
    ("html in pre and table", lambda p: _msg("", f"<pre>{_entities(p, True)}</pre><table><tr><td>{p}</td></tr></table>", "text/html")),
    ("attachment name quoted", lambda p: _attachment(f'attachment; filename="{p}.pdf"')),
    ("attachment name RFC 2231", lambda p: _attachment(f"attachment; filename*=utf-8''{_pct(p)}.pdf")),
    ("attachment name RFC 2231 continuation", lambda p: _attachment(f"attachment; filename*0*=utf-8''{_pct(p[:3])}; filename*1*={_pct(p[3:])}.pdf")),
    ("attachment name encoded word", lambda p: _attachment("attachment", f'; name="{_b64word(p)}"')),
    ("charset label", lambda p: _msg("", "caf\xe9", f'text/plain; charset="{p}"').replace(b"caf\xc3\xa9", b"caf\xe9")),
]
# fmt: on


def _shown(raw: bytes) -> list[tuple[str, str]]:
    """(where, text) of everything the viewer would print for `raw`, both preferences."""
    parsed = parse_message(raw)
    out: list[tuple[str, str]] = []
    for prefer in ("plain", "html"):
        r = render_message(parsed, prefer=prefer)
        out += [(f"{prefer} body", r.body), (f"{prefer} subject", r.subject)]
        out += [(f"{prefer} header {k}", v) for k, v in r.headers]
        out += [(f"{prefer} link", f"{link.text} {link.target}") for link in r.links]
        out += [(f"{prefer} attachment", f"{a.name} {a.content_type}") for a in r.attachments]
        out += [(f"{prefer} warning", w) for w in r.warnings]
    return out


# Fields whose text is not shown as written (a raw From is split at ":" and ",", a Date is
# parsed, a charset label only names itself in a warning): markup need not survive there.
RESHAPED = {"from name raw", "date header", "charset label", "to and cc names"}


@pytest.mark.parametrize("payload", [p[1] for p in PAYLOADS], ids=[p[0] for p in PAYLOADS])
@pytest.mark.parametrize(("field", "build"), FIELDS, ids=[f[0] for f in FIELDS])
def test_render_is_terminal_safe(field: str, build: Callable[[str], bytes], payload: str) -> None:
    shown = _shown(build(payload))
    for where, text in shown:
        problems = terminal_problems(text, single_line="body" not in where)
        assert not problems, f"{where}: {problems} in {text[:200]!r}"
    if payload.startswith("[@click") and field not in RESHAPED:
        everything = "\n".join(text for _, text in shown)
        # markup is data: it reaches the output untouched (the UI must not interpret it)
        assert "[@click=app.quit]" in everything or "%5B@click" in everything


# --- the command line, as a subprocess -------------------------------------------------------

ALL = "".join(p for _, p in PAYLOADS)
# One message per kind of field for the subprocess checks (each `read` is a process start;
# the render table above covers every field).
CLI_FIELDS = [
    f
    for f in FIELDS
    if f[0]
    in {
        "subject encoded word",
        "from name encoded",
        "to and cc names",
        "plain body quoted-printable",
        "html hex entities",
        "html link text and target",
        "attachment name RFC 2231",
        "charset label",
    }
]
FOLDER_PAYLOAD = "\x1b]0;pwned\x07\x9b2J[@click=app.quit]x[/]\u202e"


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """XDG dirs with a local Maildir account full of hostile messages, synced once."""
    home = tmp_path_factory.mktemp("hostile")
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        path = home / var.lower()
        path.mkdir()
        env[var] = str(path)
    env.pop("TUIMAIL_CONFIG", None)
    env.pop("TUIMAIL_DATA_DIR", None)
    maildir = home / "Mail"
    folders = [maildir, maildir / ("." + FOLDER_PAYLOAD.replace("/", "_"))]
    for folder in folders:
        for sub in ("cur", "new", "tmp"):
            (folder / sub).mkdir(parents=True)
    for n, (_, build) in enumerate(CLI_FIELDS, 1):
        raw = _replace_header(build(ALL), b"Message-ID", f"Message-ID: <m{n}@example.org>".encode())
        (folders[n % 2] / "cur" / f"{n}.hostile.host:2,").write_bytes(raw)
    config = Path(env["XDG_CONFIG_HOME"]) / "tuimail" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[accounts.local]\naddress = "me@example.com"\n\n'
        f'[accounts.local.incoming]\nprotocol = "maildir"\npath = "{maildir}"\n'
    )
    done = _tuimail(env, "sync")
    assert done.returncode == 0, done.stderr
    return env


def _tuimail(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tuimail", *argv],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def _ids(env: dict[str, str]) -> list[int]:
    listed = _tuimail(env, "list", "--json")
    return [json.loads(line)["id"] for line in listed.stdout.splitlines() if line.strip()]


# (id, argv; "{id}" is replaced by every message id in turn)
# fmt: off
CLI_COMMANDS: list[tuple[str, tuple[str, ...]]] = [
    ("sync again", ("sync",)),
    ("folders", ("folders",)),
    ("folders json", ("folders", "--json")),
    ("list", ("list",)),
    ("list json", ("list", "--json")),
    ("search", ("search", "hello")),
    ("search json", ("search", "--json", "see")),
    ("read", ("read", "--no-mark", "{id}")),
    ("read json", ("read", "--no-mark", "--json", "{id}")),
]
# fmt: on

# Commands whose output breaks the oracle because of a bug elsewhere (strict xfail).
CLI_BUGS: dict[str, str] = {}


def _cli_params() -> list[object]:
    params = []
    for name, argv in CLI_COMMANDS:
        bug = next((reason for key, reason in CLI_BUGS.items() if key in name), None)
        marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
        params.append(pytest.param(argv, id=name, marks=marks))
    return params


@pytest.mark.parametrize("argv", _cli_params())
def test_cli_output_is_terminal_safe(hostile_home: dict[str, str], argv: tuple[str, ...]) -> None:
    runs = (
        [tuple(str(i) if a == "{id}" else a for a in argv) for i in _ids(hostile_home)]
        if "{id}" in argv
        else [argv]
    )
    assert runs
    literal_markup = False
    for args in runs:
        done = _tuimail(hostile_home, *args)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert_bytes_terminal_safe(done.stdout, f"stdout of tuimail {' '.join(args)}")
        assert_bytes_terminal_safe(done.stderr, f"stderr of tuimail {' '.join(args)}")
        literal_markup = literal_markup or b"[@click=app.quit]" in done.stdout
    if argv[0] in ("list", "read", "search") and "--json" not in argv:
        assert literal_markup, "markup from mail data should be printed as written"


def test_cli_shows_the_hostile_folder(hostile_home: dict[str, str]) -> None:
    done = _tuimail(hostile_home, "folders")
    assert b"pwned" in done.stdout  # listed (made harmless), not dropped
    assert len(_ids(hostile_home)) == len(CLI_FIELDS)


# --- the app -----------------------------------------------------------------------------------


_SGR_OR_CUP = re.compile(r"\x1b\[[0-9;:]*m|\x1b\[\d+;\d+H")


def _screen(app: App[object], styles: bool) -> str:
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
    )
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    console.print(update)
    return console.export_text(styles=styles)


def test_app_shows_hostile_mail_safely(
    hostile_home: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app itself: folder pane, list and viewer with each hostile message in turn."""
    from tuimail import locations
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.widgets.message_view import MessageView

    for key, value in hostile_home.items():
        monkeypatch.setenv(key, value)
    ids = _ids(hostile_home)

    async def go() -> None:
        app = TuimailApp(None, locations.store_dir())
        async with app.run_test(size=(140, 45)) as pilot:
            await pilot.pause(0.5)
            view = app.query_one("#preview", MessageView)
            seen_markup = False
            for message_id in ids:
                view.show(message_id, force=True)
                for _ in range(60):
                    await pilot.pause(0.05)
                    if view.reading is not None:
                        break
                assert view.reading is not None, f"message {message_id} was not shown"
                plain = _screen(app, styles=False)
                problems = terminal_problems(plain)
                # What the terminal receives, minus the colours and cursor moves Textual adds
                problems += terminal_problems(_SGR_OR_CUP.sub("", _screen(app, styles=True)))
                assert not problems, f"message {message_id}: {problems}"
                seen_markup = seen_markup or "[@click=app.quit]" in plain
                assert app.is_running  # the [@click=app.quit] in the mail was not obeyed
            assert seen_markup, "markup from mail data should show literally"

    asyncio.run(go())
