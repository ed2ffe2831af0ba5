"""The `tuimail` command line.

Each command lives in its own module with `register(subparsers)` and `run(args) -> int`.
Only the module of the command being run is imported, so `tuimail send` in a shell loop
never pays for the TUI, the IMAP library or the store it does not use.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Protocol

from tuimail import __version__
from tuimail.errors import ExitCode, TuimailError

# command -> module; the order is the order of `tuimail --help`.
COMMANDS: dict[str, str] = {
    "demo": "tuimail.cli.app_cmd",
    "sync": "tuimail.cli.sync_cmd",
    "folders": "tuimail.cli.read_cmds",
    "list": "tuimail.cli.read_cmds",
    "read": "tuimail.cli.read_cmds",
    "search": "tuimail.cli.read_cmds",
    "flag": "tuimail.cli.change_cmds",
    "move": "tuimail.cli.change_cmds",
    "delete": "tuimail.cli.change_cmds",
    "send": "tuimail.cli.send_cmd",
    "outbox": "tuimail.cli.send_cmd",
    "config": "tuimail.cli.config_cmds",
    "password": "tuimail.cli.config_cmds",
}

DESCRIPTION = """\
tuimail: an offline-first terminal mail client.

Run without a command to open the app on your accounts; `tuimail demo` opens it on a
built-in demo mailbox; `tuimail mailto:ADDR?subject=...` opens the composer (so tuimail
can be the system's mailto handler). Every command reads the local store; only `sync`, `send` and
`outbox flush` (and `--sync` on changes) talk to servers.
"""

EPILOG = """\
exit codes:
  0 ok    1 failure    2 bad usage or input    3 config problem    4 login/password
  5 TLS   6 network    7 protocol error        8 not found         9 uncertain delivery
  75 queued (will be retried; sendmail's EX_TEMPFAIL)

examples:
  tuimail config example > ~/.config/tuimail/config.toml   start a config
  tuimail password set work                                store a password in the keyring
  tuimail sync                                             download new mail
  tuimail list --unread --json | jq .subject               script over the store
  echo hi | tuimail send -s "Lunch?" -- friend@example.com send a one-liner
"""


class CommandModule(Protocol):
    def register(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _help_width() -> int:
    """The width argparse gives its help (`shutil.get_terminal_size().columns - 2`)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):  # no stdout, or not a terminal
            columns = 80
    return columns - 2


class _Parser(argparse.ArgumentParser):
    """argparse makes a help formatter at every add_argument (to check the metavar), and
    each one asks shutil for the terminal width: `import shutil` (which loads bz2 and lzma)
    costs ~3 ms at every start of `tuimail send`. The same width, without shutil."""

    def _get_formatter(self) -> argparse.HelpFormatter:
        factory: Callable[..., argparse.HelpFormatter] = self.formatter_class
        return factory(prog=self.prog, width=_help_width())


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _Parser(
        prog="tuimail",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tuimail {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $TUIMAIL_CONFIG or $XDG_CONFIG_HOME/tuimail/config.toml)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    seen: set[str] = set()
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        if module_name in seen:
            continue
        seen.add(module_name)
        module: CommandModule = importlib.import_module(module_name)
        module.register(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in argv, skipping global options, or None."""
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
            continue
        if arg == "--config":
            skip_next = True
            continue
        if arg.startswith("-"):
            continue
        return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _command_of(argv) != "send" or not gc.isenabled():
        return _main(argv)
    # `tuimail send` runs once per message (shell loops, git send-email, cron) and exits:
    # nearly every object its start-up creates (modules, classes, functions) lives to the
    # end, so the cycle collector's passes over them (~8 ms a run here) free nothing.
    # Reference counting still frees everything else.
    gc.disable()
    try:
        return _main(argv)
    finally:
        gc.enable()


def _main(argv: list[str]) -> int:
    mailto = next((a for a in argv if a.lower().startswith("mailto:")), None)
    if mailto is not None:
        argv.remove(mailto)
    command = _command_of(argv)
    parser = build_parser(only=command)
    args = parser.parse_args(argv)
    args.mailto = mailto
    module_name = COMMANDS.get(args.command or "demo", "tuimail.cli.app_cmd")
    module: CommandModule = importlib.import_module(module_name)
    try:
        return module.run(args)
    except TuimailError as exc:
        from tuimail.cli.output import report_error

        return report_error(exc)
    except KeyboardInterrupt:
        print("tuimail: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `tuimail list | head`: the reader went away; that is not an error.
        sys.stderr.close()
        return ExitCode.OK
