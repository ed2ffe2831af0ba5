"""Helpers shared by the commands: loading the config, opening the store."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tuimail import config as config_mod
from tuimail import locations
from tuimail.errors import ConfigError

if TYPE_CHECKING:
    from tuimail.store import Store


def config_path(args: argparse.Namespace) -> Path:
    return Path(args.config) if getattr(args, "config", None) else locations.config_file()


def load_config(args: argparse.Namespace) -> config_mod.Config:
    """The validated config; a ConfigError lists every problem with a hint."""
    config, problems = config_mod.load(config_path(args))
    if problems:
        raise ConfigError(
            "\n".join(str(p) for p in problems) + "\nRun `tuimail config check` after fixing it.",
        )
    return config


def open_store() -> Store:
    from tuimail.store import Store

    return Store.open(locations.ensure_private_dir(locations.store_dir()))


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object per line")
