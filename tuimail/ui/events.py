"""The seam between the account workers (threads) and the app (Textual's event loop).

Workers report through a plain callback, from their own thread. `AccountEvents` is that
callback: it wraps whatever event object it is given in an `AccountEvent` message and posts
it to the app (`post_message` is thread-safe). The app reads events by their attributes
(`account`, `state`, `progress`, `error`, ...), so the worker's event classes can evolve
without the UI importing them.

`Hub` is what the app asks of the workers: the lead's CLI builds one from the config and
hands it to `run_app`. Without a hub (the demo, or no accounts) the app is purely local.
"""

from __future__ import annotations

from typing import Protocol

from textual.message import Message
from textual.message_pump import MessagePump


class AccountEvent(Message):
    """One event from an account worker, delivered on the app's thread."""

    def __init__(self, event: object) -> None:
        super().__init__()
        self.event = event
        self.account: str = str(getattr(event, "account", ""))


class AccountEvents:
    """A thread-safe callback for workers: `events(event)` posts it to `target`."""

    def __init__(self, target: MessagePump) -> None:
        self._target = target
        self.closed = False

    def __call__(self, event: object) -> None:
        if not self.closed:
            self._target.post_message(AccountEvent(event))

    def close(self) -> None:
        """After this, events are dropped (the app is shutting down)."""
        self.closed = True


class Hub(Protocol):
    """What the app needs from the account workers. Every method returns at once."""

    def start(self, events: AccountEvents) -> None:
        """Start the workers; they report through `events`."""

    def request_sync(self, account: str | None = None) -> None:
        """Sync now (all accounts when None)."""

    def request_body(self, message_id: int) -> None:
        """Fetch a body that is not local yet; a FolderSynced-like event follows."""

    def push(self) -> None:
        """Local changes were made (flags, moves, outbox): replay them soon."""

    def stop(self) -> None:
        """Stop the workers (called once, when the app exits)."""
