"""A keyring backend for tests: a JSON file named by `TUIMAIL_TEST_KEYRING_FILE`.

Selected with `PYTHON_KEYRING_BACKEND=keyring_backend.TestKeyring` (tests/ is on the path;
the conftest also puts it on `PYTHONPATH` so a `tuimail` subprocess sees the same secrets).
The file is looked up on every call, so one backend instance follows each test's tmp dir.
Without the variable it keeps secrets in memory.  Never use it outside tests: it stores
passwords in the clear.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import ClassVar

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

ENV_FILE = "TUIMAIL_TEST_KEYRING_FILE"


class TestKeyring(KeyringBackend):
    __test__ = False

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring ships no stubs

    _lock = threading.Lock()
    _memory: ClassVar[dict[str, dict[str, str]]] = {}

    @staticmethod
    def _path() -> Path | None:
        value = os.environ.get(ENV_FILE)
        return Path(value) if value else None

    def _load(self) -> dict[str, dict[str, str]]:
        path = self._path()
        if path is None:
            return self._memory
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        return {str(k): {str(u): str(p) for u, p in v.items()} for k, v in data.items()}

    def _save(self, data: dict[str, dict[str, str]]) -> None:
        path = self._path()
        if path is None:
            type(self)._memory = data
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.chmod(0o600)
        os.replace(tmp, path)

    def get_password(self, service: str, username: str) -> str | None:
        with self._lock:
            return self._load().get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._lock:
            data = self._load()
            data.setdefault(service, {})[username] = password
            self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        with self._lock:
            data = self._load()
            try:
                del data[service][username]
            except KeyError:
                raise PasswordDeleteError("no such password") from None
            if not data[service]:
                del data[service]
            self._save(data)
