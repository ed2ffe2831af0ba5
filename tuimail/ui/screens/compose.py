"""The composer: To/Cc/Bcc/Subject with address completion, body in a TextArea or $EDITOR,
attachments by path, autosaved drafts, checks before sending, and the outbox.

Sending never happens here: the message is built (`tuimail.mail.compose`), written durably
to the outbox, and the account workers are told (`app.changes_made()` -> hub.push); the
status line and notifications report what happens next.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.screen import Screen
from textual.suggester import Suggester
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Static, TextArea

from tuimail.errors import TuimailError, UsageError
from tuimail.mail.compose import (
    AttachmentSpec,
    Draft,
    compose,
    envelope_recipients,
    forward,
    message_bytes,
    parse_address_list,
    reply,
)
from tuimail.mail.parse import parse_message
from tuimail.mail.render import format_address
from tuimail.mail.sanitize import sanitize_line
from tuimail.models import Address
from tuimail.ui import drafts
from tuimail.ui.format import format_size
from tuimail.ui.text import clean

if TYPE_CHECKING:
    from tuimail.ui.app import ComposeKind, TuimailApp

AUTOSAVE_EVERY = 5.0  # seconds
LARGE_ATTACHMENTS = 20 * 1024 * 1024  # bytes: many servers refuse more
# Words that suggest an attachment was meant; only the user's own lines are searched.
_ATTACH_WORDS = re.compile(
    r"\b(attach(ed|ment|ments|ing)?|enclosed|anbei|angehängt|anhang|pièces? jointes?|"
    r"ci-joint|adjunto|allegat[oi])\b",
    re.IGNORECASE,
)


def mentions_attachment(body: str) -> bool:
    """True when the user's own text (not quoted lines) talks about an attachment."""
    own = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith(">"))
    return bool(_ATTACH_WORDS.search(own))


def complete_address(value: str, candidates: Sequence[Address]) -> str | None:
    """`value` with its last (comma-separated) entry completed from `candidates`."""
    tail = value.rpartition(",")[2]
    token = tail.lstrip()
    if len(token) < 2:
        return None
    lowered = token.lower()
    for candidate in candidates:
        name = sanitize_line(candidate.name).strip()
        addr = sanitize_line(candidate.addr)
        full = f"{name} <{addr}>" if name else addr
        for text in (full, addr):
            if text.lower().startswith(lowered) and len(text) > len(token):
                return value + text[len(token) :]
    return None


