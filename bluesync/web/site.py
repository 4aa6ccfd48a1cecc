"""
The twisted.web resource tree.

    /Microsoft-Server-ActiveSync   EAS, behind HTTP Basic auth
    /autodiscover/autodiscover.xml Autodiscover (mobilesync), same auth
    /healthz                       200 when PostgreSQL answers, else 503
"""

from __future__ import annotations

from twisted.logger import Logger
from twisted.web import resource, server

from bluesync.eas.context import ServerContext
from bluesync.eas.resource import ActiveSyncResource
from bluesync.store.database import DATABASE_DOWN
from bluesync.web.auth import AuthenticatedResource, make_portal
from bluesync.web.autodiscover import AutodiscoverDirectory, AutodiscoverResource, IAutodiscover
from bluesync.web.rendering import Response, render_async
from bluesync.web.throttle import LoginThrottle

log = Logger()

EAS_PATH = b"microsoft-server-activesync"


class HealthResource(resource.Resource):
    isLeaf = True

    def __init__(self, database) -> None:
        super().__init__()
        self._database = database

    def render_GET(self, request):
        return render_async(request, self._check)

    async def _check(self) -> Response:
        try:
            await self._database.query("SELECT 1")
        except DATABASE_DOWN as e:
            log.warn("health check: database unavailable: {error}", error=str(e))
            return Response(503, b"database unavailable\n", {"content-type": "text/plain"})
        return Response(200, b"ok\n", {"content-type": "text/plain"})


class RootResource(resource.Resource):
    """
    Paths compare case-insensitively: devices are not consistent about the
    case of Microsoft-Server-ActiveSync.
    """

    def __init__(self) -> None:
        super().__init__()
        self._children: dict[bytes, resource.Resource] = {}

    def putChild(self, path: bytes, child) -> None:
        self._children[path.lower()] = child

    def getChild(self, path: bytes, request):
        child = self._children.get(path.lower())
        if child is None:
            return resource.NoResource()
        return child

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain")
        return b"bluesync Exchange ActiveSync server\n"


def build_site(context: ServerContext) -> server.Site:
    store = context.store
    portal = make_portal(store.accounts, lambda account: ActiveSyncResource(account, context),
                         {IAutodiscover: lambda account: AutodiscoverResource(account, context)})
    root = RootResource()
    login = context.config.login
    # One throttle: Autodiscover must not be a second door for guessing.
    throttle = LoginThrottle(login, context.clock)
    realm = context.config.server.realm
    root.putChild(EAS_PATH, AuthenticatedResource(portal, realm, throttle, login.trusted_proxies))
    root.putChild(b"autodiscover", AutodiscoverDirectory(
        AuthenticatedResource(portal, realm, throttle, login.trusted_proxies, interface=IAutodiscover)))
    root.putChild(b"healthz", HealthResource(store.database))
    site = server.Site(root)
    site.displayTracebacks = False
    return site
