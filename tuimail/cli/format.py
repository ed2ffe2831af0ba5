"""How messages and folders look on the command line: text lines and JSON objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tuimail.mail.sanitize import sanitize_line
from tuimail.models import Address, MessageSummary


def flag_letters(summary: MessageSummary) -> str:
    f = summary.flags
    return (
        ("" if f.seen else "N")
        + ("F" if f.flagged else "")
        + ("A" if f.answered else "")
        + ("D" if f.draft else "")
        + ("T" if f.deleted else "")
    )


def local_date(value: datetime | None) -> str:
    if value is None:
        return "????-??-?? ??:??"
    return value.astimezone().strftime("%Y-%m-%d %H:%M")


def address_text(addresses: tuple[Address, ...]) -> str:
    return ", ".join(a.name or a.addr for a in addresses)


def message_line(summary: MessageSummary) -> str:
    """One sanitized line: id, date, flags, sender, subject."""
    env = summary.envelope
    sender = sanitize_line(address_text(env.from_))[:24]
    subject = sanitize_line(env.subject) or "(no subject)"
    attach = "@" if summary.has_attachments else " "
    flags = flag_letters(summary)
    return f"{summary.id:>7}  {local_date(env.date)}  {flags:<3}{attach} {sender:<24}  {subject}"


def _addresses_json(addresses: tuple[Address, ...]) -> list[dict[str, str]]:
    return [{"name": a.name, "address": a.addr} for a in addresses]


def message_json(summary: MessageSummary) -> dict[str, Any]:
    """The JSON object of one message; keys are a stable scripting interface (see README)."""
    env = summary.envelope
    return {
        "id": summary.id,
        "account": summary.account,
        "folder": summary.folder,
        "uid": summary.uid,
        "date": env.date.isoformat() if env.date else None,
        "from": _addresses_json(env.from_),
        "to": _addresses_json(env.to),
        "cc": _addresses_json(env.cc),
        "subject": env.subject,
        "flags": summary.flags.names(),
        "size": summary.size,
        "message_id": env.message_id,
        "has_attachments": summary.has_attachments,
        "preview": summary.preview,
        "thread": summary.thread_id,
        "body_local": summary.has_body,
    }
