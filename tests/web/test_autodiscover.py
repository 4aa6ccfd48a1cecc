"""
Autodiscover over the real Site on a TCP port: what a phone adding an
account sees, the errors the schema names, hostile documents, and that an
account learns nothing about another.
"""

from __future__ import annotations

from lxml import etree

from bluesync.web.autodiscover import MAX_REQUEST, MOBILESYNC_NS, RESPONSE_NS
from tests.support import SiteTestCase
from tests.web.test_auth_options import basic

PATH = "/autodiscover/autodiscover.xml"
ALICE = basic("alice@example.org", "correct horse")
OUTLOOK_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"


def request_document(address: str = "alice@example.org", schema: str = MOBILESYNC_NS) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006">'
        f"<Request><EMailAddress>{address}</EMailAddress>"
        f"<AcceptableResponseSchema>{schema}</AcceptableResponseSchema></Request></Autodiscover>"
    ).encode()


def find(document, path: str) -> list[str]:
    return [(e.text or "") for e in document.iterfind(path, {"r": RESPONSE_NS, "m": MOBILESYNC_NS})]


class AutodiscoverTestCase(SiteTestCase):
    async def autodiscover(self, body: bytes, path: str = PATH, headers=ALICE, method: str = "POST"):
        response = await self.http(method, path, data=body,
                                    headers={**headers, "Content-Type": ["text/xml"]})
        content = await response.content()
        return response, content

    async def parsed(self, body: bytes, **kwargs):
        response, content = await self.autodiscover(body, **kwargs)
        self.assertEqual(response.code, 200, content)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["text/xml; charset=utf-8"])
        document = etree.fromstring(content)
        self.assertEqual(document.tag, f"{{{RESPONSE_NS}}}Autodiscover")
        return document, content

    def assertErrorCode(self, document, code: int) -> None:
        self.assertEqual(find(document, "m:Response/m:Error/m:ErrorCode"), [str(code)])
        self.assertEqual(find(document, "m:Response/m:Action"), [])


class SettingsTests(AutodiscoverTestCase):
    async def test_settings(self):
        """
        The signed-in account gets its name, address and the MobileSync URL,
        built from the Host it reached us by; the URL really serves
        ActiveSync.
        """
        await self.create_account(name="Alice Martin")
        document, _ = await self.parsed(request_document())
        self.assertEqual(find(document, "m:Response/m:User/m:DisplayName"), ["Alice Martin"])
        self.assertEqual(find(document, "m:Response/m:User/m:EMailAddress"), ["alice@example.org"])
        server = "m:Response/m:Action/m:Settings/m:Server/"
        self.assertEqual(find(document, server + "m:Type"), ["MobileSync"])
        url = self.base_url + "/Microsoft-Server-ActiveSync"
        self.assertEqual(find(document, server + "m:Url"), [url])
        self.assertEqual(find(document, server + "m:Name"), [url])
        options = await self.http("OPTIONS", url[len(self.base_url):], headers=ALICE)
        self.assertEqual(options.code, 200)
        await options.content()

    async def test_case_variants(self):
        """Phones spell the path in several cases; all of them answer."""
        await self.create_account()
        for path in ("/Autodiscover/Autodiscover.xml", "/AutoDiscover/AutoDiscover.xml",
                     "/AUTODISCOVER/AUTODISCOVER.XML"):
            document, _ = await self.parsed(request_document(), path=path)
            self.assertEqual(find(document, "m:Response/m:User/m:EMailAddress"), ["alice@example.org"])
        response, _ = await self.autodiscover(request_document(), path="/autodiscover/other.xml")
        self.assertEqual(response.code, 404)

    async def test_alias_and_case(self):
        """An alias of the account, in any case, is answered with the main address."""
        await self.create_account()
        await self.store.accounts.add_alias("alice@example.org", "sales@example.org")
        for address in ("Sales@Example.org", "ALICE@example.org"):
            document, _ = await self.parsed(request_document(address))
            self.assertEqual(find(document, "m:Response/m:User/m:EMailAddress"), ["alice@example.org"])

    async def test_host_header(self):
        """The URL follows the Host header; a malformed one is not copied into it."""
        await self.create_account()
        document, _ = await self.parsed(request_document(), headers={**ALICE, "Host": ["mail.example.org"]})
        self.assertEqual(find(document, "m:Response/m:Action/m:Settings/m:Server/m:Url"),
                         ["http://mail.example.org/Microsoft-Server-ActiveSync"])
        document, _ = await self.parsed(request_document(), headers={**ALICE, "Host": ["a<b>\"c"]})
        self.assertEqual(find(document, "m:Response/m:Action/m:Settings/m:Server/m:Url"),
                         [self.base_url + "/Microsoft-Server-ActiveSync"])


class PublicURLTests(AutodiscoverTestCase):
    config_text = "[server]\npublic_url = https://mail.example.org/\n"

    async def test_public_url(self):
        """[server] public_url wins over the Host header."""
        await self.create_account()
        document, _ = await self.parsed(request_document(), headers={**ALICE, "Host": ["elsewhere.example"]})
        self.assertEqual(find(document, "m:Response/m:Action/m:Settings/m:Server/m:Url"),
                         ["https://mail.example.org/Microsoft-Server-ActiveSync"])


