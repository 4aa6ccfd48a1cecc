"""
What SendMail, SmartReply and SmartForward share (MS-ASCMD 2.2.1.17,
2.2.1.20, 2.2.1.19): reading either request form, building the outgoing
message, handing it to the store and the outbound queue, and answering.

Two request forms:

- 14.0 and later: a ComposeMail document (ClientId, SaveInSentItems,
  ReplaceMime, Source with FolderId/ItemId/LongId/InstanceId, Mime).  Mime
  is an inline string in 14.x and OPAQUE in 16.x; the codec gives bytes
  either way (wbxml.opaque).
- 12.1: the MIME message itself as the body (Content-Type:
  message/rfc822), with ItemId, CollectionId, LongId and SaveInSent in
  the query string.  A later client that sends this form is accepted too.

Success is an empty 200 (2.2.1.17).  Failures are a Status in the
command's ComposeMail document from 14.0 (2.2.3.177.14, 2.2.3.177.16,
codes from 2.2.2), and an HTTP status in 12.1, which has no such document
(MS-ASHTTP 2.2.2.1.1): 400 for a request we cannot read, 403 for a
sender the account does not own, 500 for a failure to send, 503 to retry.

What is decided here:

- The From must be the account's address or one of its aliases, with any
  display name; a missing From is added.  Anything else: 130 AccessDenied.
- A ClientId (or, without one, the Message-ID the device wrote) is
  remembered per device: a resent request is not sent again and gets 118
  MessagePreviouslySent (12.1 has no status document: it gets 200, which
  is true, the message was sent).
- Local recipients get the message in their Inbox in the same transaction
  that accepts it (a meeting message then updates their calendars, as
  over LMTP: bluesync/mail/calendar_ingest.py); other recipients go to
  the relay through the outbound queue.  If there are other recipients
  and no relay, nothing at all is stored or sent, the device is told 120
  MailSubmissionFailed (its message stays in its Outbox), and the log
  names [mail] relay_host.
- Bcc goes to nobody's copy but the Sent Items one.
- The original of a SmartReply/SmartForward gets LastVerbExecuted and
  LastVerbExecutionTime, stamped so every device syncs the change.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone

from lxml import etree
from twisted.internet import threads
from twisted.logger import Logger

from bluesync import wbxml
from bluesync.eas.context import CommandContext
from bluesync.eas.responses import wbxml_response
from bluesync.mail import calendar_ingest, compose
from bluesync.mail.delivery import new_email_item
from bluesync.store.folders import INBOX, SENT_ITEMS
from bluesync.store.items import parse_server_id
from bluesync.store.outbound import Copy, DuplicateSubmission, FolderGone, Submission, Verb
from bluesync.web.rendering import Response

log = Logger()

SEND_MAIL, SMART_REPLY, SMART_FORWARD = "SendMail", "SmartReply", "SmartForward"

NS = "ComposeMail:"
C = "{ComposeMail:}"

# MS-ASCMD 2.2.2: the common status codes these commands answer with.
INVALID_CONTENT = 101
INVALID_XML = 103
INVALID_MIME = 107
SERVER_ERROR = 110
MESSAGE_RECIPIENT_UNRESOLVED = 116
MESSAGE_PREVIOUSLY_SENT = 118
MESSAGE_HAS_NO_RECIPIENT = 119
MAIL_SUBMISSION_FAILED = 120
ATTACHMENT_TOO_LARGE = 122
ACCESS_DENIED = 130
ITEM_NOT_FOUND = 150
INVALID_ACCOUNT_ID = 166

# 12.1: the HTTP status standing for each (MS-ASHTTP 2.2.2.1.1).
HTTP_STATUS = {
    INVALID_CONTENT: 400,
    INVALID_XML: 400,
    INVALID_MIME: 400,
    MESSAGE_RECIPIENT_UNRESOLVED: 400,
    MESSAGE_HAS_NO_RECIPIENT: 400,
    INVALID_ACCOUNT_ID: 400,
    ACCESS_DENIED: 403,
    ATTACHMENT_TOO_LARGE: 413,
    ITEM_NOT_FOUND: 500,
    MAIL_SUBMISSION_FAILED: 500,
    SERVER_ERROR: 500,
}

MAX_CLIENT_ID = 64
# Messages above this are composed in a worker thread: parsing megabytes
# must not stall every held Ping in the process.
THREAD_SIZE = 512 * 1024
# Times a submission looks up its local copies' folders: a MoveAlways
# destination deleted between the lookup and its lock sends it round again
# (its rule is gone then, so the second look finds the Inbox).
FOLDER_LOOKUPS = 3
UTC = timezone.utc


class ComposeFailure(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class ComposeRequest:
    command: str
    mime: bytes
    client_id: str | None = None
    save_in_sent: bool = False
    replace_mime: bool = False
    item_id: str | None = None
    folder_id: str | None = None
    long_id: str | None = None

    @property
    def source(self) -> str | None:
        return self.item_id or self.long_id


def parse_request(ctx: CommandContext, command: str) -> ComposeRequest:
    """
    Either request form as one L{ComposeRequest}.

    @raise ComposeFailure: the request cannot be read.
    """
    document = ctx.document
    if document is None:
        if not ctx.body:
            raise ComposeFailure(INVALID_CONTENT, "empty request")
        parameters = ctx.request.parameters
        return ComposeRequest(
            command, ctx.body, save_in_sent=ctx.request.save_in_sent,
            item_id=parameters.get("ItemId") or None, folder_id=parameters.get("CollectionId") or None,
            long_id=parameters.get("LongId") or None,
        )
    if document.tag != C + command:
        raise ComposeFailure(INVALID_XML, f"the document is {document.tag}, not {command}")
    if document.find(C + "AccountId") is not None:
        # Settings reports no AccountId: there is only the primary account.
        raise ComposeFailure(INVALID_ACCOUNT_ID, "AccountId given")
    if document.find(C + "Forwardees") is not None or document.find("{AirSyncBase:}Body") is not None:
        raise ComposeFailure(INVALID_XML, "calendar forwards (Forwardees, Body) are not supported")
    mime_element = document.find(C + "Mime")
    if mime_element is None:
        raise ComposeFailure(INVALID_XML, "no Mime")
    try:
        mime = wbxml.opaque(mime_element)
    except wbxml.WBXMLError as e:
        raise ComposeFailure(INVALID_XML, str(e)) from None
    client_id = _text(document, "ClientId")
    if client_id is not None and len(client_id) > MAX_CLIENT_ID:
        raise ComposeFailure(INVALID_XML, "ClientId longer than 64 characters")
    request = ComposeRequest(
        command, mime, client_id=client_id or None,
        save_in_sent=document.find(C + "SaveInSentItems") is not None,
        replace_mime=document.find(C + "ReplaceMime") is not None,
    )
    if command != SEND_MAIL:
        source = document.find(C + "Source")
        if source is None:
            raise ComposeFailure(INVALID_XML, "no Source")
        request.item_id = _text(source, "ItemId") or None
        request.folder_id = _text(source, "FolderId") or None
        request.long_id = _text(source, "LongId") or None
    return request


def _text(element, name: str) -> str | None:
    found = element.find(C + name)
    return None if found is None else (found.text or "").strip()


def answer(ctx: CommandContext, command: str, status: int) -> Response:
    if ctx.version_number < 14.0:
        if status == MESSAGE_PREVIOUSLY_SENT:
            return Response(200, b"", {})
        return Response(HTTP_STATUS.get(status, 500))
    root = etree.Element(C + command, nsmap={None: NS})
    etree.SubElement(root, C + "Status").text = str(status)
    return wbxml_response(root)


async def handle(ctx: CommandContext, command: str) -> Response:
    try:
        await _submit(ctx, command)
    except ComposeFailure as e:
        log.info("{account} {device}: {command} refused with {status}: {reason}", account=ctx.account.address,
                 device=ctx.request.device_id, command=command, status=e.status, reason=str(e))
        return answer(ctx, command, e.status)
    return Response(200, b"", {})


async def _submit(ctx: CommandContext, command: str) -> None:
    request = parse_request(ctx, command)
    if request.client_id is not None and await ctx.server.store.outbound.client_id_used(
            ctx.device.id, request.client_id):
        raise ComposeFailure(MESSAGE_PREVIOUSLY_SENT, f"ClientId {request.client_id} was sent before")
    original = await _original(ctx, request) if command != SEND_MAIL else None
    await send_message(ctx, request.mime, command=command, client_id=request.client_id,
                       save_in_sent=request.save_in_sent, original=original, replace_mime=request.replace_mime)


async def send_message(ctx: CommandContext, mime: bytes, *, command: str = SEND_MAIL, client_id: str | None = None,
                       save_in_sent: bool = False, original=None, replace_mime: bool = False) -> None:
    """
    Send C{mime} from the account of C{ctx} as its device asked: compose
    (for a SmartReply or SmartForward of the stored item C{original}),
    check, deliver locally, queue for the relay, all or nothing.  Also the
    way for other commands that send mail on a device's behalf (a 16.x
    draft sent from Sync, a meeting response).

    @raise ComposeFailure: with the MS-ASCMD status to answer; nothing was
        stored or sent.
    """
    store = ctx.server.store
    account = ctx.account
    now = datetime.fromtimestamp(ctx.server.clock.seconds(), UTC)
    own = [account.address, *await store.accounts.aliases(account.id)]
    outgoing = await _compose(ctx, command, mime, original, replace_mime, own, now)
    if len(outgoing.stored) > ctx.server.config.mail.max_message_size:
        raise ComposeFailure(ATTACHMENT_TOO_LARGE, f"{len(outgoing.stored)} bytes is over [mail] max_message_size")
    if client_id is None and outgoing.message_id_given:
        client_id = f"message-id:{outgoing.message_id}"[:200]

    local, disabled, external = [], [], []
    for recipient in outgoing.recipients:
        owner = await store.accounts.by_address(recipient)
        if owner is None:
            external.append(recipient)
        elif owner.disabled:
            disabled.append(recipient)
        elif all(owner.id != other.id for other in local):
            local.append(owner)
    outbound = ctx.server.outbound
    if external and (outbound is None or not outbound.relay_configured):
        log.warn("{account}: {command} to {count} recipients of other domains refused: no SMTP relay,"
                 " set {setting}", account=account.address, command=command, count=len(external),
                 setting="[mail] relay_host")
        raise ComposeFailure(MAIL_SUBMISSION_FAILED, "no SMTP relay configured")

    fixed = []
    delivered = new_email_item(outgoing.transmitted, now) if local else None
    if save_in_sent:
        sent = await store.folders.by_type(account.id, SENT_ITEMS)
        if sent is not None:
            copy = dataclasses.replace(new_email_item(outgoing.stored, now), read=True)
            fixed.append(Copy(account.id, sent.id, copy))
    if disabled:
        fixed.append(await _disabled_report(ctx, outgoing, disabled, now))
    verb = None
    if original is not None:
        kind = compose.FORWARD if command == SMART_FORWARD else compose.reply_verb(outgoing, original.content, own)
        verb = Verb(account.id, original.id, kind, now)
    for _ in range(FOLDER_LOOKUPS):
        copies = list(fixed)
        for owner in local:
            # The Inbox, unless a MoveAlways rule of the owner takes the conversation elsewhere.
            folder_id = await store.conversations.delivery_folder(owner.id, delivered.columns.get("conversation_id"))
            if folder_id is not None:
                copies.append(Copy(owner.id, folder_id, delivered, follows_rule=True))
        try:
            outbound_id = await store.outbound.submit(Submission(
                account_id=account.id, device_id=ctx.device.id if ctx.device is not None else None,
                client_id=client_id, now=now, copies=tuple(copies), verb=verb, sender=outgoing.sender,
                recipients=tuple(external), message=outgoing.transmitted,
            ))
            break
        except DuplicateSubmission:
            raise ComposeFailure(MESSAGE_PREVIOUSLY_SENT, f"{client_id} was sent before") from None
        except FolderGone as e:
            # A rule's folder deleted after the lookup: nothing was stored,
            # and the rule went with the folder, so looking again finds
            # where the message goes now (the Inbox).
            log.info("{account}: {command}: folder {folder} deleted while sending; looking again",
                     account=account.address, command=command, folder=e.args[0])
    else:
        raise ComposeFailure(SERVER_ERROR, f"folders deleted during {FOLDER_LOOKUPS} attempts")
    if outbound_id is not None:
        outbound.wake()
    if local:
        await calendar_ingest.process(store, local, outgoing.transmitted,
                                      message_class=delivered.columns.get("message_class"))
    log.info("{account} {device}: {command} {message_id} accepted: {local} local, {remote} to the relay"
             " (queue {queue}), sent copy {saved}", account=account.address, device=ctx.request.device_id,
             command=command, message_id=outgoing.message_id, local=len(local), remote=len(external),
             queue=outbound_id, saved=save_in_sent)


async def _original(ctx: CommandContext, request: ComposeRequest):
    """
    The stored message a SmartReply or SmartForward refers to.  Our
    ServerIds name the item's folder too, so FolderId adds nothing, and
    an item found by id is the account's wherever it moved since.
    """
    if request.source is None:
        raise ComposeFailure(INVALID_XML if ctx.document is not None else INVALID_CONTENT, "no ItemId or LongId")
    parsed = parse_server_id(request.source)
    item = await ctx.server.store.items.get(ctx.account.id, parsed[1]) if parsed else None
    if item is None:
        raise ComposeFailure(ITEM_NOT_FOUND, f"no item {request.source!r}")
    if item.content_class != "Email":
        # A meeting or other item: the device's message goes as it is.
        log.info("{account}: {command} of a {klass} item sends the device's message unchanged",
                 account=ctx.account.address, command=request.command, klass=item.content_class)
        return None
    return item


async def _compose(ctx: CommandContext, command: str, mime: bytes, original, replace_mime: bool,
                   own: list[str], now: datetime) -> compose.Outgoing:
    account = ctx.account

    def build() -> compose.Outgoing:
        raw = mime
        if original is not None:
            build_body = compose.reply if command == SMART_REPLY else compose.forward
            raw = build_body(raw, original.content, replace_mime=replace_mime)
        return compose.prepare(raw, address=account.address, display_name=account.display_name,
                               own_addresses=own, hostname=ctx.server.config.mail.hostname, now=now)

    try:
        size = len(mime) + (len(original.content) if original is not None else 0)
        pool = getattr(ctx.server.clock, "getThreadPool", None)
        if size > THREAD_SIZE and pool is not None:
            return await threads.deferToThreadPool(ctx.server.clock, pool(), build)
        return build()
    except compose.ForgedSender as e:
        raise ComposeFailure(ACCESS_DENIED, str(e)) from None
    except compose.NoRecipients as e:
        raise ComposeFailure(MESSAGE_HAS_NO_RECIPIENT, str(e)) from None
    except compose.UnresolvedRecipient as e:
        raise ComposeFailure(MESSAGE_RECIPIENT_UNRESOLVED, str(e)) from None
    except compose.InvalidMessage as e:
        raise ComposeFailure(INVALID_MIME, str(e)) from None


async def _disabled_report(ctx: CommandContext, outgoing: compose.Outgoing, recipients: list[str],
                           now: datetime) -> Copy:
    """
    A local recipient whose account is disabled refuses mail, as over
    LMTP; the sender learns it from a report, as from the relay.
    """
    inbox = await ctx.server.store.folders.by_type(ctx.account.id, INBOX)
    raw = compose.delivery_report(
        original=outgoing.transmitted,
        failures=[compose.Failure(r, "5.2.1", "x-bluesync; the mailbox is disabled") for r in recipients],
        recipient=ctx.account.address, hostname=ctx.server.config.mail.hostname, arrival=now, now=now,
    )
    return Copy(ctx.account.id, inbox.id, new_email_item(raw, now))
