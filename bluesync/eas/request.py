"""
MS-ASHTTP request lines: the plain and the base64 query forms.

Both forms are reduced to one L{EASRequest}, so commands never see how the
device spelled its request.  Parsing is pure and strict: anything malformed
raises L{RequestError}, which the resource answers with HTTP 400.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

SUPPORTED_VERSIONS = ("12.1", "14.0", "14.1", "16.0", "16.1")

# MS-ASHTTP 2.2.1.1.1.1.2: command codes of the base64 form.
COMMAND_CODES = {
    0: "Sync",
    1: "SendMail",
    2: "SmartForward",
    3: "SmartReply",
    4: "GetAttachment",
    9: "FolderSync",
    10: "FolderCreate",
    11: "FolderDelete",
    12: "FolderUpdate",
    13: "MoveItems",
    14: "GetItemEstimate",
    15: "MeetingResponse",
    16: "Search",
    17: "Settings",
    18: "Ping",
    19: "ItemOperations",
    20: "Provision",
    21: "ResolveRecipients",
    22: "ValidateCert",
    23: "Find",
}
COMMAND_NAMES = frozenset(COMMAND_CODES.values())

# MS-ASHTTP 2.2.1.1.1.1.3: command parameter tags of the base64 form.
_PARAMETER_TAGS = {
    0: "AttachmentName",
    1: "CollectionId",
    3: "ItemId",
    4: "LongId",
    6: "Occurrence",
    7: "Options",
    8: "User",
}
_PLAIN_PARAMETERS = frozenset(
    {"AttachmentName", "CollectionId", "ItemId", "LongId", "Occurrence", "SaveInSent", "User"}
)

_OPTION_SAVE_IN_SENT = 0x01
_OPTION_ACCEPT_MULTIPART = 0x02

# DeviceId: up to 32 alphanumeric characters in the plain form (MS-ASHTTP
# 2.2.1.1.1.2.3); some clients use dashes or underscores, which are harmless.
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DEVICE_TYPE = re.compile(r"^[\x21-\x7e]{1,64}$")


class RequestError(ValueError):
    """
    The request line or headers are malformed (HTTP 400).
    """


@dataclass(frozen=True, slots=True)
class EASRequest:
    command: str
    device_id: str
    device_type: str
    version: str
    user: str = ""
    policy_key: int | None = None
    locale: int | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    save_in_sent: bool = False
    accept_multipart: bool = False
    user_agent: str = ""


def _version_from_header(value: str | None) -> str:
    if value is None:
        # MS-ASHTTP makes the header mandatory; very old clients omitted it
        # and meant 12.1 at best.  Refusing would strand them, so assume the
        # oldest version we speak.
        return "12.1"
    value = value.strip()
    if value not in SUPPORTED_VERSIONS:
        raise RequestError(f"unsupported MS-ASProtocolVersion {value!r}")
    return value


def _policy_key_from_header(value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        key = int(value.strip())
    except ValueError:
        raise RequestError(f"X-MS-PolicyKey {value!r} is not a number") from None
    if not 0 <= key <= 0xFFFFFFFF:
        raise RequestError("X-MS-PolicyKey out of range")
    return key


def parse_request(query: bytes, headers: dict[str, str]) -> EASRequest:
    """
    Parse the query string (without the leading '?') and the relevant
    headers (lower-case names).
    """
    text = query.decode("ascii", "replace")
    # Base64 may end in '=' padding, so look for a plain-form key instead.
    if "&" in text or "Cmd=" in text:
        return _parse_plain(text, headers)
    return _parse_base64(text, headers)


def _parse_plain(text: str, headers: dict[str, str]) -> EASRequest:
    values: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, strict_parsing=False):
        if name in values:
            raise RequestError(f"query parameter {name} repeated")
        values[name] = value
    command = values.pop("Cmd", None)
    device_id = values.pop("DeviceId", None)
    device_type = values.pop("DeviceType", None)
    if not command:
        raise RequestError("missing Cmd")
    if command not in COMMAND_NAMES:
        raise RequestError(f"unknown command {command!r}")
    if not device_id or not _DEVICE_ID.match(device_id):
        raise RequestError("missing or malformed DeviceId")
    if not device_type or not _DEVICE_TYPE.match(device_type):
        raise RequestError("missing or malformed DeviceType")
    user = values.pop("User", "")
    parameters = {}
    for name, value in values.items():
        if name in _PLAIN_PARAMETERS:
            parameters[name] = value
        # Unknown parameters are ignored: clients add their own (e.g. the
        # locale) and MS-ASHTTP does not ask servers to refuse them.
    save_in_sent = parameters.pop("SaveInSent", "F").upper() == "T"
    return EASRequest(
        command=command,
        device_id=device_id,
        device_type=device_type,
        version=_version_from_header(headers.get("ms-asprotocolversion")),
        user=user,
        policy_key=_policy_key_from_header(headers.get("x-ms-policykey")),
        parameters=parameters,
        save_in_sent=save_in_sent,
        accept_multipart=headers.get("ms-asacceptmultipart", "").strip().upper() == "T",
        user_agent=headers.get("user-agent", ""),
    )


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, count: int, what: str) -> bytes:
        end = self.offset + count
        if end > len(self.data):
            raise RequestError(f"base64 query truncated in {what}")
        chunk = self.data[self.offset:end]
        self.offset = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def counted(self, what: str) -> bytes:
        return self.take(self.byte(what), what)

    @property
    def done(self) -> bool:
        return self.offset >= len(self.data)


def _parse_base64(text: str, headers: dict[str, str]) -> EASRequest:
    try:
        raw = base64.b64decode(unquote(text), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("query is neither plain nor valid base64") from None
    reader = _Reader(raw)
    version_number = reader.byte("protocol version")
    version = f"{version_number // 10}.{version_number % 10}"
    if version not in SUPPORTED_VERSIONS:
        raise RequestError(f"unsupported protocol version {version_number}")
    code = reader.byte("command code")
    command = COMMAND_CODES.get(code)
    if command is None:
        raise RequestError(f"unknown command code {code}")
    (locale,) = struct.unpack("<H", reader.take(2, "locale"))
    device_id_bytes = reader.counted("device id")
    if not device_id_bytes:
        raise RequestError("empty device id")
    # The base64 form carries the DeviceId as raw bytes; hex keeps it a
    # printable, stable key shared with the plain form's alphabet.
    device_id = device_id_bytes.hex().upper()
    policy_bytes = reader.counted("policy key")
    if len(policy_bytes) not in (0, 4):
        raise RequestError("policy key must be 0 or 4 bytes")
    policy_key = struct.unpack("<I", policy_bytes)[0] if policy_bytes else None
    device_type_bytes = reader.counted("device type")
    try:
        device_type = device_type_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise RequestError("device type is not ASCII") from None
    if not _DEVICE_TYPE.match(device_type):
        raise RequestError("missing or malformed device type")
    parameters: dict[str, str] = {}
    options = 0
    user = ""
    while not reader.done:
        tag = reader.byte("parameter tag")
        value = reader.counted("parameter value")
        name = _PARAMETER_TAGS.get(tag)
        if name is None:
            raise RequestError(f"unknown parameter tag {tag}")
        if name == "Options":
            options = value[0] if value else 0
            continue
        try:
            decoded = value.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(f"parameter {name} is not UTF-8") from None
        if name == "User":
            user = decoded
        else:
            parameters[name] = decoded
    return EASRequest(
        command=command,
        device_id=device_id,
        device_type=device_type,
        version=version,
        user=user,
        policy_key=policy_key,
        locale=locale,
        parameters=parameters,
        save_in_sent=bool(options & _OPTION_SAVE_IN_SENT),
        accept_multipart=bool(options & _OPTION_ACCEPT_MULTIPART)
        or headers.get("ms-asacceptmultipart", "").strip().upper() == "T",
        user_agent=headers.get("user-agent", ""),
    )
