"""The Textual app. `run_app` is the entry point the CLI calls (lazily: this imports Textual).

Start-up stays lean: the main screen's modules are imported here; the viewer, pickers,
compose and help screens are imported when first opened.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.notifications import SeverityLevel
from textual.timer import Timer

from tuimail.errors import TuimailError
from tuimail.models import Address, MessageSummary
from tuimail.store.store import Store
from tuimail.ui.base import ThemedApp
from tuimail.ui.events import AccountEvent, AccountEvents, Hub
from tuimail.ui.model import Actions
from tuimail.ui.screens.main import MainScreen
from tuimail.ui.text import clean
from tuimail.ui.widgets.status_bar import AccountStatus

if TYPE_CHECKING:
    from tuimail.config import Config, UIConfig
    from tuimail.ui.reading import Reading, StoreCorrespondents

ComposeKind = Literal["new", "reply", "reply_all", "forward"]
UI_SWITCH_INTERVAL = 0.001  # s: see TuimailApp.on_mount
FREEZE_AFTER = 2.0  # s after start: see TuimailApp._freeze_startup_objects
PEOPLE_FOR = 60.0  # s: the correspondents list read for phishing signs is reused this long
FULL_GC_EVERY = 100  # young-generation collections between full ones (Python's default: 10)


class TuimailCommands(Provider):
    """Command palette entries for tuimail's own actions (Textual adds themes, quit...)."""

    COMMANDS: ClassVar[list[tuple[str, str, str]]] = [
        ("Compose a new message", "compose", "c"),
        ("Search", "search", "/"),
        ("Filter this list", "filter", "l"),
        ("Sync now", "sync", "$"),
        ("Undo the last action", "undo", "u"),
        ("Toggle folder pane", "toggle_sidebar", "b"),
        ("Toggle layout: panes / mutt-style pager", "toggle_layout", "z"),
        ("Toggle threads", "toggle_threads", "t"),
        ("Cycle sort order: date, from, subject, size", "cycle_sort", "o"),
        ("Reverse sort order", "reverse_sort", "O"),
        ("Mark read / unread", "toggle_read", "N"),
        ("Flag / unflag", "toggle_flag", "F"),
        ("Archive", "archive", "a"),
        ("Delete (to Trash)", "delete", "d"),
        ("Move to folder…", "move", "m"),
        ("Copy to folder…", "copy", "C"),
        ("Show key bindings", "help", "?"),
    ]

    def _main(self) -> MainScreen | None:
        return next((s for s in self.app.screen_stack if isinstance(s, MainScreen)), None)

    def _run(self, action: str) -> Callable[[], object]:
        def run() -> None:
            if action == "help" and isinstance(self.app, TuimailApp):
                self.app.action_help()
                return
            main = self._main()
            if main is not None:
                getattr(main, f"action_{action}")()

        return run

    async def discover(self) -> Hits:
        for title, action, key in self.COMMANDS:
            yield DiscoveryHit(title, self._run(action), help=f"key: {key}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, key in self.COMMANDS:
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), self._run(action), help=f"key: {key}")


