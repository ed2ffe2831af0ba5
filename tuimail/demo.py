"""A built-in demo mailbox, generated locally: `tuimail demo` needs no network and no config.

Deterministic (seeded): two accounts with the usual folders, a few thousand RFC 5322 messages
with threads, HTML mail, attachments, non-ASCII names and subjects, unread and flagged ones, a
phishing attempt and a message full of terminal escapes (shown harmlessly). Written through
the normal `Store` API, so the app reads it exactly as it reads synced mail.

Headless: imports no Textual.
"""

from __future__ import annotations

import base64
import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.utils import format_datetime, formataddr
from pathlib import Path

from tuimail.models import Flags, FolderInfo, FolderRole
from tuimail.store.store import Store
from tuimail.store.types import NewMessage

DEMO_VERSION = 1
MARKER = "demo.json"
# Only these entries of the root are ever removed when rebuilding: never a user's files.
_STORE_ENTRIES = ("index.sqlite3", "index.sqlite3-wal", "index.sqlite3-shm", "maildir", "outbox")

ME_PERSONAL = ("Alex Morgan", "alex@example.org")
ME_WORK = ("Alex Morgan", "alex.morgan@acme.example")

PEOPLE = [
    ("Zoë Çelik", "zoe@celik.example"),
    ("山田 太郎", "taro.yamada@example.jp"),
    ("Ангелина Петрова", "angelina@example.ru"),
    ("Bjørn Ødegård", "bjorn@fjord.example"),
    ("Priya Raman", "priya@raman.example"),
    ("Mateo García", "mateo@garcia.example"),
    ("Chloé Dubois", "chloe.dubois@example.fr"),
    ("Nikos Papadopoulos", "nikos@example.gr"),
    ("Fatima Zahra", "fatima@example.ma"),
    ("Liam O'Connor", "liam@oconnor.example"),
    ("Sofia Rossi", "sofia.rossi@example.it"),
    ("Jonas Müller", "jonas.mueller@example.de"),
    ("Aisha Bello", "aisha@bello.example"),
    ("Kenji Sato", "kenji@sato.example"),
    ("Emma Johansson", "emma@johansson.example"),
    ("Oluwaseun Adeyemi", "seun@example.ng"),
]
COLLEAGUES = [
    ("Dana Whitfield", "dana.whitfield@acme.example"),
    ("Ravi Shankar", "ravi.shankar@acme.example"),
    ("Marta Kowalska", "marta.kowalska@acme.example"),
    ("Tom Becker", "tom.becker@acme.example"),
    ("Hana Novak", "hana.novak@acme.example"),
    ("Build Bot", "ci@acme.example"),
]
TOPICS = [
    "Quarterly planning",
    "Lunch on Friday?",
    "Trip to Lisbon",
    "Re-organising the garden",
    "Book club: next pick",
    "Release 2.4 checklist",
    "Database migration window",
    "Budget review",
    "Conference talk draft",
    "Apartment viewing",
    "Birthday present ideas",
    "Hiking this weekend",
    "Naming the new service",
    "Incident follow-up",
    "Onboarding notes",
    "Photos from the wedding",
    "Kaffee und Kuchen am Sonntag",
    "お花見の予定",
    "Встреча в четверг",
    "Διακοπές στην Κρήτη",
    "Café à Montmartre ☕",
    "Bike repair 🚲",
    "Code review: parser rewrite",
    "Flaky test in CI",
]
SENTENCES = [
    "I had a look at this yesterday and I think we are mostly there.",
    "Could you check the numbers before we send it out?",
    "Let me know what works for you.",
    "I attached the latest version, comments welcome.",
    "Sounds good to me, let's go with the second option.",
    "We should probably talk about this in person.",
    "The weather forecast looks great for the weekend.",
    "Thanks again for your help last week!",
    "I'm not sure the deadline is realistic, to be honest.",
    "Here is the summary of what we agreed on.",
    "Can we move this to Thursday afternoon?",
    "I found a few typos, nothing serious.",
    "Das klingt gut, ich bin dabei.",
    "素晴らしいですね。また連絡します。",
    "Отличная идея, давай так и сделаем.",
    "Merci beaucoup, à bientôt !",
]
LISTS = [
    ("python-dev", "Python-Dev", "python-dev@lists.example.org"),
    ("rust-users", "Rust users", "users@rust.lists.example"),
]
NEWSLETTERS = [
    ("The Weekly Byte", "news@weeklybyte.example", "This week in tech"),
    ("Trail Runner Monthly", "hello@trailrunner.example", "Routes, shoes and races"),
    ("Acme Bank", "statements@acmebank.example", "Your monthly statement is ready"),
]

