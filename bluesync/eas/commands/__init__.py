"""
The EAS commands bluesync implements, one module each, in one explicit table.

A handler is C{async def handle(ctx: CommandContext) -> Response}.  Only
commands listed here are advertised by OPTIONS and dispatched; any other
MS-ASHTTP command is answered 501.  A command that only some protocol
versions have is listed in L{VERSIONS} too: a request in another version
is answered 501 as well, since for that version the server has no such
functionality (MS-ASHTTP 2.2.2.1.1).
"""

from __future__ import annotations

from typing import Awaitable, Callable

from bluesync.eas.commands import find
from bluesync.eas.commands import foldercreate, folderdelete, foldersync, folderupdate, getitemestimate, sync
from bluesync.eas.commands import ping, provision, settings
from bluesync.eas.commands import getattachment, itemoperations, meetingresponse, moveitems
from bluesync.eas.commands import resolverecipients, search
from bluesync.eas.commands import sendmail, smartforward, smartreply

COMMANDS: dict[str, Callable[..., Awaitable]] = {
    "Sync": sync.handle,
    "GetItemEstimate": getitemestimate.handle,
    "FolderSync": foldersync.handle,
    "FolderCreate": foldercreate.handle,
    "FolderUpdate": folderupdate.handle,
    "FolderDelete": folderdelete.handle,
    "Provision": provision.handle,
    "Settings": settings.handle,
    "Ping": ping.handle,
    "MoveItems": moveitems.handle,
    "ItemOperations": itemoperations.handle,
    "GetAttachment": getattachment.handle,
    "Search": search.handle,
    "ResolveRecipients": resolverecipients.handle,
    "SendMail": sendmail.handle,
    "SmartReply": smartreply.handle,
    "SmartForward": smartforward.handle,
    "MeetingResponse": meetingresponse.handle,
    "Find": find.handle,
}

# Commands served only in some protocol versions; the others, in all.
VERSIONS: dict[str, frozenset[str]] = {
    "Find": find.VERSIONS,
}
