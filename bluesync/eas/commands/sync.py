"""
Sync (MS-ASCMD 2.2.1.21): client changes in, server changes out, per
collection.

The engine (bluesync/sync/engine.py) decides what to send; this module
reads the request, applies the device's own changes, renders items within
the time budget and writes the response in schema order.  Rules taken from
real phones (issue 4):

- a request whose collections have nothing to report is answered with an
  empty HTTP 200 body, which the spec allows and which iOS handles better
  than an empty Collections element; the device keeps its keys;
- answers are sent within [sync] time_budget seconds: whatever is rendered
  by then goes out with MoreAvailable, so impatient clients never time out;
- an empty request (14.0+) or a Partial one reuses the collections and
  options of the device's last full request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree
from twisted.logger import Logger

from bluesync.eas import drafts, meetings, pim, render
from bluesync.eas.context import CommandContext
from bluesync.eas.responses import wbxml_response
from bluesync.eas.syncoptions import OptionsError, SyncOptions, parse_options
from bluesync.items.email_changes import UNCHANGED, ChangeError, client_change
from bluesync.items.records import to_record
from bluesync.push.notifier import RECHECK, discard, sync_key
from bluesync.store.changes import HELD_SYNC
from bluesync.store.folders import DELETED_ITEMS, parse_server_id
from bluesync.store.items import ADD, CHANGE, DELETE, SOFT_DELETE
from bluesync.store.items import parse_server_id as parse_item_id
from bluesync.sync.engine import Batch, SyncEngine
from bluesync.web.rendering import Response, shed

log = Logger()

NS = "AirSync:"
A = "{AirSync:}"

# MS-ASCMD 2.2.3.177.17: Status (Sync).
SUCCESS = 1
INVALID_KEY = 3
PROTOCOL_ERROR = 4
SERVER_ERROR = 5
CONVERSION_ERROR = 6
CONFLICT = 7
NOT_FOUND = 8
HIERARCHY_CHANGED = 12
INCOMPLETE = 13
BAD_WAIT = 14
TOO_MANY_COLLECTIONS = 15

MAX_COLLECTIONS = 1000


class SyncRequestError(Exception):
    def __init__(self, status: int, message: str, limit: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.limit = limit


@dataclass
class ClientCommand:
    kind: str                   # "Add", "Change", "Delete", "Fetch"
    server_id: str | None = None
    client_id: str | None = None
    application_data: object = None
    send: bool = False          # email2:Send (16.x drafts)
    instance_id: str | None = None  # airsyncbase:InstanceId (16.x occurrence Change/Delete)


@dataclass
class CollectionRequest:
    collection_id: str
    sync_key: str
    window_size: int | None = None
    get_changes: bool | None = None
    deletes_as_moves: bool = True
    options: SyncOptions = field(default_factory=SyncOptions)
    options_given: bool = False
    commands: list[ClientCommand] = field(default_factory=list)
    klass: str | None = None
    # The element tags of a Supported element (MS-ASCMD 2.2.3.179), None without one.
    supported: list[str] | None = None

    def cache(self) -> dict:
        return {
            "collection_id": self.collection_id,
            "window_size": self.window_size,
            "deletes_as_moves": self.deletes_as_moves,
            "options": self.options.to_json(),
        }


@dataclass
class SyncRequest:
    collections: list[CollectionRequest]
    wait: int | None = None            # seconds
    window_size: int | None = None
    partial: bool = False


def _text(element, name: str) -> str | None:
    found = element.find(A + name)
    return None if found is None else (found.text or "").strip()


def _flag(element, name: str) -> bool | None:
    found = element.find(A + name)
    if found is None:
        return None
    return (found.text or "1").strip() != "0"


def _number(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or len(text) > 9:
        raise SyncRequestError(PROTOCOL_ERROR, f"{what} {text!r} is not a number")
    return int(text)


def parse_request(document, config) -> SyncRequest:
    if document is None or document.tag != A + "Sync":
        raise SyncRequestError(PROTOCOL_ERROR, "the document is not a Sync request")
    collections = []
    container = document.find(A + "Collections")
    for element in container if container is not None else ():
        if element.tag != A + "Collection":
            continue
        collection_id = _text(element, "CollectionId")
        sync_key = _text(element, "SyncKey")
        if not collection_id or sync_key is None:
            raise SyncRequestError(PROTOCOL_ERROR, "Collection without CollectionId or SyncKey")
        request = CollectionRequest(collection_id, sync_key)
        request.klass = _text(element, "Class")
        supported = element.find(A + "Supported")
        if supported is not None:
            request.supported = [child.tag for child in supported if isinstance(child.tag, str)]
        request.window_size = _number(_text(element, "WindowSize"), "WindowSize")
        request.get_changes = _flag(element, "GetChanges")
        deletes_as_moves = _flag(element, "DeletesAsMoves")
        request.deletes_as_moves = True if deletes_as_moves is None else deletes_as_moves
        options = element.findall(A + "Options")
        try:
            request.options = parse_options(options)
        except OptionsError as e:
            raise SyncRequestError(PROTOCOL_ERROR, str(e)) from None
        request.options_given = bool(options)
        commands = element.find(A + "Commands")
        for command in commands if commands is not None else ():
            kind = etree.QName(command).localname
            if kind not in ("Add", "Change", "Delete", "Fetch"):
                raise SyncRequestError(PROTOCOL_ERROR, f"unknown command {kind}")
            request.commands.append(
                ClientCommand(kind, _text(command, "ServerId"), _text(command, "ClientId"),
                              command.find(A + "ApplicationData"), drafts.send_requested(command),
                              (command.findtext("{AirSyncBase:}InstanceId") or "").strip() or None)
            )
        collections.append(request)
    if len(collections) > MAX_COLLECTIONS:
        raise SyncRequestError(TOO_MANY_COLLECTIONS, "too many collections")
    wait = None
    wait_text = _text(document, "Wait")
    heartbeat_text = _text(document, "HeartbeatInterval")
    push = config.push
    if wait_text is not None:
        minutes = _number(wait_text, "Wait")
        if minutes < 1:
            raise SyncRequestError(BAD_WAIT, "Wait too short", limit=1)
        if minutes > 59:
            raise SyncRequestError(BAD_WAIT, "Wait too long", limit=59)
        wait = minutes * 60
    elif heartbeat_text is not None:
        seconds = _number(heartbeat_text, "HeartbeatInterval")
        if seconds < push.min_heartbeat:
            raise SyncRequestError(BAD_WAIT, "HeartbeatInterval too short", limit=push.min_heartbeat)
        if seconds > push.max_heartbeat:
            raise SyncRequestError(BAD_WAIT, "HeartbeatInterval too long", limit=push.max_heartbeat)
        wait = seconds
    return SyncRequest(
        collections,
        wait=wait,
        window_size=_number(_text(document, "WindowSize"), "WindowSize"),
        partial=document.find(A + "Partial") is not None,
    )


def _element(parent, name: str, text=None):
    element = etree.SubElement(parent, A + name)
    if text is not None:
        element.text = str(text)
    return element


def _status_document(status: int, limit: int | None = None, version: str = "16.1") -> Response:
    root = etree.Element(A + "Sync", nsmap={None: NS})
    _element(root, "Status", status)
    if limit is not None:
        _element(root, "Limit", limit)
    return wbxml_response(root)


@dataclass
class CollectionResult:
    request: CollectionRequest
    status: int = SUCCESS
    sync_key: str | None = None
    klass: str = "Email"
    commands: list = field(default_factory=list)      # (kind, server_id, element)
    # (kind, server_id, or for an Add client_id or (client_id, server_id), status, extra element)
    responses: list = field(default_factory=list)
    more_available: bool = False

    @property
    def has_news(self) -> bool:
        """
        Whether the device must hear about this collection: anything to
        send, a failure, or a new key (the device must switch to it).
        """
        return bool(
            self.commands or self.responses or self.more_available or self.status != SUCCESS
            or self.sync_key != self.request.sync_key
        )


class SyncHandler:
    """
    One Sync request.
    """

    def __init__(self, ctx: CommandContext) -> None:
        self.ctx = ctx
        self.store = ctx.server.store
        self.account = ctx.account
        self.device = ctx.device
        self.config = ctx.server.config
        self.clock = ctx.server.clock
        self.engine = SyncEngine(self.store, self.clock)
        self.drafts = drafts.Drafts(ctx)
        self.pim = pim.PimCollections(ctx)
        self.deadline = self.clock.seconds() + self.config.sync.time_budget

    async def run(self) -> Response:
        try:
            request = await self._request()
        except SyncRequestError as e:
            log.info("{account} {device}: Sync refused: {error}", account=self.account.address,
                     device=self.device.device_id, error=str(e))
            return _status_document(e.status, e.limit)
        if request is None:
            return _status_document(INCOMPLETE)
        notifier = self.ctx.server.notifier
        if request.wait and notifier is not None:
            results = await self._held(request, notifier)
        else:
            results = await self._pass(request)
        if not any(r.has_news for r in results):
            # Nothing to say: the device keeps its keys (MS-ASCMD 2.2.1.21).
            return Response(200, b"", {})
        return wbxml_response(self._document(results))

    async def _pass(self, request: SyncRequest) -> list[CollectionResult]:
        self.deadline = self.clock.seconds() + self.config.sync.time_budget
        return [await self._collection(request, c) for c in request.collections]

    async def _held(self, request: SyncRequest, notifier) -> list[CollectionResult]:
        """
        Sync with Wait or HeartbeatInterval: answer as soon as a collection
        has something, or when the interval ends, holding nothing but a
        notifier entry in between.  The waiter is registered before each
        read of the store, so a change committed during the read still
        wakes it.  Once really held it is announced (not awaited), which
        ends the device's older Sync wait wherever it is held; after a
        LISTEN outage the re-check reads devices.sync_hold_seq for an
        announcement it may have missed.
        """
        end = self.clock.seconds() + request.wait
        folder_ids = [f for f in (parse_server_id(c.collection_id) for c in request.collections) if f is not None]
        waiting = announcing = None
        # Parsed already: a request held for minutes keeps none of its input.
        self.ctx.document, self.ctx.body = None, b""
        shed(self.ctx.http_request)

        sequence = None

        def announced(announced_sequence):
            nonlocal sequence
            if announced_sequence is not None:
                sequence = announced_sequence
                notifier.sequenced(waiting, sequence)

        while True:
            waiting = notifier.wait(self.account.id, folder_ids, sync_key(self.device.id),
                                    max(0.0, end - self.clock.seconds()), hierarchy=False, follows=waiting)
            try:
                results = await self._pass(request)
                if any(r.has_news for r in results) or self.clock.seconds() >= end:
                    return results
                if announcing is None and not waiting.called:
                    # Not once a newer Sync wait of the device took over
                    # during the pass: announced in the order they arrive.
                    announcing = self.store.devices.in_background(self.store.devices.sync_held(self.device.id))
                    announcing.addCallbacks(announced, _not_announced)
                wakeup = await waiting
            finally:
                discard(waiting)
            if (wakeup.reason == RECHECK and sequence is not None
                    and (await self.store.devices.newest_hold(self.device.id, HELD_SYNC) or 0) > sequence):
                # Notifications were lost (the LISTEN connection dropped),
                # among them the announcement of a newer Sync wait of the
                # device held by another process.
                log.info("{account} {device}: a newer Sync wait was held while notifications were lost",
                         account=self.account.address, device=self.device.device_id)
                return results
            if not wakeup:
                return results
            for result in results:
                # The device's own commands were applied in the first pass.
                result.request.commands = []

    async def _request(self) -> SyncRequest | None:
        document = self.ctx.document
        if document is None:
            cached = await self.store.devices.last_sync(self.device.id)
            if not cached or self.ctx.version_number < 14.0:
                return None
            return await self._from_cache(cached, [])
        request = parse_request(document, self.config)
        if request.partial:
            cached = await self.store.devices.last_sync(self.device.id)
            if not cached:
                return None
            merged = await self._from_cache(cached, request.collections)
            merged.wait = request.wait if request.wait is not None else merged.wait
            return merged
        if not request.collections:
            if self.ctx.version_number < 14.0:
                raise SyncRequestError(PROTOCOL_ERROR, "no collections")
            cached = await self.store.devices.last_sync(self.device.id)
            if not cached:
                return None
            merged = await self._from_cache(cached, [])
            merged.wait = request.wait
            return merged
        cache = {
            "collections": [c.cache() for c in request.collections],
            "wait": request.wait,
            "window_size": request.window_size,
        }
        if cache != self.device.last_sync:
            await self.store.devices.set_last_sync(self.device.id, cache)
        return request

    async def _from_cache(self, cached: dict, given: list[CollectionRequest]) -> SyncRequest:
        """
        The cached request, with the keys the server issued last and the
        collections the device did send overriding the cached ones.
        """
        given_ids = {c.collection_id for c in given}
        collections = list(given)
        folder_ids = [parse_server_id(c["collection_id"]) for c in cached["collections"]]
        latest = await self.store.sync_states.latest(self.device.id, [f for f in folder_ids if f is not None])
        for entry, folder_id in zip(cached["collections"], folder_ids):
            if entry["collection_id"] in given_ids or folder_id not in latest:
                continue
            collections.append(CollectionRequest(
                entry["collection_id"], latest[folder_id].key, entry.get("window_size"), None,
                entry.get("deletes_as_moves", True), SyncOptions.from_json(entry["options"]), True,
            ))
        return SyncRequest(collections, wait=cached.get("wait"), window_size=cached.get("window_size"))

    def _window(self, request: SyncRequest, collection: CollectionRequest) -> int:
        sync = self.config.sync
        window = collection.window_size or request.window_size or sync.default_window_size
        return max(1, min(window, sync.max_window_size))

    async def _collection(self, request: SyncRequest, collection: CollectionRequest) -> CollectionResult:
        result = CollectionResult(collection)
        folder_id = parse_server_id(collection.collection_id)
        if collection.sync_key == "0":
            folder, state = await self.store.folders.get(self.account.id, folder_id), None
        else:
            folder, state = await self.engine.open(self.account.id, self.device.id, folder_id, collection.sync_key)
        if folder is None:
            # Another account's folder is answered exactly like a missing one.
            result.status = HIERARCHY_CHANGED
            return result
        result.klass = folder.content_class
        options = collection.options
        if collection.sync_key == "0":
            if collection.commands:
                result.status = PROTOCOL_ERROR
                return result
            state = await self.engine.begin(
                self.device.id, folder, options.filter_type,
                None if collection.supported is None else {"supported": collection.supported},
            )
            result.sync_key = state.key
            return result
        if state is None:
            result.status = INVALID_KEY
            result.sync_key = "0"
            return result
        if not collection.options_given and "options" in state.state:
            options = SyncOptions.from_json(state.state["options"])
        own = await self._client_commands(folder, collection, options, result, state)
        get_changes = collection.get_changes is not False
        batch = None
        if get_changes:
            batch = await self.engine.collect(
                self.account.id, folder, state, self._window(request, collection), options.filter_type,
                raw_if_rendered=render.needs_raw(options), folder_is_current=not collection.commands,
            )
            # The engine skips the device's changes of earlier requests;
            # those of this request must not be echoed either.
            batch.changes = [c for c in batch.changes if own.get(c.item_id) != c.modseq]
            self._render(folder, batch, options, result)
        if batch is None:
            batch = Batch(upto=state.modseq)
        result.more_available = batch.more_available
        filter_changed = state.state.get("filter", options.filter_type) != options.filter_type
        if not (result.commands or result.responses or batch.more_available or own or filter_changed
                or batch.backlog or "backlog" in state.state):
            if batch.upto > state.modseq:
                # Only filtered-out items passed: move the state forward
                # without a new key, so a Ping does not fire for them.
                await self.store.sync_states.advance_in_place(state, batch.upto)
            result.sync_key = state.key
            return result
        new_state = await self.engine.advance(
            state, folder, batch, options.filter_type, own, {"options": options.to_json()}
        )
        result.sync_key = new_state.key
        return result

    def _render(self, folder, batch, options: SyncOptions, result: CollectionResult) -> None:
        version = self.ctx.version
        for index, change in enumerate(batch.changes):
            if self.clock.seconds() > self.deadline and index > 0:
                # Out of time: send what is rendered, the rest next time.
                batch.changes = batch.changes[:index]
                batch.upto = batch.changes[-1].modseq if batch.changes else batch.upto
                batch.more_available = True
                log.info("{account}: Sync time budget reached after {count} items",
                         account=self.account.address, count=index)
                break
            server_id = change.server_id(folder.id)
            if change.kind in (DELETE, SOFT_DELETE):
                result.commands.append(("SoftDelete" if change.kind == SOFT_DELETE else "Delete", server_id, None))
                continue
            if change.kind == ADD:
                data = self._application_data(folder, change.item, server_id, options)
                if data is not None:
                    result.commands.append(("Add", server_id, data))
            elif drafts.is_drafts(folder):
                data = self.drafts.change_data(change.item, server_id, options)
                result.commands.append(("Change", server_id, data))
            elif pim.handles(folder):
                # Anything of a contact or an event can change: send it whole.
                data = self._application_data(folder, change.item, server_id, options)
                if data is not None:
                    result.commands.append(("Change", server_id, data))
            else:
                data = render.change_data(change.item, version)
                if data is not None:
                    result.commands.append(("Change", server_id, data))

    def _application_data(self, folder, item, server_id: str, options: SyncOptions):
        if drafts.is_drafts(folder):
            return self.drafts.application_data(item, server_id, options)
        return render.application_data(item, server_id, self.ctx.version, options, self.pim.reader)

    async def _client_commands(self, folder, collection: CollectionRequest, options: SyncOptions,
                               result: CollectionResult, state) -> dict[int, int]:
        """
        Apply the device's Adds, Changes, Deletes and Fetches; return
        item id -> modseq of the changes it made, so they are not echoed.
        C{state} is the one the request's key names.
        """
        own: dict[int, int] = {}
        for command in collection.commands:
            if command.kind == "Add":
                if drafts.is_drafts(folder):
                    result.responses.append(await self.drafts.add(folder, command, own))
                elif pim.handles(folder):
                    result.responses.append(await self.pim.add(folder, command, own, state))
                else:
                    # Email outside Drafts: Status 6 (MS-ASCMD 2.2.3.7.2).
                    result.responses.append(("Add", command.client_id, CONVERSION_ERROR, None))
                continue
            parsed = parse_item_id(command.server_id)
            item_id = parsed[1] if parsed and parsed[0] == folder.id else None
            if command.kind == "Fetch":
                item = (await self.store.items.get_many(self.account.id, [item_id], folder.id)).get(item_id) if item_id else None
                data = self._application_data(folder, item, command.server_id, options) if item else None
                if data is None:
                    result.responses.append(("Fetch", command.server_id, NOT_FOUND, None))
                else:
                    result.responses.append(("Fetch", command.server_id, SUCCESS, data))
            elif command.kind == "Change" and await self._server_wins(folder, item_id, options, state):
                # Changed on the server since the device's state and the
                # Conflict option says the server wins (MS-ASCMD 2.2.3.34):
                # the device's change is dropped and the server's version
                # reaches it through the ordinary changes.
                log.info("{account} {device}: Change of {server_id} lost to a server change (Conflict=1)",
                         account=self.account.address, device=self.device.device_id,
                         server_id=command.server_id)
                result.responses.append(("Change", command.server_id, CONFLICT, None))
            elif command.kind == "Change" and drafts.is_drafts(folder):
                response = await self.drafts.change(folder, item_id, command, own, collection.sync_key)
                if response is not None:
                    result.responses.append(response)
            elif command.kind == "Change" and pim.handles(folder):
                response = await self.pim.change(folder, item_id, command, own, state)
                if response is not None:
                    result.responses.append(response)
            elif command.kind == "Delete" and command.instance_id and pim.handles(folder):
                response = await self.pim.delete_instance(folder, item_id, command, own)
                if response is not None:
                    result.responses.append(response)
            elif command.kind == "Change":
                status = await self._change(folder, item_id, command, own)
                if status != SUCCESS:
                    result.responses.append(("Change", command.server_id, status, None))
            elif command.kind == "Delete":
                status = await self._delete(folder, item_id, collection.deletes_as_moves, own)
                if status != SUCCESS:
                    result.responses.append(("Delete", command.server_id, status, None))
        return own

    async def _server_wins(self, folder, item_id, options: SyncOptions, state) -> bool:
        """
        Whether a device's Change must give way: the item changed on the
        server after the device's state (and not by the device itself), and
        the Conflict option is 1, server wins, the default.  With 0 the
        client wins and the change is applied.
        """
        if options.conflict != 1 or item_id is None or state is None:
            return False
        item = (await self.store.items.get_many(self.account.id, [item_id], folder.id, with_content=False)).get(item_id)
        if item is None or item.modseq <= state.modseq:
            return False
        own = state.state.get("own", {})
        return own.get(str(item_id)) != item.modseq

    async def _change(self, folder, item_id, command: ClientCommand, own: dict) -> int:
        if item_id is None or folder.content_class != "Email":
            return NOT_FOUND if item_id is None else CONVERSION_ERROR
        try:
            change = client_change(command.application_data)
        except ChangeError as e:
            log.info("{account}: bad Change for {server_id}: {error}", account=self.account.address,
                     server_id=command.server_id, error=str(e))
            return CONVERSION_ERROR
        flag_given = change.flag is not UNCHANGED
        modseq = await self.store.items.update_state(
            self.account.id, folder.id, item_id,
            read=None if change.read is UNCHANGED else change.read,
            flag=to_record(change.flag) if flag_given and change.flag is not None else None,
            set_flag=flag_given,
            categories=None if change.categories is UNCHANGED else change.categories,
        )
        if modseq is None:
            return NOT_FOUND
        own[item_id] = modseq
        return SUCCESS

    async def _delete(self, folder, item_id, deletes_as_moves: bool, own: dict) -> int:
        if item_id is None:
            return NOT_FOUND
        if deletes_as_moves and folder.content_class == "Email" and folder.type != DELETED_ITEMS:
            trash = await self.store.folders.by_type(self.account.id, DELETED_ITEMS)
            if trash is not None:
                moved = await self.store.items.move(self.account.id, folder.id, item_id, trash.id)
                if moved is None:
                    return NOT_FOUND
                own[item_id] = moved[0]
                return SUCCESS
        before = await meetings.before_delete(self.ctx, folder, item_id)
        modseq = await self.store.items.delete(self.account.id, folder.id, item_id)
        if modseq is None:
            return NOT_FOUND
        own[item_id] = modseq
        await meetings.after_write(self.ctx, folder, item_id, before, None)
        return SUCCESS

    def _document(self, results: list[CollectionResult]):
        version = self.ctx.version_number
        root = etree.Element(A + "Sync", nsmap={None: NS})
        collections = _element(root, "Collections")
        for result in results:
            collection = _element(collections, "Collection")
            if version < 14.0:
                _element(collection, "Class", result.klass)
            _element(collection, "SyncKey", result.sync_key or result.request.sync_key)
            _element(collection, "CollectionId", result.request.collection_id)
            _element(collection, "Status", result.status)
            if result.more_available:
                _element(collection, "MoreAvailable")
            if result.commands:
                commands = _element(collection, "Commands")
                for kind, server_id, data in result.commands:
                    command = _element(commands, kind)
                    _element(command, "ServerId", server_id)
                    if data is not None:
                        command.append(data)
            if result.responses:
                responses = _element(collection, "Responses")
                for kind, identifier, status, data in result.responses:
                    response = _element(responses, kind)
                    if kind == "Add":
                        client_id, server_id = identifier if isinstance(identifier, tuple) else (identifier, None)
                        _element(response, "ClientId", client_id)
                        if server_id is not None:
                            _element(response, "ServerId", server_id)
                    else:
                        _element(response, "ServerId", identifier)
                        if data is not None and data.tag == pim.INSTANCE_ID:
                            # ServerId, InstanceId, Status (MS-ASCMD 2.2.3.42.2).
                            response.append(data)
                            data = None
                    _element(response, "Status", status)
                    if data is not None:
                        response.append(data)
        return root


async def handle(ctx: CommandContext) -> Response:
    return await SyncHandler(ctx).run()


def _not_announced(failure) -> None:
    log.warn("could not announce a held Sync: {error}", error=failure.getErrorMessage())
