"""
SendMail (MS-ASCMD 2.2.1.17): the device sends a new message.

The work is shared with SmartReply and SmartForward in
bluesync/eas/composemail.py.
"""

from __future__ import annotations

from bluesync.eas import composemail
from bluesync.eas.context import CommandContext
from bluesync.web.rendering import Response


async def handle(ctx: CommandContext) -> Response:
    return await composemail.handle(ctx, composemail.SEND_MAIL)
