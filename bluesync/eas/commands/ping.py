"""
Ping (MS-ASCMD 2.2.1.13): hold the request until a watched folder changes
or the heartbeat ends.  This is what makes ActiveSync push.

The request names a HeartbeatInterval and Folders (Id, Class); either may
be left out, and an empty request reuses both, from the device's last Ping
(devices.ping_heartbeat / ping_folders, so a restart does not lose them).
Nothing to reuse is Status 3.  Out-of-range heartbeats are Status 5 with the
limit, too many folders Status 6 with MaxFolders, a malformed request (or
the same Id twice, 2.2.3.90) Status 4.

What "changed" means.  A folder has changes the device has not seen iff
its modseq is above that of the device's newest sync state for it; a
watched folder the device has no sync state for counts as changed, because
the device must Sync it before anything can be pushed for it (Z-Push does
the same).  The hierarchy is checked first: if the account has hierarchy
changes the device has not fetched (or it never did FolderSync), or a
watched folder is not a live folder of the account (deleted, never ours,
another account's), the answer is Status 7 and the device runs FolderSync,
as MS-ASCMD 2.2.3.177.11 prescribes for an out-of-date hierarchy.

The check runs before the request is held, so a change between the
phone's last Sync and its Ping is answered at once; the waiter is
registered before that check, so a change committed while it runs wakes it.
A wake-up is only a hint: the store is read again, and if nothing the
device has not seen is there (its own Sync already covered it), the Ping
keeps waiting for what is left of its heartbeat.

Status 1 answers a heartbeat that ends, a Ping superseded by a newer one
from the same device (held by this process or another one on the same
database: see bluesync.push.notifier), and a server that is shutting down.
An announcement lost while the LISTEN connection was down is caught by the
re-check after it reconnects: devices.ping_hold_seq then holds the newer
Ping's hold sequence, above ours.  A device whose
state changes (blocked, quarantined, wipe requested, sync state reset,
partnership removed: NOTIFY "d") is re-checked for access at once: a
refused device gets the refusal (MS-ASCMD 2.2.2 status in the Ping, or
the HTTP code for 12.1), an allowed one re-reads the store, so a reset is
answered Status 7 and the phone runs FolderSync.

While a Ping is held, devices.ping_until says until when, so every
process (and bluesync-admin) knows which devices hold one.  A Ping answered
early clears it after the answer, in a batch with the others answered at
the same time: when one delivery wakes thousands of Pings, no phone waits
for a commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree
from twisted.logger import Logger

from bluesync import wbxml
from bluesync.eas import access, hierarchy
from bluesync.eas.context import CommandContext
from bluesync.eas.responses import wbxml_response
from bluesync.devices.state import timestamp
from bluesync.push.notifier import DEVICE, RECHECK, SHUTDOWN, SUPERSEDED, TIMEOUT, discard
from bluesync.store.changes import HELD_PING
from bluesync.store.folders import parse_server_id
from bluesync.web.rendering import Response, shed

log = Logger()

NS = "Ping"

# MS-ASCMD 2.2.3.177.11: Status (Ping).
EXPIRED = 1
CHANGES = 2
MISSING_PARAMETERS = 3
SYNTAX_ERROR = 4
HEARTBEAT_OUT_OF_RANGE = 5
TOO_MANY_FOLDERS = 6
HIERARCHY_CHANGED = 7
SERVER_ERROR = 8

# MS-ASCMD 2.2.3.90: an Id is at most 64 characters.
MAX_ID_LENGTH = 64


def q(name: str) -> str:
    return wbxml.qname(NS, name)


class PingSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class PingRequest:
    heartbeat: int | None
    # Folder ServerIds in request order, or None if the request had none.
    folders: tuple[str, ...] | None


def parse(document) -> PingRequest:
    """
    The parameters a Ping request gives (None where it leaves one out).

    @raise PingSyntaxError: the body is not a Ping document we can read.
    """
    if document is None:
        return PingRequest(None, None)
    if document.tag != q("Ping"):
        raise PingSyntaxError(f"root is {document.tag}")
    heartbeat = None
    folders = None
    for child in document:
        if child.tag == q("HeartbeatInterval"):
            if heartbeat is not None:
                raise PingSyntaxError("HeartbeatInterval given twice")
            text = (child.text or "").strip()
            if not text.isdigit() or len(text) > 9:
                raise PingSyntaxError(f"HeartbeatInterval {text!r} is not a number")
            heartbeat = int(text)
        elif child.tag == q("Folders"):
            if folders is not None:
                raise PingSyntaxError("Folders given twice")
            folders = _folders(child)
        else:
            raise PingSyntaxError(f"unexpected element {child.tag}")
    return PingRequest(heartbeat, folders)


def _folders(element) -> tuple[str, ...]:
    ids: list[str] = []
    for folder in element:
        if folder.tag != q("Folder"):
            raise PingSyntaxError(f"unexpected element {folder.tag} in Folders")
        found = [child for child in folder if child.tag == q("Id")]
        if len(found) != 1:
            raise PingSyntaxError("a Folder needs exactly one Id")
        for child in folder:
            if child.tag not in (q("Id"), q("Class")):
                raise PingSyntaxError(f"unexpected element {child.tag} in Folder")
        server_id = (found[0].text or "").strip()
        if not server_id or len(server_id) > MAX_ID_LENGTH:
            raise PingSyntaxError("empty or overlong folder Id")
        if server_id in ids:
            raise PingSyntaxError(f"folder {server_id} named twice")
        ids.append(server_id)
    if not ids:
        raise PingSyntaxError("Folders without a Folder")
    return tuple(ids)


def answer(status: int, *, folders=(), heartbeat: int | None = None, max_folders: int | None = None) -> Response:
    """
    A Ping response in schema order: Status, Folders, MaxFolders,
    HeartbeatInterval (MS-ASCMD 6.30).
    """
    root = etree.Element(q("Ping"), nsmap={None: wbxml.NAMESPACES["ping"]})
    etree.SubElement(root, q("Status")).text = str(status)
    if folders:
        container = etree.SubElement(root, q("Folders"))
        for folder_id in folders:
            etree.SubElement(container, q("Folder")).text = str(folder_id)
    if max_folders is not None:
        etree.SubElement(root, q("MaxFolders")).text = str(max_folders)
    if heartbeat is not None:
        etree.SubElement(root, q("HeartbeatInterval")).text = str(heartbeat)
    return wbxml_response(root)


def _log(ctx: CommandContext, message: str, **fields) -> None:
    log.info(
        "{account} {device} Ping: " + message,
        account=ctx.account.address,
        device=ctx.request.device_id,
        **fields,
    )


async def handle(ctx: CommandContext) -> Response:
    parameters = _parameters(ctx)
    if isinstance(parameters, Response):
        return parameters
    notifier = ctx.server.notifier
    if notifier is None:
        log.error("Ping refused: the server has no notifier")
        return answer(SERVER_ERROR)
    # Only what the hold needs stays referenced while it lasts: the parsed
    # tree, the body and the HTTP request's input are gone, so thousands of
    # held Pings stay small.
    ctx.document = None
    ctx.body = b""
    shed(ctx.http_request)
    return await _hold(ctx, notifier, *parameters)


def _parameters(ctx: CommandContext) -> Response | tuple[list[int], int, bool]:
    """
    (folder ids, heartbeat, whether to remember them) for a valid request,
    or the answer refusing it.
    """
    try:
        request = parse(ctx.document)
    except PingSyntaxError as e:
        _log(ctx, "malformed request: {reason}", reason=str(e))
        return answer(SYNTAX_ERROR)
    device = ctx.device
    heartbeat = request.heartbeat if request.heartbeat is not None else device.ping_heartbeat
    if request.folders is not None:
        server_ids = request.folders
    elif device.ping_folders:
        server_ids = tuple(str(folder_id) for folder_id in device.ping_folders)
    else:
        server_ids = None
    if heartbeat is None or server_ids is None:
        _log(ctx, "no {missing} given and none remembered",
             missing="HeartbeatInterval" if heartbeat is None else "Folders")
        return answer(MISSING_PARAMETERS)

    limits = ctx.server.config.push
    if heartbeat < limits.min_heartbeat or heartbeat > limits.max_heartbeat:
        limit = limits.min_heartbeat if heartbeat < limits.min_heartbeat else limits.max_heartbeat
        _log(ctx, "heartbeat {heartbeat}s out of range, answering {limit}", heartbeat=heartbeat, limit=limit)
        return answer(HEARTBEAT_OUT_OF_RANGE, heartbeat=limit)
    if len(server_ids) > limits.max_folders:
        _log(ctx, "{count} folders, more than {limit}", count=len(server_ids), limit=limits.max_folders)
        return answer(TOO_MANY_FOLDERS, max_folders=limits.max_folders)

    folder_ids = [parse_server_id(server_id) for server_id in server_ids]
    if None in folder_ids:
        _log(ctx, "folder {server_id!r} cannot be ours", server_id=server_ids[folder_ids.index(None)])
        return answer(HIERARCHY_CHANGED)
    remember = (heartbeat, folder_ids) != (device.ping_heartbeat, list(device.ping_folders or []))
    return folder_ids, heartbeat, remember


async def _hold(ctx: CommandContext, notifier, folder_ids: list[int], heartbeat: int, remember: bool) -> Response:
    clock = ctx.server.clock
    devices = ctx.server.store.devices
    device_pk = ctx.device.id
    deadline = clock.seconds() + heartbeat
    # Once the Ping is really held, devices.ping_until records it, for "is a
    # Ping held now?" from any process (the admin page, bluesync-admin), and
    # the same write announces it, ending the device's older Ping wherever
    # it is held.  The write is not awaited: the Ping waits for changes
    # meanwhile, and a phone that hangs up is not kept waiting for it.
    held_until = None
    held_write = None
    sequence = None
    wakeup = None
    waiting = None

    def announced(announced_sequence):
        nonlocal sequence
        if announced_sequence is not None:
            sequence = announced_sequence
            notifier.sequenced(waiting, sequence)

    try:
        while True:
            waiting = notifier.wait(ctx.account.id, folder_ids, device_pk, deadline - clock.seconds(),
                                    follows=waiting)
            try:
                status, changed = await _unseen_changes(ctx, folder_ids)
                if status == HIERARCHY_CHANGED:
                    return answer(HIERARCHY_CHANGED)
                if remember:
                    await devices.set_ping(device_pk, heartbeat, folder_ids)
                    remember = False
                if changed:
                    log.debug("{account} {device} Ping: changes in {folders}", account=ctx.account.address,
                              device=ctx.request.device_id, folders=changed)
                    return answer(CHANGES, folders=changed)
                if held_write is None and not waiting.called:
                    # Only while it is the device's newest here (a newer
                    # Ping that arrived during the read ended this one):
                    # this process then announces a device's Pings in
                    # the order they arrived, and a Ping that is already
                    # over announces nothing.
                    held_until = timestamp(deadline)
                    held_write = devices.in_background(devices.ping_held(device_pk, held_until))
                    held_write.addCallbacks(announced, _not_recorded, errbackArgs=(ctx,))
                wakeup = await waiting
            finally:
                discard(waiting)
            if wakeup.reason == DEVICE:
                refusal = await _device_changed(ctx)
                if refusal is not None:
                    return refusal
                # Still allowed: read the store again (a sync state reset
                # is Status 7 at once) and go on holding.
                continue
            if (wakeup.reason == RECHECK and sequence is not None
                    and (await devices.newest_hold(device_pk, HELD_PING) or 0) > sequence):
                # Notifications were lost (the LISTEN connection dropped),
                # among them the announcement of a newer Ping of the device
                # held by another process: it recorded its sequence.
                _log(ctx, "a newer Ping was held while notifications were lost")
                return answer(EXPIRED)
            if not wakeup:
                # The heartbeat ended, a newer Ping took over, or we are stopping.
                return answer(EXPIRED)
    finally:
        if held_write is not None and (wakeup is None or wakeup.reason not in _SELF_CLEARING):
            # Answer first: the clear is queued once the held write is done.
            held_write.addCallback(lambda _: devices.ping_released(device_pk, held_until))


# Endings that need no write to clear devices.ping_until: it expires by
# itself at the heartbeat's end, the newer Ping records its own, and a
# stopping server must not send every held Ping to the database at once.
_SELF_CLEARING = frozenset({TIMEOUT, SUPERSEDED, SHUTDOWN})


def _not_recorded(failure, ctx: CommandContext) -> None:
    _log(ctx, "could not record the held Ping: {error}", error=failure.getErrorMessage())


async def _unseen_changes(ctx: CommandContext, folder_ids: list[int]) -> tuple[int, list[int]]:
    """
    (HIERARCHY_CHANGED, []) if the device must run FolderSync first, else
    (CHANGES, the watched folders with changes it has not synced, in
    request order).  One query: thousands of held Pings may ask at once.
    """
    view = await ctx.server.store.sync_states.push_view(ctx.device.id, ctx.account.id, folder_ids)
    state = view.hierarchy_state
    if state is None:
        _log(ctx, "no FolderSync yet, asking for one")
        return HIERARCHY_CHANGED, []
    if hierarchy.unseen_changes(state.modseq, hierarchy.own_stamps(state), view.hierarchy_modseq):
        _log(ctx, "hierarchy changed, asking for FolderSync")
        return HIERARCHY_CHANGED, []
    missing = [folder_id for folder_id in folder_ids if folder_id not in view.folders]
    if missing:
        _log(ctx, "folders {missing} are not in the hierarchy, asking for FolderSync", missing=missing)
        return HIERARCHY_CHANGED, []
    changed = []
    for folder_id in folder_ids:
        modseq, synced = view.folders[folder_id]
        if synced is None or modseq > synced:
            changed.append(folder_id)
    return CHANGES, changed


async def _device_changed(ctx: CommandContext) -> Response | None:
    """
    The device was blocked, wiped, reset, removed or re-provisioned while
    its Ping was held: the access check's answer, or None if the device may
    go on (its Ping then re-reads the store).  A removed partnership ends
    the Ping with Status 1: the phone's next request starts a new one.
    """
    device = await ctx.server.store.devices.get(ctx.account.id, ctx.request.device_id)
    if device is None or device.id != ctx.device.id:
        _log(ctx, "partnership removed")
        return answer(EXPIRED)
    ctx.device = device
    refusal = await access.check(ctx)
    if refusal is not None:
        _log(ctx, "device state changed, refused")
    return refusal
