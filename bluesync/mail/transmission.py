"""
What one message may look like on the wire to one relay, given the SMTP
extensions the relay named in its EHLO answer.

A phone hands us whatever its user wrote: UTF-8 in headers, 8-bit text
bodies, an address like josé@exemple.fr.  A relay only takes that when it
says so:

- 8BITMIME (RFC 6152): 8-bit body data is declared with BODY=8BITMIME.
  A relay that does not offer it must never receive 8-bit data, so each
  8-bit MIME part is re-encoded (quoted-printable for mostly-ASCII text,
  base64 otherwise); the content the recipient reads is unchanged.
- SMTPUTF8 (RFC 6531): needed for an address whose local part is not
  ASCII, and for UTF-8 in header fields (RFC 6532).  Without it, a
  non-ASCII domain is sent as its A-label (IDNA), header fields are
  downgraded (RFC 2047 encoded words, RFC 2231 parameters, and the RFC
  6857 empty group for a non-ASCII address in a header), and only an
  envelope address that cannot be written in ASCII fails, with 553 5.6.7
  (RFC 6531 3.6, RFC 5248), so that its sender gets a non-delivery report.

Nothing here touches the network: L{plan} is pure, and the SMTP client in
outbound.py calls it once the relay has answered EHLO.  A message that
needs none of this is sent byte for byte as stored.
"""

from __future__ import annotations

import base64
import binascii
import email
import io
import urllib.parse
from dataclasses import dataclass, field
from email import policy as email_policy
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message
from email.utils import formataddr, getaddresses

from bluesync.items.mime import decode_8bit, unfold

EIGHTBITMIME = "8BITMIME"
SMTPUTF8 = "SMTPUTF8"

# RFC 6531 3.6 / RFC 5248: X.6.7, "Non-ASCII addresses not permitted for
# that sender/recipient".
NO_SMTPUTF8 = (553, "5.6.7 the relay does not offer SMTPUTF8, needed for this non-ASCII address")
# RFC 3463: X.1.3 bad destination mailbox address syntax (X.1.7 for the sender).
BAD_RECIPIENT_DOMAIN = (553, "5.1.3 the domain of this address is not a valid internationalized domain name")
BAD_SENDER_DOMAIN = (553, "5.1.7 the domain of the sender address is not a valid internationalized domain name")

# Header fields holding address lists (RFC 5322 3.6.2, 3.6.3, 3.6.6; RFC 8098).
_ADDRESS_FIELDS = frozenset({
    "from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-sender", "resent-to",
    "resent-cc", "resent-bcc", "disposition-notification-to",
})
# Header fields with MIME parameters (RFC 2045, RFC 2183).
_PARAMETER_FIELDS = frozenset({"content-type", "content-disposition"})

# Above this share of 8-bit bytes, base64 is smaller than quoted-printable.
_QP_MAX_8BIT_SHARE = 0.25

_POLICY = email_policy.compat32.clone(linesep="\r\n")


@dataclass(frozen=True)
class Transmission:
    """
    One message as it goes to one relay.  C{recipients} maps each queued
    recipient that is sent to its RCPT TO path; C{refused} each one that
    cannot be sent to this relay to its (code, text).
    """

    sender: bytes
    parameters: tuple[bytes, ...]
    recipients: dict[str, bytes]
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    data: bytes = b""


class _NeedsSMTPUTF8(Exception):
    """The address's local part is not ASCII."""


def wire_path(address: str, smtputf8: bool) -> bytes:
    """
    The envelope path for C{address}: ASCII when it can be (a non-ASCII
    domain becomes its A-label), UTF-8 when C{smtputf8} is in use.

    @raise _NeedsSMTPUTF8: only SMTPUTF8 could carry it, and it is off.
    @raise UnicodeError: the domain is not a valid IDN.
    """
    if address.isascii():
        return address.encode("ascii")
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    if local.isascii():
        ascii_domain = domain.encode("idna") if domain else b""
        return local.encode("ascii") + (b"@" + ascii_domain if at else b"")
    if not smtputf8:
        raise _NeedsSMTPUTF8(address)
    # Validates the domain even though its U-label form is sent.
    if domain and not domain.isascii():
        domain.encode("idna")
    return address.encode("utf-8")


def plan(sender: str, recipients: list[str], message: bytes, extensions: frozenset[str]) -> Transmission:
    """
    How to send C{message} from C{sender} to C{recipients} through a relay
    offering C{extensions} (upper-case EHLO keywords).
    """
    smtputf8 = SMTPUTF8 in extensions
    eightbit = EIGHTBITMIME in extensions
    refused: dict[str, tuple[int, str]] = {}
    try:
        sender_path = wire_path(sender, smtputf8)
    except _NeedsSMTPUTF8:
        return Transmission(b"", (), {}, {r: NO_SMTPUTF8 for r in recipients})
    except UnicodeError:
        return Transmission(b"", (), {}, {r: BAD_SENDER_DOMAIN for r in recipients})
    paths: dict[str, bytes] = {}
    for recipient in recipients:
        try:
            paths[recipient] = wire_path(recipient, smtputf8)
        except _NeedsSMTPUTF8:
            refused[recipient] = NO_SMTPUTF8
        except UnicodeError:
            refused[recipient] = BAD_RECIPIENT_DOMAIN
    if not paths:
        return Transmission(sender_path, (), {}, refused)
    data = message
    if not message.isascii():
        data = _convert(message, keep_utf8_headers=smtputf8, keep_8bit_bodies=eightbit)
    parameters = []
    if not data.isascii() and eightbit:
        parameters.append(b"BODY=8BITMIME")
    internationalized = not sender_path.isascii() or any(not p.isascii() for p in paths.values())
    if smtputf8 and (internationalized or _has_utf8_headers(data)):
        parameters.append(b"SMTPUTF8")
    return Transmission(sender_path, tuple(parameters), paths, refused, data)


