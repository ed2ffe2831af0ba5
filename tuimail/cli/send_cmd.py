"""`tuimail send` (mailx- and sendmail-style) and `tuimail outbox` (list, flush, retry, drop).

Used in shell loops and as the sendmail of git send-email, cron and mutt, so it imports only
what sending needs (no Textual, no IMAP library) and prints nothing on success in sendmail
mode, as sendmail does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from tuimail.cli.common import load_config, open_store
from tuimail.cli.output import emit_json, say
from tuimail.config import AccountConfig, Config
from tuimail.errors import ConfigError, ExitCode, NotFoundError, TuimailError, UsageError
from tuimail.models import Address

if TYPE_CHECKING:
    from tuimail.account.sending import FlushReport, Outcome
    from tuimail.store import Store
    from tuimail.store.types import OutboxItem

SEND_DESCRIPTION = """\
Send a message: it is written to the outbox first (safe on disk), then handed to the
account's SMTP server. If the server cannot be reached the message stays queued and
`tuimail outbox flush` (e.g. from cron) delivers it later, exactly once.

Two ways to use it:
  mailx style      the body comes from stdin (or --body-file); -s, -c, -b, -a build the
                   message; recipients follow `--`.
  sendmail style   with -t, -i, -oi, -f or -F, stdin is a complete message (headers and
                   body), sent as it is. Recipients are the arguments, plus the To/Cc/Bcc
                   headers with -t. Bcc headers are never transmitted. Missing From, Date
                   and Message-ID headers are added.
"""

SEND_EPILOG = """\
exit codes:
  0  delivered to the SMTP server (or queued, with --queue)
  1  the server refused the message for good (e.g. an unknown recipient): nobody was sent
     it; it is kept in the outbox as failed (`tuimail outbox retry ID` or `drop ID`)
  2  bad input: an invalid address, a missing file; nothing was queued
  3  configuration problem (no account, no [outgoing] section)
  4  login refused or no password: queued; fix it, then `tuimail outbox flush --now`
  5  TLS/STARTTLS failed: queued, never sent in the clear
  9  the connection broke after the message was sent: it may have been delivered; it is
     kept as "uncertain" and resent only by `tuimail outbox retry ID`
  75 queued: the server could not be reached (network trouble gives 75, not 6, because
     the message is safe in the outbox) or said "try later"; it will be retried

examples:
  echo "See you at 12." | tuimail send -s "Lunch" -- bob@example.com
  tuimail send -s Report -a report.pdf -c boss@example.com --body-file notes.txt -- a@b.org
  tuimail send -s "Logs" --queue -- ops@example.com < app.log     queue only, send later
  tuimail send -t < message.eml                                   recipients from headers
  git config --global sendemail.sendmailcmd "tuimail send -i"     git send-email
  set sendmail="tuimail send -oi"                                 mutt / neomutt
  crond -m "tuimail send -t"                                      cronie; MAILTO=you@example.com
"""

OUTBOX_DESCRIPTION = """\
Show what waits in the outbox and why: "queued" (will be sent, with the time of the next
try after a failure), "failed" (the server refused it for good: fix and retry, or drop),
"uncertain" (tuimail stopped or lost the connection after the message went out: it may
have been delivered, so it is not resent unless you say so).
"""

OUTBOX_EPILOG = """\
examples:
  tuimail outbox                      what is waiting, and why
  tuimail outbox flush                send what is due (quiet unless something fails)
  */5 * * * * tuimail outbox flush -q (crontab: retry every 5 minutes)
  tuimail outbox retry 12             send item 12 now (also an uncertain or failed one)
  tuimail outbox flush --force        also resend uncertain items (may deliver twice)
  tuimail outbox drop 12              discard item 12
