"""
The INI file, parsed once into frozen typed objects.

Every setting has a default that works alone, so an empty (or missing) file
gives a working server on loopback with an embedded PostgreSQL.  A bad file
or a bad value raises L{ConfigError} whose message names the setting; the
twistd plugin and the admin CLI print that one line and stop.

The objects are passed to whatever needs them; nothing imports a global
configuration.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


class ConfigError(Exception):
    """
    The configuration cannot be used.  The message is meant for a person
    and names the offending section and setting.
    """


@dataclass(frozen=True)
class ServerConfig:
    listen: tuple[str, ...] = ("tcp:8080:interface=127.0.0.1",)
    state_dir: Path = Path("./var")
    public_url: str = ""
    log_format: str = "text"
    max_request_body: int = 64 * 1024 * 1024
    realm: str = "bluesync"
    # The IANA zone of the users' clocks: reads birthdays, all-day dates and
    # floating times that arrive without a zone (EAS sends zones only with
    # calendar items).
    default_timezone: str = "UTC"


@dataclass(frozen=True)
class DatabaseConfig:
    dsn: str = ""
    pool_size: int = 8

    @property
    def embedded(self) -> bool:
        return not self.dsn


@dataclass(frozen=True)
class MailConfig:
    lmtp_listen: tuple[str, ...] = ("tcp:2424:interface=127.0.0.1",)
    max_message_size: int = 50 * 1024 * 1024
    hostname: str = "localhost"
    relay_host: str = ""
    relay_port: int = 25
    relay_starttls: str = "opportunistic"
    relay_username: str = ""
    # Kept out of repr() so that a logged config never shows it.
    relay_password: str = field(default="", repr=False)
    relay_timeout: float = 120.0
    # Seconds between delivery attempts to the relay; the last one repeats.
    retry_delays: tuple[float, ...] = (60.0, 300.0, 900.0, 3600.0, 7200.0, 14400.0)
    give_up_after: float = 2 * 86400.0
    # Days a MoveAlways rule lives without use (store/conversations.py); 0: for ever.
    conversation_rule_days: int = 30


@dataclass(frozen=True)
class PushConfig:
    min_heartbeat: int = 60
    max_heartbeat: int = 3540
    max_folders: int = 300


@dataclass(frozen=True)
class SyncConfig:
    time_budget: float = 25.0
    default_window_size: int = 100
    max_window_size: int = 512


@dataclass(frozen=True)
class PolicyConfig:
    password_required: bool = False
    min_password_length: int = 4
    alphanumeric_password_required: bool = False
    max_inactivity_lock: int = 900
    max_password_failures: int = 8
    allow_storage_card: bool = True
    require_device_encryption: bool = False
    allow_simple_password: bool = True
    password_expiration_days: int = 0
    password_history: int = 0
    attachments_enabled: bool = True
    max_attachment_size: int = 0
    unknown_device: str = "allow"


@dataclass(frozen=True)
class DevicesConfig:
    """
    Protection limits, with Exchange-like defaults.  0 disables a limit.
    """

    max_devices_per_account: int = 100
    # Requests of one account answered at the same time; held Pings and
    # Sync waits do not count.
    max_concurrent_requests: int = 10
    # Autoblock: Syncs answered with nothing, per device and minute; distinct
    # user agents per device and hour; and how long the block lasts.
    autoblock_empty_syncs: int = 150
    autoblock_user_agents: int = 5
    autoblock_duration: float = 3600.0


@dataclass(frozen=True)
class LoginConfig:
    """
    Throttling of failed logins (EAS and the admin page).
    """

    # Failures of one account from one address before each further attempt
    # waits: 1 s, doubling with each failure up to max_delay.
    failures_before_delay: int = 5
    max_delay: float = 900.0
    # Failures from one address, whatever the account, and of one account,
    # whatever the address, before that address (or every address that has
    # not logged in to the account successfully) waits the same way.
    address_failures: int = 30
    account_failures: int = 50
    # How long failures are remembered.
    window: float = 3600.0
    # Reverse proxies whose X-Forwarded-For names the real client address.
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdminConfig:
    listen: tuple[str, ...] = ("tcp:8081:interface=127.0.0.1",)
    session_lifetime: float = 8 * 3600.0


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    push: PushConfig = field(default_factory=PushConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    devices: DevicesConfig = field(default_factory=DevicesConfig)
    login: LoginConfig = field(default_factory=LoginConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)


def _endpoints(text: str) -> tuple[str, ...]:
    values = tuple(line.strip() for line in text.splitlines() if line.strip())
    for value in values:
        if ":" not in value:
            raise ValueError(f"{value!r} is not a Twisted endpoint string (e.g. tcp:8080)")
    return values


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "yes", "true", "on"):
        return True
    if lowered in ("0", "no", "false", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (yes/no)")


def _nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{value} is negative")
    return value


def _positive_number(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(f"{value} is not positive")
    return value


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> float:
    """
    Seconds, written as a number with an optional unit: 90, 90s, 5m, 1h, 2d.
    """
    value = text.strip().lower()
    unit = 1
    if value[-1:] in _DURATION_UNITS:
        unit = _DURATION_UNITS[value[-1]]
        value = value[:-1]
    seconds = float(value) * unit
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"{text.strip()!r} is not a positive duration (e.g. 30s, 5m, 1h, 2d)")
    return seconds


def _durations(text: str) -> tuple[float, ...]:
    values = tuple(_duration(part) for part in text.replace(",", " ").split())
    if not values:
        raise ValueError("at least one duration is needed")
    return values


def _timezone(text: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = text.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Paris)") from None
    return name


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return value

    return parse


# Section name -> (dataclass, {setting: parser}).  Settings absent from the
# table are refused, so a typo is an error instead of a silent default.
_SCHEMA: dict[str, tuple[type, dict[str, Callable[[str], Any]]]] = {
    "server": (
        ServerConfig,
        {
            "listen": _endpoints,
            "state_dir": lambda text: Path(text.strip()),
            "public_url": str.strip,
            "log_format": _choice("text", "json"),
            "max_request_body": _nonnegative_int,
            "realm": str.strip,
            "default_timezone": _timezone,
        },
    ),
    "database": (
        DatabaseConfig,
        {"dsn": str.strip, "pool_size": _nonnegative_int},
    ),
    "mail": (
        MailConfig,
        {
            "lmtp_listen": _endpoints,
            "max_message_size": _nonnegative_int,
            "hostname": str.strip,
            "relay_host": str.strip,
            "relay_port": _nonnegative_int,
            "relay_starttls": _choice("no", "opportunistic", "required"),
            "relay_username": str.strip,
            "relay_password": str.strip,
            "relay_timeout": _duration,
            "retry_delays": _durations,
            "give_up_after": _duration,
            "conversation_rule_days": _nonnegative_int,
        },
    ),
    "push": (
        PushConfig,
        {
            "min_heartbeat": _nonnegative_int,
            "max_heartbeat": _nonnegative_int,
            "max_folders": _nonnegative_int,
        },
    ),
    "sync": (
        SyncConfig,
        {
            "time_budget": _positive_number,
            "default_window_size": _nonnegative_int,
            "max_window_size": _nonnegative_int,
        },
    ),
    "policy": (
        PolicyConfig,
        {
            "password_required": _boolean,
            "min_password_length": _nonnegative_int,
            "alphanumeric_password_required": _boolean,
            "max_inactivity_lock": _nonnegative_int,
            "max_password_failures": _nonnegative_int,
            "allow_storage_card": _boolean,
            "require_device_encryption": _boolean,
            "allow_simple_password": _boolean,
            "password_expiration_days": _nonnegative_int,
            "password_history": _nonnegative_int,
            "attachments_enabled": _boolean,
            "max_attachment_size": _nonnegative_int,
            "unknown_device": _choice("allow", "quarantine", "block"),
        },
    ),
    "devices": (
        DevicesConfig,
        {
            "max_devices_per_account": _nonnegative_int,
            "max_concurrent_requests": _nonnegative_int,
            "autoblock_empty_syncs": _nonnegative_int,
            "autoblock_user_agents": _nonnegative_int,
            "autoblock_duration": _duration,
        },
    ),
    "login": (
        LoginConfig,
        {
            "failures_before_delay": _nonnegative_int,
            "max_delay": _duration,
            "address_failures": _nonnegative_int,
            "account_failures": _nonnegative_int,
            "window": _duration,
            "trusted_proxies": lambda text: tuple(text.replace(",", " ").split()),
        },
    ),
    "admin": (
        AdminConfig,
        {"listen": _endpoints, "session_lifetime": _duration},
    ),
}


def parse_config(text: str, source: str = "<config>", base: Path | None = None) -> Config:
    """
    Parse INI text.  A relative state directory is resolved against
    C{base}, by default the working directory, as twistd users expect.
    """
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    try:
        parser.read_string(text, source=source)
    except configparser.Error as e:
        raise ConfigError(f"{source}: {e.message.splitlines()[0]}") from None

    sections = {}
    for section in parser.sections():
        if section not in _SCHEMA:
            raise ConfigError(f"{source}: unknown section [{section}]")
    for name, (cls, settings) in _SCHEMA.items():
        values = {}
        if parser.has_section(name):
            for key, raw in parser.items(name):
                if key not in settings:
                    raise ConfigError(f"{source}: [{name}] {key}: unknown setting")
                try:
                    values[key] = settings[key](raw)
                except ValueError as e:
                    raise ConfigError(f"{source}: [{name}] {key}: {e}") from None
        sections[name] = cls(**values)

    config = Config(**sections)
    _check(config, source)
    state_dir = config.server.state_dir
    if not state_dir.is_absolute():
        state_dir = (base or Path.cwd()) / state_dir
    return dataclasses.replace(
        config, server=dataclasses.replace(config.server, state_dir=state_dir.resolve())
    )


def _check(config: Config, source: str) -> None:
    if not config.server.listen:
        raise ConfigError(f"{source}: [server] listen: at least one endpoint is needed")
    if config.push.min_heartbeat > config.push.max_heartbeat:
        raise ConfigError(f"{source}: [push] min_heartbeat: larger than max_heartbeat")
    if not 1 <= config.sync.max_window_size <= 512:
        raise ConfigError(f"{source}: [sync] max_window_size: must be 1 to 512")
    if not 1 <= config.sync.default_window_size <= config.sync.max_window_size:
        raise ConfigError(
            f"{source}: [sync] default_window_size: must be 1 to max_window_size"
        )
    if config.database.pool_size < 1:
        raise ConfigError(f"{source}: [database] pool_size: must be at least 1")


def load_config(path: str | os.PathLike | None = None) -> Config:
    """
    Load the file at C{path}.  With no path, the environment variable
    BLUESYNC_CONFIG names it; otherwise only defaults apply, which is what
    the one-command quick start relies on.  The sample etc/bluesync.ini is
    deliberately not read implicitly: a sample must never change behaviour.
    """
    if path is None:
        path = os.environ.get("BLUESYNC_CONFIG") or None
    if path is None:
        return parse_config("", "<defaults>")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_config(text, str(path))
