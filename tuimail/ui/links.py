"""Opening a link from a message: which program, with which argv, and what to warn about.

No Textual here. The screens (`tuimail.ui.screens.links`) ask first and show everything;
this module decides the command. A link only ever reaches a program as one argv element
(never through a shell), and only after `tuimail.mail.phishing.safe_link_target` allowed it:
http, https and mailto, nothing else.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tuimail.mail.phishing import LinkCheck
from tuimail.mail.render import Link
from tuimail.mail.sanitize import sanitize_line

Which = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class Opener:
    """A command that opens a URL. `terminal`: it needs this terminal (no graphical display,
    so a text browser such as w3m or lynx may answer): the app suspends until it exits."""

    argv: tuple[str, ...]
    terminal: bool

    @property
    def name(self) -> str:
        return os.path.basename(self.argv[0])


def has_display(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    return platform == "darwin" or bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def _browser_entry(entry: str, url: str, which: Which) -> tuple[str, ...] | None:
    try:
        words = shlex.split(entry)
    except ValueError:  # an unbalanced quote: not a command we can run
        return None
    if not words or which(words[0]) is None:
        return None
    rest = words[1:]
    if any("%s" in word for word in rest):
        # Python's webbrowser convention: %s marks where the URL goes (inside one word).
        return (words[0], *(word.replace("%s", url) for word in rest))
    return (*words, url)


def browser_command(
    url: str,
    environ: Mapping[str, str],
    which: Which = shutil.which,
    platform: str = sys.platform,
) -> Opener | None:
    """The command that opens `url`: the first runnable entry of `$BROWSER` (a list
    separated by `:`, each a command line, `%s` for the URL), else `xdg-open` (`open` on
    macOS). None when there is none. `url` must already be vetted."""
    terminal = not has_display(environ, platform)
    for entry in environ.get("BROWSER", "").split(os.pathsep):
        argv = _browser_entry(entry, url, which)
        if argv is not None:
            return Opener(argv, terminal)
    # Only macOS's `open` opens URLs; on Linux `open` is openvt.
    for name in ("open",) if platform == "darwin" else ("xdg-open",):
        if which(name) is not None:
            return Opener((name, url), terminal)
    return None


def start(argv: tuple[str, ...]) -> None:
    """Start a graphical opener detached: output discarded, never waited for, no shell."""
    subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def run_in_terminal(argv: tuple[str, ...]) -> int:
    """Run a text-mode opener in this terminal and wait (the caller suspends the app)."""
    return subprocess.run(list(argv), check=False).returncode


@dataclass(frozen=True, slots=True)
class LinkReview:
    """What the confirmation dialog shows for one link: all of it terminal-safe text."""

    number: int
    text: str  # the link's text as the message shows it
    check: LinkCheck
    warnings: tuple[str, ...]  # most serious first
    dropped: tuple[str, ...]  # mailto fields that will be ignored

    @property
    def allowed(self) -> bool:
        return self.check.allowed


def review(link: Link, check: LinkCheck) -> LinkReview:
    """Join the link as rendered (its text, the deceptive mark) with the vetting of its
    target into the warnings the user reads before anything opens."""
    warnings: list[str] = []
    text = sanitize_line(link.text).strip()
    if link.deceptive:
        warnings.append(
            f"The link's text shows {text!r}, but it goes somewhere else: "
            "read the address it really goes to."
        )
    for sign in check.signs:
        if sign.severity != "info":
            warnings.append(sanitize_line(sign.reason))
    for sign in check.signs:
        if sign.severity == "info":
            warnings.append(sanitize_line(sign.reason))
    dropped = tuple(dict.fromkeys(sanitize_line(name) for name in check.dropped))
    return LinkReview(link.number, text, check, tuple(warnings), dropped)
