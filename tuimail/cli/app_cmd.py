"""`tuimail` (the app), `tuimail demo` and `tuimail mailto:...`."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub.add_parser(
        "demo",
        help="open the app on a built-in demo mailbox (no network, no config)",
        description="Open the app on a generated demo mailbox: a few folders, threads, HTML "
        "mail, attachments, a phishing-looking message. Nothing is sent or fetched.",
    )


def run(args: argparse.Namespace) -> int:
    from tuimail import locations
    from tuimail.cli.common import load_config

    demo = args.command == "demo"
    hub = None
    if demo:
        from tuimail.config import Config

        root = locations.ensure_private_dir(locations.demo_store_dir())
        config = Config()
    else:
        from tuimail.account.hub import Hub

        config = load_config(args)
        root = locations.ensure_private_dir(locations.store_dir())
        hub = Hub(config, root)
    from tuimail.ui.app import run_app

    return run_app(config, root, demo=demo, hub=hub, mailto=getattr(args, "mailto", None))
