"""
The admin web page, on its own listener ([admin] listen, loopback by
default): devices per account with their state, the actions on them,
access rules and the audit trail, for administrators of the admins table.
"""

from __future__ import annotations

from twisted.web import server

from bluesync.web.admin.resource import AdminResource
from bluesync.web.admin.session import Sessions
from bluesync.web.throttle import LoginThrottle


def build_admin_site(context) -> server.Site:
    config = context.config
    root = AdminResource(
        context,
        Sessions(config.admin.session_lifetime, context.clock),
        LoginThrottle(config.login, context.clock),
    )
    site = server.Site(root)
    site.displayTracebacks = False
    return site
