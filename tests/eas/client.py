"""
A small EAS client for end-to-end tests: builds requests from XML text (or
elements), encodes them with the bluesync codec, POSTs them to the real Site
over TCP and decodes the answer.
"""

from __future__ import annotations

import base64

import treq
from lxml import etree

from bluesync import wbxml

NS = {prefix: uri for prefix, uri in wbxml.NAMESPACES.items()}


def xml(text: str) -> etree._Element:
    """
    Parse request XML written as in the specs, e.g.
    '<Sync xmlns="AirSync:"><Collections>...</Collections></Sync>'.
    """
    return etree.fromstring(text.strip().encode("utf-8"))


def find(element, path: str):
    """
    XPath with the conventional prefixes (airsync:, email:, folderhierarchy:, ...).
    """
    return element.xpath(path, namespaces=NS)


def text(element, path: str) -> str | None:
    found = find(element, path)
    if not found:
        return None
    return found[0].text if hasattr(found[0], "text") else str(found[0])


class Answer:
    def __init__(self, code: int, headers, body: bytes) -> None:
        self.code = code
        self.headers = headers
        self.body = body
        self.document = wbxml.decode(body) if body and code == 200 and body[:1] == b"\x03" else None

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    def __repr__(self) -> str:
        pretty = etree.tostring(self.document, pretty_print=True).decode() if self.document is not None else self.body[:200]
        return f"<Answer {self.code} {pretty}>"


class EASClient:
    def __init__(self, base_url: str, user: str, password: str, *, device_id: str = "TESTDEVICE1",
                 device_type: str = "iPhone", version: str = "16.1", user_agent: str = "Apple-iPhone15C2/2301.341",
                 pool=None) -> None:
        self.base_url = base_url
        self.user = user
        self.password = password
        self.device_id = device_id
        self.device_type = device_type
        self.version = version
        self.user_agent = user_agent
        self.policy_key: str | None = None
        self.pool = pool

    def _headers(self, extra: dict | None) -> dict:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        headers = {
            "Authorization": [f"Basic {token}"],
            "MS-ASProtocolVersion": [self.version],
            "User-Agent": [self.user_agent],
            "Content-Type": ["application/vnd.ms-sync.wbxml"],
        }
        if self.policy_key is not None:
            headers["X-MS-PolicyKey"] = [self.policy_key]
        for name, value in (extra or {}).items():
            headers[name] = [value]
        return headers

    async def post(self, command: str, document=None, *, params: dict | None = None,
                   headers: dict | None = None, body: bytes | None = None) -> Answer:
        """
        POST one command.  C{document} is XML text or an element; C{body}
        raw bytes instead (e.g. a spec example or a MIME message).
        """
        if body is None:
            if isinstance(document, str):
                document = xml(document)
            body = wbxml.encode(document) if document is not None else b""
        query = f"Cmd={command}&User={self.user}&DeviceId={self.device_id}&DeviceType={self.device_type}"
        for name, value in (params or {}).items():
            query += f"&{name}={value}"
        response = await treq.request(
            "POST", f"{self.base_url}/Microsoft-Server-ActiveSync?{query}",
            headers=self._headers(headers), data=body, pool=self.pool,
        )
        return Answer(response.code, response.headers, await response.content())

    async def provision(self) -> Answer:
        """
        The two-phase MS-ASPROV exchange (3.1.5.1): ask for the policy
        without a key, acknowledge it with the temporary key (also sent as
        the current key, as 3.1.5.1.2.1 requires), and keep the final key
        for every later request.  Returns the acknowledgment's answer.
        """
        policy_type = "<PolicyType>MS-EAS-Provisioning-WBXML</PolicyType>"
        self.policy_key = None
        first = await self.post(
            "Provision", f'<Provision xmlns="Provision:"><Policies><Policy>{policy_type}</Policy></Policies></Provision>'
        )
        temporary = text(first.document, "provision:Policies/provision:Policy/provision:PolicyKey")
        if first.code != 200 or temporary is None:
            raise AssertionError(f"Provision phase 1 failed: {first!r}")
        self.policy_key = temporary
        second = await self.post(
            "Provision",
            f'<Provision xmlns="Provision:"><Policies><Policy>{policy_type}<PolicyKey>{temporary}</PolicyKey>'
            "<Status>1</Status></Policy></Policies></Provision>",
        )
        final = text(second.document, "provision:Policies/provision:Policy/provision:PolicyKey")
        if second.code != 200 or final is None:
            raise AssertionError(f"Provision phase 2 failed: {second!r}")
        self.policy_key = final
        return second