# A 1x1 transparent PNG: a real image for the attachment list.
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6300010000050001 0d0a2db40000000049454e44ae426082".replace(" ", "")
)


def _header(value: str) -> str:
    if value.isascii():
        return value
    return Header(value, "utf-8", maxlinelen=76).encode()


def _address(person: tuple[str, str]) -> str:
    return formataddr(person, charset="utf-8")


@dataclass
class _Part:
    content_type: str  # "text/plain", "text/html", "image/png", ...
    data: str | bytes
    filename: str = ""

    def render(self) -> str:
        if isinstance(self.data, str) and not self.filename:
            text = self.data.replace("\r\n", "\n").replace("\n", "\r\n")
            return (
                f"Content-Type: {self.content_type}; charset=utf-8\r\n"
                f"Content-Transfer-Encoding: 8bit\r\n\r\n{text}"
            )
        data = self.data.encode() if isinstance(self.data, str) else self.data
        encoded = base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")
        if self.filename.isascii():
            disposition = f'attachment; filename="{self.filename}"'
        else:
            from urllib.parse import quote

            disposition = f"attachment; filename*=utf-8''{quote(self.filename, safe='')}"
        return (
            f"Content-Type: {self.content_type}\r\nContent-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: {disposition}\r\n\r\n{encoded}"
        )


class Mail:
    """Just enough of a MIME builder for the demo: headers, a body, alternatives, attachments."""

    def __init__(self) -> None:
        self.headers: list[tuple[str, str]] = []
        self.body: list[_Part] = []  # one part, or text + html alternatives
        self.attachments: list[_Part] = []
        self.text = ""  # the plain body, for quoting in replies

    def __setitem__(self, name: str, value: str) -> None:
        self.headers.append((name, value))

    def __getitem__(self, name: str) -> str:
        return next((v for k, v in self.headers if k == name), "")

    def set_content(self, text: str, subtype: str = "plain") -> None:
        self.body = [_Part(f"text/{subtype}", text)]
        if subtype == "plain":
            self.text = text

    def add_alternative(self, html: str, subtype: str = "html") -> None:
        self.body.append(_Part(f"text/{subtype}", html))

    def add_attachment(self, data: str | bytes, content_type: str, filename: str) -> None:
        self.attachments.append(_Part(content_type, data, filename))

    def as_bytes(self, boundary_seed: int) -> bytes:
        head = "".join(f"{k}: {v}\r\n" for k, v in self.headers) + "MIME-Version: 1.0\r\n"
        if len(self.body) > 1:
            alt = f"=_alt_{boundary_seed}"
            body_part = (
                f'Content-Type: multipart/alternative; boundary="{alt}"\r\n\r\n'
                + "".join(f"--{alt}\r\n{p.render()}\r\n" for p in self.body)
                + f"--{alt}--\r\n"
            )
        else:
            body_part = self.body[0].render()
        if self.attachments:
            mixed = f"=_mixed_{boundary_seed}"
            out = (
                f'{head}Content-Type: multipart/mixed; boundary="{mixed}"\r\n\r\n'
                f"--{mixed}\r\n{body_part}\r\n"
                + "".join(f"--{mixed}\r\n{p.render()}\r\n" for p in self.attachments)
                + f"--{mixed}--\r\n"
            )
        else:
            out = head + body_part
        return out.encode("utf-8")


