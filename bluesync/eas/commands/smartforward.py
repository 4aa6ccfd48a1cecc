"""
SmartForward (MS-ASCMD 2.2.1.19): a forward whose original text and
attachments the server adds from its own copy (unless ReplaceMime).  The
original gets LastVerbExecuted 3 (MS-ASEMAIL 2.2.2.44).

The work is shared with SendMail and SmartReply in
bluesync/eas/composemail.py.
"""

from __future__ import annotations

from bluesync.eas import composemail
from bluesync.eas.context import CommandContext
from bluesync.web.rendering import Response


async def handle(ctx: CommandContext) -> Response:
    return await composemail.handle(ctx, composemail.SMART_FORWARD)