class TuimailApp(ThemedApp[int]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "tuimail"
    COMMANDS = ThemedApp.COMMANDS | {TuimailCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", id="help"),
    ]
    STORE_REFRESH_DELAY = 0.3  # s: a sync's burst of events costs one repaint

    def __init__(
        self,
        config: Config | None,
        store_root: Path,
        *,
        demo: bool = False,
        hub: Hub | None = None,
        environ: Mapping[str, str] | None = None,
        mailto: str | None = None,
    ) -> None:
        from tuimail.config import Config

        self.config = config if config is not None else Config()
        self.ui_config: UIConfig = self.config.ui
        super().__init__(theme=self.ui_config.theme or None, environ=environ)
        self.store_root = store_root
        self.store = Store.open(store_root)
        self.actions = Actions(self.store)
        self.demo = demo
        self.hub = hub
        self.events = AccountEvents(self)
        self.account_status: dict[str, AccountStatus] = {}
        self._refresh_timer: Timer | None = None
        self._people: tuple[float, StoreCorrespondents] | None = None  # (made at, index)
        self.mailto = mailto  # `tuimail mailto:...`: the composer opens on start
        self._switch_interval = sys.getswitchinterval()
        self._gc_threshold = gc.get_threshold()
        if self.ui_config.keys:
            self.set_keymap(dict(self.ui_config.keys))

    # ------------------------------------------------------------------ life cycle

    def on_mount(self) -> None:
        # The account workers are threads of this process: when one parses a big batch, the
        # UI thread waits for the GIL up to the switch interval (5 ms) each time it wants it,
        # several times a frame. 1 ms keeps frames smooth during a sync; the workers lose
        # little (they mostly wait on the network and on SQLite, without the GIL).
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, UI_SWITCH_INTERVAL))
        self.set_timer(FREEZE_AFTER, self._freeze_startup_objects)
        for problem in self.theme_problems:
            self.say(str(problem), title="Theme skipped", severity="warning")
        from tuimail.ui import drafts

        if self.mailto is not None:
            url, self.mailto = self.mailto, None
            # After the main screen is up: a bad link leaves it there with a notification.
            self.call_after_refresh(self.compose_mailto, url)
        unsent = drafts.load_all()
        if unsent:
            self.say(
                f"{len(unsent)} unsent draft(s) from an earlier session: c resumes the newest.",
                title="Drafts",
            )
        for account in self.store.accounts():
            state = "local" if self.demo or self.hub is None else "connecting"
            self.account_status[account] = AccountStatus(state=state)
        self._update_outbox()
        if self.hub is not None:
            self.hub.start(self.events)
        elif not self.demo and self.config.accounts:
            self.say(
                "Showing the local store only: the account workers are not running.",
                title="Offline",
                severity="warning",
            )

    def _freeze_startup_objects(self) -> None:
        """Once started: what start-up built (Textual's DOM, styles, caches: some 50,000
        objects) lives as long as the app, so it leaves the garbage collector's lists. A full
        collection then walks only what came later: ~15 ms instead of ~40-90 ms when one
        strikes during a sync. The young generations are collected first (a few ms; a full
        collection here would itself be a 30-40 ms hitch), so little garbage is frozen.

        Full collections are then made ten times rarer: with the start-up objects frozen,
        Python's rule (a quarter more long-lived objects than the unfrozen ones) is met at
        almost every 10th middle collection, and during a sync (whose worker thread
        allocates a lot) each was a stall of the UI thread of 15 ms or more: the worst frame
        gaps. Only cyclic garbage waits longer; reference counting frees the rest."""
        gc.collect(1)
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, FULL_GC_EVERY)

    def get_default_screen(self) -> MainScreen:
        return MainScreen()

    def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)
        gc.set_threshold(*self._gc_threshold)
        gc.unfreeze()
        self.events.close()
        if self.hub is not None:
            self.hub.stop()
        self.store.close()

    @property
    def main(self) -> MainScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)

    # ------------------------------------------------------------------ reporting

    def say(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
    ) -> None:
        """A notification; text from mail or servers is sanitized and never markup."""
        self.notify(
            clean(message), title=clean(title), severity=severity, timeout=timeout, markup=False
        )

    def report(self, error: BaseException) -> None:
        if isinstance(error, TuimailError):
            self.say(error.message, title=error.title, severity="error", timeout=8)
        else:
            self.say(str(error) or type(error).__name__, title="Error", severity="error")

    # ------------------------------------------------------------------ data for screens

    def load_message(self, message_id: int) -> tuple[MessageSummary | None, bytes | None]:
        try:
            summary = self.store.message(message_id)
            raw = self.store.raw(message_id) if summary is not None else None
        except TuimailError as exc:
            self.report(exc)
            return None, None
        return summary, raw

    def read_message(self, summary: MessageSummary, raw: bytes, prefer: str = "plain") -> Reading:
        """Parse, render and assess a message with what we know of the user (safe to call
        from a worker thread: it opens no store connection of its own)."""
        from tuimail.ui.reading import load_reading

        account = self.config.accounts.get(summary.account)
        return load_reading(
            raw,
            correspondents=self._known_people(),
            trusted_authserv_id=account.trusted_authserv_id if account else "",
            my_domains=self.my_domains,
            prefer=prefer,
        )

    def _address_seen(self, addr: str) -> bool:
        # Called from a render thread for big messages: the store belongs to this thread.
        if threading.current_thread() is threading.main_thread():
            return self.store.address_seen(addr)
        return self.call_from_thread(self.store.address_seen, addr)

    def _known_people(self) -> StoreCorrespondents:
        # Every message opened asks (for its phishing signs); reading thousands of rows and
        # indexing them by name and domain at each one is not needed: who you correspond
        # with changes slowly. One index serves for PEOPLE_FOR seconds.
        from tuimail.ui.reading import StoreCorrespondents

        now = time.monotonic()
        if self._people is None or now - self._people[0] >= PEOPLE_FOR:
            self._people = (now, StoreCorrespondents(self._address_seen, self._correspondents))
        return self._people[1]

    def _correspondents(self) -> list[tuple[str, str]]:
        if threading.current_thread() is threading.main_thread():
            return self.store.correspondents()
        return self.call_from_thread(self.store.correspondents)

    @property
    def my_domains(self) -> list[str]:
        domains: list[str] = []
        for account in self.config.accounts.values():
            for addr in (account.address, *account.aliases):
                domain = addr.rpartition("@")[2].lower()
                if domain and domain not in domains:
                    domains.append(domain)
        return domains

    def _update_outbox(self, *, query: bool = True) -> None:
        """Repaint the status line's accounts and outbox; `query=False` keeps the last
        outbox count (progress events arrive per batch and never change the outbox)."""
        main = self.main
        if main is None or not main.is_mounted:
            return
        if not query:
            main.status.update_info(accounts=self.account_status)
            return
        try:
            items = self.store.outbox_items()
        except TuimailError:
            return
        failed = sum(1 for i in items if i.state in ("failed", "uncertain"))
        main.status.update_info(
            outbox=len(items), outbox_failed=failed, accounts=self.account_status
        )

    # ------------------------------------------------------------------ the worker seam

    def request_sync(self) -> None:
        if self.hub is None:
            self.say(
                "This is a local mailbox (demo or no accounts configured): nothing to sync."
                if self.demo or not self.config.accounts
                else "The account workers are not running, so nothing can sync.",
                title="Not syncing",
            )
            return
        self.hub.request_sync(None)

    def request_body(self, message_id: int) -> None:
        if self.hub is not None:
            self.hub.request_body(message_id)

    def changes_made(self) -> None:
        """Local changes were written to the store: the workers replay them."""
        if self.hub is not None:
            self.hub.push()
        self._update_outbox()

    def on_account_event(self, message: AccountEvent) -> None:
        """Events from the workers, read by attribute (see `tuimail.ui.events`)."""
        event = message.event
        account = message.account
        # Events without an account (the outbox sender's) have no status of their own.
        status = (
            self.account_status.setdefault(account, AccountStatus())
            if account
            else (AccountStatus())
        )
        state = getattr(event, "state", None)
        if isinstance(state, str):
            status.state = state
            status.detail = str(getattr(event, "detail", ""))
            if state in ("idle", "online", "offline", "stopped"):
                status.progress = ""
        progress = getattr(event, "progress", None)
        stored = False  # a batch of messages has just been stored
        if progress is not None:
            done, total = getattr(progress, "done", 0), getattr(progress, "total", None)
            stage = getattr(progress, "stage", "")
            status.progress = f"{stage} {done}/{total}" if total else f"{stage} {done}"
            stored = stage in ("headers", "download") and isinstance(done, int) and done > 0
        error = getattr(event, "error", None)
        if isinstance(error, BaseException):
            self.report(error)
        count = getattr(event, "count", None)
        folder = getattr(event, "folder", None)
        if isinstance(count, int) and count > 0 and isinstance(folder, str):
            self.say(f"{count} new in {account}/{folder}", title="New mail")
            if self.ui_config.bell:
                self.bell()
        sent = getattr(event, "sent", None)
        if isinstance(sent, int) and sent > 0:
            self.say(f"{sent} message(s) sent.", title="Outbox")
        self._say_warnings(account, getattr(event, "result", None))
        if getattr(event, "result", None) is not None or count or stored:
            # Also per stored batch: a long first sync fills the list as it goes.
            self._schedule_store_refresh()
        # The outbox changes by sending (the sender's events carry no account, or `sent`),
        # by errors, or when a worker changes state (it pushed); not per stored batch or
        # synced folder, which a sync sends many of.
        outbox_news = not account or sent is not None or error is not None or state is not None
        self._update_outbox(query=outbox_news)

    MAX_WARNINGS = 3  # notifications per event; `tuimail sync` lists them all

    def _say_warnings(self, account: str, result: object) -> None:
        """What `tuimail sync` prints as warnings: a folder's (its FolderSynced event:
        e.g. messages listed without body) and the account's (the sync's reply: e.g. a
        server's [ALERT]). Server text: `say` sanitizes it and never reads it as markup.
        (A sync's reply also carries its folders' results; those were said already.)"""
        warnings = getattr(result, "warnings", None)
        if not isinstance(warnings, (tuple, list)) or not warnings:
            return
        texts = [w for w in warnings if isinstance(w, str) and w.strip()]
        title = f"{account}: sync warning" if account else "Sync warning"
        for text in texts[: self.MAX_WARNINGS]:
            self.say(text, title=title, severity="warning", timeout=10)
        if len(texts) > self.MAX_WARNINGS:
            more = len(texts) - self.MAX_WARNINGS
            self.say(
                f"…and {more} more: `tuimail sync` lists them all.",
                title=title,
                severity="warning",
                timeout=10,
            )

    def _schedule_store_refresh(self) -> None:
        if self._refresh_timer is None:
            self._refresh_timer = self.set_timer(self.STORE_REFRESH_DELAY, self._store_refresh)

    def _store_refresh(self) -> None:
        self._refresh_timer = None
        main = self.main
        if main is not None and main.is_mounted:
            main.store_changed()

    # ------------------------------------------------------------------ screens

    def action_help(self) -> None:
        from tuimail.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def start_compose(self, kind: ComposeKind, message_id: int | None) -> None:
        """Open the composer; a new message first offers to resume an unsent draft."""
        from tuimail.ui import drafts
        from tuimail.ui.screens.compose import ComposeScreen

        if kind != "new" and message_id is None:
            return
        saved = drafts.load_all() if kind == "new" else []
        if saved:
            from tuimail.ui.screens.pickers import ConfirmScreen

            newest = saved[0]
            what = newest.subject or "(no subject)"
            try:
                when = datetime.fromisoformat(newest.saved).astimezone().strftime("%d %b %H:%M")
            except ValueError:
                when = "earlier"

            def answer(resume: bool | None) -> None:
                if resume:
                    self.push_screen(ComposeScreen.from_saved(self, newest))
                else:
                    self._open_composer(kind, message_id)

            self.push_screen(
                ConfirmScreen(
                    "Resume your unsent draft?",
                    f"{clean(what)} (saved {when}). n: start a new message; the draft stays.",
                ),
                answer,
            )
            return
        self._open_composer(kind, message_id)

    def compose_mailto(self, url: str, *, dropped: Sequence[str] = ()) -> bool:
        """Open the composer filled from a `mailto:` URL (a link, or `tuimail mailto:...`).

        Fields a link must not set (`attach=` and the like) are dropped and named in a
        notification, with `dropped` (already removed by the link check). A bad address
        is reported and nothing opens. Returns whether the composer opened.
        """
        from tuimail.mail.mailto import parse_mailto
        from tuimail.ui.screens.compose import ComposeScreen

        try:
            result = parse_mailto(url)
        except TuimailError as exc:
            self.report(exc)
            return False
        self.push_screen(ComposeScreen(result.draft, account=self.default_account(), kind="new"))
        ignored = list(dict.fromkeys([*dropped, *result.dropped]))
        if ignored:
            self.say(
                f"Ignored in the mailto: link: {', '.join(ignored)}. A link cannot attach "
                "files or set other headers.",
                title="Link fields ignored",
                severity="warning",
                timeout=8,
            )
        return True

    def _open_composer(self, kind: ComposeKind, message_id: int | None) -> None:
        from tuimail.ui.screens.compose import ComposeScreen

        try:
            screen = ComposeScreen.for_kind(self, kind, message_id)
        except TuimailError as exc:
            self.report(exc)
            return
        self.push_screen(screen)

    def default_account(self) -> str:
        """The account new mail is written from: the configured default, else the first."""
        accounts = list(self.config.accounts.values())
        for account in accounts:
            if account.default:
                return account.name
        if accounts:
            return accounts[0].name
        known = self.store.accounts()
        return known[0] if known else ""

    def sender_address(self, account: str) -> Address | None:
        """Who mail from `account` is sent as; None when it cannot send (no SMTP server)."""
        config = self.config.accounts.get(account)
        if config is None or config.outgoing is None:
            return None
        return Address(config.display_name, config.address)

    def sender_label(self, account: str) -> str:
        sender = self.sender_address(account)
        if sender is None:
            return f"{account} (cannot send: no outgoing server configured)"
        return f"{sender}  ({account})"


def run_app(
    config: Config | None,
    store_root: Path,
    demo: bool = False,
    *,
    hub: Hub | None = None,
    mailto: str | None = None,
) -> int:
    """Run the app on the store at `store_root` until the user quits; returns an exit code.

    With `demo`, the demo mailbox is (re)built there first. `hub` connects the account
    workers (None: local only). `mailto` (a `mailto:` URL) opens the composer on start.
    """
    if demo:
        from tuimail.demo import build_demo_store, is_current

        if not is_current(store_root):
            print("Preparing the demo mailbox (once, a few seconds)…", file=sys.stderr, flush=True)
        build_demo_store(store_root)
    app = TuimailApp(config, store_root, demo=demo, hub=hub, mailto=mailto)
    mouse = app.ui_config.mouse
    result = app.run(mouse=mouse)
    return int(result or 0)
