"""A private Dovecot (IMAP, POP3, LMTP) on loopback, from a config generated in a temp dir.

Only our own config is read (`dovecot -F -c CONF`), with its own `base_dir`, `state_dir`,
log file and free ports, so a system Dovecot on the standard ports does not matter.  The
master runs in the foreground in its own process group: `stop()` (and an atexit guard) ends
it and everything it forked.

Mail is stored as Maildir++ under `<root>/home/<user>/Maildir`.  Dovecot refuses to touch
mail as uid 0, so when the tests run as root the mail files belong to uid/gid 5000 (no passwd
entry needed) and `deliver()` writes files with that owner.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .certs import CertAuthority
from .net import free_port
from .relay import LoopbackRelay

DOVECOT = shutil.which("dovecot", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
# Ends the master with SIGTERM if the test process dies without cleaning up (e.g. SIGKILL).
SETPRIV = shutil.which("setpriv")
DOVEADM = shutil.which("doveadm", path=os.environ.get("PATH", "") + ":/usr/bin:/usr/sbin")

# The uid/gid owning mail files when the tests run as root (Dovecot refuses uid 0).
MAIL_UID = 5000
MAIL_GID = 5000

DOMAIN = "tuimail.test"

# The IMAP capabilities Dovecot 2.3.19 advertises after login with this config, minus
# CONDSTORE and QRESYNC: what a server without them would say (for the fallback sync path).
CAPABILITY_WITHOUT_CONDSTORE = (
    "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES "
    "THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN "
    "NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH "
    "LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE "
    "LITERAL+ NOTIFY SPECIAL-USE"
)

# Folders every user gets, with their RFC 6154 SPECIAL-USE attribute.
SPECIAL_FOLDERS: dict[str, str] = {
    "Drafts": "\\Drafts",
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}

# Maildir info flags (the letters after ":2,"), in the order the spec requires (ASCII).
MAILDIR_FLAGS = frozenset("DFPRST")

_running: weakref.WeakSet[DovecotServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    # A test run that dies between start() and stop() must not leave daemons behind.
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.stop()


def _wait_for_port(host: str, port: int, deadline: float, proc: subprocess.Popen[bytes]) -> None:
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"dovecot exited with status {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"dovecot did not listen on {host}:{port}") from None
            time.sleep(0.02)


@dataclass(frozen=True)
class LoginRecord:
    """One successful login as Dovecot logged it."""

    protocol: str  # "imap" or "pop3"
    user: str
    method: str
    tls: bool  # the session was encrypted (STARTTLS/STLS or implicit TLS)
    line: str


_LOGIN_RE = re.compile(
    r"(?P<proto>imap|pop3)-login: Info: Login: user=<(?P<user>[^>]*)>, method=(?P<method>[^,]+),"
    r"(?P<rest>.*)$"
)


def parse_logins(log: str) -> list[LoginRecord]:
    """The successful logins in a Dovecot log, in order."""
    records = []
    for line in log.splitlines():
        m = _LOGIN_RE.search(line)
        if m:
            fields = {f.strip() for f in m["rest"].split(",")}
            records.append(LoginRecord(m["proto"], m["user"], m["method"], "TLS" in fields, line))
    return records


@dataclass(frozen=True)
class User:
    """A mail account on the test Dovecot; `name` logs in to IMAP, POP3 and (test) SMTP."""

    name: str
    password: str
    home: Path

    @property
    def address(self) -> str:
        return f"{self.name}@{DOMAIN}"

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"


class DovecotServer:
    """A private Dovecot.  Typical use (the `dovecot` fixture does this once per session)::

        server = DovecotServer(CertAuthority(tmp / "ca"))
        server.start()
        user = server.add_user("alice", "secret")
        server.deliver(user, b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
        # IMAP STARTTLS on server.imap_port, IMAPS on server.imaps_port,
        # POP3 STLS on server.pop3_port, POP3S on server.pop3s_port, CA in server.ca_file.
        server.stop()

    `capability_override` replaces the post-login IMAP CAPABILITY (Dovecot's
    `imap_capability`), e.g. `CAPABILITY_WITHOUT_CONDSTORE`.  `extra_config` is appended to the
    generated dovecot.conf verbatim.

    With `strict_starttls` (the default) `imap_port` and `pop3_port` are relays that make the
    client look remote, so Dovecot advertises LOGINDISABLED and refuses any password before
    STARTTLS, as a real server does (it trusts loopback otherwise; see relay.py).  The relay
    costs some throughput: benchmarks use IMAPS/POP3S, `imap_direct_port`, or
    `strict_starttls=False`.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        certs: CertAuthority,
        *,
        capability_override: str | None = None,
        extra_config: str = "",
        root: Path | None = None,
        debug: bool = False,
        strict_starttls: bool = True,
    ) -> None:
        if DOVECOT is None:
            raise RuntimeError("dovecot is not installed (apt-get install dovecot-imapd ...)")
        self.certs = certs
        self.ca_file = certs.ca_file
        self.capability_override = capability_override
        self.extra_config = extra_config
        self.debug = debug
        self.strict_starttls = strict_starttls
        self._relays: list[LoopbackRelay] = []
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="tuimail-dovecot-")) if root is None else root
        # Login processes run as dovenull and must reach base_dir below the root.
        self.root.chmod(0o755)
        self.base_dir = self.root / "run"
        self.state_dir = self.root / "state"
        self.homes = self.root / "home"
        self.log_path = self.root / "dovecot.log"
        self.config_path = self.root / "dovecot.conf"
        self.passwd_dir = self.root / "passwd.d"
        self.lmtp_socket = self.base_dir / "lmtp"
        self.imap_port = self.imaps_port = self.pop3_port = self.pop3s_port = 0
        # Where Dovecot itself listens for IMAP/POP3 with STARTTLS; `imap_port`/`pop3_port`
        # are relays in front of them when `strict_starttls` (see relay.py).
        self.imap_direct_port = self.pop3_direct_port = 0
        self.users: dict[str, User] = {}
        self._passwords: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._hostname = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        if os.geteuid() == 0:
            self.mail_uid, self.mail_gid = MAIL_UID, MAIL_GID
            self._internal_user = "dovecot"
            self._login_user = "dovenull"
        else:
            # Unprivileged: Dovecot runs every process as us and can only use our uid.
            self.mail_uid, self.mail_gid = os.getuid(), os.getgid()
            self._internal_user = self._login_user = pwd.getpwuid(os.getuid()).pw_name

    # ----------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> DovecotServer:
        if self.running:
            return self
        for directory in (self.base_dir, self.state_dir, self.homes):
            directory.mkdir(parents=True, exist_ok=True)
        self.homes.chmod(0o755)
        self.passwd_dir.mkdir(exist_ok=True)
        self.passwd_dir.chmod(0o755)
        last_error: Exception | None = None
        # A port taken between free_port() and Dovecot's bind makes the master exit: retry.
        for _attempt in range(3):
            self.imap_direct_port, self.imaps_port = free_port(), free_port()
            self.pop3_direct_port, self.pop3s_port = free_port(), free_port()
            self.config_path.write_text(self._config())
            log = self.log_path.open("ab")
            try:
                guard = [SETPRIV, "--pdeathsig", "TERM"] if SETPRIV else []
                self._proc = subprocess.Popen(
                    [*guard, str(DOVECOT), "-F", "-c", str(self.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            finally:
                log.close()
            _running.add(self)
            deadline = time.monotonic() + timeout
            try:
                for port in (
                    self.imap_direct_port,
                    self.imaps_port,
                    self.pop3_direct_port,
                    self.pop3s_port,
                ):
                    _wait_for_port(self.host, port, deadline, self._proc)
                self._wait_for_lmtp(deadline)
                self._start_relays()
                return self
            except (RuntimeError, TimeoutError) as exc:
                last_error = exc
                self.stop(cleanup=False)
        raise RuntimeError(f"{last_error}; log:\n{self.log_tail()}")

    def _start_relays(self) -> None:
        if not self.strict_starttls:
            self.imap_port, self.pop3_port = self.imap_direct_port, self.pop3_direct_port
            return
        imap = LoopbackRelay(self.host, self.imap_direct_port).start()
        pop3 = LoopbackRelay(self.host, self.pop3_direct_port).start()
        self._relays = [imap, pop3]
        self.imap_port, self.pop3_port = imap.port, pop3.port

    def _wait_for_lmtp(self, deadline: float) -> None:
        while not self.lmtp_socket.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("dovecot did not create its LMTP socket")
            time.sleep(0.02)

    def stop(self, *, cleanup: bool = True, graceful: bool = False, timeout: float = 10.0) -> None:
        """Stop the master and every child; remove the temp dir when `cleanup` (and ours).

        By default the whole process group is killed at once: a graceful SIGTERM shutdown
        takes Dovecot's master about a second, and nothing here needs to survive it.
        """
        relays, self._relays = self._relays, []
        for relay in relays:
            relay.stop()
        proc, self._proc = self._proc, None
        if proc is not None:
            if graceful and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout)
            # The master's children share its process group (it runs in a session of its own).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        _running.discard(self)
        if cleanup and self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- log

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        """The log written after byte `offset` (take `log_size()` before a test)."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def logins(
        self, user: User | str | None = None, since: int = 0, *, wait_for: int = 0
    ) -> list[LoginRecord]:
        """Successful logins (of `user`) logged after byte `since`.

        Dovecot counts a connection whose remote and local address are equal as secure, so
        on loopback it accepts a password on the plain port without STARTTLS.  Tests that
        must prove a client used TLS against the real server assert `record.tls` here.
        The log process writes asynchronously: `wait_for=N` polls (up to 5 s) for N records.
        """
        name = user.name if isinstance(user, User) else user
        deadline = time.monotonic() + 5.0
        while True:
            found = [
                r for r in parse_logins(self.log_since(since)) if name is None or r.user == name
            ]
            if len(found) >= wait_for or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # ----------------------------------------------------------------- config

    def _config(self) -> str:
        mailboxes = "\n".join(
            f"  mailbox {name} {{\n    auto = subscribe\n    special_use = {use}\n  }}"
            for name, use in SPECIAL_FOLDERS.items()
        )
        capability = (
            f"imap_capability = {self.capability_override}\n"
            if self.capability_override is not None
            else ""
        )
        debug = "mail_debug = yes\nauth_debug = yes\nverbose_ssl = yes\n" if self.debug else ""
        dh = Path("/usr/share/dovecot/dh.pem")
        ssl_dh = f"ssl_dh = <{dh}\n" if dh.exists() else ""
        cert = self.certs.server
        return f"""# Generated by tests/servers/dovecot.py: a private test instance.
instance_name = tuimail-test-{os.getpid()}-{self.root.name}
base_dir = {self.base_dir}
state_dir = {self.state_dir}
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
listen = {self.host}
protocols = imap pop3 lmtp
default_internal_user = {self._internal_user}
default_login_user = {self._login_user}
first_valid_uid = 1
last_valid_uid = 0
first_valid_gid = 1
{debug}
ssl = required
ssl_cert = <{cert.cert_file}
ssl_key = <{cert.key_file}
{ssl_dh}ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
# Accept "alice" and "alice@{DOMAIN}" alike, for logins and LMTP recipients.
auth_username_format = %Ln
auth_cache_size = 0
# Real servers delay failed logins; tests of wrong passwords need not wait for it.
auth_failure_delay = 0
# One file per user: Dovecot stats a passwd-file at most once a second, so a user added
# to a shared file could stay unknown for a second; a file not seen before is read at once.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {self.passwd_dir}/%n
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {self.passwd_dir}/%n
}}

