"""The typed, documented config model.

One TOML file (see `tuimail.locations.config_file`). `load()` never raises on a bad file: it
returns the config it could build plus every problem found, each with the file, the key path
and a hint, so `tuimail config check` can report them all at once.

The schema below is the single source of truth: validation, defaults and the commented
example (`tuimail config example`) are all generated from it.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tuimail import locations
from tuimail.errors import ConfigError
from tuimail.models import Frozen, Protocol, TLSMode

# The types here are `Frozen` (see tuimail.models), not dataclasses: every `tuimail send`
# loads this module, and compiling dataclass methods for them cost ~8 ms of its start.
_set = object.__setattr__
_REQUIRED: Any = object()


class Field(Frozen):
    __slots__ = ("choices", "default", "doc", "example", "key", "kind")
    key: str
    kind: type
    doc: str
    default: Any
    choices: tuple[str, ...]
    example: Any

    def __init__(
        self,
        key: str,
        kind: type,
        doc: str,
        default: Any = _REQUIRED,
        choices: tuple[str, ...] = (),
        example: Any = None,
    ) -> None:
        _set(self, "key", key)
        _set(self, "kind", kind)
        _set(self, "doc", doc)
        _set(self, "default", default)
        _set(self, "choices", choices)
        _set(self, "example", example)

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


ACCOUNT_FIELDS = (
    Field("address", str, "Your email address for this account.", example="me@example.com"),
    Field("name", str, "Your name, shown in From.", "", example="Me Myself"),
    Field("default", bool, "Use this account when none is named (one account at most).", False),
    Field("aliases", list, "Other addresses of yours (left out of reply-all).", []),
    Field("signature", str, "Text appended to new messages after '-- '.", ""),
    Field(
        "trusted_authserv_id",
        str,
        "Your own server's Authentication-Results id; only that header is trusted.",
        "",
    ),
)

_SERVER_FIELDS = (
    Field("host", str, "Server host name.", example="mail.example.com"),
    Field("port", int, "Port; the default follows protocol and tls.", 0),
    Field(
        "tls",
        str,
        "implicit | starttls (required, never opportunistic) | none (needs allow_plaintext).",
        "implicit",
        ("implicit", "starttls", "none"),
    ),
    Field("username", str, "Login name; defaults to the account address.", ""),
    Field(
        "password_command",
        str,
        "Command printing the password (run without a shell unless it needs one). "
        "Default: the system keyring (`tuimail password set ACCOUNT`).",
        "",
        example="pass show mail/work",
    ),
    Field(
        "oauth2_token_command",
        str,
        "Command printing an OAuth2 access token; enables XOAUTH2/OAUTHBEARER.",
        "",
    ),
    Field(
        "auth",
        str,
        "auto | plain | login | xoauth2 | oauthbearer.",
        "auto",
        ("auto", "plain", "login", "xoauth2", "oauthbearer"),
    ),
    Field("ca_file", str, "Extra trust anchor (PEM) for a private CA.", ""),
    Field(
        "allow_plaintext",
        bool,
        "Allow tls = none; only to a loopback address (127.0.0.1, ::1, localhost).",
        False,
    ),
    Field("timeout", float, "Seconds before a silent server is given up on.", 30.0),
)

INCOMING_FIELDS = (
    Field(
        "protocol",
        str,
        "imap | pop3 | maildir (a local Maildir).",
        "imap",
        ("imap", "pop3", "maildir"),
    ),
    *_SERVER_FIELDS,
    Field("path", str, "For protocol = maildir: the Maildir to open.", ""),
    Field(
        "bodies",
        str,
        "IMAP: which bodies to download ahead of reading: all | recent | none.",
        "recent",
        ("all", "recent", "none"),
    ),
    Field("recent_days", int, "With bodies = recent: how many days back.", 30),
    Field("subscribed_only", bool, "IMAP: sync only subscribed folders.", False),
    Field("leave_on_server", bool, "POP3: keep messages on the server after download.", True),
    Field(
        "delete_after_days",
        int,
        "POP3: delete from the server N days after download (0 = never).",
        0,
    ),
    Field(
        "max_message_size",
        int,
        "Refuse to download messages larger than this (bytes).",
        50 * 1024 * 1024,
    ),
    Field("poll_interval", int, "Seconds between checks when the server cannot IDLE (POP3).", 300),
)

OUTGOING_FIELDS = (
    *(
        f if f.key != "tls" else Field(f.key, f.kind, f.doc, "starttls", f.choices)
        for f in _SERVER_FIELDS
    ),
    Field("save_sent", bool, "Save a copy to Sent (false when the server does it itself).", True),
)

UI_FIELDS = (
    Field("theme", str, "Theme name (see `themes/`), or empty for automatic.", ""),
    Field(
        "layout", str, "panes (list + preview) | pager (mutt-style).", "panes", ("panes", "pager")
    ),
    Field("mouse", bool, "Mouse support (turn off over slow ssh links).", True),
    Field("bell", bool, "Ring the terminal bell on new mail.", False),
    Field("page_scroll", bool, "Scroll by pages instead of lines (fewer bytes over ssh).", False),
    Field("threads", bool, "Show conversations as threads.", True),
    Field(
        "sort", str, "date | from | subject | size.", "date", ("date", "from", "subject", "size")
    ),
    Field("keys", dict, 'Key bindings: action = "key,key".', {}),
)

DEFAULT_PORTS: Mapping[tuple[str, str], int] = {
    ("imap", "implicit"): 993,
    ("imap", "starttls"): 143,
    ("imap", "none"): 143,
    ("pop3", "implicit"): 995,
    ("pop3", "starttls"): 110,
    ("pop3", "none"): 110,
    ("smtp", "implicit"): 465,
    ("smtp", "starttls"): 587,
    ("smtp", "none"): 25,
}

LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


class Problem(Frozen):
    __slots__ = ("file", "hint", "key", "message")
    file: str
    key: str
    message: str
    hint: str

    def __init__(self, file: str, key: str, message: str, hint: str = "") -> None:
        _set(self, "file", file)
        _set(self, "key", key)
        _set(self, "message", message)
        _set(self, "hint", hint)

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        text = f"{where}: {self.message}"
        return f"{text}\n    hint: {self.hint}" if self.hint else text


class ServerConfig(Frozen):
    __slots__ = (
        "allow_plaintext", "auth", "ca_file", "host", "oauth2_token_command",
        "password_command", "port", "timeout", "tls", "username",
    )  # fmt: skip
    host: str
    port: int
    tls: TLSMode
    username: str
    password_command: str
    oauth2_token_command: str
    auth: str
    ca_file: Path | None
    allow_plaintext: bool
    timeout: float

    def __init__(
        self,
        host: str,
        port: int,
        tls: TLSMode,
        username: str,
        password_command: str = "",
        oauth2_token_command: str = "",
        auth: str = "auto",
        ca_file: Path | None = None,
        allow_plaintext: bool = False,
        timeout: float = 30.0,
    ) -> None:
        _set(self, "host", host)
        _set(self, "port", port)
        _set(self, "tls", tls)
        _set(self, "username", username)
        _set(self, "password_command", password_command)
        _set(self, "oauth2_token_command", oauth2_token_command)
        _set(self, "auth", auth)
        _set(self, "ca_file", ca_file)
        _set(self, "allow_plaintext", allow_plaintext)
        _set(self, "timeout", timeout)


class IncomingConfig(ServerConfig):
    __slots__ = (
        "bodies", "delete_after_days", "leave_on_server", "max_message_size", "path",
        "poll_interval", "protocol", "recent_days", "subscribed_only",
    )  # fmt: skip
    protocol: Protocol
    path: Path | None
    bodies: str
    recent_days: int
    subscribed_only: bool
    leave_on_server: bool
    delete_after_days: int
    max_message_size: int
    poll_interval: int

    def __init__(
        self,
        host: str,
        port: int,
        tls: TLSMode,
        username: str,
        password_command: str = "",
        oauth2_token_command: str = "",
        auth: str = "auto",
        ca_file: Path | None = None,
        allow_plaintext: bool = False,
        timeout: float = 30.0,
        protocol: Protocol = Protocol.IMAP,
        path: Path | None = None,
        bodies: str = "recent",
        recent_days: int = 30,
        subscribed_only: bool = False,
        leave_on_server: bool = True,
        delete_after_days: int = 0,
        max_message_size: int = 50 * 1024 * 1024,
        poll_interval: int = 300,
    ) -> None:
        super().__init__(
            host,
            port,
            tls,
            username,
            password_command,
            oauth2_token_command,
            auth,
            ca_file,
            allow_plaintext,
            timeout,
        )
        _set(self, "protocol", protocol)
        _set(self, "path", path)
        _set(self, "bodies", bodies)
        _set(self, "recent_days", recent_days)
        _set(self, "subscribed_only", subscribed_only)
        _set(self, "leave_on_server", leave_on_server)
        _set(self, "delete_after_days", delete_after_days)
        _set(self, "max_message_size", max_message_size)
        _set(self, "poll_interval", poll_interval)


class OutgoingConfig(ServerConfig):
    __slots__ = ("save_sent",)
    save_sent: bool

    def __init__(
        self,
        host: str,
        port: int,
        tls: TLSMode,
        username: str,
        password_command: str = "",
        oauth2_token_command: str = "",
        auth: str = "auto",
        ca_file: Path | None = None,
        allow_plaintext: bool = False,
        timeout: float = 30.0,
        save_sent: bool = True,
    ) -> None:
        super().__init__(
            host,
            port,
            tls,
            username,
            password_command,
            oauth2_token_command,
            auth,
            ca_file,
            allow_plaintext,
            timeout,
        )
        _set(self, "save_sent", save_sent)


class AccountConfig(Frozen):
    __slots__ = (
        "address", "aliases", "default", "display_name", "incoming", "name", "outgoing",
        "signature", "trusted_authserv_id",
    )  # fmt: skip
    name: str  # the key under [accounts]
    address: str
    display_name: str
    default: bool
    aliases: tuple[str, ...]
    signature: str
    trusted_authserv_id: str
    incoming: IncomingConfig | None
    outgoing: OutgoingConfig | None

    def __init__(
        self,
        name: str,
        address: str,
        display_name: str = "",
        default: bool = False,
        aliases: tuple[str, ...] = (),
        signature: str = "",
        trusted_authserv_id: str = "",
        incoming: IncomingConfig | None = None,
        outgoing: OutgoingConfig | None = None,
    ) -> None:
        _set(self, "name", name)
        _set(self, "address", address)
        _set(self, "display_name", display_name)
        _set(self, "default", default)
        _set(self, "aliases", aliases)
        _set(self, "signature", signature)
        _set(self, "trusted_authserv_id", trusted_authserv_id)
        _set(self, "incoming", incoming)
        _set(self, "outgoing", outgoing)

    def my_addresses(self) -> tuple[str, ...]:
        return (self.address.lower(), *(a.lower() for a in self.aliases))


class UIConfig(Frozen):
    __slots__ = ("bell", "keys", "layout", "mouse", "page_scroll", "sort", "theme", "threads")
    theme: str
    layout: str
    mouse: bool
    bell: bool
    page_scroll: bool
    threads: bool
    sort: str
    keys: Mapping[str, str]

    def __init__(
        self,
        theme: str = "",
        layout: str = "panes",
        mouse: bool = True,
        bell: bool = False,
        page_scroll: bool = False,
        threads: bool = True,
        sort: str = "date",
        keys: Mapping[str, str] | None = None,
    ) -> None:
        _set(self, "theme", theme)
        _set(self, "layout", layout)
        _set(self, "mouse", mouse)
        _set(self, "bell", bell)
        _set(self, "page_scroll", page_scroll)
        _set(self, "threads", threads)
        _set(self, "sort", sort)
        _set(self, "keys", {} if keys is None else keys)


class Config(Frozen):
    __slots__ = ("accounts", "path", "ui")
    path: Path | None
    accounts: Mapping[str, AccountConfig]
    ui: UIConfig

    def __init__(
        self,
        path: Path | None = None,
        accounts: Mapping[str, AccountConfig] | None = None,
        ui: UIConfig | None = None,
    ) -> None:
        _set(self, "path", path)
        _set(self, "accounts", {} if accounts is None else accounts)
        _set(self, "ui", UIConfig() if ui is None else ui)

    def account(self, name: str | None = None) -> AccountConfig:
        """The named account, or the default one; ConfigError says what exists."""
        if not self.accounts:
            raise ConfigError(
                f"No accounts are configured in {self.path or locations.config_file()}.",
                "No accounts",
            )
        if name is None:
            for acct in self.accounts.values():
                if acct.default:
                    return acct
            return next(iter(self.accounts.values()))
        try:
            return self.accounts[name]
        except KeyError:
            known = ", ".join(self.accounts)
            raise ConfigError(f"No account named {name!r}; configured: {known}.") from None


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _Checker:
    """Validates one section against its field list, collecting problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, key: str, message: str, hint: str = "") -> None:
        self.problems.append(Problem(self.file, key, message, hint))

    def section(self, path: str, raw: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.add(path, f"must be a table, not {_type_name(raw)}", f"write it as [{path}]")
            raw = {}
        known = {f.key: f for f in fields}
        values: dict[str, Any] = {}
        for key in raw:
            if key not in known and not isinstance(raw[key], dict):
                import difflib  # only for a mistyped key

                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(known)
                self.add(f"{path}.{key}", "unknown key", hint)
        for f in fields:
            if f.key not in raw:
                if f.required:
                    self.add(f"{path}.{f.key}", "is required", f.doc)
                    values[f.key] = None
                else:
                    values[f.key] = f.default
                continue
            value = raw[f.key]
            if f.kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, f.kind) or (f.kind is int and isinstance(value, bool)):
                self.add(
                    f"{path}.{f.key}",
                    f"must be {_kind_name(f.kind)}, not {_type_name(value)}",
                    f.doc,
                )
                value = None if f.required else f.default
            elif f.choices and value not in f.choices:
                self.add(
                    f"{path}.{f.key}",
                    f"must be one of {', '.join(f.choices)}, not {value!r}",
                    f.doc,
                )
                value = None if f.required else f.default
            values[f.key] = value
        return values