"""

# Wait this long for another tuimail that is sending (a cron flush) to finish.
LOCK_TIMEOUT = 60.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "send",
        help="send a message (mailx/sendmail compatible)",
        description=SEND_DESCRIPTION,
        epilog=SEND_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-s", "--subject", metavar="SUBJECT", help="the subject")
    p.add_argument(
        "-c", "--cc", action="append", default=[], metavar="ADDR", help="Cc (repeatable)"
    )
    p.add_argument(
        "-b", "--bcc", action="append", default=[], metavar="ADDR", help="Bcc (repeatable)"
    )
    p.add_argument(
        "-a",
        "--attach",
        action="append",
        default=[],
        metavar="FILE",
        help="attach FILE (repeatable)",
    )
    p.add_argument(
        "--from", dest="from_", metavar="ADDR", help="From address (default: the account's)"
    )
    p.add_argument(
        "--account",
        metavar="A",
        help="send with this account (default: the one matching --from, else the default)",
    )
    p.add_argument("--html", metavar="FILE", help="also send FILE as the HTML version of the body")
    p.add_argument("--body-file", metavar="FILE", help="read the body from FILE instead of stdin")
    p.add_argument(
        "--queue", action="store_true", help="only queue it; `tuimail outbox flush` sends it"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object with the outcome")
    sendmail = p.add_argument_group("sendmail compatibility (stdin is a complete message)")
    sendmail.add_argument(
        "-t",
        dest="read_recipients",
        action="store_true",
        help="also take recipients from the To, Cc and Bcc headers",
    )
    sendmail.add_argument(
        "-i",
        dest="ignore_dots",
        action="store_true",
        help="accepted: a line with a single dot never ends the input anyway",
    )
    sendmail.add_argument(
        "-o",
        dest="sendmail_options",
        action="append",
        default=[],
        metavar="OPT",
        help="sendmail options like -oi, -odi, -oem: accepted and ignored",
    )
    sendmail.add_argument(
        "-f",
        "-r",
        dest="envelope_from",
        metavar="ADDR",
        help="envelope sender (and From, if the message has none)",
    )
    sendmail.add_argument(
        "-F", dest="full_name", metavar="NAME", help="full name for an added From header"
    )
    sendmail.add_argument(
        "-B",
        dest="body_type",
        metavar="TYPE",
        help="accepted and ignored (8BITMIME is used when needed)",
    )
    p.add_argument("recipients", nargs="*", metavar="RCPT", help="recipients (after --)")

    p = sub.add_parser(
        "outbox",
        help="list, flush, retry or drop queued messages",
        description=OUTBOX_DESCRIPTION,
        epilog=OUTBOX_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--account", metavar="A", help="only this account")
    p.add_argument("--json", action="store_true", help="one JSON object per item")
    actions = p.add_subparsers(dest="outbox_command", metavar="ACTION")
    flush = actions.add_parser(
        "flush",
        help="send what is due, one connection per account",
        description="Send queued messages whose retry time has come, over one connection per "
        "account. Quiet when everything went out; problems go to stderr. Exit status as for "
        "`tuimail send` (0 all sent, 75 some still queued, 9 uncertain, 4 login, 5 TLS, "
        "1 refused).",
    )
    flush.add_argument("--account", dest="flush_account", metavar="A", help="only this account")
    flush.add_argument("--now", action="store_true", help="do not wait for retry times")
    flush.add_argument(
        "--force",
        action="store_true",
        help="also resend uncertain items (they may be delivered twice)",
    )
    flush.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="report only what needs you, not what will be retried",
    )
    flush.add_argument(
        "--json", dest="flush_json", action="store_true", help="one JSON object per item tried"
    )
    retry = actions.add_parser(
        "retry",
        help="send items now, whatever their state",
        description="Put items back in the queue (an uncertain one may then be delivered "
        "twice) and send them now.",
    )
    retry.add_argument("ids", nargs="+", type=int, metavar="ID")
    retry.add_argument(
        "--json", dest="flush_json", action="store_true", help="one JSON object per item"
    )
    drop = actions.add_parser(
        "drop",
        help="discard items",
        description="Remove items from the outbox without sending them.",
    )
    drop.add_argument("ids", nargs="+", type=int, metavar="ID")


def run(args: argparse.Namespace) -> int:
    if args.command == "send":
        return _run_send(args)
    command = args.outbox_command
    if command == "flush":
        return _run_flush(args)
    if command == "retry":
        return _run_retry(args)
    if command == "drop":
        return _run_drop(args)
    return _run_list(args)


# ----------------------------------------------------------------------------- send


def _run_send(args: argparse.Namespace) -> int:
    import asyncio  # not at module level: `--help` and `outbox` never need it

    mailx = bool(
        args.subject is not None
        or args.cc
        or args.bcc
        or args.attach
        or args.html
        or args.body_file
    )
    sendmail = bool(
        args.read_recipients
        or args.ignore_dots
        or args.sendmail_options
        or args.envelope_from
        or args.full_name
        or args.body_type
    )
    if mailx and args.read_recipients:
        raise UsageError(
            "-t reads a complete message from stdin; -s, -c, -b, -a, --html and --body-file "
            "build one. Use one way or the other."
        )
    config = load_config(args)
    from_hint = args.from_ or args.envelope_from
    account = pick_account(config, args.account, from_hint)
    if sendmail and not mailx:
        prepared = prepare_whole_message(
            _read_stdin(),
            account,
            arg_recipients=args.recipients,
            read_headers=args.read_recipients,
            envelope_from=args.envelope_from or args.from_,
            full_name=args.full_name,
        )
    else:
        body = _read_body(args.body_file)
        prepared = compose_mailx(
            account,
            to=args.recipients,
            cc=args.cc,
            bcc=args.bcc,
            subject=args.subject or "",
            body=body,
            attachments=[Path(a) for a in args.attach],
            html_file=Path(args.html) if args.html else None,
            from_=args.from_,
        )
    store = open_store()
    try:
        item_id = store.outbox_add(account.name, prepared.raw, prepared.sender, prepared.recipients)
        if args.queue:
            return _report_queued_only(
                args, item_id, account.name, prepared.message_id, sendmail and not mailx
            )
        report = asyncio.run(_flush(store, config, item_ids=[item_id]))
    finally:
        store.close()
    outcome = next((o for o in report.outcomes if o.item_id == item_id), None)
    quiet_success = sendmail and not mailx
    return _report_send(
        args, report, outcome, item_id, account.name, prepared.message_id, quiet_success
    )


async def _flush(
    store: Store,
    config: Config,
    *,
    accounts: Sequence[str] | None = None,
    item_ids: Sequence[int] | None = None,
    force: bool = False,
    ignore_schedule: bool = False,
    release: Sequence[int] = (),
) -> FlushReport:
    from tuimail.account.sending import blocking_client, flush

    return await flush(
        store,
        config,
        accounts=accounts,
        item_ids=item_ids,
        force=force,
        ignore_schedule=ignore_schedule,
        release=release,
        lock_timeout=LOCK_TIMEOUT,
        client_factory=blocking_client,
    )


def _read_stdin() -> bytes:
    if sys.stdin is None:
        raise UsageError("No message on stdin.")
    if sys.stdin.isatty():
        print("(type the message, then Ctrl-D on a line of its own)", file=sys.stderr)
    return sys.stdin.buffer.read()


def _read_body(body_file: str | None) -> str:
    if body_file:
        try:
            data = Path(body_file).read_bytes()
        except OSError as exc:
            raise UsageError(f"Cannot read the body file {body_file}: {exc.strerror}.") from None
    else:
        data = _read_stdin()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            "The body is not UTF-8 text. Convert it (iconv -t UTF-8) or attach it with -a."
        ) from None


def _report_queued_only(
    args: argparse.Namespace, item_id: int, account: str, message_id: str, quiet: bool
) -> int:
    if args.json:
        emit_json(
            {
                "id": item_id,
                "account": account,
                "message_id": message_id,
                "status": "queued",
                "error": "",
                "exit_code": 0,
                "recipients": [],
                "saved_to_sent": False,
            }
        )
    elif not quiet:
        say(message_id)
    return ExitCode.OK


def _report_send(
    args: argparse.Namespace,
    report: FlushReport,
    outcome: Outcome | None,
    item_id: int,
    account: str,
    message_id: str,
    quiet_success: bool,
) -> int:
    from tuimail.account.sending import Outcome

    if outcome is None:
        # Another tuimail held the outbox: ours stays queued for it or the next flush.
        outcome = Outcome(
            item_id, account, message_id, "queued", " ".join(report.warnings), ExitCode.QUEUED
        )
    if args.json:
        emit_json(outcome.as_json())
    elif outcome.status == "sent":
        if not quiet_success:
            say(message_id)
    else:
        _explain(outcome)
    for warning in report.warnings:
        if outcome.status == "sent" or args.json:
            say(f"tuimail: warning: {warning}", sys.stderr)
    if report.recovered:
        ids = ", ".join(str(i) for i in report.recovered)
        say(
            f"tuimail: earlier outbox item(s) {ids} may or may not have been sent (tuimail was "
            "interrupted); see `tuimail outbox`.",
            sys.stderr,
        )
    return int(outcome.exit_code)


_NEXT_STEP = {
    "queued": "It is kept in the outbox (#{id}) and will be retried by "
    "`tuimail outbox flush`{when}.",
    "failed": "It is kept in the outbox (#{id}) as failed: fix the problem and run "
    "`tuimail outbox retry {id}`, or `tuimail outbox drop {id}`.",
    "uncertain": "Outbox item #{id} is marked uncertain and will not be resent on its own. If "
    "it did not arrive, run `tuimail outbox retry {id}`.",
    "skipped": "It is kept in the outbox (#{id}).",
}


def _explain(outcome: Outcome) -> None:
    """The problem and what happens to the message, on stderr (server text sanitized)."""
    titles = {
        "queued": "Not sent yet",
        "failed": "Not sent",
        "uncertain": "Delivery uncertain",
        "skipped": "Not sent yet",
    }
    lines = (outcome.error or "no reason given").splitlines()
    say(f"tuimail: {titles.get(outcome.status, 'Not sent')}: {lines[0]}", sys.stderr)
    for line in lines[1:]:
        say("  " + line, sys.stderr)
    when = f" (next try after {_local_time(outcome.retry_at)})" if outcome.retry_at else ""
    say("  " + _NEXT_STEP.get(outcome.status, "").format(id=outcome.item_id, when=when), sys.stderr)


def _local_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone().strftime("%Y-%m-%d %H:%M")


# ----------------------------------------------------------------------------- messages


class Prepared(NamedTuple):
    """A message ready for the outbox."""

    raw: bytes
    sender: str  # envelope sender
    recipients: tuple[str, ...]  # envelope recipients, deduplicated, in order
    message_id: str


def pick_account(config: Config, name: str | None, from_addr: str | None) -> AccountConfig:
    """The named account; else the one whose address or alias is `from_addr`; else the
    default. It must have an [outgoing] server."""
    account = None
    if name:
        account = config.account(name)
    elif from_addr:
        wanted = _one_address(from_addr).addr.lower()
        account = next((a for a in config.accounts.values() if wanted in a.my_addresses()), None)
    if account is None:
        account = config.account(None)
    if account.outgoing is None:
        raise ConfigError(
            f"Account {account.name!r} has no [accounts.{account.name}.outgoing] section, so it "
            "cannot send. Add one (see `tuimail config example`)."
        )
    return account


def parse_addresses(text: str) -> list[Address]:
    """Addresses a user typed ("Ann <a@x.org>, b@y.org"); UsageError naming a bad one."""
    from tuimail.mail.compose import parse_address_list

    return list(parse_address_list(text))


def _one_address(text: str) -> Address:
    found = parse_addresses(text)
    if len(found) != 1:
        raise UsageError(f"{text!r} should be one email address.")
    return found[0]


def _header_recipients(raw: bytes, names: Sequence[str]) -> list[str]:
    """Recipients in the message's own address headers (sendmail -t).

    Read leniently (a group such as `Undisclosed recipients:;` holds none), then each
    address checked as strictly as one typed on the command line.
    """
    from tuimail.account.sending import header_fields
    from tuimail.mail.addresses import parse_address_header

    found: list[str] = []
    for name in names:
        for value in header_fields(raw, name):
            for address in parse_address_header(value):
                found.append(_one_address(address.addr).addr)
    return found


def _dedupe(addresses: Sequence[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for addr in addresses:
        if addr.lower() not in seen:
            seen.add(addr.lower())
            out.append(addr)
    return tuple(out)


def prepare_whole_message(
    raw: bytes,
    account: AccountConfig,
    *,
    arg_recipients: Sequence[str],
    read_headers: bool,
    envelope_from: str | None,
    full_name: str | None,
) -> Prepared:
    """sendmail mode: `raw` is sent as it is, except that Bcc/Resent-Bcc are removed and a
    missing From, Date or Message-ID is added. Line endings become CRLF."""
    from email.utils import format_datetime, formataddr

    from tuimail.account.sending import header_fields, prepend_fields, strip_fields
    from tuimail.mail.compose import make_message_id, normalize_crlf

    raw = normalize_crlf(raw)
    if not raw.strip():
        raise UsageError("The message on stdin is empty.")
    recipients = [a.addr for arg in arg_recipients for a in parse_addresses(arg)]
    if read_headers:
        recipients += _header_recipients(raw, ("to", "cc", "bcc"))
    if not recipients:
        hint = (
            "the message has no To, Cc or Bcc header"
            if read_headers
            else "use -t to take them from the headers"
        )
        raise UsageError(f"No recipients: give them after `--`, or {hint}.")
    sender = _one_address(envelope_from).addr if envelope_from else account.address
    added: list[str] = []
    if not header_fields(raw, "from"):
        name = full_name if full_name is not None else account.display_name
        added.append("From: " + formataddr((" ".join(name.split()), sender)))
    if not header_fields(raw, "date"):
        added.append("Date: " + format_datetime(datetime.now().astimezone()))
    ids = header_fields(raw, "message-id")
    message_id = ids[0] if ids else make_message_id(sender.rpartition("@")[2])
    if not ids:
        added.append("Message-ID: " + message_id)
    raw = prepend_fields(strip_fields(raw, ["bcc", "resent-bcc"]), added)
    return Prepared(raw, sender, _dedupe(recipients), message_id)


def compose_mailx(
    account: AccountConfig,
    *,
    to: Sequence[str],
    cc: Sequence[str],
    bcc: Sequence[str],
    subject: str,
    body: str,
    attachments: Sequence[Path],
    html_file: Path | None,
    from_: str | None,
) -> Prepared:
    """mailx mode: build the message from the options (addresses checked first)."""
    from tuimail.mail.compose import (
        AttachmentSpec,
        compose,
        envelope_recipients,
        message_bytes,
    )

    to_list = [a for arg in to for a in parse_addresses(arg)]
    cc_list = [a for arg in cc for a in parse_addresses(arg)]
    bcc_list = [a for arg in bcc for a in parse_addresses(arg)]
    if not (to_list or cc_list or bcc_list):
        raise UsageError(
            "No recipients: put them after `--`, e.g. tuimail send -s Hi -- bob@example.com"
        )
    sender = _one_address(from_) if from_ else Address(account.display_name, account.address)
    if from_ and not sender.name and sender.addr.lower() in account.my_addresses():
        sender = Address(account.display_name, sender.addr)
    specs = [AttachmentSpec(path.name, _read_file(path)) for path in attachments]
    html = None
    if html_file is not None:
        try:
            html = _read_file(html_file).decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{html_file} is not UTF-8 HTML.") from None
    signature = account.signature.strip("\n")
    if signature:
        body = body.rstrip("\n") + "\n\n-- \n" + signature + "\n"
    msg = compose(
        from_=sender,
        to=to_list,
        cc=cc_list,
        bcc=bcc_list,
        subject=subject,
        body=body,
        attachments=specs,
        html=html,
    )
    return Prepared(
        message_bytes(msg),
        sender.addr,
        envelope_recipients(msg, bcc_list),
        str(msg["Message-ID"]),
    )


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror}.") from None


# ----------------------------------------------------------------------------- outbox


def _state_text(item: OutboxItem) -> str:
    if item.state == "queued" and item.next_attempt is not None:
        return f"queued, next try {_local_time(item.next_attempt)}"
    return item.state


def _item_json(item: OutboxItem) -> dict[str, object]:
    return {
        "id": item.id,
        "account": item.account,
        "state": item.state,
        "message_id": item.message_id,
        "subject": item.subject,
        "from": item.sender,
        "recipients": list(item.recipients),
        "attempts": item.attempts,
        "last_error": item.last_error,
        "next_attempt": item.next_attempt.isoformat() if item.next_attempt else None,
        "created": item.created.isoformat(),
    }


def _run_list(args: argparse.Namespace) -> int:
    store = open_store()
    try:
        items = store.outbox_items(args.account)
    finally:
        store.close()
    if args.json:
        for item in items:
            emit_json(_item_json(item))
        return ExitCode.OK
    if not items:
        say("The outbox is empty.")
        return ExitCode.OK
    for item in items:
        rcpts = ", ".join(item.recipients[:3]) + (
            f" (+{len(item.recipients) - 3})" if len(item.recipients) > 3 else ""
        )
        say(f"{item.id:>5}  {_local_time(item.created)}  {item.account}  {_state_text(item)}")
        say(f"       to {rcpts}: {item.subject or '(no subject)'}")
        if item.last_error:
            for line in item.last_error.splitlines()[:6]:
                say(f"       {line}")
    return ExitCode.OK


def _run_flush(args: argparse.Namespace) -> int:
    import asyncio

    config = load_config(args)
    account = args.flush_account or args.account
    accounts = [config.account(account).name] if account else None
    store = open_store()
    try:
        report = asyncio.run(
            _flush(store, config, accounts=accounts, force=args.force, ignore_schedule=args.now)
        )
    finally:
        store.close()
    return _report_flush(report, as_json=args.flush_json or args.json, quiet=args.quiet)


def _run_retry(args: argparse.Namespace) -> int:
    import asyncio

    config = load_config(args)
    store = open_store()
    try:
        known = {item.id for item in store.outbox_items()}
        missing = [i for i in args.ids if i not in known]
        if missing:
            raise NotFoundError(
                f"No outbox item {', '.join(map(str, missing))} (see `tuimail outbox`)."
            )
        report = asyncio.run(_flush(store, config, item_ids=args.ids, release=args.ids))
    finally:
        store.close()
    return _report_flush(report, as_json=args.flush_json or args.json, quiet=False, announce=True)


def _run_drop(args: argparse.Namespace) -> int:
    import asyncio

    from tuimail.account.sending import LOCK_NAME, OutboxLock

    store = open_store()
    lock = OutboxLock(store.root / LOCK_NAME)
    try:
        if not asyncio.run(lock.acquire(LOCK_TIMEOUT)):
            raise TuimailError("Another tuimail is sending right now; try again in a moment.")
        known = {item.id for item in store.outbox_items()}
        missing = [i for i in args.ids if i not in known]
        if missing:
            raise NotFoundError(
                f"No outbox item {', '.join(map(str, missing))} (see `tuimail outbox`)."
            )
        for item_id in args.ids:
            # Removes the row and its file: the store's way of finishing with an item.
            store.outbox_mark_sent(item_id)
    finally:
        lock.release()
        store.close()
    return ExitCode.OK


def _report_flush(
    report: FlushReport, *, as_json: bool, quiet: bool, announce: bool = False
) -> int:
    for warning in report.warnings:
        say(f"tuimail: {warning}", sys.stderr)
    if report.recovered:
        ids = ", ".join(str(i) for i in report.recovered)
        say(
            f"tuimail: outbox item(s) {ids} were being sent when tuimail stopped: they may "
            "have been delivered, so they are now uncertain and not resent on their own "
            "(`tuimail outbox retry ID` resends one).",
            sys.stderr,
        )
    sent = 0
    for outcome in report.outcomes:
        if as_json:
            emit_json(outcome.as_json())
        if outcome.status == "sent":
            sent += 1
            if announce and not as_json:
                say(f"sent #{outcome.item_id} {outcome.message_id}")
            continue
        needs_user = outcome.status in ("failed", "uncertain") or outcome.exit_code not in (
            ExitCode.QUEUED,
            ExitCode.OK,
        )
        if as_json or (quiet and not needs_user):
            continue
        say(f"tuimail: #{outcome.item_id} ({outcome.account}) {outcome.message_id}:", sys.stderr)
        _explain(outcome)
    if not as_json and not announce and sys.stdout.isatty():
        # Someone at a terminal, not cron: say what happened, and what did not.
        if sent:
            say(f"Sent {sent} message(s).")
        if report.waiting:
            from tuimail.account.sending import next_retry

            when = _local_time(next_retry(report.waiting))
            say(
                f"{len(report.waiting)} message(s) wait for their next try (from {when}); "
                "`tuimail outbox flush --now` sends them now."
            )
        elif not report.outcomes:
            say("Nothing to send.")
    return report.exit_code()
