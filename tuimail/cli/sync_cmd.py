"""`tuimail sync`: bring the store up to date with the servers, one worker per account."""

from __future__ import annotations

import argparse
import sys
import threading
from typing import TYPE_CHECKING

from tuimail.cli.common import add_json_flag, load_config
from tuimail.cli.output import Progress, emit_json, report_error, say
from tuimail.errors import ExitCode, TuimailError

if TYPE_CHECKING:
    from tuimail.account.worker import Event, Reply


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sync",
        help="download new mail and replay local changes",
        description="Sync accounts with their servers: replay local changes (flags, moves, "
        "deletes), then fetch what changed. Shows a progress bar on a terminal, nothing "
        "when run from cron except errors and (without --quiet) a summary.",
        epilog="examples:\n  tuimail sync\n  tuimail sync work --folder INBOX\n"
        "  */5 * * * * tuimail sync --quiet   (crontab)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("accounts", nargs="*", metavar="ACCOUNT", help="accounts to sync (default: all)")
    p.add_argument("--folder", action="append", metavar="F", help="only this folder (repeatable)")
    p.add_argument("--quiet", "-q", action="store_true", help="print only errors")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from tuimail import locations
    from tuimail.account.worker import (
        ErrorEvent,
        FolderSyncedEvent,
        ProgressEvent,
        SyncRequest,
        run_requests,
    )

    config = load_config(args)
    names = args.accounts or [a.name for a in config.accounts.values() if a.incoming is not None]
    accounts = [config.account(n) for n in names]
    root = locations.ensure_private_dir(locations.store_dir())
    progress = Progress("sync", enabled=None if not (args.json or args.quiet) else False)
    lock = threading.Lock()

    def on_event(event: Event) -> None:
        with lock:
            if isinstance(event, ProgressEvent):
                p = event.progress
                progress.update(p.done, p.total, f"{p.account}/{p.folder} {p.stage}")
            elif isinstance(event, FolderSyncedEvent) and args.json:
                r = event.result
                emit_json(
                    {
                        "event": "folder",
                        "account": event.account,
                        "folder": r.folder,
                        "new": r.new,
                        "changed": r.changed,
                        "removed": r.removed,
                        "bodies": r.bodies,
                        "warnings": list(r.warnings),
                    }
                )
            elif isinstance(event, ErrorEvent) and event.request_id is None:
                progress.finish()
                report_error(event.error)

    results: dict[str, Reply] = {}

    def sync_one(name: str) -> None:
        folders = tuple(args.folder) if args.folder else None
        replies = run_requests(config.account(name), root, [SyncRequest(folders=folders)], on_event)
        if replies:
            results[name] = replies[0]

    threads = [
        threading.Thread(target=sync_one, args=(a.name,), name=f"sync-{a.name}") for a in accounts
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    progress.finish()

    code = ExitCode.OK
    for account in accounts:
        reply = results.get(account.name)
        if reply is None:
            error = TuimailError(f"Account {account.name}: the sync did not finish.")
            code = ExitCode(report_error(error))
            continue
        if not reply.ok:
            assert reply.error is not None
            err = reply.error
            if args.json:
                emit_json(
                    {
                        "event": "error",
                        "account": account.name,
                        "title": err.title,
                        "message": err.message,
                        "exit_code": int(err.exit_code),
                    }
                )
            report_error(type(err)(f"{account.name}: {err.message}", err.title))
            code = code or err.exit_code
            continue
        summary = reply.result
        warnings = [w for f in summary.folders for w in f.warnings] + list(summary.warnings)
        if args.json:
            emit_json(
                {
                    "event": "summary",
                    "account": account.name,
                    "new": summary.new,
                    "pushed": summary.pushed,
                    "folders": len(summary.folders),
                    "warnings": warnings,
                }
            )
        elif not args.quiet:
            changed = sum(f.changed for f in summary.folders)
            removed = sum(f.removed for f in summary.folders)
            say(
                f"{account.name}: {summary.new} new, {changed} changed, {removed} removed, "
                f"{summary.pushed} local change(s) sent, {len(summary.folders)} folder(s)"
            )
        for warning in warnings:
            say(f"{account.name}: warning: {warning}", sys.stderr)
    return code
