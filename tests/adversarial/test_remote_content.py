"""Remote content: nothing in a message makes tuimail connect anywhere.

Every row is an HTML message whose remote references (images, CSS, frames, refreshes,
prefetch hints, EFAIL-style split parts...) point at a loopback listener that counts
connections. Each message goes through everything that handles mail: parse, phishing
signs, render (both preferences), the store, `tuimail read` as a subprocess and the app's
viewer. Oracle: the listener never sees a connection. The EFAIL rows also check that one
part's markup cannot swallow another part's text into a URL.
"""

# ruff: noqa: E501  (one case per row)
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from adversarial_support import ConnectionCounter

from tuimail.mail.parse import parse_message
from tuimail.mail.phishing import SimpleCorrespondents, assess, safe_link_target
from tuimail.mail.render import render_message
from tuimail.models import Flags, FolderInfo
from tuimail.store import Store
from tuimail.store.types import NewMessage

SECRET = "SECRET-7f3a"


@pytest.fixture(scope="module")
def listener() -> Iterator[ConnectionCounter]:
    counter = ConnectionCounter()
    yield counter
    counter.close()


def _html(body: str, extra_headers: str = "") -> bytes:
    return (
        "From: Ann <ann@example.org>\r\nTo: me@example.com\r\nSubject: remote\r\n"
        f"{extra_headers}MIME-Version: 1.0\r\n"
        f"Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>{body}</body></html>\r\n"
    ).encode()


def _multipart(*parts: tuple[str, str]) -> bytes:
    body = "".join(f"--b\r\nContent-Type: {ctype}\r\n\r\n{content}\r\n" for ctype, content in parts)
    return (
        "From: Ann <ann@example.org>\r\nTo: me@example.com\r\nSubject: parts\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n{body}--b--\r\n"
    ).encode()


# (id, builder taking the listener's base URL "http://127.0.0.1:PORT")
# fmt: off
CASES: list[tuple[str, Callable[[str], bytes]]] = [
    ("img src", lambda u: _html(f'<img src="{u}/img.png" alt="logo">')),
    ("img srcset", lambda u: _html(f'<img srcset="{u}/a.png 1x, {u}/b.png 2x">')),
    ("img localhost name", lambda u: _html(f'<img src="{u.replace("127.0.0.1", "localhost")}/img.png">')),
    ("tracking pixel 1x1", lambda u: _html(f'<img src="{u}/open?id=42" width="1" height="1" style="display:none">')),
    ("picture source", lambda u: _html(f'<picture><source srcset="{u}/p.webp"><img src="{u}/p.png"></picture>')),
    ("input type image", lambda u: _html(f'<input type="image" src="{u}/i.png">')),
    ("body background", lambda u: f"From: a@example.org\r\nContent-Type: text/html\r\n\r\n<body background=\"{u}/bg.png\">x</body>".encode()),
    ("table background", lambda u: _html(f'<table background="{u}/t.png"><tr><td>x</td></tr></table>')),
    ("style attribute url()", lambda u: _html(f'<div style="background:url({u}/s.png)">x</div>')),
    ("style element url()", lambda u: _html(f"<style>body {{ background: url('{u}/css.png') }}</style>x")),
    ("css @import", lambda u: _html(f'<style>@import url("{u}/import.css");</style>x')),
    ("css @font-face", lambda u: _html(f"<style>@font-face {{ font-family: f; src: url({u}/f.woff) }}</style>x")),
    ("css image-set", lambda u: _html(f'<div style="background-image: image-set(\'{u}/i.png\' 1x)">x</div>')),
    ("link stylesheet", lambda u: _html(f'<link rel="stylesheet" href="{u}/l.css">x')),
    ("link prefetch and preconnect", lambda u: _html(f'<link rel="prefetch" href="{u}/p"><link rel="preconnect" href="{u}"><link rel="dns-prefetch" href="{u}">x')),
    ("iframe", lambda u: _html(f'<iframe src="{u}/frame.html"></iframe>')),
    ("frameset", lambda u: f"Content-Type: text/html\r\n\r\n<frameset><frame src=\"{u}/f.html\"></frameset>".encode()),
    ("object and embed", lambda u: _html(f'<object data="{u}/o.swf"></object><embed src="{u}/e.swf">')),
    ("video and audio", lambda u: _html(f'<video poster="{u}/v.png" src="{u}/v.mp4"></video><audio src="{u}/a.mp3" autoplay></audio>')),
    ("svg image", lambda u: _html(f'<svg><image href="{u}/svg.png" /><use xlink:href="{u}/u.svg#x"/></svg>')),
    ("script src", lambda u: _html(f'<script src="{u}/s.js"></script>x')),
    ("meta refresh", lambda u: _html("x", "").replace(b"<html>", f'<html><head><meta http-equiv="refresh" content="0;url={u}/refresh"></head>'.encode())),
    ("base href", lambda u: _html('<base href="{u}/"><img src="relative.png">'.replace("{u}", u))),
    ("anchor ping", lambda u: _html(f'<a href="https://example.org/" ping="{u}/ping">x</a>')),
    ("form action", lambda u: _html(f'<form action="{u}/post" method="post"><input name="q" value="1"></form><script>document.forms[0].submit()</script>')),
    ("multipart/related cid and remote", lambda u: _multipart(("text/html", f'<img src="cid:logo"><img src="{u}/remote.png">'), ("image/png", "iVBORw0KGgo="))),
    ("message/external-body", lambda u: f'Content-Type: message/external-body; access-type=URL; URL="{u}/ext"\r\n\r\nContent-Type: text/plain\r\n\r\n'.encode()),
    ("Content-Location", lambda u: _html("<img src=\"x.png\">", f"Content-Location: {u}/base/\r\n")),
    ("List-Unsubscribe header", lambda u: _html("x", f"List-Unsubscribe: <{u}/unsub>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")),
    ("EFAIL img split across parts", lambda u: _multipart(("text/html", f'<img src="{u}/efail?'), ("text/plain", SECRET), ("text/html", '">'))),
    ("EFAIL link split across parts", lambda u: _multipart(("text/html", f'<a href="{u}/efail?'), ("application/pkcs7-mime; smime-type=enveloped-data", SECRET), ("text/html", '">click</a>'))),
    ("EFAIL html parts around secret html", lambda u: _multipart(("text/html", f'<img src="{u}/efail?'), ("text/html; name=secret.html", SECRET), ("text/html", '">'))),
]
# fmt: on

