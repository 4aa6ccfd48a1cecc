"""
Drafts through Sync (16.0 and 16.1): a device adds, changes, deletes and
sends the messages of its Drafts folder (MS-ASEMAIL 2.2.2.69 Send,
MS-ASAIRS 2.2.2.2 and 2.2.2.21 attachment Add and Delete, MS-ASCMD
2.2.3.7.2 Add and 2.2.3.24 Change).  bluesync/eas/commands/sync.py hands
the commands of a Drafts collection here; items/drafts.py turns what the
device wrote into the stored message.

Rules (MS-ASCMD 2.2.3.7.2 and 2.2.3.154):

- Email Adds are accepted in the Drafts folder only, and only from 16.0:
  any other email Add is answered Status 6, as the spec says.
- An Add is answered with ClientId, ServerId, Status and, when it added
  attachments, an ApplicationData mapping each attachment ClientId to its
  FileReference; a Change is answered only when it failed or added
  attachments (with the same mapping).
- A resent Add (same device, same ClientId) gets the same ServerId and
  mapping and stores nothing.  A resent Change (its request used the
  previous sync key) does not delete attachments again: FileReferences are
  part numbers, and after a delete they may name another attachment.
- A Change that renumbers attachments is not treated as the device's own:
  the device is sent the whole draft back, with the new FileReferences.
- Drafts are served with Email2:IsDraft and the Bcc recipients, and a
  server Change of a draft carries the whole draft (16.x), since its
  content, not only its flags, changes.
- Send (an empty email2:Send in the Add or Change, after ApplicationData)
  saves the draft, then submits it as SendMail would, keeping a copy in
  Sent Items (composemail.send_message); the draft then leaves Drafts, and
  every device of the account, the sender's included, is sent its Delete.
  A draft that cannot be sent as it is (no recipient, an address that is
  not one) is Status 6: a new one is then not stored at all, a changed one
  stays saved.  A failure to submit (no relay for other domains) is
  Status 5 and the draft stays; the same Add or Change sent again sends it.
  Each draft is submitted once (its submission ClientId is the Add's
  ClientId, or for a Change its item id): a resent Send after a lost
  answer is answered Status 1 and sends nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone

from twisted.internet import threads
from twisted.logger import Logger

from bluesync.eas import composemail, render
from bluesync.eas.context import CommandContext
from bluesync.eas.syncoptions import SyncOptions
from bluesync.items import drafts, email
from bluesync.items.email_changes import UNCHANGED, ChangeError, ClientChange, client_change
from bluesync.items.records import from_record, to_record
from bluesync.mail import compose
from bluesync.mail.delivery import new_email_item
from bluesync.store.folders import DRAFTS
from bluesync.store.items import ItemChanged

log = Logger()

# MS-ASCMD 2.2.3.177.17: Status (Sync).
SUCCESS = 1
SERVER_ERROR = 5
CONVERSION_ERROR = 6
NOT_FOUND = 8

SEND = "{Email2:}Send"
# What composemail refuses because of the message itself: the device must
# edit the draft, so Status 6 (the item is invalid), not 5 (try again).
UNSENDABLE = frozenset({
    composemail.INVALID_MIME, composemail.MESSAGE_RECIPIENT_UNRESOLVED, composemail.MESSAGE_HAS_NO_RECIPIENT,
    composemail.ATTACHMENT_TOO_LARGE, composemail.ACCESS_DENIED,
})
# Another device saving the same draft at the same moment: read it again
# and redo the edit this many times before giving up.
ATTEMPTS = 3
# Drafts bigger than this are written in a worker thread: a draft with a
# 5 MB attachment takes seconds of CPU to write and index, and held Pings
# must not stall meanwhile.
THREAD_SIZE = 512 * 1024
UTC = timezone.utc


def is_drafts(folder) -> bool:
    return folder.type == DRAFTS and folder.content_class == "Email"


def send_requested(command_element) -> bool:
    """Whether a Sync Add or Change element carries email2:Send."""
    return command_element.find(SEND) is not None


def _state_arguments(state: ClientChange) -> dict:
    """The keyword arguments of the store's state updates for a ClientChange."""
    return {
        "read": None if state.read is UNCHANGED else state.read,
        "flag": to_record(state.flag) if state.flag not in (UNCHANGED, None) else None,
        "set_flag": state.flag is not UNCHANGED,
        "categories": None if state.categories is UNCHANGED else tuple(state.categories),
    }


