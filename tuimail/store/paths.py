"""Safe directory names for accounts and folders.

Folder and account names come from servers and config: they may hold `/`, `..`, NUL,
control characters, shell metacharacters or be thousands of bytes long. `dir_name` maps any
name to one path component that can never escape its parent, injectively (two different
names never share a directory), and readably for the common case (`INBOX`, `Sent Items`).
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
from pathlib import Path

from tuimail.errors import StoreError

# Kept verbatim (ASCII); everything else ASCII is %XX-encoded. `%` and `#` are always encoded,
# so a `#` can only come from the hash suffix of a shortened name (keeps the map injective).
_SAFE_ASCII = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.,+=@ ")
# Names Windows refuses whatever the extension (matters on shared/SMB data dirs).
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{i}" for i in range(10)]
    + [f"LPT{i}" for i in range(10)]
)
MAX_BYTES = 120  # well below NAME_MAX (255) so cur/tmp/new and suffixes always fit
_HASH_CHARS = 20


def _encode_char(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


def _keep(ch: str) -> bool:
    if ch in _SAFE_ASCII:
        return True
    if ord(ch) < 0x80:
        return False
    # Non-ASCII letters, digits, marks and symbols are fine; separators, controls, format
    # characters (bidi overrides), surrogates and private-use are not.
    return unicodedata.category(ch)[0] in "LMNPS" and ch.isprintable()


def dir_name(name: str) -> str:
    """One safe, non-empty path component for `name` (a folder or account name)."""
    out = [ch if _keep(ch) else _encode_char(ch) for ch in name]
    if not out:
        return "%"  # the empty name: "%" alone is never produced by encoding
    # A leading dot would make it hidden (and Maildir++ reads it as a subfolder); "." and
    # ".." are the traversal cases. Trailing dots/spaces are stripped by Windows.
    if out[0] in (".", " "):
        out[0] = _encode_char(out[0])
    if out[-1] in (".", " "):
        out[-1] = _encode_char(out[-1])
    encoded = "".join(out)
    stem = encoded.split(".", 1)[0].rstrip(" ").upper()
    if stem in _WINDOWS_RESERVED:
        encoded = _encode_char(encoded[0]) + encoded[1:]
    if len(encoded.encode("utf-8")) <= MAX_BYTES:
        return encoded
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    budget = MAX_BYTES - _HASH_CHARS - 1
    prefix = encoded.encode("utf-8")[:budget].decode("utf-8", "ignore")
    # Never cut a %XX escape in half: drop a partial one at the end.
    cut = prefix.rfind("%")
    if cut != -1 and len(prefix) - cut < 3:
        prefix = prefix[:cut]
    if prefix.endswith((".", " ")):
        prefix = prefix[:-1] + _encode_char(prefix[-1])
        prefix = prefix.encode("utf-8")[:budget].decode("utf-8", "ignore")
        cut = prefix.rfind("%")
        if cut != -1 and len(prefix) - cut < 3:
            prefix = prefix[:cut]
    return f"{prefix}#{digest}"


def checked_path(root: Path, *parts: str) -> Path:
    """`root/parts...`, refusing anything that would resolve outside `root`."""
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\0" in part:
            raise StoreError(f"Refusing unsafe path component {part!r}.")
    path = root.joinpath(*parts)
    base = root.resolve()
    resolved = path.resolve()
    if not resolved.is_relative_to(base) or resolved == base:
        raise StoreError(f"Refusing a path outside the store: {path}")
    return path


def fsync_dir(path: Path) -> None:
    """Make a rename/link/unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
