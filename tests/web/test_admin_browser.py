"""
The admin page in a real headless browser (Debian's chromium, driven by
chromium-driver over the W3C WebDriver protocol, spoken here with treq so
no Python browser library is needed): an administrator logs in, finds a
phone, blocks it, and the phone's held Ping and next request are refused.

Skipped, saying why, only when no browser is installed; .ci/run installs
one on Debian.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile

import treq
from twisted.internet import defer, reactor, task
from twisted.web.client import HTTPConnectionPool

from bluesync.passwords import hash_password
from bluesync.web.admin import build_admin_site
from tests.devices.support import FOLDERSYNC_0, DeviceTestCase, ping_xml, status
from tests.push.helpers import until

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _find_browser() -> tuple[str | None, str | None]:
    driver = shutil.which("chromedriver")
    browser = next((path for path in map(shutil.which, BROWSERS) if path), None)
    return driver, browser


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebDriver:
    """
    The few W3C WebDriver commands the test needs, over HTTP to chromedriver.
    """

    def __init__(self, url: str, pool) -> None:
        self.url = url
        self.pool = pool
        self.session = None

    async def command(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        response = await treq.request(method, self.url + path, data=data, pool=self.pool,
                                      headers={"Content-Type": ["application/json"]})
        answer = json.loads(await response.content() or b"{}")
        if response.code != 200:
            raise AssertionError(f"WebDriver {method} {path}: {response.code} {answer}")
        return answer.get("value")

    async def start(self, browser: str, profile: str) -> None:
        options = {"binary": browser, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                               "--disable-dev-shm-usage", f"--user-data-dir={profile}"]}
        value = await self.command("POST", "/session", {
            "capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}})
        self.session = value["sessionId"]

    async def stop(self) -> None:
        if self.session is not None:
            await self.command("DELETE", f"/session/{self.session}")
            self.session = None

    async def open(self, url: str) -> None:
        await self.command("POST", f"/session/{self.session}/url", {"url": url})

    async def find(self, css: str, limit: float = 20.0) -> str:
        """
        The element matching C{css}, waiting for it to appear (a page
        loading after a click).
        """
        waited = 0.0
        while True:
            response = await treq.request(
                "POST", f"{self.url}/session/{self.session}/element", pool=self.pool,
                data=json.dumps({"using": "css selector", "value": css}).encode(),
                headers={"Content-Type": ["application/json"]})
            answer = json.loads(await response.content())
            if response.code == 200:
                return answer["value"][ELEMENT]
            if waited >= limit:
                raise AssertionError(f"no element {css}: {answer}")
            await task.deferLater(reactor, 0.1, lambda: None)
            waited += 0.1

    async def type(self, css: str, text: str) -> None:
        await self._on_element(css, "POST", "value", {"text": text})

    async def _on_element(self, css: str, method: str, action: str, body=None, limit: float = 20.0):
        """
        Run C{action} on the element matching C{css}, finding it again when
        the page it was found on was replaced meanwhile (a form submitted
        just before has loaded its answer: a stale element reference).
        """
        waited = 0.0
        while True:
            try:
                return await self.command(method, f"/session/{self.session}/element/{await self.find(css)}/{action}",
                                          body)
            except AssertionError as failure:
                if "stale element" not in str(failure) or waited >= limit:
                    raise
            await task.deferLater(reactor, 0.1, lambda: None)
            waited += 0.1

    async def click(self, css: str) -> None:
        await self._on_element(css, "POST", "click", {})

    async def submit(self, css: str, url_part: str, limit: float = 20.0) -> None:
        """
        Click the button C{css} and wait until the browser shows the page
        whose address contains C{url_part}, so that the next lookup cannot
        find an element of the page being left.
        """
        await self.click(css)
        waited = 0.0
        while url_part not in await self.command("GET", f"/session/{self.session}/url"):
            if waited >= limit:
                raise AssertionError(f"the browser never reached a page with {url_part!r}")
            await task.deferLater(reactor, 0.1, lambda: None)
            waited += 0.1

    async def text(self, css: str) -> str:
        return await self._on_element(css, "GET", "text")

    async def title(self, expected: str, limit: float = 20.0) -> str:
        """
        The page's title once it is C{expected} (the page a click asked
        for may still be loading), or the last title seen after C{limit}
        seconds.
        """
        waited = 0.0
        while True:
            title = await self.command("GET", f"/session/{self.session}/title")
            if title == expected or waited >= limit:
                return title
            await task.deferLater(reactor, 0.1, lambda: None)
            waited += 0.1


class AdminBrowserTests(DeviceTestCase):
    timeout = 180

    async def _set_up(self):
        driver, browser = _find_browser()
        if driver is None or browser is None:
            self.skipTest("no headless browser: install chromium and chromium-driver "
                          "(apt-get install chromium chromium-driver; .ci/run does it on Debian)")
        await super()._set_up()
        await self.store.admins.add("root", hash_password("admin password"))
        self.admin_port = reactor.listenTCP(0, build_admin_site(self.context), interface="127.0.0.1")
        self.addCleanup(self.admin_port.stopListening)
        self.admin_url = f"http://127.0.0.1:{self.admin_port.getHost().port}"

        port = _free_port()
        self.driver_process = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL)
        self.addCleanup(self._stop_driver)
        driver_pool = HTTPConnectionPool(reactor, persistent=False)
        self.webdriver = WebDriver(f"http://127.0.0.1:{port}", driver_pool)
        await self._wait_for_driver()
        profile = tempfile.mkdtemp(prefix="bluesync-chromium-")
        self.addCleanup(shutil.rmtree, profile, True)
        await self.webdriver.start(browser, profile)
        self.addCleanup(lambda: defer.ensureDeferred(self.webdriver.stop()))

    async def _wait_for_driver(self) -> None:
        for _ in range(200):
            try:
                ready = await self.webdriver.command("GET", "/status")
                if ready.get("ready"):
                    return
            except Exception:
                pass
            await task.deferLater(reactor, 0.05, lambda: None)
        raise AssertionError("chromedriver did not start")

    def _stop_driver(self) -> None:
        self.driver_process.terminate()
        try:
            self.driver_process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.driver_process.kill()
            self.driver_process.wait()

    async def test_block_from_the_browser(self):
        """Log in, find the phone, block it: its held Ping ends with 129 and its next request is refused."""
        phone = self.phone("LOSTPHONE", version="14.1")
        await self.ready(phone)
        device = await self.device("LOSTPHONE")
        (modseq,) = (await self.store.folders.modseqs(self.account.id, [self.inbox.id])).values()
        await self.store.sync_states.save_next(device.id, self.inbox.id, None, modseq)
        ping = defer.ensureDeferred(phone.post("Ping", ping_xml(900, self.inbox.id)))
        await until(lambda: self.notifier.held_count() == 1, "the Ping to be held")

        browser = self.webdriver
        await browser.open(self.admin_url + "/")
        await browser.type("#name", "root")
        await browser.type("#password", "admin password")
        await browser.click("#login")
        self.assertEqual(await browser.title("Devices - bluesync admin"), "Devices - bluesync admin")

        await browser.type("#q", "lostphone")
        await browser.submit("#find", "q=lostphone")
        await browser.click('a[href*="device=LOSTPHONE"]')
        self.assertEqual(await browser.title("Device LOSTPHONE - bluesync admin"), "Device LOSTPHONE - bluesync admin")
        await browser.type("#reason", "left in a taxi")
        await browser.click("#action-block")
        self.assertEqual(await browser.text(".message"), "LOSTPHONE of alice@example.org is blocked")

        self.assertEqual(status(await ping, "ping:Status"), "129")
        answer = await phone.post("FolderSync", FOLDERSYNC_0)
        self.assertEqual(status(answer, "folderhierarchy:Status"), "129")
        (record,) = await self.store.audit.list()
        self.assertEqual((record.actor, record.action, record.detail), ("web:root", "device.block", "left in a taxi"))