def send_client_id(item_id: int) -> str:
    """The submission ClientId of a draft sent by a Change: it is sent once."""
    return f"sync-draft:{item_id}"


def add_send_client_id(client_id: str) -> str:
    """
    The submission ClientId of a draft sent by the Add that created it: a
    resent Add finds it even though the sent draft is gone from the store.
    """
    return f"sync-add:{client_id}"


@dataclass(frozen=True)
class _Saved:
    """A Change saved: its modseq (None: nothing to save) and the draft."""

    modseq: int | None
    raw: bytes
    attachments: dict[str, int] = field(default_factory=dict)
    renumbered: bool = False


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Drafts:
    """
    The Drafts collection of one Sync request.
    """

    def __init__(self, ctx: CommandContext) -> None:
        self.ctx = ctx
        self.store = ctx.server.store
        self.account = ctx.account
        self.device = ctx.device
        self.config = ctx.server.config

    @property
    def editable(self) -> bool:
        """Drafts are written through Sync from 16.0 (MS-ASEMAIL 2.2.2.69)."""
        return self.ctx.version_number >= 16.0

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.ctx.server.clock.seconds(), UTC).replace(microsecond=0)

    @property
    def _origin(self) -> str:
        return str(self.device.id)

    def _sender(self) -> drafts.Sender:
        return drafts.Sender(self.account.address, self.account.display_name)

    async def _off_reactor(self, size: int, work):
        """The result of pure C{work}, in a worker thread when C{size} is big."""
        clock = self.ctx.server.clock
        pool = getattr(clock, "getThreadPool", None)
        if size > THREAD_SIZE and pool is not None:
            return await threads.deferToThreadPool(clock, pool(), work)
        return work()

    def _log_refusal(self, what: str, identifier, error) -> None:
        log.info("{account} {device}: draft {what} {identifier} refused: {error}", account=self.account.address,
                 device=self.device.device_id, what=what, identifier=identifier, error=str(error))

    # -- serving -----------------------------------------------------------

    def application_data(self, item, server_id: str, options: SyncOptions):
        """
        A draft as a Sync Add, Change (16.x) or Fetch sends it: with
        Email2:IsDraft and the Bcc recipients.
        """
        return email.application_data(
            item.content,
            from_record(email.MessageSummary, item.summary),
            render.email_state(item),
            version=self.ctx.version,
            body_preferences=options.body_preferences or render.PLAIN_TEXT,
            mime_support=options.mime_support,
            mime_truncation=options.mime_truncation,
            file_reference_prefix=f"{server_id}:",
            is_draft=True,
            prepared=from_record(email.Rendition, item.rendition) if item.rendition else None,
        )

    def change_data(self, item, server_id: str, options: SyncOptions):
        if self.editable:
            return self.application_data(item, server_id, options)
        return render.change_data(item, self.ctx.version)

    # -- Add ---------------------------------------------------------------

    async def add(self, folder, command, own: dict[int, int]):
        """
        A Sync Add in the Drafts folder; its Responses entry
        ("Add", (ClientId, ServerId or None), Status, ApplicationData).
        """
        client_id = command.client_id or ""
        if not self.editable or not client_id or len(client_id) > drafts.MAX_CLIENT_ID:
            self._log_refusal("Add", client_id, "not 16.0+" if not self.editable else "no usable ClientId")
            return ("Add", (client_id, None), CONVERSION_ERROR, None)
        existing = await self.store.items.by_client_id(self.device.id, client_id)
        if existing is not None:
            return await self._added_before(folder, existing, command, own)
        if command.send and await self.store.outbound.client_id_used(self.device.id, add_send_client_id(client_id)):
            # A resent Add with Send whose draft went, and is gone: its
            # ServerId is no more, the device needs none.
            return ("Add", (client_id, None), SUCCESS, None)
        try:
            edit = drafts.parse_edit(command.application_data)
            state = client_change(command.application_data)
        except (drafts.DraftError, ChangeError) as e:
            self._log_refusal("Add", client_id, e)
            return ("Add", (client_id, None), CONVERSION_ERROR, None)
        now = self._now()

        def write():
            draft = drafts.build(edit, sender=self._sender(), now=now, hostname=self.config.mail.hostname,
                                 origin=self._origin)
            problem = self._unsendable(draft.raw, now) if command.send else None
            return draft, self._new_item(draft.raw, now, state), problem

        size = sum(len(a.content) for a in edit.add)
        draft, new, problem = await self._off_reactor(size, write)
        if len(draft.raw) > self.config.mail.max_message_size:
            self._log_refusal("Add", client_id, f"{len(draft.raw)} bytes is over [mail] max_message_size")
            return ("Add", (client_id, None), CONVERSION_ERROR, None)
        if problem is not None:
            self._log_refusal("Add with Send", client_id, problem)
            return ("Add", (client_id, None), CONVERSION_ERROR, None)
        item, created = await self.store.items.add_from_device(self.account.id, folder.id, new, self.device.id,
                                                               client_id)
        server_id = f"{folder.id}:{item.id}"
        if created:
            own[item.id] = item.modseq
        log.info("{account} {device}: draft {server_id} added ({attachments} attachments)",
                 account=self.account.address, device=self.device.device_id, server_id=server_id,
                 attachments=len(draft.attachments))
        status = SUCCESS
        if command.send:
            status = await self._send(folder, item.id, draft.raw, add_send_client_id(client_id))
        return ("Add", (client_id, server_id), status, drafts.attachment_ids(draft.attachments, f"{server_id}:"))

    async def _added_before(self, folder, existing, command, own: dict[int, int]):
        """
        The answer to a resent Add: the ServerId issued the first time (the
        draft may have been sent or moved since; the device then hears of
        that as a Delete), and the attachments it added.  A draft to send
        that is still in Drafts (sending failed the first time) is sent now.
        """
        client_id = command.client_id
        server_id = f"{folder.id}:{existing.id}"
        item = await self.store.items.get(self.account.id, existing.id)
        attachments = drafts.added_by(item.content, self._origin) if item is not None else {}
        log.info("{account} {device}: draft Add {client_id} resent, answered with {server_id}",
                 account=self.account.address, device=self.device.device_id, client_id=client_id,
                 server_id=server_id)
        if item is not None and item.folder_id == folder.id and item.modseq == item.created_modseq:
            # As the first time: the device has it, no Add for it.
            own[item.id] = item.modseq
        status = SUCCESS
        if command.send and item is not None and item.folder_id == folder.id:
            status = await self._send(folder, item.id, item.content, add_send_client_id(client_id))
        return ("Add", (client_id, server_id), status, drafts.attachment_ids(attachments, f"{server_id}:"))

    def _unsendable(self, raw: bytes, now: datetime) -> str | None:
        """
        Why a new draft to send cannot be sent as it is, or None: checked
        before it is stored, so a refused Add leaves nothing behind.
        """
        try:
            compose.prepare(drafts.sendable(raw), address=self.account.address,
                            display_name=self.account.display_name, own_addresses=[self.account.address],
                            hostname=self.config.mail.hostname, now=now)
        except compose.ComposeError as e:
            return str(e)
        return None

    def _new_item(self, raw: bytes, now: datetime, state: ClientChange):
        """
        The stored form of a draft: the message as delivery would store it,
        read unless the device says otherwise (the user is writing it).
        """
        new = new_email_item(raw, now)
        return dataclasses.replace(
            new,
            read=True if state.read is UNCHANGED else state.read,
            flag=to_record(state.flag) if state.flag not in (UNCHANGED, None) else None,
            categories=() if state.categories is UNCHANGED else tuple(state.categories),
        )

    # -- Change ------------------------------------------------------------

    async def change(self, folder, item_id: int | None, command, own: dict[int, int], sync_key: str):
        """
        A Sync Change of a draft; its Responses entry, or None when the
        device needs none (a success without new attachments).  C{sync_key}
        is the key the request came with.
        """
        server_id = command.server_id
        if item_id is None:
            return ("Change", server_id, NOT_FOUND, None)
        try:
            edit = drafts.parse_edit(command.application_data) if self.editable else drafts.DraftEdit()
            state = client_change(command.application_data)
        except (drafts.DraftError, ChangeError) as e:
            self._log_refusal("Change", server_id, e)
            return ("Change", server_id, CONVERSION_ERROR, None)
        if edit.delete and await self._replayed(folder, sync_key):
            log.info("{account}: draft Change of {server_id} resent: its attachment deletes were done",
                     account=self.account.address, server_id=server_id)
            edit = dataclasses.replace(edit, delete=())
        now = self._now()
        for _ in range(ATTEMPTS):
            item = (await self.store.items.get_many(self.account.id, [item_id], folder.id)).get(item_id)
            if item is None:
                if command.send and await self.store.outbound.client_id_used(self.device.id,
                                                                             send_client_id(item_id)):
                    # A resent Send: the draft went the first time.
                    return None
                return ("Change", server_id, NOT_FOUND, None)
            try:
                saved = await self._save(folder, item, edit, state, server_id, now)
            except ItemChanged:
                continue
            except _Refused as e:
                return ("Change", server_id, e.status, None)
            break
        else:
            log.warn("{account}: draft {server_id} kept changing; Change not applied", account=self.account.address,
                     server_id=server_id)
            return ("Change", server_id, SERVER_ERROR, None)
        if saved.modseq is None and (edit.changes_content or state != ClientChange()):
            return ("Change", server_id, NOT_FOUND, None)
        if saved.modseq is not None and not saved.renumbered:
            own[item_id] = saved.modseq
        status = SUCCESS
        if command.send:
            status = await self._send(folder, item_id, saved.raw, send_client_id(item_id))
        if status != SUCCESS or saved.attachments:
            return ("Change", server_id, status, drafts.attachment_ids(saved.attachments, f"{server_id}:"))
        return None

    async def _save(self, folder, item, edit: drafts.DraftEdit, state: ClientChange, server_id: str,
                    now: datetime) -> _Saved:
        """
        One attempt at saving a Change: the state alone, or the draft
        written again from the stored one, unless it changed meanwhile.

        @raise ItemChanged: another device saved it since it was read.
        @raise _Refused: the changed draft cannot be stored.
        """
        if not edit.changes_content:
            return _Saved(await self._change_state(folder, item.id, state), item.content)

        def write():
            draft = drafts.apply(item.content, edit, file_reference_prefix=f"{server_id}:", sender=self._sender(),
                                 now=now, hostname=self.config.mail.hostname, origin=self._origin)
            return draft, new_email_item(draft.raw, now)

        draft, new = await self._off_reactor(len(item.content) + sum(len(a.content) for a in edit.add), write)
        if len(draft.raw) > self.config.mail.max_message_size:
            self._log_refusal("Change", server_id, f"{len(draft.raw)} bytes is over [mail] max_message_size")
            raise _Refused(CONVERSION_ERROR)
        modseq = await self.store.items.replace_content(self.account.id, folder.id, item.id, new,
                                                        expected_modseq=item.modseq, **_state_arguments(state))
        return _Saved(modseq, draft.raw, draft.attachments, draft.renumbered)

    async def _replayed(self, folder, sync_key: str) -> bool:
        """
        Whether the request repeats one already answered: it came with a
        key older than the device's newest for the folder.
        """
        latest = (await self.store.sync_states.latest(self.device.id, [folder.id])).get(folder.id)
        return latest is not None and latest.key != sync_key

    async def _change_state(self, folder, item_id: int, state: ClientChange) -> int | None:
        if state == ClientChange():
            return None
        return await self.store.items.update_state(self.account.id, folder.id, item_id, **_state_arguments(state))

    # -- Send --------------------------------------------------------------

    async def _send(self, folder, item_id: int, raw: bytes, submission_id: str) -> int:
        """
        Submit a saved draft as SendMail with SaveInSentItems would; then
        it leaves Drafts.  Returns the Sync Status of the Add or Change.
        """
        server_id = f"{folder.id}:{item_id}"
        try:
            await composemail.send_message(self.ctx, drafts.sendable(raw), client_id=submission_id,
                                           save_in_sent=True)
        except composemail.ComposeFailure as e:
            if e.status != composemail.MESSAGE_PREVIOUSLY_SENT:
                log.info("{account} {device}: draft {server_id} not sent ({status}): {reason}",
                         account=self.account.address, device=self.device.device_id, server_id=server_id,
                         status=e.status, reason=str(e))
                return CONVERSION_ERROR if e.status in UNSENDABLE else SERVER_ERROR
        await self.store.items.delete(self.account.id, folder.id, item_id)
        log.info("{account} {device}: draft {server_id} sent", account=self.account.address,
                 device=self.device.device_id, server_id=server_id)
        return SUCCESS
