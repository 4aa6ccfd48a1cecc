"""
The admin page's resource: one leaf dispatching on (method, path) through
an explicit table, like the EAS command table.

    GET  /login, POST /login, POST /logout
    GET  /                 devices per account (?q= filters)
    GET  /device           one device (?account=&device=), with its actions
    POST /device           run an action (allow, block, ..., remove)
    GET  /rules, POST /rules/add, POST /rules/delete
    GET  /audit            the audit trail (?since=)
    GET  /style.css
    GET  /metrics          Prometheus text format, no login (bluesync.web.admin.metrics)

Authentication is a form login against the admins table (Argon2id, in a
thread) with failed logins throttled like phones' (bluesync.web.throttle),
then a session cookie: HttpOnly, SameSite=Strict, Secure over TLS.  Every
POST must carry the session's CSRF token (the login form a token matching
a cookie set with it), so another site can make the browser send nothing
that acts.  Pages are sent with a Content-Security-Policy that allows no
script at all, no framing, and forms only to this origin.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from twisted.internet import threads
from twisted.logger import Logger
from twisted.web import resource

from bluesync.devices.actions import DEVICE_ACTIONS, ActionError, Administration
from bluesync.devices.describe import parse_since
from bluesync.passwords import hash_password, verify_password
from bluesync.store.database import DATABASE_DOWN
from bluesync.web.admin import metrics, pages
from bluesync.web.admin.session import Session, Sessions
from bluesync.web.auth import client_address
from bluesync.web.rendering import Response, render_async
from bluesync.web.throttle import LoginThrottle

log = Logger()

SESSION_COOKIE = b"bluesync_admin"
LOGIN_COOKIE = b"bluesync_login"

_HEADERS = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none';"
        " base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

# Verified when the name is unknown, so that a wrong name costs the same
# time as a wrong password and names cannot be probed.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def _page(body: bytes, code: int = 200, **headers) -> Response:
    return Response(code, body, {**_HEADERS, **headers})


def _redirect(location: str) -> Response:
    return Response(303, b"", {"location": location, "cache-control": "no-store"})


def _arg(request, name: str) -> str:
    values = request.args.get(name.encode())
    if not values:
        return ""
    return values[0].decode("utf-8", "replace").strip()


class AdminResource(resource.Resource):
    isLeaf = True

    def __init__(self, context, sessions: Sessions, throttle: LoginThrottle) -> None:
        super().__init__()
        self._context = context
        self._store = context.store
        self._sessions = sessions
        self._throttle = throttle
        # (method, path) -> (handler, needs a session).
        self._routes = {
            (b"GET", b"/login"): (self._login_form, False),
            (b"POST", b"/login"): (self._login, False),
            (b"GET", b"/style.css"): (self._style, False),
            (b"GET", b"/metrics"): (self._metrics, False),
            (b"POST", b"/logout"): (self._logout, True),
            (b"GET", b"/"): (self._devices, True),
            (b"GET", b"/device"): (self._device, True),
            (b"POST", b"/device"): (self._act, True),
            (b"GET", b"/rules"): (self._rules, True),
            (b"POST", b"/rules/add"): (self._add_rule, True),
            (b"POST", b"/rules/delete"): (self._delete_rule, True),
            (b"GET", b"/audit"): (self._audit, True),
        }

    def render(self, request):
        return render_async(request, lambda: self._render(request))

    async def _render(self, request) -> Response:
        method = b"GET" if request.method == b"HEAD" else request.method
        route = self._routes.get((method, request.path))
        if route is None:
            if any(path == request.path for _, path in self._routes):
                return Response(405, b"", {"content-type": "text/plain"})
            return _page(pages.message_page("Not found", "No such page."), 404)
        handler, needs_session = route
        try:
            if not needs_session:
                return await handler(request)
            session = self._sessions.get(self._cookie(request, SESSION_COOKIE))
            if session is None:
                return _redirect("/login")
            if method == b"POST" and not session.csrf_matches(_arg(request, "csrf") or None):
                log.warn("admin {name}: POST {path} without its CSRF token refused", name=session.name,
                         path=request.path.decode("latin-1"))
                return _page(pages.message_page("Refused", "This form is stale or was not sent by this page: "
                                                           "reload the page and try again."), 403)
            return await handler(request, session)
        except DATABASE_DOWN as e:
            log.warn("admin page: database unavailable: {error}", error=str(e))
            return _page(pages.message_page("Database unavailable", "PostgreSQL does not answer; try again in a "
                                                                     "moment."), 503, **{"retry-after": "30"})

    @staticmethod
    def _cookie(request, name: bytes) -> str | None:
        value = request.getCookie(name)
        return value.decode("ascii", "replace") if value else None

    def _set_cookie(self, request, name: bytes, value: str, max_age: int | None = None) -> None:
        request.addCookie(name, value.encode("ascii"), path=b"/", httpOnly=True, secure=request.isSecure(),
                          sameSite="strict", max_age=None if max_age is None else str(max_age).encode())

    async def _metrics(self, request) -> Response:
        return Response(200, await metrics.exposition(self._context),
                        {"content-type": metrics.CONTENT_TYPE, "cache-control": "no-store"})

    # Login

    async def _style(self, request) -> Response:
        return Response(200, pages.STYLE, {"content-type": "text/css; charset=utf-8", "cache-control": "max-age=3600"})

    async def _login_form(self, request, errors=(), code: int = 200, **headers) -> Response:
        token = secrets.token_urlsafe(24)
        self._set_cookie(request, LOGIN_COOKIE, token)
        return _page(pages.login_page(token, errors), code, **headers)

    async def _login(self, request) -> Response:
        token = _arg(request, "login_token")
        cookie = self._cookie(request, LOGIN_COOKIE)
        if not token or cookie is None or not secrets.compare_digest(token, cookie):
            return await self._login_form(request, ["The login form expired; log in again."], 403)
        name = _arg(request, "name")
        password = _arg(request, "password")
        address = client_address(request, self._context.config.login.trusted_proxies)
        key = f"admin:{name}"
        wait = self._throttle.wait(key, address)
        if wait > 0:
            log.info("admin login of {name} from {address} refused unchecked: throttled for {seconds:.0f}s more",
                     name=name, address=address, seconds=wait)
            return await self._login_form(
                request, [f"Too many failed logins: try again in {int(wait + 0.999)} seconds."], 429,
                **{"retry-after": str(int(wait + 0.999))},
            )
        admin = await self._store.admins.get(name) if name else None
        valid = await threads.deferToThread(verify_password, admin.password_hash if admin else _DUMMY_HASH,
                                            password)
        if admin is None or not valid:
            log.info("failed admin login of {name} from {address}", name=name, address=address)
            self._throttle.failed(key, address)
            return await self._login_form(request, ["Wrong name or password."], 401)
        self._throttle.succeeded(key, address)
        session = self._sessions.create(admin.name)
        self._set_cookie(request, SESSION_COOKIE, session.id)
        self._set_cookie(request, LOGIN_COOKIE, "", max_age=0)
        log.info("admin {name} logged in from {address}", name=admin.name, address=address)
        return _redirect("/")

    async def _logout(self, request, session: Session) -> Response:
        self._sessions.end(session.id)
        self._set_cookie(request, SESSION_COOKIE, "", max_age=0)
        return _redirect("/login")

    # Devices

    def _administration(self, session: Session) -> Administration:
        return Administration(self._store, self._context.config, f"web:{session.name}", self._context.clock)

    async def _devices(self, request, session: Session) -> Response:
        query = _arg(request, "q")
        needle = query.lower()
        devices_by_account: dict[int, list] = {}
        for device in await self._store.devices.list():
            devices_by_account.setdefault(device.account_id, []).append(device)
        groups = []
        for account in await self._store.accounts.list():
            devices = devices_by_account.get(account.id, [])
            if needle and needle not in account.address:
                devices = [d for d in devices if any(needle in value.lower() for value in (
                    d.device_id, d.device_type, d.model, d.os, d.user_agent, d.friendly_name, d.imei,
                    d.phone_number))]
            groups.append((account, devices))
        messages, _ = session.take_messages()
        return _page(pages.devices_page(session.name, session.csrf, groups, query, self._context.clock.seconds(),
                                        messages))

    async def _device(self, request, session: Session) -> Response:
        try:
            account, device = await self._administration(session).find(_arg(request, "account"),
                                                                        _arg(request, "device"))
        except ActionError as e:
            return _page(pages.message_page("No such device", str(e), admin=session.name, csrf=session.csrf,
                                            back=True), 404)
        rule = await self._store.rules.get(device.rule_id) if device.rule_id is not None else None
        messages, errors = session.take_messages()
        return _page(pages.device_page(session.name, session.csrf, account, device, rule,
                                       self._context.clock.seconds(), messages, errors))

    async def _act(self, request, session: Session) -> Response:
        address, device_id = _arg(request, "account"), _arg(request, "device")
        action = _arg(request, "action")
        back = pages.device_link(address, device_id)
        if action not in DEVICE_ACTIONS:
            session.errors.append(f"unknown action {action!r}")
            return _redirect(back)
        if action in pages.CONFIRMED_ACTIONS and _arg(request, "confirm") != "yes":
            session.errors.append(f"Tick \"I am sure\" to {action} {device_id}.")
            return _redirect(back)
        try:
            message = await self._administration(session).run(action, address, device_id, _arg(request, "reason"))
        except ActionError as e:
            session.errors.append(str(e))
            return _redirect(back)
        session.messages.append(message)
        return _redirect("/?" + urlencode({"q": address}) if action == "remove" else back)

    # Rules and audit

    async def _rules(self, request, session: Session) -> Response:
        messages, errors = session.take_messages()
        return _page(pages.rules_page(session.name, session.csrf, await self._store.rules.list(), messages, errors))

    async def _add_rule(self, request, session: Session) -> Response:
        priority_text = _arg(request, "priority")
        try:
            priority = int(priority_text) if priority_text else None
        except ValueError:
            session.errors.append(f"the priority {priority_text!r} is not a whole number")
            return _redirect("/rules")
        try:
            rule = await self._administration(session).add_rule(
                _arg(request, "field"), _arg(request, "pattern"), _arg(request, "action"), priority,
                _arg(request, "reason"),
            )
        except ActionError as e:
            session.errors.append(str(e))
        else:
            session.messages.append(f"rule {rule.id} added: {rule.describe()}")
        return _redirect("/rules")

    async def _delete_rule(self, request, session: Session) -> Response:
        try:
            rule = await self._administration(session).delete_rule(int(_arg(request, "id")))
        except (ActionError, ValueError) as e:
            session.errors.append(str(e))
        else:
            session.messages.append(f"rule {rule.id} deleted: {rule.describe()}")
        return _redirect("/rules")

    async def _audit(self, request, session: Session) -> Response:
        since_text = _arg(request, "since")
        errors = []
        since = None
        if since_text:
            try:
                since = parse_since(since_text)
            except ValueError as e:
                errors.append(str(e))
        records = await self._store.audit.list(since, 1000)
        return _page(pages.audit_page(session.name, session.csrf, records, since_text, errors))
