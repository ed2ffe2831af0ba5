"""Autosaved drafts of the composer: JSON files that survive a crash (no Textual here).

One file per message being written, in `locations.drafts_dir()`, written atomically
(temporary file, fsync, rename) and readable only by the user. Attachments are kept as
paths, not contents; a forward's attachments come back from its original message.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tuimail import locations

VERSION = 1


@dataclass(slots=True)
class SavedDraft:
    account: str = ""
    to: str = ""  # as typed: addresses are validated only when sending
    cc: str = ""
    bcc: str = ""
    subject: str = ""
    body: str = ""
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)
    attachment_paths: list[str] = field(default_factory=list)
    kind: str = "new"  # new | reply | reply_all | forward
    source_id: int | None = None  # the message replied to or forwarded (local id)
    saved: str = ""  # ISO time of the last save
    draft_id: str = field(default_factory=lambda: secrets.token_hex(8))


def drafts_dir() -> Path:
    return locations.drafts_dir()


def _path(draft_id: str, directory: Path) -> Path:
    if not draft_id.isalnum():  # ids are ours (hex); anything else is not a draft file
        raise ValueError(f"bad draft id {draft_id!r}")
    return directory / f"{draft_id}.json"


def save(draft: SavedDraft, directory: Path | None = None) -> Path:
    directory = locations.ensure_private_dir(directory or drafts_dir())
    draft.saved = datetime.now(UTC).isoformat(timespec="seconds")
    path = _path(draft.draft_id, directory)
    tmp = path.with_suffix(".tmp")
    data = json.dumps({"version": VERSION, **asdict(draft)}, ensure_ascii=False, indent=1)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def load_all(directory: Path | None = None) -> list[SavedDraft]:
    """Every readable draft, newest first; unreadable files are left alone."""
    directory = directory or drafts_dir()
    if not directory.is_dir():
        return []
    drafts: list[SavedDraft] = []
    known = set(SavedDraft.__dataclass_fields__)
    for path in directory.glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("version") != VERSION:
            continue
        values = {k: v for k, v in data.items() if k in known}
        try:
            draft = SavedDraft(**values)
            _path(draft.draft_id, directory)
        except (TypeError, ValueError):
            continue
        drafts.append(draft)
    drafts.sort(key=lambda d: d.saved, reverse=True)
    return drafts


def discard(draft_id: str, directory: Path | None = None) -> None:
    path = _path(draft_id, directory or drafts_dir())
    path.unlink(missing_ok=True)
