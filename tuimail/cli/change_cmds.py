"""`tuimail flag`, `move` and `delete`: applied to the store at once, replayed to the server
on the next sync (or right away with --sync)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tuimail.cli.common import load_config, open_store
from tuimail.cli.output import say
from tuimail.errors import ExitCode, NotFoundError, UnsupportedError, UsageError
from tuimail.models import Protocol

if TYPE_CHECKING:
    from tuimail.config import Config
    from tuimail.models import MessageSummary
    from tuimail.store import Store

SYNC_HELP = "replay the change to the server now instead of on the next sync"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "flag",
        help="set or clear flags and keywords",
        description="Change flags of messages in the store; the server follows on the next sync.",
        epilog="example: tuimail flag 12 13 --seen --add '$Work'",
    )
    p.add_argument("ids", nargs="+", type=int, metavar="ID")
    p.add_argument("--seen", dest="add", action="append_const", const="seen", default=[])
    p.add_argument("--unseen", dest="remove", action="append_const", const="seen", default=[])
    p.add_argument("--flagged", dest="add", action="append_const", const="flagged")
    p.add_argument("--unflagged", dest="remove", action="append_const", const="flagged")
    p.add_argument("--answered", dest="add", action="append_const", const="answered")
    p.add_argument(
        "--add",
        dest="add_kw",
        action="append",
        default=[],
        metavar="KW",
        help="add a keyword (custom flag), e.g. $Work",
    )
    p.add_argument(
        "--remove",
        dest="remove_kw",
        action="append",
        default=[],
        metavar="KW",
        help="remove a keyword",
    )
    p.add_argument("--sync", action="store_true", help=SYNC_HELP)

    p = sub.add_parser(
        "move",
        help="move messages to another folder of their account",
        description="Move messages to FOLDER (same account).",
    )
    p.add_argument("ids", nargs="+", type=int, metavar="ID")
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--sync", action="store_true", help=SYNC_HELP)

    p = sub.add_parser(
        "delete",
        help="move messages to Trash (or expunge where there is no Trash)",
        description="Delete messages: to the account's Trash; messages already "
        "in Trash (or in an account without one) are expunged.",
    )
    p.add_argument("ids", nargs="+", type=int, metavar="ID")
    p.add_argument("--sync", action="store_true", help=SYNC_HELP)


def _messages(store: Store, ids: Sequence[int]) -> list[MessageSummary]:
    found = store.summaries(list(ids))
    missing = sorted(set(ids) - {m.id for m in found})
    if missing:
        raise NotFoundError(
            f"No message with id {', '.join(map(str, missing))}. See `tuimail list`."
        )
    return found


def _protocol(config: Config, account: str) -> Protocol | None:
    acct = config.accounts.get(account)
    return acct.incoming.protocol if acct and acct.incoming else None


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    with open_store() as store:
        messages = _messages(store, args.ids)
        accounts = sorted({m.account for m in messages})
        ids = [m.id for m in messages]
        if args.command == "flag":
            add = [*args.add, *args.add_kw]
            remove = [*(args.remove or []), *args.remove_kw]
            if not add and not remove:
                raise UsageError(
                    "Say what to change, e.g. --seen or --flagged (see tuimail flag --help)."
                )
            store.set_flags(ids, add=add, remove=remove)
            say(f"Changed flags of {len(ids)} message(s).")
        elif args.command == "move":
            if len(accounts) > 1:
                raise UsageError("Messages from several accounts: move them one account at a time.")
            (account,) = accounts
            if _protocol(config, account) is Protocol.POP3:
                raise UnsupportedError(
                    f"Account {account!r} uses POP3, which has no server folders: messages "
                    "can only be flagged or deleted locally."
                )
            dest = store.folder(account, args.folder)
            if dest is None:
                names = ", ".join(f.name for f in store.folders(account))
                raise NotFoundError(
                    f"No folder {args.folder!r} in account {account!r}. Folders: {names}."
                )
            store.move(ids, dest.id)
            say(f"Moved {len(ids)} message(s) to {dest.name}.")
        else:
            store.delete(ids)
            say(f"Deleted {len(ids)} message(s).")
    if args.sync:
        return _push(config, accounts)
    return ExitCode.OK


def _push(config: Config, accounts: Sequence[str]) -> int:
    from tuimail import locations
    from tuimail.account.worker import PushRequest, run_requests
    from tuimail.cli.output import report_error

    code = ExitCode.OK
    for name in accounts:
        (reply,) = run_requests(
            config.account(name), locations.store_dir(), [PushRequest()], lambda e: None
        )
        if not reply.ok and reply.error is not None:
            code = ExitCode(report_error(reply.error))
    return code
