"""Every filesystem path tuimail uses, derived from the XDG base directories, in one place."""

from __future__ import annotations

import os
from pathlib import Path

APP = "tuimail"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var, "")
    # The XDG spec says relative paths are invalid and must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def config_home() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / APP


def data_home() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / APP


def state_home() -> Path:
    return _xdg("XDG_STATE_HOME", ".local/state") / APP


def cache_home() -> Path:
    return _xdg("XDG_CACHE_HOME", ".cache") / APP


def config_file() -> Path:
    """The config file: `TUIMAIL_CONFIG` if set, else `$XDG_CONFIG_HOME/tuimail/config.toml`."""
    override = os.environ.get("TUIMAIL_CONFIG")
    if override:
        return Path(override)
    return config_home() / "config.toml"


def store_dir() -> Path:
    """Root of the local store: the SQLite index and one Maildir tree per account."""
    override = os.environ.get("TUIMAIL_DATA_DIR")
    if override:
        return Path(override)
    return data_home()


def demo_store_dir() -> Path:
    return cache_home() / "demo"


def log_file() -> Path:
    return state_home() / "tuimail.log"


def drafts_dir() -> Path:
    return store_dir() / "drafts"


def user_themes_dir() -> Path:
    return config_home() / "themes"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable only by the user: mail is private."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path
