"""
The admin page over TCP with a plain HTTP client: login, sessions, CSRF,
the device actions, rules and the audit trail, escaping and headers.
(tests/web/test_admin_browser.py drives it with a real browser.)
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlencode

import treq
from twisted.internet import reactor
from twisted.web.client import HTTPConnectionPool

from bluesync.passwords import hash_password
from bluesync.service import BluesyncService
from bluesync.web.admin import build_admin_site
from tests.support import DatabaseTestCase, SiteTestCase, test_config

ADMIN_PASSWORD = "admin password"


class Browserless:
    """
    Just enough of a browser: keeps cookies, sends forms, does not follow
    redirects (the tests look at them).
    """

    def __init__(self, base_url: str, pool) -> None:
        self.base_url = base_url
        self.pool = pool
        self.cookies: dict[str, str] = {}

    async def request(self, method: str, path: str, form: dict | None = None):
        headers = {}
        if self.cookies:
            headers["Cookie"] = ["; ".join(f"{k}={v}" for k, v in self.cookies.items())]
        data = None
        if form is not None:
            headers["Content-Type"] = ["application/x-www-form-urlencoded"]
            data = urlencode(form).encode()
        response = await treq.request(method, self.base_url + path, headers=headers, data=data, pool=self.pool,
                                      allow_redirects=False)
        for header in response.headers.getRawHeaders("set-cookie", []):
            name, _, rest = header.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in header or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        body = (await response.content()).decode("utf-8")
        return response, body

    async def login(self, name: str = "root", password: str = ADMIN_PASSWORD):
        _, page = await self.request("GET", "/login")
        token = field(page, "login_token")
        return await self.request("POST", "/login", {"login_token": token, "name": name, "password": password})


def field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    if match is None:
        raise AssertionError(f"no field {name} in {page[:2000]}")
    return unescape(match.group(1))


class AdminPageTestCase(SiteTestCase):
    config_text = "[login]\nfailures_before_delay = 2\n"

    async def _set_up(self):
        await super()._set_up()
        self.admin_port = reactor.listenTCP(0, build_admin_site(self.context), interface="127.0.0.1")
        self.addCleanup(self.admin_port.stopListening)
        self.browser = Browserless(f"http://127.0.0.1:{self.admin_port.getHost().port}", self.pool)
        await self.store.admins.add("root", hash_password(ADMIN_PASSWORD))
        self.account = await self.create_account()
        self.device = await self.store.devices.touch(self.account.id, "PHONE1", "iPhone",
                                                     "Mail/<script>alert(1)</script>", "16.1", "Provision")


class AdminPageTests(AdminPageTestCase):
    async def test_login_required(self):
        """Every page but the login form sends an anonymous visitor to /login."""
        for path in ("/", "/device?account=alice@example.org&device=PHONE1", "/rules", "/audit"):
            response, _ = await self.browser.request("GET", path)
            self.assertEqual((response.code, response.headers.getRawHeaders("location")), (303, ["/login"]), path)
        response, _ = await self.browser.request("POST", "/device", {"action": "block"})
        self.assertEqual(response.code, 303)
        self.assertEqual((await self.store.devices.get(self.account.id, "PHONE1")).access, "allowed")

    async def test_login_block_audit(self):
        """Log in, find the device, block it: the store has the decision and the audit trail the admin's name."""
        response, _ = await self.browser.login()
        self.assertEqual((response.code, response.headers.getRawHeaders("location")), (303, ["/"]))
        session = [h for h in response.headers.getRawHeaders("set-cookie") if h.startswith("bluesync_admin=")]
        self.assertEqual(len(session), 1)
        self.assertIn("HttpOnly", session[0])
        self.assertIn("SameSite=strict", session[0])

        _, page = await self.browser.request("GET", "/?q=phone1")
        self.assertIn("alice@example.org", page)
        self.assertIn('href="/device?account=alice%40example.org&amp;device=PHONE1"', page)
        response, page = await self.browser.request("GET", "/device?account=alice%40example.org&device=PHONE1")
        self.assertEqual(response.code, 200)
        csrf = field(page, "csrf")
        response, _ = await self.browser.request("POST", "/device", {
            "csrf": csrf, "account": "alice@example.org", "device": "PHONE1", "action": "block", "reason": "lost"})
        self.assertEqual(response.code, 303)
        self.assertEqual((await self.store.devices.get(self.account.id, "PHONE1")).access, "blocked")
        _, page = await self.browser.request("GET", "/device?account=alice%40example.org&device=PHONE1")
        self.assertIn("PHONE1 of alice@example.org is blocked", page)
        (record,) = await self.store.audit.list()
        self.assertEqual((record.actor, record.action, record.detail), ("web:root", "device.block", "lost"))
        _, page = await self.browser.request("GET", "/audit?since=1h")
        self.assertIn("device.block", page)

    async def test_csrf(self):
        """A POST without the session's token is refused and changes nothing."""
        await self.browser.login()
        for token in (None, "forged"):
            form = {"account": "alice@example.org", "device": "PHONE1", "action": "block"}
            if token:
                form["csrf"] = token
            response, _ = await self.browser.request("POST", "/device", form)
            self.assertEqual(response.code, 403)
        self.assertEqual((await self.store.devices.get(self.account.id, "PHONE1")).access, "allowed")

    async def test_login_form_token(self):
        """A login POST without the token of its form (another site's form) is refused."""
        await self.browser.request("GET", "/login")
        response, _ = await self.browser.request("POST", "/login", {
            "login_token": "forged", "name": "root", "password": ADMIN_PASSWORD})
        self.assertEqual(response.code, 403)
        self.assertNotIn("bluesync_admin", self.browser.cookies)

    async def test_wrong_password_throttled(self):
        """Wrong passwords get 401, and after [login] failures_before_delay the next try waits (429)."""
        for _ in range(2):
            response, page = await self.browser.login(password="wrong")
            self.assertEqual(response.code, 401)
            self.assertIn("Wrong name or password.", page)
        response, page = await self.browser.login()
        self.assertEqual(response.code, 429)
        self.assertEqual(response.headers.getRawHeaders("retry-after"), ["1"])
        unknown, _ = await self.browser.login(name="nobody")
        self.assertEqual(unknown.code, 401)

    async def test_wipe_needs_confirmation(self):
        """Wipe and remove are refused unless "I am sure" is ticked."""
        await self.browser.login()
        _, page = await self.browser.request("GET", "/device?account=alice%40example.org&device=PHONE1")
        form = {"csrf": field(page, "csrf"), "account": "alice@example.org", "device": "PHONE1", "action": "wipe"}
        await self.browser.request("POST", "/device", form)
        self.assertEqual((await self.store.devices.get(self.account.id, "PHONE1")).wipe, "none")
        _, page = await self.browser.request("GET", "/device?account=alice%40example.org&device=PHONE1")
        self.assertIn("Tick &quot;I am sure&quot; to wipe PHONE1.", page)
        await self.browser.request("POST", "/device", {**form, "confirm": "yes"})
        self.assertEqual((await self.store.devices.get(self.account.id, "PHONE1")).wipe, "pending")

    async def test_rules(self):
        """Rules are added and deleted from the page; a bad one is refused with the reason."""
        await self.browser.login()
        _, page = await self.browser.request("GET", "/rules")
        csrf = field(page, "csrf")
        await self.browser.request("POST", "/rules/add", {
            "csrf": csrf, "field": "UserAgent", "pattern": "Outlook-iOS-Android/*", "action": "block"})
        (rule,) = await self.store.rules.list()
        self.assertEqual((rule.field, rule.pattern, rule.action, rule.created_by),
                         ("user_agent", "Outlook-iOS-Android/*", "blocked", "web:root"))
        await self.browser.request("POST", "/rules/add", {"csrf": csrf, "field": "Colour", "pattern": "x",
                                                          "action": "block"})
        _, page = await self.browser.request("GET", "/rules")
        self.assertIn("unknown field &#x27;Colour&#x27;", page)
        await self.browser.request("POST", "/rules/delete", {"csrf": csrf, "id": str(rule.id)})
        self.assertEqual(await self.store.rules.list(), [])

    async def test_escaping_and_headers(self):
        """What phones say is escaped, and pages forbid scripts and framing."""
        await self.browser.login()
        response, page = await self.browser.request("GET", "/")
        self.assertNotIn("<script>", page)
        self.assertIn("Mail/&lt;script&gt;alert(1)&lt;/script&gt;", page)
        policy = response.headers.getRawHeaders("content-security-policy")[0]
        self.assertIn("default-src 'none'", policy)
        self.assertIn("frame-ancestors 'none'", policy)

    async def test_logout(self):
        """Logging out ends the session: the old cookie opens nothing."""
        await self.browser.login()
        old = dict(self.browser.cookies)
        _, page = await self.browser.request("GET", "/")
        response, _ = await self.browser.request("POST", "/logout", {"csrf": field(page, "csrf")})
        self.assertEqual(response.headers.getRawHeaders("location"), ["/login"])
        self.browser.cookies = old
        response, _ = await self.browser.request("GET", "/")
        self.assertEqual(response.headers.getRawHeaders("location"), ["/login"])


class AdminServiceTests(DatabaseTestCase):
    async def test_own_listener(self):
        """The service serves the admin page on its [admin] listener, and only there."""
        config = test_config(
            f"[database]\ndsn = {self.dsn}\n[server]\nlisten = tcp:0:interface=127.0.0.1\n"
            "[mail]\nlmtp_listen = tcp:0:interface=127.0.0.1\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n"
        )
        service = BluesyncService(config, reactor, exit_on_failure=False)
        service.startService()
        self.addCleanup(service.stopService)
        await service.started
        # Let the outbound queue's first run end before stopping (it
        # schedules its next run at the end of each).
        await service.context.outbound.idle()
        eas_port, admin_port = service.ports[0].getHost().port, service.ports[-1].getHost().port
        pool = HTTPConnectionPool(reactor, persistent=False)
        login = await treq.get(f"http://127.0.0.1:{admin_port}/login", pool=pool)
        self.assertEqual(login.code, 200)
        self.assertIn(b'name="login_token"', await login.content())
        elsewhere = await treq.get(f"http://127.0.0.1:{eas_port}/login", pool=pool)
        self.assertEqual(elsewhere.code, 404)
        await elsewhere.content()
