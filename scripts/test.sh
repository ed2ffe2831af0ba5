#!/usr/bin/env bash
# The test command: ./scripts/test.sh [pytest args...]
#
# On a fresh Debian machine with Python 3.11+ it installs what the tests need (Dovecot's
# IMAP/POP3/LMTP packages, a .venv with the project and its test extras), then runs, stopping
# at the first failure: ruff check, ruff format --check, mypy, lint-imports, pytest.
# Extra arguments go to pytest (e.g. ./scripts/test.sh -k smtp tests/integration).
# A second run skips the installs. PYTHON=python3.12 picks the interpreter for a new .venv.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PYTHON=${PYTHON:-python3}

say() { printf '\n==> %s\n' "$*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

# ------------------------------------------------------------------ Debian packages

POLICY=/usr/sbin/policy-rc.d
MADE_POLICY=0
cleanup() {
    if [ "$MADE_POLICY" = 1 ]; then
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}
trap cleanup EXIT

APT_UPDATED=0
apt_install() {
    # Packages normally start their system daemon; policy-rc.d exiting 101 forbids that
    # (the tests run their own Dovecot on free ports, so one already running is harmless).
    if [ ! -e "$POLICY" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
        "${SUDO[@]}" chmod 755 "$POLICY"
        MADE_POLICY=1
    fi
    if [ "$APT_UPDATED" = 0 ]; then
        "${SUDO[@]}" apt-get update -qq
        APT_UPDATED=1
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@"
    cleanup
    MADE_POLICY=0
}

missing_debs() {
    local pkg
    for pkg in "$@"; do
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" != installed ]; then
            printf '%s ' "$pkg"
        fi
    done
}

need=$(missing_debs dovecot-imapd dovecot-pop3d dovecot-lmtpd openssl)
if [ -n "$need" ]; then
    say "installing Debian packages: $need"
    # shellcheck disable=SC2086  # word splitting wanted: one package per word
    apt_install $need
fi

# ------------------------------------------------------------------ Python environment

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: $PYTHON is missing or older than 3.11 (set PYTHON=...)" >&2
    exit 1
fi

if [ -e "$VENV" ] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
    say "removing a broken .venv"
    rm -rf "$VENV"
fi
if [ ! -e "$VENV" ]; then
    say "creating .venv with $("$PYTHON" --version)"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        # Debian splits venv/ensurepip out of python3.
        apt_install "python3-venv"
        "$PYTHON" -m venv "$VENV"
    fi
fi

# Reinstall only when the dependencies may have changed.
STAMP=$VENV/.tuimail-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    say "installing tuimail and its test dependencies into .venv"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e '.[test]'
    echo "$want" >"$STAMP"
fi

export PATH="$VENV/bin:$PATH"

# ------------------------------------------------------------------ checks

say "ruff check"
ruff check .
say "ruff format --check"
ruff format --check .
say "mypy"
mypy
say "lint-imports"
lint-imports
say "pytest $*"
set +e
python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
