"""Links of a message: a numbered list, and a dialog that shows the full target before
anything opens.

`l` in the viewer lists the links; `1`-`9` go straight to link N's dialog. The dialog shows
the link's text, its whole vetted target (`safe_link_target`: the punycode of an IDN host,
unsafe characters percent-encoded), every warning, and what will open it; only `y` opens.
http(s) goes to `$BROWSER` or `xdg-open` as an argv list; `mailto:` opens the composer.
Everything else is refused with the reason. All text is literal `Text`: no markup.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tuimail.mail.phishing import safe_link_target
from tuimail.mail.render import Link
from tuimail.ui import links as opening
from tuimail.ui.links import LinkReview, Opener
from tuimail.ui.text import clean

if TYPE_CHECKING:
    from tuimail.ui.app import TuimailApp

_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 80; max-width: 95%; height: auto; max-height: 90%;
    border: round $primary; background: $surface; padding: 0 1;
}}
{name} .title {{ text-style: bold; height: auto; }}
{name} .label {{ color: $header-label-color; text-style: bold; height: 1; margin-top: 1; }}
{name} .target {{ height: auto; }}
{name} .warning {{ color: $sign-color; height: auto; margin-top: 1; }}
{name} .hint {{ color: $text-muted; height: auto; margin-top: 1; }}
{name} VerticalScroll {{ height: auto; max-height: 12; }}
{name} OptionList, {name} OptionList:focus {{ height: auto; max-height: 18; border: none; }}
"""


def link_line(link: Link) -> Text:
    """`[n] text` over `→ target`, with a mark when the text names another site."""
    out = Text(end="", overflow="fold")  # a long target folds; it is never cut short
    out.append(f"[{link.number}] ", style="bold")
    if link.deceptive:
        out.append("⚠ ", style="bold")
    text, target = clean(link.text).strip(), clean(link.target)
    if text and text != target:
        out.append(text)
        out.append("\n    →", style="dim")  # attached: a long target starts here, folded
    out.append(target)
    return out


class LinkListScreen(ModalScreen[int | None]):
    """Pick a link (Enter); returns its index in the message's links."""

    DEFAULT_CSS = _CSS.format(name="LinkListScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,l", "cancel", "Close")]

    def __init__(self, links: Sequence[Link]) -> None:
        super().__init__()
        self.links = list(links)

    def compose(self) -> ComposeResult:
        with Vertical():
            count = len(self.links)
            yield Static(Text(f"Links in this message ({count})"), classes="title")
            yield OptionList(*(Option(link_line(link)) for link in self.links))
            yield Static(
                Text("Enter: show where it goes (nothing opens yet)   Esc: close"),
                classes="hint",
            )

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option_index)

    def action_cancel(self) -> None:
        self.dismiss(None)


class OpenLinkScreen(ModalScreen[bool]):
    """The last stop before a link opens: the full target and every warning.

    Returns True only when the link may open and the user pressed `y`.
    """

    DEFAULT_CSS = _CSS.format(name="OpenLinkScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Open", show=False),
        Binding("n,escape,q", "answer(False)", "Cancel", show=False),
        Binding("c", "copy", "Copy address", show=False),
    ]

    def __init__(self, review: LinkReview, opener: Opener | None) -> None:
        super().__init__()
        self.review = review
        self.opener = opener

    def compose(self) -> ComposeResult:
        review = self.review
        check = review.check
        mailto = check.scheme == "mailto"
        with Vertical():
            if not check.allowed:
                title = f"tuimail will not open link [{review.number}]"
            elif mailto:
                title = f"Write a message from link [{review.number}]?"
            else:
                title = f"Open link [{review.number}] in a browser?"
            yield Static(Text(title), classes="title")
            if review.text and review.text != check.display:
                yield Static(Text("The message shows"), classes="label")
                yield Static(Text(review.text), classes="target")
            yield Static(Text("It goes to" if check.allowed else "It points to"), classes="label")
            with VerticalScroll():
                # The whole target, wrapped, never cut: this is what the user must read.
                yield Static(Text(clean(check.display), overflow="fold"), classes="target")
            lines: list[str] = []
            if not check.allowed:
                lines.append("✗ " + clean(check.reason))
            lines += ["⚠ " + warning for warning in review.warnings]
            if review.dropped:
                lines.append(
                    "⚠ Ignored fields of the link: "
                    + ", ".join(review.dropped)
                    + " (a link cannot attach your files or set other headers)"
                )
            if lines:
                yield Static(Text("\n".join(lines)), classes="warning")
            yield Static(self._hint(), classes="hint")

    def _hint(self) -> Text:
        check = self.review.check
        if not check.allowed:
            return Text("Only http, https and mailto links open.   Esc: close")
        if check.scheme == "mailto":
            return Text("y: open the composer   n: cancel   c: copy the address")
        if self.opener is None:
            return Text(
                "No browser found: set $BROWSER or install xdg-open.\n"
                "n: close   c: copy the address"
            )
        where = " in this terminal" if self.opener.terminal else ""
        return Text(
            f"y: open with {clean(self.opener.name)}{where}   n: cancel   c: copy the address"
        )

    def action_answer(self, yes: bool) -> None:
        check = self.review.check
        if yes and not check.allowed:
            return  # a refused link has no "yes"
        self.dismiss(yes and check.allowed)

    def action_copy(self) -> None:
        if self.review.check.allowed:
            self.app.copy_to_clipboard(self.review.check.target)
            self.notify("Address copied (if the terminal allows it).", timeout=2)


def choose_link(app: TuimailApp, links: Sequence[Link]) -> None:
    """`l`: list the message's links; the one chosen goes to `confirm_link`."""
    if not links:
        app.say("This message has no links.", title="Links", timeout=2)
        return

    def chosen(index: int | None) -> None:
        if index is not None and 0 <= index < len(links):
            confirm_link(app, links[index])

    app.push_screen(LinkListScreen(links), chosen)


def confirm_link(app: TuimailApp, link: Link) -> None:
    """Show where `link` goes and what is wrong with it; open it only after `y`."""
    check = safe_link_target(link.target)
    review = opening.review(link, check)
    opener = None
    if check.allowed and check.scheme != "mailto":
        opener = opening.browser_command(check.target, os.environ)

    def answer(go: bool | None) -> None:
        if not go or not check.allowed:
            return
        if check.scheme == "mailto":
            app.compose_mailto(check.target, dropped=review.dropped)
        elif opener is None:
            app.say(
                "No browser found: set $BROWSER or install xdg-open.",
                title="Cannot open the link",
                severity="warning",
            )
        else:
            open_with(app, opener)

    app.push_screen(OpenLinkScreen(review, opener), answer)


def open_with(app: TuimailApp, opener: Opener) -> None:
    try:
        if opener.terminal:
            with app.suspend():
                opening.run_in_terminal(opener.argv)
        else:
            opening.start(opener.argv)
    except OSError as exc:
        app.say(f"Could not run {opener.name}: {exc}", title="Cannot open", severity="error")
        return
    except SuspendNotSupported:  # e.g. under a test driver
        app.say(
            f"{opener.name} needs the terminal, which cannot be handed over here.",
            title="Cannot open",
            severity="warning",
        )
        return
    if not opener.terminal:
        app.say(f"Opening with {opener.name}…", title="Link", timeout=2)
