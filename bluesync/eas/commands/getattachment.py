"""
GetAttachment (MS-ASCMD 2.2.1.8): the 12.x way to download an attachment.

The AttachmentName query parameter is the attachment's FileReference
("folderid:itemid:partindex"); the answer's body is the attachment's bytes,
as they are, with its Content-Type (2.2.1.8: "The content of the attachment
is returned in the response body with the content type being specified in
the Content-Type header").

The spec lists the command for 12.1 and earlier; 14.0 and later clients
fetch through ItemOperations.  The command is served to every version all
the same: it is the same lookup, and a client that falls back to it is
better served than refused.

Answers: 400 for a request without a usable AttachmentName (logged); 500
for an attachment that does not exist or is no longer there, as 2.2.1.8
specifies for "an attachment that has been deleted on the server" (another
account's attachment is answered exactly the same way); 403 when the
policy disables attachments, 413 when it is above the policy's
max_attachment_size.
"""

from __future__ import annotations

from twisted.logger import Logger

from bluesync.eas import attachments
from bluesync.eas.context import CommandContext
from bluesync.web.rendering import Response

log = Logger()


async def handle(ctx: CommandContext) -> Response:
    name = ctx.request.parameters.get("AttachmentName")
    if attachments.parse_file_reference(name) is None:
        return _refused(ctx, 400, name, "no usable AttachmentName")
    attachment = await attachments.find(ctx.server.store, ctx.account.id, name)
    if attachment is None:
        return _refused(ctx, 500, name, "no such attachment")
    policy = ctx.server.config.policy
    if not policy.attachments_enabled:
        return _refused(ctx, 403, name, "attachments are disabled by policy")
    if policy.max_attachment_size and attachment.size > policy.max_attachment_size:
        return _refused(ctx, 413, name, f"attachment of {attachment.size} bytes is above the policy's limit")
    return Response(200, attachment.data, {"content-type": attachment.content_type})


def _refused(ctx: CommandContext, code: int, name: str | None, reason: str) -> Response:
    log.info("{account} {device}: GetAttachment {name!r}: HTTP {code}, {reason}", account=ctx.account.address,
             device=ctx.request.device_id, name=name, code=code, reason=reason)
    return Response(code)
