"""
Autodiscover for mobile sync (MS-ASCMD 2.2.1.1): a phone given only an
address and a password POSTs a small XML document to
/autodiscover/autodiscover.xml on the address's domain and learns the URL
of the ActiveSync endpoint, so the user never types a server name.

The request is plain XML, not WBXML, and it arrives from the Internet: it
is read with a size limit, parsed by lxml with no entity expansion, no DTD
and no network access, and a document with a DOCTYPE is refused outright.

Authentication is the same as the ActiveSync endpoint's (the same portal,
checker and login throttle), so Autodiscover is not a second door for
guessing passwords.  The address asked about must be the signed-in
account's own address or one of its aliases.  Anything else is answered
with the same error whether or not that address exists, and nothing is
looked up for it, so an account cannot probe for others.

Errors are the ones the schema defines, in an HTTP 200 as Exchange sends
them: 600 "Invalid Request" for a malformed document, 601 when the client
asks for a response schema we do not serve (Outlook desktop asks for the
"outlook" one: we only serve mobilesync), and an Action/Error with Status 2
for an address that is not the account's.  Each has a log line.
"""

from __future__ import annotations

import re
import zlib
from datetime import datetime, timezone

from lxml import etree
from twisted.logger import Logger
from twisted.web import resource
from zope.interface import Attribute, Interface

from bluesync.eas.context import ServerContext
from bluesync.store.accounts import Account, normalise_address
from bluesync.store.database import DATABASE_DOWN
from bluesync.web.rendering import Response

log = Logger()

REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"
RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
MOBILESYNC_NS = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"

FILE_NAME = b"autodiscover.xml"
EAS_PATH = "/Microsoft-Server-ActiveSync"

# A real request is a few hundred bytes; anything this large is not one.
MAX_REQUEST = 16 * 1024

INVALID_REQUEST = 600
PROVIDER_UNAVAILABLE = 601
_ERROR_MESSAGES = {
    INVALID_REQUEST: "Invalid Request",
    PROVIDER_UNAVAILABLE: "Provider is not available for the requested schema",
}

# A Host header we are willing to put in a URL: a name or IPv4 address, or
# a bracketed IPv6 address, and an optional port.
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$")

_XML_HEADERS = {"content-type": "text/xml; charset=utf-8", "cache-control": "private, no-store"}


class IAutodiscover(Interface):
    """
    The avatar an account gets at the Autodiscover URL (the portal's
    realm hands out the ActiveSync resource for IResource).
    """

    account = Attribute("the signed-in Account")

    def respond(request):
        """
        Answer the request; a coroutine returning a L{Response}.
        """


class BadRequest(Exception):
    """
    The document is not an Autodiscover request; the message says why.
    """


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_pis=True, remove_comments=True)


