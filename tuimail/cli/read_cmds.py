"""`tuimail folders`, `list`, `read` and `search`: reading the local store."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tuimail.cli.common import add_json_flag, load_config, open_store
from tuimail.cli.format import message_json, message_line
from tuimail.cli.output import emit_json, say, say_text
from tuimail.errors import ExitCode, NotFoundError, TuimailError

if TYPE_CHECKING:
    from tuimail.models import MessageSummary
    from tuimail.store import Store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "folders",
        help="list folders with unread/total counts",
        description="List the folders of every account (or one) from the local store.",
    )
    p.add_argument("--account", metavar="A", help="only this account")
    add_json_flag(p)

    p = sub.add_parser(
        "list",
        help="list messages, newest first",
        description="List messages from the local store, newest first. Flags: N new (unread), "
        "F flagged, A answered, D draft, T deleted; @ has attachments.",
        epilog="JSON keys: id account folder uid date from to cc subject flags size message_id "
        "has_attachments preview thread body_local",
    )
    p.add_argument("--account", metavar="A", help="only this account")
    p.add_argument("--folder", metavar="F", help="only this folder (e.g. INBOX)")
    p.add_argument("--unread", action="store_true", help="only unread messages")
    p.add_argument("--limit", type=int, metavar="N", default=None, help="at most N messages")
    add_json_flag(p)

    p = sub.add_parser(
        "read",
        help="show a message (rendered, sanitized)",
        description="Show message ID as sanitized text (HTML rendered, links listed). Fetches "
        "the body first if it is not local. Marks the message read unless --no-mark.",
    )
    p.add_argument("id", type=int, help="message id, from `tuimail list`")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--raw",
        action="store_true",
        help="the raw RFC 5322 message (control characters are neutralized on a terminal)",
    )
    mode.add_argument(
        "--json", action="store_true", help="headers, text, links and attachments as JSON"
    )
    p.add_argument("--no-mark", action="store_true", help="do not mark the message read")

    p = sub.add_parser(
        "search",
        help="full-text search over the store",
        description="Search every message in the local store.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""query language:
  words "exact phrase" word*     all must match (prefix with *)
  from:ann  to:bob  subject:invoice
  folder:INBOX  account:work
  is:unread is:read is:flagged is:unflagged is:answered  has:attachment
  before:2026-01-31  after:2025-12-01

example: tuimail search 'from:ann is:unread invoice after:2026-01-01'""",
    )
    p.add_argument("query", nargs="+", help="the query (words are joined with spaces)")
    p.add_argument("--limit", type=int, metavar="N", default=None)
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    handler = {"folders": _folders, "list": _list, "read": _read, "search": _search}[args.command]
    return handler(args)


def _print_messages(summaries: list[MessageSummary], as_json: bool) -> None:
    for summary in summaries:
        if as_json:
            emit_json(message_json(summary))
        else:
            say(message_line(summary))


def _folders(args: argparse.Namespace) -> int:
    with open_store() as store:
        folders = store.folders(args.account)
    if args.account and not folders:
        raise NotFoundError(
            f"No folders for account {args.account!r} in the store. Run `tuimail sync` first."
        )
    for f in folders:
        if args.json:
            emit_json(
                {
                    "account": f.account,
                    "folder": f.name,
                    "role": f.role.value,
                    "unread": f.unread,
                    "total": f.total,
                }
            )
        else:
            say(f"{f.account:<12} {f.name:<32} {f.unread:>6} unread {f.total:>8} total")
    return ExitCode.OK


def _list(args: argparse.Namespace) -> int:
    with open_store() as store:
        if args.folder and args.account and store.folder(args.account, args.folder) is None:
            raise NotFoundError(
                f"No folder {args.folder!r} in account {args.account!r}. See `tuimail folders`."
            )
        summaries = store.list_messages(
            account=args.account, folder=args.folder, unread_only=args.unread, limit=args.limit
        )
    _print_messages(summaries, args.json)
    return ExitCode.OK


def _search(args: argparse.Namespace) -> int:
    with open_store() as store:
        ids = store.search(" ".join(args.query), limit=args.limit)
        summaries = store.summaries(ids)
    _print_messages(summaries, args.json)
    return ExitCode.OK


def _fetch_body(args: argparse.Namespace, store: Store, summary: MessageSummary) -> bytes:
    """The message's raw bytes, downloading the body through the account worker if needed."""
    raw = store.raw(summary.id)
    if raw is not None:
        return raw
    from tuimail import locations
    from tuimail.account.worker import FetchBodyRequest, run_requests

    config = load_config(args)
    account = config.account(summary.account)
    (reply,) = run_requests(
        account,
        locations.store_dir(),
        [FetchBodyRequest(message_id=summary.id)],
        lambda event: None,
    )
    if not reply.ok:
        assert reply.error is not None
        raise reply.error
    raw = store.raw(summary.id)
    if raw is None:
        raise TuimailError(f"The server did not return the body of message {summary.id}.")
    return raw


def _read(args: argparse.Namespace) -> int:
    from tuimail.mail.parse import parse_message
    from tuimail.mail.render import render_message

    with open_store() as store:
        summary = store.message(args.id)
        if summary is None:
            raise NotFoundError(f"No message with id {args.id}. See `tuimail list`.")
        raw = _fetch_body(args, store, summary)
        if not args.no_mark and not summary.flags.seen:
            store.set_flags([summary.id], add=["seen"])
    if args.raw:
        if sys.stdout.isatty():
            # Raw bytes could drive the terminal; a pipe gets them untouched.
            say_text(raw.decode("utf-8", "replace"))
        else:
            sys.stdout.buffer.write(raw)
        return ExitCode.OK
    rendered = render_message(parse_message(raw))
    if args.json:
        obj = message_json(summary)
        obj["headers"] = [[k, v] for k, v in rendered.headers]
        obj["text"] = rendered.body
        obj["links"] = [{"text": link.text, "target": link.target} for link in rendered.links]
        obj["attachments"] = [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size}
            for a in rendered.attachments
        ]
        obj["warnings"] = list(rendered.warnings)
        emit_json(obj)
        return ExitCode.OK
    for name, value in rendered.headers:
        say(f"{name}: {value}")
    for attachment in rendered.attachments:
        kind, size = attachment.content_type, attachment.size
        say(f"Attachment: {attachment.name} ({kind}, {size} bytes)")
    for warning in rendered.warnings:
        say(f"Warning: {warning}")
    print()
    # The rendered body already ends with its numbered links and their real targets.
    say_text(rendered.body)
    return ExitCode.OK
