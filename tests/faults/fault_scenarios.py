"""Scenarios and invariant checks for the fault harness, one class per protocol.

Each "world" owns a fresh server-side state (a new Dovecot user, or unique Message-IDs on
the shared SMTP server), knows what the end state must be (its oracle), and checks the
server and the local store against it after the fault-free rerun. `check()` returns the
problems found as readable lines; an empty list means every invariant holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import poplib
import random
import ssl
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fault_harness import (
    DOMAIN,
    duplicates,
    imap_flag_names,
    make_message,
    message_id_of,
    normalize_mid,
)
from imapclient import IMAPClient
from servers.dovecot import DovecotServer, User
from servers.smtp import SMTPServer

from tuimail.account.sending import FlushReport, flush
from tuimail.config import AccountConfig, Config, IncomingConfig, OutgoingConfig
from tuimail.errors import TuimailError
from tuimail.models import Flags, Protocol, TLSMode
from tuimail.secrets import Secret
from tuimail.store import Store
from tuimail.sync.engine import ImapSession
from tuimail.sync.pop3_engine import Pop3Session
from tuimail.sync.session import SyncSummary

IMAP_ACCOUNT = "acct"
POP3_ACCOUNT = "pop"
SMTP_ACCOUNT = "out"
FOLDERS = ("INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive")
LOCAL_FLAGS = ("seen", "flagged", "answered", "$Label1", "$Label2")
MAILDIR_LETTERS = {"S": "seen", "F": "flagged", "R": "answered"}
# Local changes queued against a message whose earlier move has not reached the server yet
# (a flag change or a second move of the placeholder). On by default since the chained-op
# bugs (test_known_bugs.py test_chained_*) were fixed; TUIMAIL_FAULT_CHAINED=0 leaves them out.
CHAINED_OPS = os.environ.get("TUIMAIL_FAULT_CHAINED", "1") != "0"


def flag_names(flags: Flags) -> frozenset[str]:
    names = {n for n in ("seen", "answered", "flagged", "deleted", "draft") if getattr(flags, n)}
    return frozenset(names | set(flags.keywords))


def _short(names: Iterable[str]) -> str:
    return "{" + ",".join(sorted(names)) + "}"


@dataclass
class RunResult:
    """How one (possibly faulted) run of an operation ended."""

    outcome: str  # "ok", "error:NetworkError", "RAW:ssl.SSLError", ...
    problems: list[str] = field(default_factory=list)
    summary: SyncSummary | None = None


def classify(exc: BaseException | None) -> tuple[str, list[str]]:
    """A faulted run may fail, but only with a TuimailError (a clear message for the user);
    anything else escaping the engine is a problem."""
    if exc is None:
        return "ok", []
    if isinstance(exc, TuimailError):
        return f"error:{type(exc).__name__}", []
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    return f"RAW:{name}", [f"a cut connection escaped as a raw {name}: {exc!r}"]


# ============================================================================ IMAP


@dataclass
class ServerMsg:
    uid: int
    mid: str
    flags: frozenset[str]
    raw: bytes


def imap_client(server: DovecotServer, user: User) -> IMAPClient:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    client = IMAPClient("127.0.0.1", server.imaps_port, ssl_context=ctx, timeout=20)
    client.login(user.name, user.password)
    return client


class ImapWorld:
    """One IMAP case: a fresh user, its messages, the local changes made before the fault,
    and the expected end state `(folder, Message-ID) -> flag names`."""

    def __init__(
        self, server: DovecotServer, user: User, tag: str, rng: random.Random, bodies: str
    ) -> None:
        self.server = server
        self.user = user
        self.tag = tag
        self.rng = rng
        self.bodies = bodies
        self.expected: dict[tuple[str, str], frozenset[str]] = {}
        self.raws: dict[str, bytes] = {}
        self.counter = 0
        self.appended = 0  # bytes of APPENDs queued locally (for the cut bound)
        self.local_ops = 0
        self.synced: set[tuple[str, str]] = set()  # what the store had after the last sync
        self.notes: list[str] = []

    # ---- configuration

    def account(self, port: int, tls: str) -> AccountConfig:
        incoming = IncomingConfig(
            host="127.0.0.1",
            port=port,
            tls=TLSMode.IMPLICIT if tls == "implicit" else TLSMode.STARTTLS,
            username=self.user.name,
            ca_file=self.server.ca_file,
            timeout=10.0,
            bodies=self.bodies,
        )
        return AccountConfig(name=IMAP_ACCOUNT, address=self.user.address, incoming=incoming)

    def direct_account(self) -> AccountConfig:
        return self.account(self.server.imaps_port, "implicit")

    def mark_synced(self) -> None:
        """The store now has everything expected so far (after a clean sync)."""
        self.synced = set(self.expected)

    def upper_bounds(self) -> dict[str, int]:
        """Generous byte counts per direction for the next whole sync (cut points are drawn
        below them; a cut past the real end simply never fires)."""
        todo = [self.raws[mid] for key in self.expected.keys() - self.synced for (_f, mid) in [key]]
        fetch = sum(map(len, todo)) if self.bodies == "all" else 600 * len(todo)
        down = 10_000 + fetch + 80 * len(self.expected)
        up = 5_000 + self.appended + 150 * self.local_ops
        # Login, ENABLE, LIST, a few commands per replayed group and per folder.
        reads = 12 + 4 * len(FOLDERS) + min(self.local_ops, 12)
        return {"down": down, "up": up, "reads": reads}

    # ---- server side

    def new_messages(self, count: int) -> list[bytes]:
        out = []
        for _ in range(count):
            self.counter += 1
            raw = make_message(self.tag, self.counter, self.rng)
            self.raws[message_id_of(raw)] = raw
            out.append(raw)
        return out

    def deliver(self, folder: str, count: int) -> None:
        """Deliver `count` messages with random flags (Maildir letters) into `folder`."""
        by_flags: dict[str, list[bytes]] = {}
        for raw in self.new_messages(count):
            letters = self.rng.choice(["", "", "", "S", "S", "SF", "F", "R", "SR"])
            by_flags.setdefault(letters, []).append(raw)
            names = frozenset(MAILDIR_LETTERS[c] for c in letters)
            self.expected[(folder, message_id_of(raw))] = names
        for letters, raws in by_flags.items():
            self.server.deliver_many(self.user, raws, folder=folder, flags=letters)

    def server_uids(self, client: IMAPClient, folder: str) -> dict[str, int]:
        client.select_folder(folder)
        uids = client.search("ALL")
        if not uids:
            return {}
        data = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        return {
            message_id_of(d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"]): uid for uid, d in data.items()
        }

    def server_changes(self, untouchable: set[str], *, conflicts: Iterable[str] = ()) -> None:
        """Another client changes things on the server meanwhile: flags, expunges, a move,
        new mail. Only messages not in `untouchable` (those with local changes), except the
        `conflicts`, which are expunged under a pending local change."""
        rng = self.rng
        client = imap_client(self.server, self.user)
        try:
            uids = self.server_uids(client, "INBOX")
            free = sorted(m for m in uids if m not in untouchable)
            rng.shuffle(free)
            for mid in free[: rng.randint(0, 4)]:
                key = ("INBOX", mid)
                if rng.random() < 0.5:
                    add = rng.choice([b"\\Seen", b"\\Flagged", b"$Server"])
                    client.add_flags([uids[mid]], [add])
                    self.expected[key] = self.expected[key] | imap_flag_names([add])
                else:
                    gone = sorted(self.expected[key] & {"seen", "flagged", "answered"})
                    if gone:
                        atom = "\\" + rng.choice(gone).capitalize()
                        client.remove_flags([uids[mid]], [atom.encode()])
                        self.expected[key] = self.expected[key] - imap_flag_names([atom])
            free = free[4:]
            expunge = free[: rng.randint(0, 2)] + [c for c in conflicts if c in uids]
            if expunge:
                client.delete_messages([uids[m] for m in expunge])
                client.expunge([uids[m] for m in expunge])
                for mid in expunge:
                    # Gone everywhere: a pending local move or copy of it cannot happen.
                    for key in [k for k in self.expected if k[1] == mid]:
                        del self.expected[key]
                    self.notes.append(f"server expunged {mid}")
            free = free[2:]
            moved = free[: rng.randint(0, 2)]
            if moved:
                client.move([uids[m] for m in moved], "Archive")
                for mid in moved:
                    self.expected[("Archive", mid)] = self.expected.pop(("INBOX", mid))
        finally:
            with contextlib.suppress(Exception):
                client.logout()
        self.deliver("INBOX", rng.randint(0, 8))
        if rng.random() < 0.3:
            self.deliver("Archive", rng.randint(1, 3))

    # ---- local side

    def local_changes(self, store: Store) -> set[str]:
        """Flag changes, moves, copies, deletes and appends made locally (queued as pending
        operations); returns the Message-IDs touched."""
        rng = self.rng
        folders = {f.name: f for f in store.folders(IMAP_ACCOUNT)}
        ids: dict[tuple[str, str], int] = {}
        for name in FOLDERS:
            for summary in store.list_messages(IMAP_ACCOUNT, name):
                ids[(name, normalize_mid(summary.envelope.message_id))] = summary.id
        inbox = [mid for (f, mid) in ids if f == "INBOX"]
        rng.shuffle(inbox)
        touched: set[str] = set()
        ops = 0

        def set_flags(keys: list[tuple[str, str]], add: list[str], remove: list[str]) -> None:
            nonlocal ops
            store.set_flags([ids[k] for k in keys], add=add, remove=remove)
            for k in keys:
                self.expected[k] = (self.expected[k] | set(add)) - set(remove)
            ops += len(keys)

        # Several messages, one change each.
        for mid in inbox[: rng.randint(2, 8)]:
            key = ("INBOX", mid)
            current = self.expected[key]
            add = [f for f in rng.sample(LOCAL_FLAGS, rng.randint(0, 2)) if f not in current]
            remove = [f for f in current if f in LOCAL_FLAGS and rng.random() < 0.5]
            if add or remove:
                set_flags([key], add, remove)
                touched.add(mid)
        # One change to many ("mark these seen"): replayed as one STORE.
        batch = inbox[8 : 8 + rng.randint(0, 8)]
        if batch:
            set_flags([("INBOX", m) for m in batch], [rng.choice(LOCAL_FLAGS)], [])
            touched.update(batch)

        def move(mids: list[str], src: str, dest: str) -> None:
            nonlocal ops
            store.move([ids[(src, m)] for m in mids], folders[dest].id)
            for m in mids:
                ids[(dest, m)] = ids.pop((src, m))
                self.expected[(dest, m)] = self.expected.pop((src, m))
            ops += len(mids)
            touched.update(mids)

        pool = inbox[: 8 + len(batch)]  # messages with flag changes: moving them chains ops
        rest = inbox[8 + len(batch) :]
        movers = rng.sample(pool, min(len(pool), rng.randint(0, 3))) + rest[: rng.randint(0, 3)]
        rest = rest[3:]
        if movers:
            move(movers, "INBOX", "Archive")
            if CHAINED_OPS and rng.random() < 0.5:
                # A flag change to a message whose move has not reached the server yet.
                mid = rng.choice(movers)
                set_flags([("Archive", mid)], ["$Moved"], [])
            if CHAINED_OPS and rng.random() < 0.3:
                # Moved again before the first move was replayed.
                move([rng.choice(movers)], "Archive", "Sent")
        copies = rest[: rng.choice([0, 0, 1, 2])]
        rest = rest[len(copies) :]
        if copies:
            new_ids = store.copy([ids[("INBOX", m)] for m in copies], folders["Junk"].id)
            for m, new_id in zip(copies, new_ids, strict=True):
                ids[("Junk", m)] = new_id
                self.expected[("Junk", m)] = self.expected[("INBOX", m)]
            ops += len(copies)
            touched.update(copies)
        deletes = rest[: rng.randint(0, 3)]
        rest = rest[len(deletes) :]
        if deletes:
            move_keys = [("INBOX", m) for m in deletes]
            store.delete([ids[k] for k in move_keys])
            for m in deletes:
                ids[("Trash", m)] = ids.pop(("INBOX", m))
                self.expected[("Trash", m)] = self.expected.pop(("INBOX", m))
            ops += len(deletes)
            touched.update(deletes)
        trashed = [mid for (f, mid) in list(ids) if f == "Trash" and mid not in deletes]
        if trashed and rng.random() < 0.5:
            # Deleting in Trash expunges.
            mid = rng.choice(trashed)
            store.delete([ids[("Trash", mid)]])
            del self.expected[("Trash", mid)]
            ops += 1
            touched.add(mid)
        for raw in self.new_messages(rng.choice([0, 0, 1, 2])):
            store.append_local(folders["Drafts"].id, raw, Flags(draft=True, seen=True))
            self.expected[("Drafts", message_id_of(raw))] = frozenset({"draft", "seen"})
            self.appended += len(raw)
            ops += 1
        self.local_ops = ops
        return touched

    # ---- running

    def sync(
        self, store: Store, account: AccountConfig | None = None
    ) -> tuple[RunResult, SyncSummary | None]:
        session = ImapSession(account or self.direct_account(), store)
        exc: BaseException | None = None
        summary = None
        try:
            session.connect()
            summary = session.sync(None, lambda p: None)
        except Exception as e:
            exc = e
        outcome, problems = classify(exc)
        try:
            session.close()
        except Exception as e:
            problems.append(f"ImapSession.close() raised {e!r}")
        return RunResult(outcome, problems, summary), summary

    # ---- checking

    def snapshot(self) -> dict[str, dict[int, ServerMsg]]:
        client = imap_client(self.server, self.user)
        try:
            names = sorted(
                name for flags, _d, name in client.list_folders() if b"\\Noselect" not in flags
            )
            out: dict[str, dict[int, ServerMsg]] = {}
            for name in names:
                client.select_folder(name, readonly=True)
                uids = client.search("ALL")
                msgs: dict[int, ServerMsg] = {}
                if uids:
                    for uid, d in client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]).items():
                        raw = d[b"BODY[]"]
                        msgs[uid] = ServerMsg(
                            uid, message_id_of(raw), imap_flag_names(d[b"FLAGS"]), raw
                        )
                out[name] = msgs
            return out
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def check(self, store: Store) -> list[str]:
        problems: list[str] = []
        snap = self.snapshot()
        # 1. The server holds exactly the expected messages, once each, with their flags.
        on_server = Counter((f, m.mid) for f, msgs in snap.items() for m in msgs.values())
        for key, n in sorted(on_server.items()):
            if n > 1:
                problems.append(f"server: {key[1]} is {n} times in {key[0]}")
        for key in sorted(self.expected.keys() - on_server.keys()):
            where = [f for f, mid in on_server if mid == key[1]]
            problems.append(f"server: {key[1]} missing from {key[0]} (found in {where})")
        for key in sorted(on_server.keys() - self.expected.keys()):
            problems.append(f"server: unexpected {key[1]} in {key[0]}")
        server_flags = {(f, m.mid): m.flags for f, msgs in snap.items() for m in msgs.values()}
        for key, want in sorted(self.expected.items()):
            have = server_flags.get(key)
            if have is not None and have != want:
                problems.append(
                    f"server: {key[1]} in {key[0]} has flags {_short(have)}, want {_short(want)}"
                )
        # 2. The store mirrors the server: same UIDs, same messages, same flags, bodies.
        local_folders = {f.name: f for f in store.folders(IMAP_ACCOUNT)}
        if set(local_folders) != set(snap):
            problems.append(f"local folders {sorted(local_folders)} != server {sorted(snap)}")
        for name, msgs in snap.items():
            row = local_folders.get(name)
            if row is None:
                continue
            local = store.list_messages(IMAP_ACCOUNT, name)
            # A placeholder (no server UID yet) is listed with uid 0.
            placeholders = [normalize_mid(m.envelope.message_id) for m in local if not m.uid]
            if placeholders:
                problems.append(f"local {name}: placeholder(s) without a UID: {placeholders}")
            by_uid: dict[int, list[object]] = {}
            for m in local:
                if m.uid:
                    by_uid.setdefault(m.uid, []).append(m)
            for uid, rows in by_uid.items():
                if len(rows) > 1:
                    problems.append(f"local {name}: UID {uid} is {len(rows)} times")
            dup = duplicates(normalize_mid(m.envelope.message_id) for m in local)
            if dup:
                problems.append(f"local {name}: duplicate messages {dup}")
            missing = sorted(set(msgs) - set(by_uid))
            extra = sorted(set(by_uid) - set(msgs))
            if missing:
                problems.append(f"local {name}: server UIDs {missing} not stored locally")
            if extra:
                problems.append(f"local {name}: UIDs {extra} stored locally but not on the server")
            known = set(store.uid_flags(row.id))
            if known != set(msgs):
                problems.append(
                    f"local {name}: uid_flags has {sorted(known ^ set(msgs))} differing "
                    "from the server"
                )
            for m in local:
                if not m.uid or m.uid not in msgs:
                    continue
                sm = msgs[m.uid]
                mid = normalize_mid(m.envelope.message_id)
                if mid != sm.mid:
                    problems.append(f"local {name} UID {m.uid}: is {mid}, server has {sm.mid}")
                    continue
                if flag_names(m.flags) != sm.flags:
                    problems.append(
                        f"local {name} {mid}: flags {_short(flag_names(m.flags))}, "
                        f"server {_short(sm.flags)}"
                    )
                raw = store.raw(m.id)
                if raw is None:
                    if self.bodies == "all":
                        problems.append(f"local {name} {mid}: body missing (bodies = all)")
                elif raw != sm.raw:
                    problems.append(
                        f"local {name} {mid}: body differs from the server's "
                        f"({len(raw)} vs {len(sm.raw)} bytes)"
                    )
        # 3. Nothing left to replay, and the store is sound.
        pending = store.pending_ops(IMAP_ACCOUNT)
        if pending:
            problems.append(
                "pending ops left: " + ", ".join(f"{p.kind} {p.folder} {p.uid}" for p in pending)
            )
        problems.extend(f"integrity: {p}" for p in store.integrity_check())
        return problems


def quiet_resync_problems(summary: SyncSummary | None) -> list[str]:
    """A second fault-free sync right after the first must find nothing to do."""
    if summary is None:
        return ["the second clean sync failed"]
    problems = []
    for f in summary.folders:
        if f.new or f.changed or f.removed or f.bodies or f.warnings:
            problems.append(
                f"second clean sync of {f.folder}: {f.new} new, {f.changed} changed, "
                f"{f.removed} removed, {f.bodies} bodies, warnings {list(f.warnings)}"
            )
    if summary.pushed:
        problems.append(f"second clean sync pushed {summary.pushed} change(s)")
    return problems


# ============================================================================ POP3


class Pop3World:
    """One POP3 case: a fresh user; every message ever delivered must end up in the local
    Inbox exactly once, byte for byte; the server keeps them or ends up empty."""

    def __init__(
        self, server: DovecotServer, user: User, tag: str, rng: random.Random, leave: bool
    ) -> None:
        self.server = server
        self.user = user
        self.tag = tag
        self.rng = rng
        self.leave = leave
        self.delivered: dict[str, bytes] = {}
        self.counter = 0

    def account(self, port: int, tls: str) -> AccountConfig:
        incoming = IncomingConfig(
            host="127.0.0.1",
            port=port,
            tls=TLSMode.IMPLICIT if tls == "implicit" else TLSMode.STARTTLS,
            username=self.user.name,
            ca_file=self.server.ca_file,
            protocol=Protocol.POP3,
            timeout=10.0,
            leave_on_server=self.leave,
        )
        return AccountConfig(name=POP3_ACCOUNT, address=self.user.address, incoming=incoming)

    def direct_account(self) -> AccountConfig:
        return self.account(self.server.pop3s_port, "implicit")

    def deliver(self, count: int) -> None:
        raws = []
        for _ in range(count):
            self.counter += 1
            raw = make_message(self.tag, self.counter, self.rng)
            self.delivered[message_id_of(raw)] = raw
            raws.append(raw)
        self.server.deliver_many(self.user, raws)

    def on_server_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.server.messages(self.user))

    def sync(self, store: Store, account: AccountConfig | None = None) -> RunResult:
        session = Pop3Session(
            account or self.direct_account(), store, password=Secret(self.user.password)
        )
        exc: BaseException | None = None
        summary = None
        try:
            session.connect()
            summary = session.sync(None, lambda p: None)
        except Exception as e:
            exc = e
        outcome, problems = classify(exc)
        try:
            session.close()
        except Exception as e:
            problems.append(f"Pop3Session.close() raised {e!r}")
        return RunResult(outcome, problems, summary)

    def server_mids(self) -> list[str]:
        ctx = ssl.create_default_context(cafile=str(self.server.ca_file))
        pop = poplib.POP3_SSL("127.0.0.1", self.server.pop3s_port, context=ctx, timeout=20)
        try:
            pop.user(self.user.name)
            pop.pass_(self.user.password)
            count, _size = pop.stat()
            mids = []
            for n in range(1, count + 1):
                _resp, lines, _octets = pop.top(n, 0)
                mids.append(message_id_of(b"\r\n".join(lines)))
            return mids
        finally:
            with contextlib.suppress(Exception):
                pop.quit()

    def check(self, store: Store) -> list[str]:
        problems: list[str] = []
        local = store.list_messages(POP3_ACCOUNT, "INBOX")
        mids = [normalize_mid(m.envelope.message_id) for m in local]
        dup = duplicates(mids)
        if dup:
            problems.append(f"local: duplicates {dup}")
        missing = sorted(set(self.delivered) - set(mids))
        if missing:
            problems.append(f"local: {len(missing)} message(s) never downloaded: {missing[:5]}")
        extra = sorted(set(mids) - set(self.delivered))
        if extra:
            problems.append(f"local: unexpected messages {extra[:5]}")
        for m, mid in zip(local, mids, strict=True):
            raw = store.raw(m.id)
            want = self.delivered.get(mid)
            if want is not None and raw != want:
                have = "no body" if raw is None else f"{len(raw)} bytes"
                problems.append(f"local: {mid} is not the delivered message ({have})")
        on_server = self.server_mids()
        if self.leave:
            if sorted(on_server) != sorted(self.delivered):
                problems.append(
                    f"server: has {len(on_server)} message(s), want all {len(self.delivered)} "
                    "(leave_on_server = true)"
                )
        elif on_server:
            problems.append(
                f"server: {len(on_server)} message(s) left although leave_on_server = false"
            )
        problems.extend(f"integrity: {p}" for p in store.integrity_check())
        return problems


# ============================================================================ SMTP / outbox


@dataclass(frozen=True)
class Queued:
    item_id: int
    mid: str
    recipients: tuple[str, ...]
    raw: bytes


def normalized_body(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").rstrip(b"\n")


class OutboxWorld:
    """One sending case: messages queued in the outbox with unique Message-IDs, counted on
    the SMTP server by Message-ID after the flushes."""

    def __init__(
        self,
        smtp: SMTPServer,
        user: User,
        tag: str,
        rng: random.Random,
        account_name: str = SMTP_ACCOUNT,
    ) -> None:
        self.smtp = smtp
        self.user = user
        self.tag = tag
        self.rng = rng
        self.account_name = account_name
        self.queued: dict[int, Queued] = {}
        self.counter = 0
        self.reported_uncertain: set[int] = set()

    def outgoing(self, port: int) -> OutgoingConfig:
        return OutgoingConfig(
            host="127.0.0.1",
            port=port,
            tls=TLSMode.IMPLICIT if self.smtp.implicit_tls else TLSMode.STARTTLS,
            username=self.user.name,
            ca_file=self.smtp.ca_file,
            timeout=10.0,
        )

    def config(self, port: int) -> Config:
        account = AccountConfig(
            name=self.account_name, address=self.user.address, outgoing=self.outgoing(port)
        )
        return Config(accounts={self.account_name: account})

    def message(self, recipients: tuple[str, ...]) -> bytes:
        self.counter += 1
        return make_message(
            self.tag, self.counter, self.rng, sender=self.user.address, to=", ".join(recipients)
        )

    def recipients(self) -> tuple[str, ...]:
        n = self.rng.randint(1, 3)
        return tuple(f"rcpt{self.rng.randint(1, 99)}.{i}@{DOMAIN}" for i in range(n))

    def queue(self, store: Store, count: int) -> None:
        for _ in range(count):
            rcpts = self.recipients()
            raw = self.message(rcpts)
            item_id = store.outbox_add(self.account_name, raw, self.user.address, rcpts)
            self.queued[item_id] = Queued(item_id, message_id_of(raw), rcpts, raw)

    def flush(self, store: Store, port: int, **kwargs: object) -> tuple[RunResult, FlushReport]:
        report = FlushReport()
        exc: BaseException | None = None
        try:
            report = asyncio.run(
                flush(store, self.config(port), ignore_schedule=True, lock_timeout=10, **kwargs)  # type: ignore[arg-type]
            )
        except Exception as e:
            exc = e
        self.note_report(report)
        outcome, problems = classify(exc)
        if exc is None:
            statuses = Counter(o.status for o in report.outcomes)
            outcome = ",".join(f"{k}" for k in sorted(statuses)) or "nothing-due"
        return RunResult(outcome, problems), report

    def note_report(self, report: FlushReport) -> None:
        self.reported_uncertain.update(
            o.item_id for o in report.outcomes if o.status == "uncertain"
        )
        self.reported_uncertain.update(report.recovered)

    def deliveries(self) -> Counter[str]:
        mine = Counter[str]()
        for received in self.smtp.received():
            mid = message_id_of(received.data)
            if mid.startswith(f"<{self.tag}."):
                mine[mid] += 1
        return mine

    def check(
        self, store: Store, *, sent_copies: bool = True, unqueued: Iterable[str] = ()
    ) -> list[str]:
        """`unqueued`: Message-IDs that may have been delivered without being seen in the
        outbox (a `tuimail send` that completed before the test looked)."""
        problems: list[str] = []
        counts = self.deliveries()
        items = {i.id: i for i in store.outbox_items(self.account_name)}
        by_mid = {q.mid: q for q in self.queued.values()}
        for mid in counts:
            if mid not in by_mid and mid not in unqueued:
                problems.append(f"delivered {mid}, which was never queued")
        for q in self.queued.values():
            n = counts.get(q.mid, 0)
            item = items.get(q.item_id)
            if item is not None and item.state == "uncertain":
                if n > 1:
                    problems.append(f"#{q.item_id} {q.mid}: uncertain but delivered {n} times")
                if q.item_id not in self.reported_uncertain:
                    problems.append(f"#{q.item_id} {q.mid}: uncertain but never reported")
                continue
            if item is not None:
                problems.append(
                    f"#{q.item_id} {q.mid}: still {item.state!r} after the clean rerun "
                    f"({item.last_error!r})"
                )
            if n != 1:
                problems.append(f"#{q.item_id} {q.mid}: delivered {n} times, want exactly 1")
        for received in self.smtp.received():
            mid = message_id_of(received.data)
            sent = by_mid.get(mid)
            if sent is None:
                continue
            if tuple(received.rcpt_tos) != sent.recipients:
                problems.append(f"{mid}: delivered to {received.rcpt_tos}, want {sent.recipients}")
            if normalized_body(received.data) != normalized_body(sent.raw):
                problems.append(f"{mid}: the delivered data differs from the queued message")
        if sent_copies:
            problems.extend(self._check_sent(store, items))
        problems.extend(f"integrity: {p}" for p in store.integrity_check())
        return problems

    def item_results(self, store: Store) -> list[str]:
        """How each queued message ended, for the statistics."""
        counts = self.deliveries()
        states = {i.id: i.state for i in store.outbox_items(self.account_name)}
        out = []
        for q in self.queued.values():
            state = states.get(q.item_id, "sent")
            out.append(
                f"item:{state}" + ("(delivered)" if state != "sent" and counts[q.mid] else "")
            )
        return out

    def _check_sent(self, store: Store, items: Mapping[int, object]) -> list[str]:
        """A sent message is filed in Sent once; an uncertain one is not."""
        problems = []
        sent = Counter(
            normalize_mid(m.envelope.message_id)
            for m in store.list_messages(self.account_name, "Sent")
        )
        for q in self.queued.values():
            want = 0 if q.item_id in items else 1
            have = sent.get(q.mid, 0)
            if have != want:
                problems.append(f"Sent folder has {have} copies of {q.mid}, want {want}")
        return problems


# ============================================================================ helpers


def reopen(store: Store, root: Path) -> Store:
    """Close and open the store again: the next run sees only what was made durable."""
    store.close()
    return Store.open(root)
