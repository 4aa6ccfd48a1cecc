"""
Contacts, calendar, tasks and notes through Sync (issue 7): the device's
Add, Change and (16.x) occurrence Change and Delete of a PIM item.
bluesync/eas/commands/sync.py hands the commands of a PIM collection here;
the converters in bluesync/items/ turn ApplicationData into the stored
vCard / iCalendar and back (bluesync/eas/render.py serves them).

Rules (MS-ASCMD 2.2.3.7.2 Add, 2.2.3.24 Change, 2.2.3.42.2 Delete,
2.2.3.154 Responses, 2.2.3.179 Supported):

- An Add is answered with ClientId, ServerId and Status; for a calendar
  event in 16.x, with an ApplicationData holding the event's calendar:UID,
  which 16.x clients no longer make up themselves (MS-ASCAL 2.2.2.46; they
  send ClientUid, 2.2.2.13).  A Change is answered only when it fails.
- ClientIds need only be unique within one request (2.2.3.28.2).  An Add
  whose ClientId names an item this device added in the same folder after
  the state its sync key names is the same Add resent (its answer was lost):
  it gets the same ServerId and stores nothing.  An older item with that
  ClientId means the client reuses its ids: the new Add is stored.  (A
  request with GetChanges=0 does not move its state past its own Adds, so
  a ClientId reused right after one is taken for a resend.)
- A 16.x calendar Add whose UID (from ClientUid) is already in the folder
  is that event again: it is applied as a change and answered with the
  event's ServerId.
- A Change is merged into the stored object: what EAS defines comes from
  the device, everything else stays (the converters' merge).  Elements the
  device leaves out are "ghosted" (kept as stored) where the spec says so:
  every top-level Calendar element in 16.x (MS-ASCAL 3.1.5.3); for
  contacts and events, every element the Supported element of the
  device's initial Sync did not name (2.2.3.179).  Otherwise an absent
  element is a deleted one, except the body: a device that was sent a
  truncated body and does not send one back has not erased it.
- Conversion errors are Status 6; an item gone is Status 8.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone, tzinfo

from lxml import etree
from twisted.logger import Logger

from bluesync.eas import meetings, render
from bluesync.eas.context import CommandContext
from bluesync.items import _eas, calendar, contacts, notes, tasks
from bluesync.items._eas import ConversionError
from bluesync.items.email import BodyPreference
from bluesync.store.items import ItemChanged, NewItem

log = Logger()

# MS-ASCMD 2.2.3.177.17: Status (Sync).
SUCCESS = 1
SERVER_ERROR = 5
CONVERSION_ERROR = 6
NOT_FOUND = 8

CONVERTERS = {"Contacts": contacts, "Calendar": calendar, "Tasks": tasks, "Notes": notes}
MAX_CLIENT_ID = 64
# Another device changing the same item at the same moment: read it again
# and redo the merge this many times before giving up.
ATTEMPTS = 3
BODY = "{AirSyncBase:}Body"
INSTANCE_ID = "{AirSyncBase:}InstanceId"
UTC = timezone.utc


def handles(folder) -> bool:
    """Whether a folder holds contacts, events, tasks or notes."""
    return folder.content_class in CONVERTERS


# -- pure conversions ---------------------------------------------------------

def _from_eas(klass: str, data, version: str, tz: tzinfo | None, now: datetime) -> bytes:
    if klass == "Contacts":
        stored, _ = contacts.from_eas(data, version, tz=tz)
    elif klass == "Notes":
        stored, _ = notes.from_eas(data, version, now=now)
    else:
        stored, _ = CONVERTERS[klass].from_eas(data, version, tz=tz, now=now)
    return stored


def item_columns(klass: str, stored: bytes, tz: tzinfo | None) -> dict:
    """
    The items columns of a stored PIM object (migration 008): UID, a
    subject to list it by, an event's first start and last end (None for a
    series that never ends), a task's completion.
    """
    if klass == "Contacts":
        found = contacts.columns(stored)
        return {"uid": found["uid"] or None, "subject": found["file_as"] or found["display_name"]}
    if klass == "Calendar":
        found = calendar.columns(stored, tz=tz)
        return {"uid": found["uid"] or None, "subject": found["subject"], "start_time": found["start"],
                "end_time": found["last_end"]}
    if klass == "Tasks":
        found = tasks.columns(stored, tz=tz)
        return {"uid": found["uid"] or None, "subject": found["subject"], "complete": bool(found["complete"])}
    found = notes.columns(stored)
    return {"uid": found["uid"] or None, "subject": found["subject"]}


def new_item(klass: str, stored: bytes, tz: tzinfo | None) -> NewItem:
    """The NewItem of a stored PIM object."""
    return NewItem(content_class=klass, content=stored, columns={**item_columns(klass, stored, tz), "size": len(stored)},
                   read=True)


def ghosted(klass: str, version: str, supported: list[str] | None):
    """
    Whether a top-level element a Change leaves out keeps its stored value
    (a predicate on the element's tag).
    """
    if klass == "Calendar" and _eas.version_tuple(version) >= (16, 0):
        return lambda tag: True
    if supported is not None and klass in ("Contacts", "Calendar"):
        managed = frozenset(supported)
        return lambda tag: tag not in managed or tag == BODY
    return lambda tag: tag == BODY


def _stored_body(klass: str, stored: bytes, version: str, reader: render.Reader):
    """
    The stored body as a device would send it back: HTML when the stored
    object has HTML of its own, else plain text.
    """
    plain = _render(klass, stored, version, reader, (BodyPreference(1),)).find(BODY)
    html = _render(klass, stored, version, reader, (BodyPreference(2),)).find(BODY)
    if plain is None or html is None:
        return plain
    derived = etree.Element("derived")
    text = (plain.findtext("{AirSyncBase:}Data") or "").replace("\r\n", "\n")
    _eas.body_element(derived, _eas.Body(text), (BodyPreference(2),))
    if derived.find(BODY).findtext("{AirSyncBase:}Data") == html.findtext("{AirSyncBase:}Data"):
        return plain
    return html


def _render(klass: str, stored: bytes, version: str, reader: render.Reader, preferences):
    return render.pim_render(klass, stored, version, reader, preferences)


def with_ghosts(klass: str, stored: bytes, data, version: str, reader: render.Reader,
                supported: list[str] | None = None):
    """
    The device's Change with the ghosted elements it left out filled in
    from the stored object, as this device would be sent them.
    """
    is_ghosted = ghosted(klass, version, supported)
    present = {child.tag for child in data}
    rendered = _render(klass, stored, version, reader, (BodyPreference(1),))
    filled = copy.deepcopy(data)
    for child in rendered:
        if child.tag in present or not is_ghosted(child.tag):
            continue
        if child.tag == BODY:
            child = _stored_body(klass, stored, version, reader)
            if child is None or child.find("{AirSyncBase:}Data") is None:
                continue
        filled.append(copy.deepcopy(child))
    return filled


def convert_add(klass: str, data, version: str, reader: render.Reader, now: datetime) -> bytes:
    """
    A device's Add as the stored object.

    @raise ConversionError: Status 6.
    """
    if data is None:
        raise ConversionError("Add without ApplicationData")
    return _from_eas(klass, data, version, reader.tz, now)


def convert_change(klass: str, stored: bytes, data, version: str, reader: render.Reader, now: datetime,
                   instance_id: str | None = None, supported: list[str] | None = None) -> bytes:
    """
    A device's Change applied to a stored object (an occurrence's, with
    C{instance_id}, 16.x calendar); C{supported} is the device's Supported
    list for the collection, if it sent one.

    @raise ConversionError: Status 6.
    """
    if data is None:
        raise ConversionError("Change without ApplicationData")
    if instance_id:
        if klass != "Calendar":
            raise ConversionError("InstanceId outside a calendar")
        return calendar.change_instance(stored, instance_id, data, version, tz=reader.tz)
    changed = _from_eas(klass, with_ghosts(klass, stored, data, version, reader, supported), version, reader.tz, now)
    return CONVERTERS[klass].merge(stored, changed)


# -- the collection of one Sync request --------------------------------------

class PimCollections:
    """
    The PIM collections of one Sync request.
    """

    def __init__(self, ctx: CommandContext) -> None:
        self.ctx = ctx
        self.store = ctx.server.store
        self.account = ctx.account
        self.device = ctx.device
        self.reader = render.reader_for(ctx)

    @property
    def version(self) -> str:
        return self.ctx.version

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.ctx.server.clock.seconds(), UTC).replace(microsecond=0)

    def _log_refusal(self, what: str, identifier, error) -> None:
        log.info("{account} {device}: {what} {identifier} refused: {error}", account=self.account.address,
                 device=self.device.device_id, what=what, identifier=identifier, error=str(error))

    def _conversion_failed(self, what: str, identifier, error: Exception) -> int:
        """
        Log a conversion that failed; its Status.  Converters are pure, so
        any error is the input's (or a converter bug, logged in full):
        never a traceback to the device.
        """
        if isinstance(error, ConversionError):
            self._log_refusal(what, identifier, error)
            return error.status
        log.failure("{account} {device}: {what} {identifier} could not be converted", account=self.account.address,
                    device=self.device.device_id, what=what, identifier=identifier)
        return CONVERSION_ERROR

    # -- Add -----------------------------------------------------------------

    async def add(self, folder, command, own: dict[int, int], state):
        """
        A Sync Add; its Responses entry ("Add", (ClientId, ServerId or
        None), Status, ApplicationData or None).  C{state} is the sync
        state the request's key names.
        """
        klass = folder.content_class
        client_id = command.client_id or ""
        if not client_id or len(client_id) > MAX_CLIENT_ID:
            self._log_refusal(f"{klass} Add", client_id, "no usable ClientId")
            return ("Add", (client_id, None), CONVERSION_ERROR, None)
        existing = await self.store.items.by_client_id(self.device.id, client_id)
        if existing is not None:
            if existing.folder_id == folder.id and existing.created_modseq > state.modseq:
                return await self._added_before(folder, existing, client_id, own)
            # The client reuses ClientIds across requests, as it may.
            await self.store.items.release_client_id(self.device.id, client_id)
        try:
            stored = convert_add(klass, command.application_data, self.version, self.reader, self._now())
            new = new_item(klass, stored, self.reader.tz)
        except Exception as e:
            return ("Add", (client_id, None), self._conversion_failed(f"{klass} Add", client_id, e), None)
        uid = new.columns.get("uid")
        if klass == "Calendar" and uid:
            same = await self.store.items.by_uid(self.account.id, folder.id, uid)
            if same is not None:
                return await self._add_again(folder, same, command, client_id, own, state)
        item, created = await self.store.items.add_from_device(self.account.id, folder.id, new, self.device.id,
                                                               client_id)
        if created:
            own[item.id] = item.modseq
            await meetings.after_write(self.ctx, folder, item.id, None, new.content, own, self.reader.tz)
        server_id = f"{folder.id}:{item.id}"
        log.info("{account} {device}: {klass} {server_id} added", account=self.account.address,
                 device=self.device.device_id, klass=klass, server_id=server_id)
        return ("Add", (client_id, server_id), SUCCESS, self._add_data(klass, uid))

    def _add_data(self, klass: str, uid: str | None):
        """
        16.x: the UID the server gave a new event (MS-ASCAL 2.2.2.46),
        in the Add response's ApplicationData.
        """
        if klass != "Calendar" or not uid or _eas.version_tuple(self.version) < (16, 0):
            return None
        data = _eas.application_data()
        _eas.el(data, _eas.CALENDAR, "UID", uid)
        return data

    async def _added_before(self, folder, existing, client_id: str, own: dict[int, int]):
        """
        The answer to a resent Add: the ServerId issued the first time.
        """
        server_id = f"{folder.id}:{existing.id}"
        log.info("{account} {device}: Add {client_id} resent, answered with {server_id}",
                 account=self.account.address, device=self.device.device_id, client_id=client_id,
                 server_id=server_id)
        if existing.modseq == existing.created_modseq:
            # As the first time: the device has it, no Add for it.
            own[existing.id] = existing.modseq
        uid = await self._uid(folder, existing.id) if folder.content_class == "Calendar" else None
        return ("Add", (client_id, server_id), SUCCESS, self._add_data(folder.content_class, uid))

    async def _uid(self, folder, item_id: int) -> str | None:
        item = (await self.store.items.get_many(self.account.id, [item_id], folder.id)).get(item_id)
        return item_columns(folder.content_class, item.content, self.reader.tz)["uid"] if item is not None else None

    async def _add_again(self, folder, same, command, client_id: str, own: dict[int, int], state):
        """
        A calendar Add of an event the folder holds (same UID): applied as
        a Change of it, answered with its ServerId.
        """
        server_id = f"{folder.id}:{same.id}"
        status = await self._apply_change(folder, same.id, command.application_data, None, own, server_id, state)
        log.info("{account} {device}: calendar Add {client_id} names event {server_id}",
                 account=self.account.address, device=self.device.device_id, client_id=client_id,
                 server_id=server_id)
        if status != SUCCESS:
            return ("Add", (client_id, None), status, None)
        return ("Add", (client_id, server_id), SUCCESS, self._add_data("Calendar", await self._uid(folder, same.id)))

    # -- Change and occurrence Delete ------------------------------------------

    async def change(self, folder, item_id: int | None, command, own: dict[int, int], state):
        """
        A Sync Change of a PIM item; its Responses entry, or None on
        success (MS-ASCMD 2.2.3.154: successful changes are not answered).
        """
        if item_id is None:
            return ("Change", command.server_id, NOT_FOUND, self._instance(command))
        status = await self._apply_change(folder, item_id, command.application_data, command.instance_id, own,
                                          command.server_id, state)
        if status == SUCCESS:
            return None
        return ("Change", command.server_id, status, self._instance(command))

    async def delete_instance(self, folder, item_id: int | None, command, own: dict[int, int]):
        """
        A 16.x Delete of one occurrence (AirSyncBase:InstanceId beside the
        ServerId, MS-ASCMD 2.2.3.42.2): an EXDATE in the series.
        """
        if item_id is None:
            return ("Delete", command.server_id, NOT_FOUND, self._instance(command))

        def edit(stored: bytes) -> bytes:
            if folder.content_class != "Calendar":
                raise ConversionError("InstanceId outside a calendar")
            return calendar.delete_instance(stored, command.instance_id, tz=self.reader.tz)

        status = await self._rewrite(folder, item_id, edit, own, command.server_id)
        if status == SUCCESS:
            return None
        return ("Delete", command.server_id, status, self._instance(command))

    def _instance(self, command):
        if not command.instance_id:
            return None
        element = etree.Element(INSTANCE_ID)
        element.text = command.instance_id
        return element

    async def _apply_change(self, folder, item_id: int, data, instance_id: str | None, own: dict[int, int],
                            server_id: str, state) -> int:
        klass = folder.content_class
        now = self._now()
        supported = state.state.get("supported")

        def edit(stored: bytes) -> bytes:
            return convert_change(klass, stored, data, self.version, self.reader, now, instance_id, supported)

        return await self._rewrite(folder, item_id, edit, own, server_id)

    async def _rewrite(self, folder, item_id: int, edit, own: dict[int, int], server_id: str) -> int:
        """
        Give an item the content C{edit} makes of its stored content,
        redoing the edit if another writer got there first.
        """
        klass = folder.content_class
        for _ in range(ATTEMPTS):
            item = (await self.store.items.get_many(self.account.id, [item_id], folder.id)).get(item_id)
            if item is None:
                return NOT_FOUND
            try:
                new = new_item(klass, edit(item.content), self.reader.tz)
            except Exception as e:
                return self._conversion_failed(f"{klass} Change", server_id, e)
            try:
                modseq = await self.store.items.replace_content(self.account.id, folder.id, item_id, new,
                                                                expected_modseq=item.modseq)
            except ItemChanged:
                continue
            if modseq is None:
                return NOT_FOUND
            own[item_id] = modseq
            await meetings.after_write(self.ctx, folder, item_id, item.content, new.content, own, self.reader.tz)
            return SUCCESS
        log.warn("{account}: {server_id} kept changing; Change not applied", account=self.account.address,
                 server_id=server_id)
        return SERVER_ERROR