mail_location = maildir:~/Maildir
mail_fsync = never
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}
}}

pop3_no_flag_updates = yes
pop3_uidl_format = %08Xu%08Xv
postmaster_address = postmaster@{DOMAIN}
lmtp_save_to_detail_mailbox = no
{capability}
protocol imap {{
  mail_max_userip_connections = 200
}}
protocol pop3 {{
  mail_max_userip_connections = 200
}}

service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.imap_direct_port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {self.host}
    port = {self.pop3_direct_port}
  }}
  inet_listener pop3s {{
    address = {self.host}
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
# Anvil's auth penalty delays every login from an IP by up to 15 s after a failure; tests of
# wrong passwords would slow down the next tests.  Without access to its socket the auth
# process runs without it.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
{self.extra_config}
"""

    # ----------------------------------------------------------------- users

    def _write_passwd(self, user: User) -> None:
        ids = f"{self.mail_uid}:{self.mail_gid}"
        line = f"{user.name}:{{PLAIN}}{user.password}:{ids}::{user.home}::\n"
        # Replace atomically so a concurrent lookup never reads half a file.
        tmp = self.passwd_dir / f".{user.name}.tmp"
        tmp.write_text(line)
        tmp.chmod(0o644)
        os.replace(tmp, self.passwd_dir / user.name)

    def add_user(self, name: str, password: str) -> User:
        """Add a user; usable at once, also while the server runs.

        Changing the password of an existing user may take a second to be seen (Dovecot
        re-reads a passwd-file at most once a second).
        """
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
            raise ValueError(f"unusable test user name: {name!r}")
        if ":" in password or "\n" in password:
            raise ValueError("password must not contain ':' or a newline")
        with self._lock:
            user = User(name, password, self.homes / name)
            self.users[name] = user
            self._passwords[name] = password
            self._make_home(user)
            self._write_passwd(user)
        return user

    @property
    def passwords(self) -> dict[str, str]:
        """Live name -> password map (the test SMTP server authenticates against it)."""
        return self._passwords

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.mail_uid, self.mail_gid)

    def _make_home(self, user: User) -> None:
        for path in (user.home, user.maildir):
            path.mkdir(mode=0o700, exist_ok=True)
            self._chown(path)
        self._ensure_maildir(user.maildir)

    def _ensure_maildir(self, path: Path) -> None:
        if (path / "tmp").is_dir():
            return
        path.mkdir(mode=0o700, exist_ok=True)
        self._chown(path)
        for sub in ("cur", "new", "tmp"):
            d = path / sub
            d.mkdir(mode=0o700, exist_ok=True)
            self._chown(d)
        if path.name.startswith("."):
            # Maildir++ marks subfolders so deliverers know it is not a top-level Maildir.
            marker = path / "maildirfolder"
            marker.touch(mode=0o600)
            self._chown(marker)

    def maildir_path(self, user: User, folder: str = "INBOX") -> Path:
        """The Maildir of `folder` ("INBOX", "Sent", "a/b" -> Maildir/.a.b)."""
        if folder.upper() == "INBOX":
            return user.maildir
        parts = folder.split("/")
        if any(p in ("", ".", "..") or "." in p for p in parts):
            raise ValueError(f"folder name not supported by the test helper: {folder!r}")
        return user.maildir / ("." + ".".join(parts))

    def reset_mailbox(self, user: User) -> None:
        """Empty every folder and drop Dovecot's indexes: a clean slate for `user`.

        Open sessions of the user are kicked first.  The `dovecot-uidvalidity` files are
        kept so that recreated folders get a new, larger UIDVALIDITY, as on a real server.
        """
        self.kick(user)
        keep = {
            p.name: p.read_bytes() for p in user.maildir.glob("dovecot-uidvalidity*") if p.is_file()
        }
        shutil.rmtree(user.home, ignore_errors=True)
        self._make_home(user)
        for name, data in keep.items():
            path = user.maildir / name
            path.write_bytes(data)
            self._chown(path)

    def kick(self, user: User) -> None:
        """Disconnect every session of `user` (no error if there is none)."""
        if self.running and DOVEADM is not None:
            subprocess.run(
                [DOVEADM, "-c", str(self.config_path), "kick", user.name],
                capture_output=True,
                timeout=10,
                check=False,
            )

    def doveadm(self, *args: str) -> str:
        """Run `doveadm -c CONF ARGS...` against this instance; returns stdout."""
        if DOVEADM is None:
            raise RuntimeError("doveadm is not installed")
        result = subprocess.run(
            [DOVEADM, "-c", str(self.config_path), *args],
            capture_output=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"doveadm {' '.join(args)} failed ({result.returncode}): "
                f"{result.stderr.decode(errors='replace')}"
            )
        return result.stdout.decode(errors="replace")

    def create_folder(self, user: User, folder: str, *, subscribe: bool = True) -> None:
        """Create a folder through Dovecot itself (so LIST and LSUB know it)."""
        args = ["mailbox", "create", "-u", user.name]
        if subscribe:
            args.append("-s")
        self.doveadm(*args, folder)

    # ----------------------------------------------------------------- delivery

    def _unique_name(self) -> str:
        now = time.time()
        sec = int(now)
        usec = int((now - sec) * 1_000_000)
        return f"{sec}.M{usec}P{os.getpid()}Q{next(self._seq)}.{self._hostname}"

    def deliver(
        self,
        user: User,
        raw: bytes,
        folder: str = "INBOX",
        flags: str = "",
        *,
        internaldate: float | None = None,
    ) -> Path:
        """Drop one message straight into the Maildir; returns its file.

        `flags` are Maildir letters (S seen, R answered, F flagged, T deleted, D draft,
        P passed); with none the message lands in new/ (IMAP \\Recent, unseen), else in cur/.
        `internaldate` (a Unix time) becomes the file's mtime, which Dovecot reports as
        INTERNALDATE.
        """
        return self.deliver_many(user, [raw], folder, flags, internaldate=internaldate)[0]

    def deliver_many(
        self,
        user: User,
        messages: Iterable[bytes],
        folder: str = "INBOX",
        flags: str = "",
        *,
        internaldate: float | None = None,
    ) -> list[Path]:
        """Deliver many messages quickly (no fsync, one write + rename each)."""
        bad = set(flags) - MAILDIR_FLAGS
        if bad:
            raise ValueError(f"not Maildir flags: {''.join(sorted(bad))}")
        info = ":2," + "".join(sorted(set(flags))) if flags else ""
        box = self.maildir_path(user, folder)
        if not (box / "tmp").is_dir() and self.running and folder.upper() != "INBOX":
            # Through Dovecot, so sessions that already listed folders see the new one too.
            self.create_folder(user, folder)
        self._ensure_maildir(box)
        tmp_dir = box / "tmp"
        dest_dir = box / ("cur" if info else "new")
        root = os.geteuid() == 0
        paths: list[Path] = []
        for raw in messages:
            name = self._unique_name()
            tmp = tmp_dir / name
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(raw)
                while view:
                    view = view[os.write(fd, view) :]
                if root:
                    os.fchown(fd, self.mail_uid, self.mail_gid)
            finally:
                os.close(fd)
            if internaldate is not None:
                os.utime(tmp, (internaldate, internaldate))
            dest = dest_dir / (name + info)
            os.rename(tmp, dest)
            paths.append(dest)
        return paths

    def messages(self, user: User, folder: str = "INBOX") -> Iterator[Path]:
        """The message files of a folder as they are on disk now (new/ then cur/)."""
        box = self.maildir_path(user, folder)
        for sub in ("new", "cur"):
            d = box / sub
            if d.is_dir():
                yield from sorted(d.iterdir())