class AddressSuggester(Suggester):
    """Inline completion of the entry being typed, from people in the store."""

    def __init__(self, lookup: Callable[[str], Sequence[Address]]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._lookup = lookup

    async def get_suggestion(self, value: str) -> str | None:
        token = value.rpartition(",")[2].strip()
        if len(token) < 2:
            return None
        return complete_address(value, self._lookup(token))


class PathSuggester(Suggester):
    """Inline completion of a file path (attachments)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        path = Path(value).expanduser()
        directory, stem = (path, "") if value.endswith("/") else (path.parent, path.name)
        try:
            names = sorted(p.name + ("/" if p.is_dir() else "") for p in directory.iterdir())
        except OSError:
            return None
        for name in names:
            if name.startswith(stem) and name != stem and (stem or not name.startswith(".")):
                return value + name[len(stem) :]
        return None


def me_addresses(app: TuimailApp) -> list[Address]:
    out: list[Address] = []
    for account in app.config.accounts.values():
        out.append(Address(account.display_name, account.address))
        out.extend(Address("", alias) for alias in account.aliases)
    return out


class ComposeScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", id="compose_send", priority=True),
        Binding("ctrl+e", "editor", "$EDITOR", id="compose_editor", priority=True),
        Binding("ctrl+o", "attach", "Attach", id="compose_attach", priority=True),
        Binding(
            "ctrl+x", "remove_attachment", "Drop attachment", id="compose_unattach", show=False
        ),
        Binding("escape", "close", "Close", id="compose_close"),
    ]

    DEFAULT_CSS = """
    ComposeScreen { layout: vertical; }
    ComposeScreen #title { height: 1; background: $status-background;
        color: $status-foreground; padding: 0 1; }
    ComposeScreen #fields { grid-size: 2; grid-columns: 10 1fr; grid-rows: 1;
        height: auto; padding: 0 1; }
    ComposeScreen #fields Label { color: $header-label-color; text-style: bold;
        text-align: right; width: 100%; padding-right: 1; }
    ComposeScreen #fields Input { border: none; height: 1; padding: 0; background: $boost; }
    ComposeScreen #fields Input:focus { background: $primary 20%; }
    ComposeScreen #attachments { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    ComposeScreen #attach { display: none; border: none; height: 1; margin: 0 1; }
    ComposeScreen #attach.-active { display: block; }
    ComposeScreen TextArea { height: 1fr; border: none; }
    """

    def __init__(
        self,
        draft: Draft,
        *,
        account: str,
        kind: ComposeKind = "new",
        source_id: int | None = None,
        saved: drafts.SavedDraft | None = None,
    ) -> None:
        super().__init__()
        self.draft = draft
        self.account = account
        self.kind = kind
        self.source_id = source_id
        self.attachments: list[AttachmentSpec] = list(draft.attachments)
        self.attachment_paths: list[str] = []
        self.saved = saved or drafts.SavedDraft(account=account, kind=kind, source_id=source_id)
        self._last_saved: tuple[str, ...] = ()
        self._autosave: Timer | None = None
        self.sent = False

    # ------------------------------------------------------------------ building

    @classmethod
    def for_kind(cls, app: TuimailApp, kind: ComposeKind, message_id: int | None) -> ComposeScreen:
        """A new message, or a reply / reply-all / forward of `message_id`."""
        account = app.default_account()
        if kind == "new" or message_id is None:
            return cls(Draft(), account=account, kind="new")
        summary, raw = app.load_message(message_id)
        if summary is None or raw is None:
            raise UsageError(
                "The message is not stored locally yet; open it once it has been fetched.",
                "Cannot reply yet",
            )
        account = summary.account if summary.account in app.config.accounts else account
        parsed = parse_message(raw)
        if kind == "forward":
            draft = forward(parsed, raw, inline=True)
        else:
            draft = reply(parsed, me=me_addresses(app), reply_all=kind == "reply_all")
        return cls(draft, account=account, kind=kind, source_id=message_id)

    @classmethod
    def from_saved(cls, app: TuimailApp, saved: drafts.SavedDraft) -> ComposeScreen:
        attachments: tuple[AttachmentSpec, ...] = ()
        if saved.kind == "forward" and saved.source_id is not None:
            _, raw = app.load_message(saved.source_id)
            if raw is not None:
                attachments = forward(parse_message(raw), raw, inline=True).attachments
        draft = Draft(
            subject=saved.subject,
            body=saved.body,
            in_reply_to=saved.in_reply_to,
            references=tuple(saved.references),
            attachments=attachments,
        )
        screen = cls(
            draft,
            account=saved.account or app.default_account(),
            kind=saved.kind if saved.kind in ("new", "reply", "reply_all", "forward") else "new",  # type: ignore[arg-type]
            source_id=saved.source_id,
            saved=saved,
        )
        screen.attachment_paths = list(saved.attachment_paths)
        screen._typed = (saved.to, saved.cc, saved.bcc)
        return screen

    _typed: tuple[str, str, str] | None = None

    @property
    def mail_app(self) -> TuimailApp:
        from tuimail.ui.app import TuimailApp

        assert isinstance(self.app, TuimailApp)
        return self.app

    def compose(self) -> ComposeResult:
        app = self.mail_app
        suggester = AddressSuggester(lambda prefix: app.store.known_addresses(prefix, 10))
        to, cc, bcc = self._typed or (
            ", ".join(format_address(a) for a in self.draft.to),
            ", ".join(format_address(a) for a in self.draft.cc),
            ", ".join(format_address(a) for a in self.draft.bcc),
        )
        yield Static(id="title")
        with Grid(id="fields"):
            yield Label("From")
            yield Static(Text(app.sender_label(self.account)), id="from")
            yield Label("To")
            yield Input(to, id="to", suggester=suggester, placeholder="name or address")
            yield Label("Cc")
            yield Input(cc, id="cc", suggester=suggester)
            yield Label("Bcc")
            yield Input(bcc, id="bcc", suggester=suggester)
            yield Label("Subject")
            yield Input(self.draft.subject, id="subject")
        yield Static(id="attachments")
        yield Input(id="attach", suggester=PathSuggester(), placeholder="file to attach (Tab)")
        yield TextArea(self.draft.body, id="body", soft_wrap=True, show_line_numbers=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        for path in self.attachment_paths:
            self._add_path(path, quiet=True)
        self._paint_title()
        self._paint_attachments()
        target = "#to" if not self.query_one("#to", Input).value else "#body"
        self.query_one(target).focus()
        self._last_saved = self._snapshot()
        self._autosave = self.set_interval(AUTOSAVE_EVERY, self.save_draft)

    def _paint_title(self) -> None:
        names = {
            "new": "New message",
            "reply": "Reply",
            "reply_all": "Reply to all",
            "forward": "Forward",
        }
        title = Text(names.get(self.kind, "Message"), style="bold", end="")
        title.append("   Ctrl+S send · Ctrl+E editor · Ctrl+O attach · Esc close")
        self.query_one("#title", Static).update(title)

    def _paint_attachments(self) -> None:
        box = self.query_one("#attachments", Static)
        if not self.attachments:
            box.update(Text(""))
            box.display = False
            return
        box.display = True
        text = Text(end="")
        for i, spec in enumerate(self.attachments, 1):
            text.append(f"[{i}] ")
            text.append(clean(spec.filename))
            text.append(f"  {format_size(len(spec.data))}   ")
        total = sum(len(s.data) for s in self.attachments)
        if total > LARGE_ATTACHMENTS:
            text.append(f"\n{format_size(total)} in all: many servers refuse mail this big.")
        box.update(text)

    # ------------------------------------------------------------------ values

    def _value(self, field_id: str) -> str:
        return self.query_one(f"#{field_id}", Input).value

    def _body(self) -> str:
        return self.query_one("#body", TextArea).text

    def _snapshot(self) -> tuple[str, ...]:
        return (
            self._value("to"),
            self._value("cc"),
            self._value("bcc"),
            self._value("subject"),
            self._body(),
            *self.attachment_paths,
        )

    def save_draft(self) -> None:
        """Autosave (every few seconds, when something changed) so a crash loses little."""
        if self.sent or not self.is_mounted:
            return
        snapshot = self._snapshot()
        if snapshot == self._last_saved:
            return
        saved = self.saved
        saved.to, saved.cc, saved.bcc, saved.subject = snapshot[:4]
        saved.body = self._body()
        saved.in_reply_to = self.draft.in_reply_to
        saved.references = list(self.draft.references)
        saved.attachment_paths = list(self.attachment_paths)
        try:
            drafts.save(saved)
        except OSError as exc:
            self.mail_app.say(f"Could not save the draft: {exc}", title="Draft", severity="error")
            return
        self._last_saved = snapshot

    # ------------------------------------------------------------------ actions

    def action_close(self) -> None:
        attach = self.query_one("#attach", Input)
        if attach.has_class("-active"):
            attach.remove_class("-active")
            self.query_one("#body").focus()
            return
        from tuimail.ui.screens.pickers import ConfirmScreen

        if self._snapshot() == self._last_saved and not self.saved.saved:
            self._finish(discard=True)
            return

        def answer(keep: bool | None) -> None:
            if keep:
                self.save_draft()
                self.mail_app.say("Draft kept: c resumes it.", title="Draft saved")
                self._finish(discard=False)
            else:
                self._finish(discard=True)

        self.app.push_screen(
            ConfirmScreen("Keep this message as a draft?", "y: keep it   n: discard it"), answer
        )

    def _finish(self, *, discard: bool) -> None:
        if self._autosave is not None:
            self._autosave.stop()
        if discard:
            drafts.discard(self.saved.draft_id)
        self.dismiss(None)

    def action_attach(self) -> None:
        box = self.query_one("#attach", Input)
        box.add_class("-active")
        box.value = str(Path.home()) + "/"
        box.focus()

    @on(Input.Submitted, "#attach")
    def _attach_submitted(self, event: Input.Submitted) -> None:
        if self._add_path(event.value.strip()):
            event.input.value = ""
            event.input.remove_class("-active")
            self.query_one("#body").focus()

    def _add_path(self, value: str, quiet: bool = False) -> bool:
        path = Path(value).expanduser()
        try:
            if not path.is_file():
                raise OSError(f"{path} is not a file")
            data = path.read_bytes()
        except OSError as exc:
            if not quiet:
                self.mail_app.say(str(exc), title="Cannot attach", severity="error")
            return False
        self.attachments.append(AttachmentSpec(path.name, data))
        if str(path) not in self.attachment_paths:
            self.attachment_paths.append(str(path))
        self._paint_attachments()
        return True

    def action_remove_attachment(self) -> None:
        if self.attachments:
            spec = self.attachments.pop()
            self.attachment_paths = [
                p for p in self.attachment_paths if Path(p).name != spec.filename
            ]
            self._paint_attachments()

    def action_editor(self) -> None:
        """Edit the body in $VISUAL/$EDITOR; the app suspends and resumes around it."""
        command = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        argv = shlex.split(command)
        area = self.query_one("#body", TextArea)
        with tempfile.TemporaryDirectory(prefix="tuimail-") as tmp:
            path = Path(tmp) / "message.txt"
            path.write_text(area.text, encoding="utf-8")
            path.chmod(0o600)
            try:
                with self.app.suspend():
                    subprocess.run([*argv, str(path)], check=False)
            except (OSError, TuimailError) as exc:
                self.mail_app.say(
                    f"Could not run {command}: {exc}", title="Editor", severity="error"
                )
                return
            except Exception as exc:  # e.g. SuspendNotSupported under a test driver
                self.mail_app.say(
                    f"The editor cannot run here: {exc}", title="Editor", severity="warning"
                )
                return
            area.text = path.read_text(encoding="utf-8", errors="replace")
        self.save_draft()

    def action_send(self) -> None:
        try:
            to = parse_address_list(self._value("to"))
            cc = parse_address_list(self._value("cc"))
            bcc = parse_address_list(self._value("bcc"))
        except UsageError as exc:
            self.mail_app.report(exc)
            return
        if not (to or cc or bcc):
            self.mail_app.say("Add at least one recipient.", title="No recipient", severity="error")
            self.query_one("#to").focus()
            return
        questions: list[str] = []
        if not self._value("subject").strip():
            questions.append("The subject is empty.")
        if mentions_attachment(self._body()) and not self.attachments:
            questions.append("The text mentions an attachment, but nothing is attached.")
        if not questions:
            self._queue(to, cc, bcc)
            return
        from tuimail.ui.screens.pickers import ConfirmScreen

        def answer(go: bool | None) -> None:
            if go:
                self._queue(to, cc, bcc)

        self.app.push_screen(ConfirmScreen("Send anyway?", " ".join(questions)), answer)

    def _queue(self, to: Sequence[Address], cc: Sequence[Address], bcc: Sequence[Address]) -> None:
        app = self.mail_app
        sender = app.sender_address(self.account)
        if sender is None:
            app.say(
                "No configured account can send mail (the demo, or no [outgoing] server). "
                "The message is kept as a draft.",
                title="Not sent",
                severity="warning",
            )
            self.save_draft()
            return
        try:
            msg = compose(
                from_=sender,
                to=to,
                cc=cc,
                bcc=bcc,
                subject=self._value("subject"),
                body=self._body(),
                attachments=self.attachments,
                in_reply_to=self.draft.in_reply_to or None,
                references=self.draft.references,
            )
            raw = message_bytes(msg)
            recipients = envelope_recipients(msg, bcc)
            app.store.outbox_add(self.account, raw, sender.addr, recipients)
        except TuimailError as exc:
            app.report(exc)
            return
        self.sent = True
        if self.source_id is not None and self.kind in ("reply", "reply_all"):
            try:
                app.store.set_flags([self.source_id], add=("answered",))
            except TuimailError as exc:
                app.report(exc)
        app.changes_made()
        app.say(
            f"Queued for {len(recipients)} recipient(s); sending in the background.", title="Outbox"
        )
        self._finish(discard=True)
