"""The headless core stays headless: the CLI's light commands never import the TUI stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys, contextlib, io
from tuimail.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main({argv!r})
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in
      ('textual', 'rich', 'imapclient', 'aiosmtplib', 'html2text', 'tuimail'))))
"""


def loaded_modules(argv: list[str]) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "argv",
    [["send", "--help"], ["--help"], ["config", "example"], ["list", "--help"], ["sync", "--help"]],
)
def test_cli_never_imports_textual(argv: list[str]) -> None:
    modules = loaded_modules(argv)
    assert not {m for m in modules if m.startswith(("textual", "rich"))}, sorted(modules)


def test_send_help_stays_lean() -> None:
    modules = loaded_modules(["send", "--help"])
    assert not {m for m in modules if m.startswith(("imapclient", "tuimail.ui", "tuimail.store"))}


def test_core_packages_do_not_import_textual() -> None:
    code = (
        "import sys, tuimail.store, tuimail.mail.parse, tuimail.mail.render, tuimail.config, "
        "tuimail.account.worker; "
        "print(any(m.split('.')[0] in ('textual', 'rich') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