def parse_request(body: bytes) -> tuple[str, str]:
    """
    The (EMailAddress, AcceptableResponseSchema) of a request document.

    Element names are matched whatever their namespace: clients disagree
    on it (Outlook uses its own request namespace), and what decides the
    answer is the schema the client accepts, not the one it wrote in.

    @raise BadRequest: not a well-formed request of the expected shape.
    """
    if len(body) > MAX_REQUEST:
        raise BadRequest(f"request of more than {MAX_REQUEST} bytes")
    if not body.strip():
        raise BadRequest("empty request")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as e:
        raise BadRequest(f"not well-formed XML: {e}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise BadRequest("a DOCTYPE is not allowed")
    if etree.QName(root).localname != "Autodiscover":
        raise BadRequest(f"root element {etree.QName(root).localname!r}, not Autodiscover")
    requests = [child for child in root if _local(child) == "Request"]
    if len(requests) != 1:
        raise BadRequest(f"{len(requests)} Request elements, not one")
    fields: dict[str, list[str]] = {}
    for child in requests[0]:
        fields.setdefault(_local(child), []).append((child.text or "").strip())
    values = {}
    for name in ("EMailAddress", "AcceptableResponseSchema"):
        found = fields.get(name, [])
        if len(found) != 1 or not found[0]:
            raise BadRequest(f"{len(found)} {name} elements, or an empty one")
        values[name] = found[0]
    return values["EMailAddress"], values["AcceptableResponseSchema"]


def _local(element) -> str:
    # Comments and processing instructions are removed by the parser, so
    # every child is an element.
    return etree.QName(element).localname


def _document(response: etree._Element) -> bytes:
    root = etree.Element(f"{{{RESPONSE_NS}}}Autodiscover", nsmap={None: RESPONSE_NS})
    root.append(response)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _sub(parent, name: str, text: str | None = None):
    element = etree.SubElement(parent, f"{{{MOBILESYNC_NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def _mobilesync_response():
    return etree.Element(f"{{{MOBILESYNC_NS}}}Response", nsmap={None: MOBILESYNC_NS})


def settings_document(account: Account, url: str) -> bytes:
    """
    The answer naming the account and its ActiveSync URL (MS-ASCMD 4.2.4).
    """
    response = _mobilesync_response()
    _sub(response, "Culture", "en:us")
    user = _sub(response, "User")
    _sub(user, "DisplayName", account.display_name or account.address)
    _sub(user, "EMailAddress", account.address)
    server = _sub(_sub(_sub(response, "Action"), "Settings"), "Server")
    _sub(server, "Type", "MobileSync")
    _sub(server, "Url", url)
    _sub(server, "Name", url)
    return _document(response)


def error_document(code: int, server_id: int, now: datetime) -> bytes:
    """
    A framework error, 600 or 601, as MS-ASCMD 4.2.3 shows it: Time is the
    time of day with seven decimals, Id a number naming this server.
    """
    response = _mobilesync_response()
    error = _sub(response, "Error")
    error.set("Time", now.strftime("%H:%M:%S.") + f"{now.microsecond:06d}0")
    error.set("Id", str(server_id))
    _sub(error, "ErrorCode", str(code))
    _sub(error, "Message", _ERROR_MESSAGES[code])
    _sub(error, "DebugData")
    return _document(response)


def action_error_document(message: str) -> bytes:
    """
    An error of the mobilesync provider itself (MS-ASCMD 4.2.2): Status 2.
    """
    response = _mobilesync_response()
    _sub(response, "Culture", "en:us")
    error = _sub(_sub(response, "Action"), "Error")
    _sub(error, "Status", "2")
    _sub(error, "Message", message)
    _sub(error, "DebugData")
    return _document(response)


def activesync_url(public_url: str, request, trusted_proxies=()) -> str:
    """
    The ActiveSync URL to hand out.  With [server] public_url set it is
    that URL (the base, or already ending in the ActiveSync path); without,
    it is built from the request's own scheme and Host header, which is the
    name the phone just reached us by.  Behind a trusted TLS proxy the
    scheme comes from its X-Forwarded-Proto.
    """
    if public_url:
        base = public_url.rstrip("/")
        if base.lower().endswith(EAS_PATH.lower()):
            return base
        return base + EAS_PATH
    scheme = "https" if request.isSecure() else "http"
    peer = request.getClientAddress()
    if str(getattr(peer, "host", peer)) in trusted_proxies:
        forwarded = (request.getHeader(b"x-forwarded-proto") or b"").decode("latin-1").strip().lower()
        if forwarded in ("http", "https"):
            scheme = forwarded
    host = (request.getHeader(b"host") or b"").decode("latin-1").strip()
    if not _HOST.match(host):
        address = request.getHost()
        host = f"{getattr(address, 'host', 'localhost')}:{getattr(address, 'port', '')}".rstrip(":")
    return f"{scheme}://{host}{EAS_PATH}"


class AutodiscoverResource:
    """
    Built per request by the realm, for the signed-in account.
    """

    def __init__(self, account: Account, server: ServerContext) -> None:
        self.account = account
        self.server = server

    def _error(self, code: int, reason: str) -> Response:
        log.info("autodiscover for {account}: error {code}: {reason}", account=self.account.address, code=code,
                 reason=reason)
        server_id = zlib.crc32(self.server.config.mail.hostname.encode("utf-8"))
        now = datetime.fromtimestamp(self.server.clock.seconds(), timezone.utc)
        return Response(200, error_document(code, server_id, now), dict(_XML_HEADERS))

    async def respond(self, request) -> Response:
        if request.method != b"POST":
            return self._error(INVALID_REQUEST, f"{request.method.decode('latin-1')} instead of POST")
        body = request.content.read(MAX_REQUEST + 1) if request.content is not None else b""
        try:
            address, schema = parse_request(body)
        except BadRequest as e:
            return self._error(INVALID_REQUEST, str(e))
        if schema != MOBILESYNC_NS:
            return self._error(PROVIDER_UNAVAILABLE, f"response schema {schema[:200]!r} requested")
        wanted = normalise_address(address)
        if wanted != self.account.address:
            try:
                aliases = await self.server.store.accounts.aliases(self.account.id)
            except DATABASE_DOWN as e:
                log.warn("autodiscover for {account}: database unavailable: {error}",
                         account=self.account.address, error=str(e))
                return Response(503, b"", {"retry-after": "30"})
            if wanted not in aliases:
                log.info("autodiscover for {account}: refused, {address!r} is not one of its addresses",
                         account=self.account.address, address=address[:320])
                return Response(200, action_error_document("The address is not one of the signed-in account's"),
                                dict(_XML_HEADERS))
        config = self.server.config
        url = activesync_url(config.server.public_url, request, config.login.trusted_proxies)
        log.info("autodiscover for {account}: {url}", account=self.account.address, url=url)
        return Response(200, settings_document(self.account, url), dict(_XML_HEADERS))


class AutodiscoverDirectory(resource.Resource):
    """
    /autodiscover/: its one file, whatever the case phones spell it in
    (/Autodiscover/Autodiscover.xml, /AutoDiscover/AutoDiscover.xml...).
    """

    def __init__(self, endpoint) -> None:
        super().__init__()
        self._endpoint = endpoint

    def getChild(self, path: bytes, request):
        if path.lower() == FILE_NAME:
            return self._endpoint
        return resource.NoResource()
