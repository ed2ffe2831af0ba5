"""UI test fixtures: a fixed terminal, and `async def` tests run on their own event loop."""

from __future__ import annotations

import asyncio
import inspect
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

UI_TESTS = Path(__file__).resolve().parent
if str(UI_TESTS) not in sys.path:
    sys.path.insert(0, str(UI_TESTS))  # for `ui_support` (tests are imported with importlib)


@pytest.fixture(autouse=True)
def truecolor_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A known terminal, so the default theme does not depend on where tests run.

    (XDG dirs are isolated by the autouse fixture in tests/conftest.py.)
    """
    monkeypatch.setenv("COLORTERM", "truecolor")
    monkeypatch.setenv("TERM", "xterm-256color")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests on a fresh event loop (no pytest-asyncio needed for Pilot)."""
    func = pyfuncitem.obj
    if not inspect.iscoroutinefunction(func):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(func(**kwargs))
    return True


# A small demo mailbox, built once per session and copied for each test that changes it.
DEMO_NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tuimail.demo import build_demo_store

    root = tmp_path_factory.mktemp("demo-template")
    build_demo_store(root, n_messages=400, now=DEMO_NOW)
    return root


@pytest.fixture
def demo_root(
    demo_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A private copy of the demo store; the UI's clock pinned to the demo's "now", in UTC."""
    from tuimail.ui import format as fmt

    root = tmp_path / "demo"
    shutil.copytree(demo_template, root)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(fmt, "now", lambda: DEMO_NOW)
    yield root
    time.tzset()