@dataclass
class _Msg:
    folder: str  # account/folder
    raw: bytes
    flags: Flags
    when: datetime


@dataclass
class _Plan:
    messages: list[_Msg] = field(default_factory=list)


def _folders() -> dict[str, list[FolderInfo]]:
    common = [
        FolderInfo("INBOX", "/", FolderRole.INBOX),
        FolderInfo("Drafts", "/", FolderRole.DRAFTS),
        FolderInfo("Sent", "/", FolderRole.SENT),
        FolderInfo("Archive", "/", FolderRole.ARCHIVE),
        FolderInfo("Junk", "/", FolderRole.JUNK),
        FolderInfo("Trash", "/", FolderRole.TRASH),
    ]
    return {
        "personal": [*common, FolderInfo("Lists/python-dev"), FolderInfo("Lists/rust-users")],
        "work": [*common, FolderInfo("Projects/Apollo"), FolderInfo("Projects/Zephyr")],
    }


class _Generator:
    def __init__(self, n: int, now: datetime, seed: int) -> None:
        self.n = n
        self.now = now
        self.rng = random.Random(seed)
        self.plan = _Plan()
        self.counter = 0

    # ------------------------------------------------------------- helpers

    def _when(self, max_days: float = 730.0) -> datetime:
        # Skewed towards recent mail, as real mailboxes are.
        days = max_days * self.rng.random() ** 2.2
        return self.now - timedelta(days=days, seconds=self.rng.randrange(3600))

    def _msgid(self, domain: str) -> str:
        self.counter += 1
        return f"<demo.{self.counter}.{self.rng.randrange(10**9)}@{domain}>"

    def _body(self, sentences: int) -> str:
        return "\n\n".join(
            " ".join(self.rng.choice(SENTENCES) for _ in range(self.rng.randint(1, 3)))
            for _ in range(sentences)
        )

    def _flags(self, when: datetime, sent: bool = False) -> Flags:
        if sent:
            return Flags(seen=True)
        recent = (self.now - when) < timedelta(days=5)
        unread = self.rng.random() < (0.55 if recent else 0.04)
        return Flags(
            seen=not unread,
            flagged=self.rng.random() < 0.03,
            answered=not unread and self.rng.random() < 0.12,
        )

    def _add(self, folder: str, msg: Mail, flags: Flags, when: datetime) -> None:
        raw = msg.as_bytes(self.counter)
        self.plan.messages.append(_Msg(folder, raw, flags, when))

    def _base(
        self,
        sender: tuple[str, str],
        to: list[tuple[str, str]],
        subject: str,
        when: datetime,
        msgid: str,
        *,
        cc: list[tuple[str, str]] | None = None,
        parent: Mail | None = None,
    ) -> Mail:
        msg = Mail()
        msg["From"] = _address(sender)
        msg["To"] = ", ".join(_address(p) for p in to)
        if cc:
            msg["Cc"] = ", ".join(_address(p) for p in cc)
        msg["Subject"] = _header(subject)
        msg["Date"] = format_datetime(when)
        msg["Message-ID"] = msgid
        if parent is not None:
            pid = parent["Message-ID"]
            refs = parent["References"].split()
            msg["In-Reply-To"] = pid
            msg["References"] = " ".join([*refs[-8:], pid])
        return msg

    # ------------------------------------------------------------- kinds

    def thread(self, account: str) -> int:
        """A conversation of 1-8 messages between me and others; returns messages made."""
        work = account == "work"
        me = ME_WORK if work else ME_PERSONAL
        people = COLLEAGUES[:-1] if work else PEOPLE
        domain = me[1].split("@")[1]
        topic = self.rng.choice(TOPICS)
        others = self.rng.sample(people, k=self.rng.randint(1, 3))
        length = self.rng.choice([1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 8])
        when = self._when()
        parent: Mail | None = None
        sender_of_parent = ""
        made = 0
        folder_in = f"{account}/INBOX"
        if work and self.rng.random() < 0.3:
            folder_in = f"{account}/Projects/" + self.rng.choice(["Apollo", "Zephyr"])
        old = (self.now - when) > timedelta(days=240)
        if old and self.rng.random() < 0.6:
            folder_in = f"{account}/Archive"
        for i in range(length):
            mine = i % 2 == 1 if length > 1 else False
            sender = me if mine else self.rng.choice(others)
            recipients = others if mine else [me]
            cc = [p for p in others if p != sender][:2] if not mine and len(others) > 1 else None
            subject = topic if i == 0 else f"Re: {topic}"
            msg = self._base(
                sender, recipients, subject, when, self._msgid(domain), cc=cc, parent=parent
            )
            quote = ""
            if parent is not None:
                quote = f"\n\n{sender_of_parent} wrote:\n" + "\n".join(
                    "> " + line for line in parent.text.splitlines()[:8]
                )
            msg.set_content(
                f"Hi,\n\n{self._body(self.rng.randint(1, 4))}\n\n— {sender[0]}{quote}\n"
            )
            if self.rng.random() < 0.08:
                self._attach_some(msg)
            folder = f"{account}/Sent" if mine else folder_in
            self._add(folder, msg, self._flags(when, sent=mine), when)
            made += 1
            parent = msg
            sender_of_parent = sender[0]
            when += timedelta(minutes=self.rng.randint(5, 60 * 30))
            if when > self.now:  # the conversation has not gone further yet
                break
        return made

    def _attach_some(self, msg: Mail) -> None:
        kind = self.rng.randrange(4)
        if kind == 0:
            msg.add_attachment(
                b"%PDF-1.4\n% demo\n" + self.rng.randbytes(3000),
                "application/pdf",
                "Q3 report – final.pdf",
            )
        elif kind == 1:
            msg.add_attachment(_PNG, "image/png", "photo.png")
        elif kind == 2:
            msg.add_attachment(
                "date,amount\n2024-01-01,12.50\n2024-02-01,9.99\n", "text/csv", "expenses.csv"
            )
        else:
            msg.add_attachment(
                "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nSUMMARY:Meeting\nEND:VEVENT\n"
                "END:VCALENDAR\n",
                "text/calendar",
                "invite.ics",
            )

    def list_post(self) -> None:
        slug, title, addr = self.rng.choice(LISTS)
        when = self._when(365)
        sender = self.rng.choice(PEOPLE)
        topic = self.rng.choice(
            [
                "Proposal: faster startup",
                "Release candidate 2",
                "Typing question",
                "Unicode normalisation",
                "Packaging woes",
                "Build fails on ARM",
            ]
        )
        msg = self._base(
            sender, [(title, addr)], f"[{title}] {topic}", when, self._msgid("lists.example.org")
        )
        msg["List-Id"] = f"<{slug}.lists.example.org>"
        msg.set_content(self._body(self.rng.randint(2, 5)) + "\n\n-- \nlist footer\n")
        flags = Flags(seen=self.rng.random() < 0.7)
        self._add(f"personal/Lists/{slug}", msg, flags, when)

    def newsletter(self) -> None:
        name, addr, title = self.rng.choice(NEWSLETTERS)
        when = self._when(400)
        msg = self._base((name, addr), [ME_PERSONAL], title, when, self._msgid(addr.split("@")[1]))
        items = "".join(
            f'<li><a href="https://{addr.split("@")[1]}/story/{self.rng.randrange(999)}">'
            f"{self.rng.choice(SENTENCES)}</a></li>"
            for _ in range(4)
        )
        html = (
            f"<html><body><h1>{title}</h1>"
            f'<p><img src="https://{addr.split("@")[1]}/track.gif" alt="banner"></p>'
            f"<ul>{items}</ul>"
            f"<p><b>Bold</b> and <i>italic</i> text, a table:</p>"
            "<table><tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td>3.50</td></tr>"
            "</table>"
            f'<p><a href="https://{addr.split("@")[1]}/unsubscribe">Unsubscribe</a></p>'
            "</body></html>"
        )
        if self.rng.random() < 0.5:
            msg.set_content(f"{title}\n\nView this email in your browser.\n")
            msg.add_alternative(html, subtype="html")
        else:
            msg.set_content(html, subtype="html")
        self._add("personal/INBOX", msg, Flags(seen=self.rng.random() < 0.8), when)

    def ci_mail(self) -> None:
        when = self._when(120)
        ok = self.rng.random() < 0.8
        build = self.rng.randrange(1000, 9999)
        subject = f"[CI] Build #{build} {'passed' if ok else 'FAILED'} on main"
        msg = self._base(COLLEAGUES[-1], [ME_WORK], subject, when, self._msgid("acme.example"))
        msg.set_content(
            f"Pipeline #{build}: {'success' if ok else 'failure'}\n\n"
            + (
                "All 1,204 tests passed.\n"
                if ok
                else "3 tests failed:\n  test_parse_dates\n"
                "  test_outbox_retry\n  test_unicode_folders\n"
            )
        )
        self._add("work/INBOX", msg, Flags(seen=ok or self.rng.random() < 0.5), when)

    def specials(self) -> int:
        """The hand-written ones that show what tuimail does about hostile mail."""
        now = self.now
        # A phishing attempt: look-alike domain, display name claiming an address, a link
        # whose text shows one host while the target is another, Reply-To elsewhere.
        when = now - timedelta(hours=3)
        msg = self._base(
            ("PayPal Security <service@paypal.com>", "security@paypa1-verify.example"),
            [ME_PERSONAL],
            "Your account has been limited – action required",
            when,
            self._msgid("paypa1-verify.example"),
        )
        msg["Reply-To"] = "support@account-check.example"
        msg.set_content(
            "Dear customer,\n\nWe noticed unusual activity. Verify your account within 24 hours"
            " at https://www.paypal.com/verify or it will be closed.\n"
        )
        msg.add_alternative(
            "<p>Dear customer,</p><p>We noticed unusual activity on your account.</p>"
            '<p><a href="http://paypa1-verify.example/login?id=83721">'
            "https://www.paypal.com/verify</a></p>"
            '<form action="http://paypa1-verify.example/steal"><input type="password" '
            'name="pw"></form><p>PayPal</p>',
            subtype="html",
        )
        self._add("personal/INBOX", msg, Flags(), when)
        # Terminal escapes and markup in every field: shown as text, never interpreted.
        when = now - timedelta(hours=5)
        msg = Mail()
        # Raw ESC/BEL in headers (as a hostile server would send them) and an encoded word.
        msg["From"] = '"Mallory \x1b[31m[b]Admin[/b]" <mallory@evil.example>'
        msg["To"] = _address(ME_PERSONAL)
        msg["Subject"] = (
            "Escapes: \x1b]0;pwned\x07 \x1b[2J [@click=app.quit]click me[/] "
            + _header("\u202etxt.exe")
        )
        msg["Date"] = format_datetime(when)
        msg["Message-ID"] = self._msgid("evil.example")
        msg.set_content(
            "This body tries to clear your screen: \x1b[2J\x1b[H and set the title: "
            "\x1b]0;owned\x07.\n[@click=app.quit]Click here[/] — markup shown as text.\n"
            "Bidi trick: invoice\u202efdp.exe\n"
        )
        msg.add_attachment(b"not really", "application/octet-stream", "../../.bashrc\u202egpj.sh")
        self._add("personal/INBOX", msg, Flags(), when)
        # A flagged long-form HTML-only message with non-ASCII, today.
        when = now - timedelta(minutes=42)
        msg = self._base(
            PEOPLE[0],
            [ME_PERSONAL],
            "Recette : tarte aux pommes 🍎",
            when,
            self._msgid("celik.example"),
        )
        msg.set_content(
            "<h2>Tarte aux pommes</h2><p>Ingrédients&nbsp;: pommes, beurre, sucre, farine."
            "</p><ol><li>Préchauffer le four à 180&nbsp;°C.</li><li>Étaler la pâte.</li>"
            '<li>Cuire 35 minutes.</li></ol><p>Source&nbsp;: <a href="https://recettes.example/'
            'tarte">recettes.example</a></p>',
            subtype="html",
        )
        self._add("personal/INBOX", msg, Flags(flagged=True), when)
        # A draft.
        msg = self._base(
            ME_PERSONAL,
            [PEOPLE[4]],
            "Notes for Saturday",
            now - timedelta(days=1),
            self._msgid("example.org"),
        )
        msg.set_content("Half-written: bring the map, the tent and\n")
        self._add("personal/Drafts", msg, Flags(seen=True, draft=True), now - timedelta(days=1))
        return 4

    def junk(self) -> None:
        when = self._when(60)
        msg = self._base(
            ("Prize Department", "winner@lottery.example"),
            [ME_PERSONAL],
            "You have WON €1,000,000!!!",
            when,
            self._msgid("lottery.example"),
        )
        msg.set_content("Send us your bank details to claim your prize.\n")
        self._add("personal/Junk", msg, Flags(seen=False), when)

    def run(self) -> _Plan:
        made = self.specials()
        while made < self.n:
            r = self.rng.random()
            if r < 0.55:
                made += self.thread("personal" if self.rng.random() < 0.55 else "work")
            elif r < 0.75:
                self.list_post()
                made += 1
            elif r < 0.87:
                self.newsletter()
                made += 1
            elif r < 0.97:
                self.ci_mail()
                made += 1
            else:
                self.junk()
                made += 1
        return self.plan