KNOWN = SimpleCorrespondents(["ann@example.org"])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store.open(tmp_path_factory.mktemp("store")) as opened:
        yield opened


def _everything_in_process(raw: bytes, store: Store) -> list[str]:
    """Every handling of a message inside one process; returns the URLs it shows."""
    parsed = parse_message(raw)
    assess(parsed, known_correspondents=KNOWN, trusted_authserv_id="mx.me.example")
    shown: list[str] = []
    for prefer in ("plain", "html"):
        rendered = render_message(parsed, prefer=prefer)
        assess(parsed, rendered_links=rendered.links, known_correspondents=KNOWN)
        shown += [link.target for link in rendered.links]
        for link in rendered.links:
            safe_link_target(link.target)  # vetting a link opens nothing
    folder = store.ensure_folder("acct", FolderInfo("INBOX"))
    uid = store.max_uid(folder.id) + 1
    [message_id] = store.add_messages(
        folder.id, [NewMessage(uid, Flags(), len(raw), None, raw, True)]
    )
    assert store.raw(message_id) == raw
    return shown


def test_the_listener_counts(listener: ConnectionCounter) -> None:
    """The oracle can fail: a real connection is seen."""
    before = listener.count
    socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
    assert listener.settle() == before + 1


@pytest.mark.parametrize(("name", "build"), CASES, ids=[c[0] for c in CASES])
def test_no_connection_in_process(
    listener: ConnectionCounter, store: Store, name: str, build: Callable[[str], bytes]
) -> None:
    before = listener.count
    shown = _everything_in_process(build(listener.base), store)
    assert listener.settle() == before, f"{name}: tuimail connected to the listener"
    if name.startswith("EFAIL"):
        # one part's markup must not pull another part's content into a URL
        assert not [url for url in shown if SECRET in url], shown


@pytest.fixture(scope="module")
def remote_home(
    listener: ConnectionCounter, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """A local Maildir account holding every case, synced through the CLI."""
    home = tmp_path_factory.mktemp("remote")
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        (home / var.lower()).mkdir()
        env[var] = str(home / var.lower())
    env.pop("TUIMAIL_CONFIG", None)
    env.pop("TUIMAIL_DATA_DIR", None)
    maildir = home / "Mail"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for n, (_, build) in enumerate(CASES, 1):
        raw = f"Message-ID: <case{n}@example.org>\r\n".encode() + build(listener.base)
        (maildir / "cur" / f"{n}.remote.host:2,").write_bytes(raw)
    config = Path(env["XDG_CONFIG_HOME"]) / "tuimail" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[accounts.local]\naddress = "me@example.com"\n\n'
        f'[accounts.local.incoming]\nprotocol = "maildir"\npath = "{maildir}"\n'
    )
    done = subprocess.run(
        [sys.executable, "-m", "tuimail", "sync"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return env


def _message_ids(env: dict[str, str]) -> list[int]:
    with Store.open(Path(env["XDG_DATA_HOME"]) / "tuimail") as store:
        return [s.id for s in store.list_messages()]


def test_no_connection_from_cli_read(
    listener: ConnectionCounter, remote_home: dict[str, str]
) -> None:
    """`tuimail read` of every case in one process each for text, HTML-only and JSON."""
    ids = _message_ids(remote_home)
    assert len(ids) == len(CASES)
    before = listener.count
    script = (
        "import sys\nfrom tuimail.cli import main\n"
        "for mid in sys.argv[1:]:\n"
        "    for extra in ([], ['--json']):\n"
        "        try:\n"
        "            main(['read', '--no-mark', *extra, mid])\n"
        "        except SystemExit:\n"
        "            pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, ids)],
        env=remote_home,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"[image" in done.stdout  # images were shown as placeholders
    assert listener.settle() == before, "tuimail read connected to the listener"


def test_no_connection_from_the_app(
    listener: ConnectionCounter, remote_home: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tuimail import locations
    from tuimail.ui.app import TuimailApp
    from tuimail.ui.widgets.message_view import MessageView

    for key, value in remote_home.items():
        monkeypatch.setenv(key, value)
    ids = _message_ids(remote_home)
    before = listener.count

    async def go() -> None:
        app = TuimailApp(None, locations.store_dir())
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            view = app.query_one("#preview", MessageView)
            for message_id in ids:  # HTML-only messages: the viewer renders their HTML
                view.show(message_id, force=True)
                for _ in range(60):
                    await pilot.pause(0.02)
                    if view.reading is not None:
                        break
                assert view.reading is not None

    asyncio.run(go())
    assert listener.settle() == before, "the app connected to the listener"