# -- the message --------------------------------------------------------------


def _has_utf8_headers(data: bytes) -> bool:
    if data.isascii():
        return False
    parsed = email.message_from_bytes(data, policy=_POLICY)
    return any(not value.isascii() for part in parsed.walk() for _, value in part.raw_items())


def _convert(message: bytes, keep_utf8_headers: bool, keep_8bit_bodies: bool) -> bytes:
    """
    C{message} without what the relay cannot take; the original bytes when
    nothing had to change.
    """
    parsed = email.message_from_bytes(message, policy=_POLICY)
    changed = False
    for part in parsed.walk():
        if not keep_utf8_headers:
            changed |= _downgrade_headers(part)
        if not keep_8bit_bodies:
            changed |= _seven_bit_body(part)
    if not changed:
        return message
    out = io.BytesIO()
    BytesGenerator(out, mangle_from_=False, maxheaderlen=0, policy=_POLICY).flatten(parsed)
    return out.getvalue()


def _downgrade_headers(part: Message) -> bool:
    # As stored: items() would hand 8-bit values over as Header objects.
    items = list(part.raw_items())
    if all(value.isascii() for _, value in items):
        return False
    for name in {name for name, _ in items}:
        del part[name]
    for name, value in items:
        if not value.isascii():
            value = _downgraded(name, decode_8bit(unfold(value)))
        part[name] = value
    return True


def _downgraded(name: str, text: str) -> str:
    key = name.lower()
    if key in _ADDRESS_FIELDS:
        return ", ".join(_downgraded_address(display, address) for display, address in getaddresses([text]))
    if key in _PARAMETER_FIELDS:
        return _downgraded_parameters(text)
    return Header(" ".join(text.split()), "utf-8", header_name=name).encode(linesep="\r\n")


def _downgraded_address(display: str, address: str) -> str:
    try:
        path = wire_path(address, smtputf8=False).decode("ascii")
    except (_NeedsSMTPUTF8, UnicodeError):
        # RFC 6857 3.1.10: the address becomes the display name of an
        # empty group, so the reader still sees it.
        shown = f"{display} <{address}>" if display else address
        return Header(shown, "utf-8").encode() + " :;"
    if display and not display.isascii():
        return f"{Header(display, 'utf-8').encode()} <{path}>"
    return formataddr((display, path))


def _downgraded_parameters(text: str) -> str:
    """
    A Content-Type or Content-Disposition value with each non-ASCII
    parameter in RFC 2231 form (name*=utf-8''...).
    """
    value, _, rest = text.partition(";")
    pieces = [value.strip()]
    probe = Message()
    probe["Content-Type"] = "x/x;" + rest
    for key, param in probe.get_params(header="content-type")[1:]:
        param = email.utils.collapse_rfc2231_value(param)
        if param.isascii():
            pieces.append(f'{key}="{param}"' if param else key)
        else:
            pieces.append(f"{key}*=utf-8''{urllib.parse.quote(param, safe='')}")
    return "; ".join(pieces)


def _seven_bit_body(part: Message) -> bool:
    """
    Re-encode an 8-bit leaf part for a relay without 8BITMIME; mark a
    container whose parts are now 7-bit as such (RFC 2045 6.4: a
    multipart or message part is never encoded itself).
    """
    encoding = (part.get("Content-Transfer-Encoding") or "").strip().lower()
    if part.is_multipart():
        if encoding in ("8bit", "binary"):
            part.replace_header("Content-Transfer-Encoding", "7bit")
            return True
        return False
    payload = part.get_payload()
    if not isinstance(payload, str) or payload.isascii():
        return False
    content = part.get_payload(decode=True) or b""
    eight = sum(byte >= 0x80 for byte in content)
    if part.get_content_maintype() == "text" and eight <= len(content) * _QP_MAX_8BIT_SHARE:
        encoded = binascii.b2a_qp(content, istext=True).decode("ascii")
        new_encoding = "quoted-printable"
    else:
        # No line end after the last line: the boundary's own CRLF follows.
        encoded = base64.encodebytes(content).decode("ascii").rstrip("\n")
        new_encoding = "base64"
    del part["Content-Transfer-Encoding"]
    part["Content-Transfer-Encoding"] = new_encoding
    part.set_payload(encoded)
    return True