class ErrorTests(AutodiscoverTestCase):
    async def test_outlook_schema(self):
        """A client asking for the Outlook schema is told 601: we serve mobilesync only."""
        await self.create_account()
        document, _ = await self.parsed(request_document(schema=OUTLOOK_SCHEMA))
        self.assertErrorCode(document, 601)
        error = document.find(f"{{{MOBILESYNC_NS}}}Response/{{{MOBILESYNC_NS}}}Error")
        self.assertRegex(error.get("Time"), r"^\d\d:\d\d:\d\d\.\d{7}$")
        self.assertRegex(error.get("Id"), r"^\d+$")

    async def test_invalid_requests(self):
        """Whatever is not one well-formed request is 600 Invalid Request, never a 500."""
        await self.create_account()
        request = request_document().decode()
        bodies = {
            "empty": b"",
            "not XML": b"hello",
            "truncated": request_document()[:-20],
            "wrong root": request.replace("Autodiscover", "Discover").encode(),
            "no address": request.replace("<EMailAddress>alice@example.org</EMailAddress>", "").encode(),
            "empty address": request.replace("alice@example.org", "").encode(),
            "no schema": request.replace(f"<AcceptableResponseSchema>{MOBILESYNC_NS}</AcceptableResponseSchema>",
                                         "").encode(),
            "two requests": request.replace("</Autodiscover>",
                                            request[request.index("<Request>"):request.index("</Autodiscover>")]
                                            + "</Autodiscover>").encode(),
            "two addresses": request.replace("<EMailAddress>", "<EMailAddress>x@y</EMailAddress><EMailAddress>",
                                             ).encode(),
            "too big": request.replace("<Request>", "<Request>" + " " * MAX_REQUEST).encode(),
        }
        for name, body in bodies.items():
            document, _ = await self.parsed(body)
            self.assertErrorCode(document, 600)

    async def test_get(self):
        """A browser's GET is answered 600, as Exchange does: a quick check for administrators."""
        await self.create_account()
        document, _ = await self.parsed(b"", method="GET")
        self.assertErrorCode(document, 600)

    async def test_entities_refused(self):
        """No entity is expanded, no file read and no DTD accepted."""
        await self.create_account()
        plain = request_document().decode().split("?>", 1)[1]
        document, _ = await self.parsed(("<!DOCTYPE Autodiscover>" + plain).encode())
        self.assertErrorCode(document, 600)
        for doctype in ('<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
                        '<!DOCTYPE a [<!ENTITY x "alice@example.org">]>',
                        '<!DOCTYPE a [<!ENTITY l "lol"><!ENTITY x "&l;&l;&l;&l;&l;&l;&l;&l;&l;&l;">]>'):
            body = (doctype + request_document("&x;").decode().split("?>", 1)[1]).encode()
            document, content = await self.parsed(body)
            self.assertErrorCode(document, 600)
            self.assertNotIn(b"root:", content)
            self.assertNotIn(b"alice", content)


class AuthenticationTests(AutodiscoverTestCase):
    config_text = "[login]\nfailures_before_delay = 2\n"

    async def test_credentials_required(self):
        """No credentials, a wrong password, a disabled account: 401, 401, 403."""
        await self.create_account()
        response, _ = await self.autodiscover(request_document(), headers={})
        self.assertEqual(response.code, 401)
        self.assertTrue(response.headers.getRawHeaders("WWW-Authenticate")[0].startswith("Basic "))
        response, _ = await self.autodiscover(request_document(), headers=basic("alice@example.org", "wrong"))
        self.assertEqual(response.code, 401)
        await self.store.accounts.set_disabled("alice@example.org", True)
        response, _ = await self.autodiscover(request_document())
        self.assertEqual(response.code, 403)

    async def test_throttle_shared_with_activesync(self):
        """Failures at Autodiscover count against ActiveSync logins too: one throttle."""
        await self.create_account()
        for _ in range(2):
            response, _ = await self.autodiscover(request_document(), headers=basic("alice@example.org", "wrong"))
            self.assertEqual(response.code, 401)
        eas = await self.http("OPTIONS", "/Microsoft-Server-ActiveSync", headers=ALICE)
        self.assertEqual(eas.code, 503)
        self.assertIsNotNone(eas.headers.getRawHeaders("Retry-After"))
        await eas.content()

    async def test_other_accounts_address(self):
        """
        Asking about another account's address, or an address nobody has,
        gets the same refusal, byte for byte, naming no one.
        """
        await self.create_account()
        await self.create_account("bob@example.org", "bob's password", "Bob Stone")
        await self.store.accounts.add_alias("bob@example.org", "bob.stone@example.org")
        answers = []
        for address in ("bob@example.org", "bob.stone@example.org", "nobody@example.org"):
            document, content = await self.parsed(request_document(address))
            self.assertEqual(find(document, "m:Response/m:Action/m:Error/m:Status"), ["2"])
            self.assertEqual(find(document, "m:Response/m:Action/m:Settings"), [])
            self.assertNotIn(b"bob", content.lower())
            self.assertNotIn(b"nobody", content)
            answers.append(content)
        self.assertEqual(len(set(answers)), 1)
