"""`tuimail config ...` and `tuimail password set`."""

from __future__ import annotations

import argparse
import getpass
import sys

from tuimail import config as config_mod
from tuimail.cli.common import config_path, load_config
from tuimail.errors import ExitCode, UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cfg = sub.add_parser(
        "config",
        help="check or create the config file",
        description="Check the config file, print a commented example, or show where it is.",
    )
    cfg_sub = cfg.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    cfg_sub.add_parser("check", help="report every problem in the config file (exit 3 if any)")
    cfg_sub.add_parser("example", help="print a commented example config")
    cfg_sub.add_parser("path", help="print the config file's path")

    pw = sub.add_parser(
        "password",
        help="store a password in the system keyring",
        description="Store an account's password in the system keyring (prompted, not echoed). "
        "On a server with no keyring, set password_command in the config instead.",
    )
    pw_sub = pw.add_subparsers(dest="password_action", metavar="ACTION", required=True)
    pw_set = pw_sub.add_parser("set", help="prompt for a password and store it")
    pw_set.add_argument("account", help="account name, as in [accounts.NAME]")
    pw_set.add_argument(
        "--outgoing",
        action="store_true",
        help="the SMTP password, when it differs from the incoming one",
    )
    pw_set.add_argument(
        "--stdin", action="store_true", help="read the password from standard input (for scripts)"
    )


def run(args: argparse.Namespace) -> int:
    if args.command == "password":
        return _password_set(args)
    if args.config_action == "example":
        sys.stdout.write(config_mod.example())
        return ExitCode.OK
    path = config_path(args)
    if args.config_action == "path":
        print(path)
        return ExitCode.OK
    config, problems = config_mod.load(path)
    if problems:
        print(
            f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}:", file=sys.stderr
        )
        for problem in problems:
            print("  " + str(problem).replace("\n", "\n  "), file=sys.stderr)
        return ExitCode.CONFIG
    names = ", ".join(config.accounts) or "none"
    print(f"{path}: ok ({len(config.accounts)} account(s): {names})")
    return ExitCode.OK


def _password_set(args: argparse.Namespace) -> int:
    from tuimail import secrets

    config = load_config(args)
    account = config.account(args.account)
    direction: secrets.Direction = "outgoing" if args.outgoing else "incoming"
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise UsageError(
                "No terminal to prompt on; use --stdin to read the password from a pipe."
            )
        password = getpass.getpass(f"Password for {account.name} ({direction}): ")
    if not password:
        raise UsageError("Empty password; nothing stored.")
    secrets.set_password(account.name, direction, password)
    print(f"Stored the {direction} password for {account.name} in the keyring.")
    return ExitCode.OK
