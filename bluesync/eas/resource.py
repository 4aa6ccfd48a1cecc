"""
The ActiveSync endpoint of one authenticated account.

It answers OPTIONS with the versions and commands we really support, and
for POST parses the MS-ASHTTP request line, bounds and decodes the body,
dispatches to the command table and encodes the answer.  Malformed input is
a 400 with a log line; a command we do not implement is a 501; a database
outage is a 503 that phones retry.
"""

from __future__ import annotations

from twisted.logger import Logger
from twisted.web import http_headers

from bluesync import metrics, wbxml
from bluesync.devices import actions, state
from bluesync.devices.guard import BUSY_RETRY_AFTER
from bluesync.eas import access
from bluesync.eas.context import CommandContext, ServerContext
from bluesync.eas.request import SUPPORTED_VERSIONS, RequestError, parse_request
from bluesync.eas.responses import WBXML_TYPE, wbxml_response
from bluesync.store.accounts import Account
from bluesync.store.database import DATABASE_DOWN
from bluesync.store.devices import TooManyDevices
from bluesync.web.rendering import Response

log = Logger()

SERVER_VERSION = "16.1"

_HEADERS = (
    "ms-asprotocolversion",
    "x-ms-policykey",
    "user-agent",
    "ms-asacceptmultipart",
    "content-type",
)



def _spell_headers_conventionally() -> None:
    """
    Twisted writes header names in Header-Case ("Ms-Asprotocolversions").
    HTTP says names are case-insensitive and the clients we know agree, but
    diagnostic tools and old clients compare them literally, so teach
    Twisted's private case table the spelling Exchange uses, where it has one.
    """
    for holder in (getattr(http_headers, "_NameEncoder", None), http_headers.Headers):
        mappings = getattr(holder, "_caseMappings", None)
        if isinstance(mappings, dict):
            mappings.update(
                {
                    b"Ms-Server-Activesync": b"MS-Server-ActiveSync",
                    b"Ms-Asprotocolversions": b"MS-ASProtocolVersions",
                    b"Ms-Asprotocolcommands": b"MS-ASProtocolCommands",
                }
            )
            return


_spell_headers_conventionally()


def options_headers(commands) -> dict[str, str]:
    return {
        "allow": "OPTIONS,POST",
        "public": "OPTIONS,POST",
        "ms-server-activesync": SERVER_VERSION,
        "ms-asprotocolversions": ",".join(SUPPORTED_VERSIONS),
        "ms-asprotocolcommands": ",".join(commands),
        "cache-control": "private",
    }


class ActiveSyncResource:
    """
    Built per request by the realm, for the authenticated account.
    """

    def __init__(self, account: Account, server: ServerContext, commands=None, versions=None) -> None:
        self.account = account
        self.server = server
        if commands is None:
            # Imported here: command modules import this package's helpers.
            from bluesync.eas.commands import COMMANDS as commands, VERSIONS as versions
        self.commands = commands
        # Commands only some protocol versions have: OPTIONS names them
        # when one of ours does, and a request in another version is a 501.
        self.versions = versions or {}

    @metrics.counted
    async def respond(self, request) -> Response:
        method = request.method
        if method == b"OPTIONS":
            offered = [name for name in self.commands
                       if name not in self.versions or self.versions[name].intersection(SUPPORTED_VERSIONS)]
            return Response(200, b"", options_headers(offered))
        if method != b"POST":
            return Response(405, b"", {"allow": "OPTIONS,POST"})
        return await self._post(request)

    async def _post(self, request) -> Response:
        headers = {name: request.getHeader(name) for name in _HEADERS}
        headers = {name: value for name, value in headers.items() if value is not None}
        query = request.uri.partition(b"?")[2]
        try:
            eas_request = parse_request(query, headers)
        except RequestError as e:
            log.info("bad request from {account}: {error}", account=self.account.address, error=str(e))
            return Response(400)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        # This frame lives as long as the request, minutes for a held Ping.
        del headers, query
        self.command = eas_request.command
        handler = self.commands.get(eas_request.command)
        versions = self.versions.get(eas_request.command)
        if handler is None or (versions is not None and eas_request.version not in versions):
            log.info(
                "{account} {device}: command {command} not implemented in {version}",
                account=self.account.address,
                device=eas_request.device_id,
                command=eas_request.command,
                version=eas_request.version,
            )
            return Response(501)
        guard = self.server.guard
        if guard is not None and not guard.admit(self.account.id):
            log.info("{account} {device} {command}: refused, {count} requests of the account in progress",
                     account=self.account.address, device=eas_request.device_id, command=eas_request.command,
                     count=guard.working(self.account.id))
            return access.busy(BUSY_RETRY_AFTER)
        try:
            return await self._admitted(request, eas_request, handler, content_type)
        finally:
            if guard is not None:
                guard.release(self.account.id)

    async def _admitted(self, request, eas_request, handler, content_type: str) -> Response:
        body = request.content.read() if request.content is not None else b""
        limit = self.server.config.server.max_request_body
        if limit and len(body) > limit:
            log.info("{account}: request body of {size} bytes refused", account=self.account.address, size=len(body))
            return Response(413)
        ctx = CommandContext(
            server=self.server,
            account=self.account,
            request=eas_request,
            http_request=request,
            body=body,
        )
        # The command may drop ctx.body once it has read it (a held Ping does).
        del body
        config = self.server.config
        try:
            ctx.device = await self.server.store.devices.touch(
                self.account.id,
                eas_request.device_id,
                eas_request.device_type,
                eas_request.user_agent,
                eas_request.version,
                eas_request.command,
                new_access=state.POLICY_STATES[config.policy.unknown_device],
                max_devices=config.devices.max_devices_per_account,
            )
        except TooManyDevices as e:
            log.warn("{account} {device}: new partnership refused: {reason}",
                     account=self.account.address, device=eas_request.device_id, reason=str(e))
            return access.device_limit_refusal(ctx)
        except DATABASE_DOWN as e:
            log.warn("database unavailable: {error}", error=str(e))
            return Response(503, b"", {"retry-after": "30"})
        refusal = await access.check(ctx)
        if refusal is not None:
            return refusal
        if ctx.body and content_type != "message/rfc822":
            try:
                ctx.document = wbxml.decode(ctx.body)
            except wbxml.WBXMLError as e:
                log.info(
                    "{account} {device} {command}: malformed WBXML: {error}",
                    account=self.account.address,
                    device=eas_request.device_id,
                    command=eas_request.command,
                    error=str(e),
                )
                return Response(400)
        try:
            response = await handler(ctx)
        except DATABASE_DOWN as e:
            log.warn("{command} failed, database unavailable: {error}", command=eas_request.command, error=str(e))
            return Response(503, b"", {"retry-after": "30"})
        guard = self.server.guard
        if guard is not None:
            reason = guard.observe(ctx.device.id, eas_request.user_agent, eas_request.command, response)
            if reason is not None:
                await actions.autoblock(self.server, self.account, ctx.device, reason)
        return response


__all__ = ["ActiveSyncResource", "options_headers", "wbxml_response", "WBXML_TYPE"]
