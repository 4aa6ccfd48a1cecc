"""
SmartReply (MS-ASCMD 2.2.1.20): a reply whose quoted original the server
adds from its own copy, so the phone never uploads it.  The original gets
LastVerbExecuted 1 or 2 (reply, reply all; MS-ASEMAIL 2.2.2.44).

The work is shared with SendMail and SmartForward in
bluesync/eas/composemail.py.
"""

from __future__ import annotations

from bluesync.eas import composemail
from bluesync.eas.context import CommandContext
from bluesync.web.rendering import Response


async def handle(ctx: CommandContext) -> Response:
    return await composemail.handle(ctx, composemail.SMART_REPLY)