def _kind_name(kind: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        bool: "true or false",
        float: "a number",
        list: "a list",
        dict: "a table",
    }.get(kind, kind.__name__)


def _type_name(value: Any) -> str:
    return {
        str: "a string",
        int: "an integer",
        bool: "a boolean",
        float: "a number",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _server(
    check: _Checker, path: str, values: dict[str, Any], address: str, service: str
) -> dict[str, Any]:
    tls = values["tls"] or "implicit"
    port = values["port"] or DEFAULT_PORTS.get((service, tls), 0)
    if not 0 < port < 65536:
        check.add(f"{path}.port", f"{port} is not a valid port", "use 1-65535, or leave it out")
    host = values["host"] or ""
    if tls == "none":
        if not values["allow_plaintext"]:
            check.add(
                f"{path}.tls",
                'tls = "none" sends your password in the clear',
                'use "implicit" or "starttls"; for a local test server set allow_plaintext = true',
            )
        elif host and not is_loopback(host):
            check.add(
                f"{path}.allow_plaintext",
                f"plaintext is only allowed to a loopback address, not {host!r}",
                'use tls = "implicit" or "starttls"',
            )
    ca_file = None
    if values["ca_file"]:
        ca_file = Path(values["ca_file"]).expanduser()
        if not ca_file.is_file():
            check.add(f"{path}.ca_file", f"{ca_file} does not exist", "give the path of a PEM file")
    if values["password_command"] and values["oauth2_token_command"]:
        check.add(
            f"{path}.oauth2_token_command",
            "both password_command and oauth2_token_command are set",
            "keep the one your server uses",
        )
    if values["auth"] in ("xoauth2", "oauthbearer") and not values["oauth2_token_command"]:
        check.add(f"{path}.auth", f"auth = {values['auth']!r} needs oauth2_token_command")
    return {
        "host": host,
        "port": port,
        "tls": TLSMode(tls),
        "username": values["username"] or address or "",
        "password_command": values["password_command"],
        "oauth2_token_command": values["oauth2_token_command"],
        "auth": values["auth"],
        "ca_file": ca_file,
        "allow_plaintext": values["allow_plaintext"],
        "timeout": values["timeout"],
    }


def _incoming(check: _Checker, path: str, raw: Any, address: str) -> IncomingConfig:
    fields: tuple[Field, ...] = INCOMING_FIELDS
    if isinstance(raw, dict) and raw.get("protocol") == "maildir":
        # A local Maildir has no server: host is not required.
        fields = tuple(Field(f.key, f.kind, f.doc, "") if f.key == "host" else f for f in fields)
    values = check.section(path, raw, fields)
    protocol = Protocol(values["protocol"] or "imap")
    local_path = None
    if protocol is Protocol.MAILDIR:
        if not values["path"]:
            check.add(
                f"{path}.path", 'is required for protocol = "maildir"', "the Maildir directory"
            )
        else:
            local_path = Path(values["path"]).expanduser()
        values["host"] = values["host"] or "localhost"
        server = _server(check, path, {**values, "tls": "implicit"}, address, "imap")
    else:
        server = _server(check, path, values, address, protocol.value)
    for key in ("recent_days", "delete_after_days", "max_message_size", "poll_interval"):
        if values[key] < 0:
            check.add(f"{path}.{key}", "must not be negative")
    return IncomingConfig(
        **server,
        protocol=protocol,
        path=local_path,
        bodies=values["bodies"],
        recent_days=values["recent_days"],
        subscribed_only=values["subscribed_only"],
        leave_on_server=values["leave_on_server"],
        delete_after_days=values["delete_after_days"],
        max_message_size=values["max_message_size"],
        poll_interval=values["poll_interval"],
    )


def _outgoing(check: _Checker, path: str, raw: Any, address: str) -> OutgoingConfig:
    values = check.section(path, raw, OUTGOING_FIELDS)
    return OutgoingConfig(
        **_server(check, path, values, address, "smtp"), save_sent=values["save_sent"]
    )


def parse(data: Mapping[str, Any], file: str = "<config>") -> tuple[Config, list[Problem]]:
    """Build a Config from already-decoded TOML; pure."""
    check = _Checker(file)
    for key in data:
        if key not in ("accounts", "ui"):
            check.add(key, "unknown section", "the sections are [accounts.NAME] and [ui]")
    ui_values = check.section("ui", data.get("ui", {}), UI_FIELDS)
    keys = ui_values.get("keys") or {}
    for action, binding in keys.items():
        if not isinstance(binding, str):
            check.add(f"ui.keys.{action}", 'must be a string like "j,down"')
    ui = UIConfig(**{**ui_values, "keys": {k: v for k, v in keys.items() if isinstance(v, str)}})

    accounts: dict[str, AccountConfig] = {}
    raw_accounts = data.get("accounts", {})
    if not isinstance(raw_accounts, dict):
        check.add("accounts", "must be a table of accounts", "write [accounts.NAME]")
        raw_accounts = {}
    for name, raw in raw_accounts.items():
        path = f"accounts.{name}"
        values = check.section(path, raw, ACCOUNT_FIELDS)
        raw = raw if isinstance(raw, dict) else {}
        for key in raw:
            if isinstance(raw[key], dict) and key not in ("incoming", "outgoing"):
                check.add(
                    f"{path}.{key}", "unknown section", "an account has [incoming] and [outgoing]"
                )
        address = values["address"] or ""
        if address and "@" not in address:
            check.add(f"{path}.address", f"{address!r} is not an email address")
        aliases = values["aliases"] or []
        if not all(isinstance(a, str) for a in aliases):
            check.add(f"{path}.aliases", "must be a list of strings")
            aliases = []
        incoming = (
            _incoming(check, f"{path}.incoming", raw["incoming"], address)
            if "incoming" in raw
            else None
        )
        outgoing = (
            _outgoing(check, f"{path}.outgoing", raw["outgoing"], address)
            if "outgoing" in raw
            else None
        )
        if incoming is None and outgoing is None:
            check.add(path, "has neither [incoming] nor [outgoing]", f"add [{path}.incoming]")
        accounts[name] = AccountConfig(
            name=name,
            address=address,
            display_name=values["name"],
            default=values["default"],
            aliases=tuple(aliases),
            signature=values["signature"],
            trusted_authserv_id=values["trusted_authserv_id"],
            incoming=incoming,
            outgoing=outgoing,
        )
    defaults = [a.name for a in accounts.values() if a.default]
    if len(defaults) > 1:
        check.add(
            "accounts", f"several accounts say default = true: {', '.join(defaults)}", "keep one"
        )
    return Config(
        path=Path(file) if file != "<config>" else None, accounts=accounts, ui=ui
    ), check.problems


def load(path: Path | None = None) -> tuple[Config, list[Problem]]:
    """Read and validate the config file; never raises for a bad file."""
    path = path or locations.config_file()
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config(path=path), [
            Problem(file, "", "no config file", "create one: tuimail config example > " + file)
        ]
    except (OSError, UnicodeDecodeError) as exc:
        return Config(path=path), [Problem(file, "", f"cannot read: {exc}")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Config(path=path), [
            Problem(file, "", f"not valid TOML: {exc}", "check quotes and brackets")
        ]
    config, problems = parse(data, file)
    return Config(path=path, accounts=config.accounts, ui=config.ui), problems


def load_or_raise(path: Path | None = None) -> Config:
    config, problems = load(path)
    if problems:
        raise ConfigError("\n".join(str(p) for p in problems), "Configuration problem")
    return config


def _example_lines(
    section: str, fields: tuple[Field, ...], overrides: Mapping[str, Any]
) -> list[str]:
    lines = [f"[{section}]"]
    for f in fields:
        lines.append(f"# {f.doc}")
        value = overrides.get(f.key, f.example if f.example is not None else f.default)
        line = f"{f.key} = {_toml_value(value)}"
        lines.append(line if f.key in overrides or f.required else "# " + line)
    return lines


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def example() -> str:
    """A commented example config, generated from the schema so it never drifts."""
    parts = [
        "# tuimail configuration: " + str(locations.config_file()),
        "# Check it with: tuimail config check",
        "# Store a password in the keyring with: tuimail password set work",
        "",
        *_example_lines("accounts.work", ACCOUNT_FIELDS, {"default": True}),
        "",
        *_example_lines(
            "accounts.work.incoming",
            INCOMING_FIELDS,
            {"protocol": "imap", "host": "imap.example.com", "port": 993, "tls": "implicit"},
        ),
        "",
        *_example_lines(
            "accounts.work.outgoing",
            OUTGOING_FIELDS,
            {"host": "smtp.example.com", "port": 587, "tls": "starttls"},
        ),
        "",
        *_example_lines("ui", UI_FIELDS, {}),
        "",
    ]
    return "\n".join(parts)
