"""Themes: TOML files turned into Textual `Theme`s, and the 16-colour default.

A theme file:

    name = "tuimail-dark"
    dark = true
    ansi = false                  # true: use the terminal's own 16-colour palette
    [colors]                      # primary is required; the rest fall back to Textual's
    primary = "#4c8bf5"           #   derivations
    secondary = "..."  background = "..."  surface = "..."  panel = "..."  accent = "..."
    warning = "..."  error = "..."  success = "..."  foreground = "..."
    [variables]                   # app variables (see APP_VARIABLES) and Textual's own
    unread-color = "#ffffff"

Shipped themes are read from the installed package (`tuimail/themes`, put there by the wheel
build) or, in a source checkout, from the repository's `themes/`; user themes from
`$XDG_CONFIG_HOME/tuimail/themes/` override them by name. A broken file is skipped and
reported, never fatal.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

from tuimail import locations

DEFAULT_THEME = "tuimail-dark"
DEFAULT_ANSI_THEME = "tuimail-ansi-dark"

COLOR_KEYS = (
    "primary",
    "secondary",
    "background",
    "surface",
    "panel",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "boost",
)

# Variables the app's CSS uses beyond Textual's; each theme may set them, and any it leaves
# out are derived from the theme's own colours (`derive_variables`).
APP_VARIABLES = (
    "unread-color",
    "flagged-color",
    "marked-background",
    "thread-color",
    "header-label-color",
    "quote-color",
    "sign-color",
    "status-background",
    "status-foreground",
)

_PERCENT = re.compile(r"^(?P<color>.+?)\s+\d{1,3}%$")
_STYLE_WORDS = frozenset(
    [
        "bold",
        "italic",
        "underline",
        "reverse",
        "strike",
        "dim",
        "blink",
        "none",
        "not",
        "b",
        "i",
        "u",
        "r",
        "s",
        "d",
    ]
)


def derive_variables(variables: Mapping[str, str]) -> dict[str, str]:
    """`variables` (a theme's generated CSS variables) plus defaults for `APP_VARIABLES`.

    Textual's CSS cannot make one variable refer to another, so defaults are copied values.
    """
    get = variables.get
    defaults = {
        "unread-color": get("foreground", "ansi_default"),
        "flagged-color": get("text-warning", get("warning", "ansi_yellow")),
        "marked-background": get("secondary-muted", "ansi_bright_black"),
        "thread-color": get("text-muted", "ansi_default"),
        "header-label-color": get("text-primary", get("primary", "ansi_blue")),
        "quote-color": get("text-success", get("success", "ansi_green")),
        "sign-color": get("text-error", get("error", "ansi_red")),
        "status-background": get("panel", "ansi_default"),
        "status-foreground": get("foreground", "ansi_default"),
        # Textual generates these for truecolor themes only; its own CSS needs them always.
        "ansi-background": "transparent",
        "ansi-foreground": "transparent",
    }
    return {**defaults, **variables}


@dataclass(frozen=True, slots=True)
class ThemeProblem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _valid_value(key: str, value: str) -> bool:
    if key.endswith("text-style"):
        return all(word in _STYLE_WORDS for word in value.split())
    match = _PERCENT.match(value)
    color = match.group("color") if match else value
    if color == "auto" and match:
        return True
    try:
        Color.parse(color)
    except ColorParseError:
        return False
    return True


def parse_theme(data: Mapping[str, object], path: Path) -> Theme:
    """One theme from a parsed TOML document; raises ValueError saying what is wrong."""
    unknown = set(data) - {"name", "dark", "ansi", "colors", "variables", "description"}
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
        raise ValueError("`name` must be lower-case letters, digits, - or _")
    dark = data.get("dark", True)
    ansi = data.get("ansi", False)
    if not isinstance(dark, bool) or not isinstance(ansi, bool):
        raise ValueError("`dark` and `ansi` must be true or false")
    colors = data.get("colors", {})
    variables = data.get("variables", {})
    if not isinstance(colors, dict) or not isinstance(variables, dict):
        raise ValueError("[colors] and [variables] must be tables")
    bad = set(colors) - set(COLOR_KEYS)
    if bad:
        raise ValueError(f"unknown colours: {', '.join(sorted(bad))}")
    if "primary" not in colors:
        raise ValueError("[colors] needs at least `primary`")
    for key, value in [*colors.items(), *variables.items()]:
        if not isinstance(value, str) or not _valid_value(str(key), value):
            raise ValueError(f"{key} = {value!r} is not a colour Textual understands")
        if not re.fullmatch(r"[a-z][a-z0-9-]*", str(key)):
            raise ValueError(f"bad variable name {key!r}")
    return Theme(
        name=name,
        dark=dark,
        ansi=ansi,
        variables={str(k): str(v) for k, v in variables.items()},
        **{str(k): str(v) for k, v in colors.items()},  # type: ignore[arg-type]
    )


def load_theme_file(path: Path) -> Theme:
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    return parse_theme(data, path)


def shipped_theme_dirs() -> list[Path]:
    """Where the shipped themes are: inside the installed package, else the source tree."""
    dirs: list[Path] = []
    try:
        packaged = resources.files("tuimail") / "themes"
        if packaged.is_dir():
            dirs.append(Path(str(packaged)))
    except (ModuleNotFoundError, OSError):  # pragma: no cover - odd installs
        pass
    if not dirs:
        checkout = Path(__file__).resolve().parents[2] / "themes"
        if checkout.is_dir():
            dirs.append(checkout)
    return dirs


def load_themes(
    dirs: Iterable[Path] | None = None,
) -> tuple[dict[str, Theme], list[ThemeProblem]]:
    """All themes from `dirs` (default: shipped, then the user's), later files winning."""
    if dirs is None:
        dirs = [*shipped_theme_dirs(), locations.user_themes_dir()]
    themes: dict[str, Theme] = {}
    problems: list[ThemeProblem] = []
    for directory in dirs:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
                problems.append(ThemeProblem(path, str(exc)))
                continue
            themes[theme.name] = theme
    return themes, problems


def is_16_colour(environ: Mapping[str, str]) -> bool:
    """True where only the 16 ANSI colours can be trusted (TERM=xterm, linux, screen...).

    Truecolor needs COLORTERM to say so; a `*-256color` TERM is fine too (Rich downsamples).
    """
    if environ.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return False
    term = environ.get("TERM", "")
    return "256color" not in term and "direct" not in term


def pick_theme(configured: str | None, available: Iterable[str], environ: Mapping[str, str]) -> str:
    """The theme to start with: the configured one if it exists, else a terminal-fit default."""
    names = set(available)
    if configured and configured in names:
        return configured
    if is_16_colour(environ):
        return DEFAULT_ANSI_THEME if DEFAULT_ANSI_THEME in names else "ansi-dark"
    return DEFAULT_THEME if DEFAULT_THEME in names else "textual-dark"
