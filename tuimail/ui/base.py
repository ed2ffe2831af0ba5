"""The app base every tuimail screen runs in: theme files registered, app variables derived."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from textual.app import App

from tuimail.ui.themes import ThemeProblem, derive_variables, load_themes, pick_theme

ReturnType = TypeVar("ReturnType")


class ThemedApp(App[ReturnType]):
    """An App with tuimail's themes registered and the app's CSS variables always defined."""

    def __init__(
        self,
        theme: str | None = None,
        environ: Mapping[str, str] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        themes, problems = load_themes()
        for item in themes.values():
            self.register_theme(item)
        self.theme_problems: list[ThemeProblem] = problems
        self.theme = pick_theme(
            theme, self.available_themes, os.environ if environ is None else environ
        )

    def get_css_variables(self) -> dict[str, str]:
        variables = derive_variables(super().get_css_variables())
        self.theme_variables = variables
        return variables