def generate(n_messages: int, now: datetime, seed: int = 1) -> Iterator[tuple[str, bytes, Flags]]:
    """(account/folder, raw message, flags) for every demo message, oldest first."""
    plan = _Generator(n_messages, now, seed).run()
    for item in sorted(plan.messages, key=lambda m: m.when):
        yield item.folder, item.raw, item.flags


def _marker(n_messages: int, now: datetime | None) -> dict[str, object]:
    return {
        "version": DEMO_VERSION,
        "messages": n_messages,
        "now": now.isoformat() if now else None,
    }


def is_current(root: Path, n_messages: int = 3000, now: datetime | None = None) -> bool:
    """Whether `root` already holds this demo (so building it would do nothing)."""
    try:
        return bool(json.loads((root / MARKER).read_text()) == _marker(n_messages, now))
    except (OSError, ValueError):
        return False


def build_demo_store(root: Path, n_messages: int = 3000, now: datetime | None = None) -> None:
    """Write the demo mailbox into a store at `root`, unless the same demo is already there.

    `now` fixes "today" (for reproducible screenshots); by default the demo is dated
    relative to the time it is built. Rebuilds when the generator's version changed.
    """
    marker = root / MARKER
    wanted = _marker(n_messages, now)
    if is_current(root, n_messages, now):
        return
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    marker.unlink(missing_ok=True)
    for entry in _STORE_ENTRIES:
        path = root / entry
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    when = now or datetime.now(UTC).replace(microsecond=0)
    with Store.open(root) as store:
        folder_ids: dict[str, int] = {}
        for account, infos in _folders().items():
            store.sync_folders(account, infos)
            for info in infos:
                row = store.folder(account, info.name)
                assert row is not None
                folder_ids[f"{account}/{info.name}"] = row.id
        batches: dict[str, list[NewMessage]] = {}
        uids: dict[str, int] = {}
        for folder, raw, flags in generate(n_messages, when):
            uid = uids[folder] = uids.get(folder, 0) + 1
            batches.setdefault(folder, []).append(
                NewMessage(uid=uid, flags=flags, size=len(raw), raw=raw, complete=True)
            )
        for folder, items in batches.items():
            for start in range(0, len(items), 500):
                store.add_messages(folder_ids[folder], items[start : start + 500])
    marker.write_text(json.dumps(wanted))
