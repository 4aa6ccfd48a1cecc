"""
What FolderSync, FolderCreate, FolderUpdate and FolderDelete share: the
hierarchy sync state, reading their requests and writing their answers
(MS-ASCMD 2.2.1.3-2.2.1.6).

The hierarchy state.  A FolderSync key names a stored state (collection
L{HIERARCHY}) holding C{modseq}, the account's hierarchy counter up to which
the device has every change, and C{own}: stamps above it of changes the
device made itself through FolderCreate/Update/Delete.  Each such command
answers with a new key whose state adds its change's stamp to C{own}, so the
device's next FolderSync does not echo the change back, while changes other
devices made before or after it still reach it.  We record the stamps rather
than advancing C{modseq} because a change by another device may sit between
the state and the device's own change; when the own stamps continue
C{modseq} without a gap they are folded into it (L{compact}), so the state
stays small.  A hierarchy stamp names exactly one committed transaction and
stamps commit in order (changes.stamp_hierarchy holds the account row lock
until commit), which is what makes "every stamp up to M" and "these stamps"
exact.

A folder is known to the device if it was created at or below C{modseq}, or
by one of the device's own changes.  Changes above C{modseq} become:
an Add for a live folder the device does not know, an Update for a known
folder whose latest stamp is not its own, a Delete for a known deleted
folder whose deletion was not its own, and nothing otherwise (a folder
created and deleted since the state was never seen, so it is not deleted).

Order of a FolderSync answer: Adds and Updates parent first (a child never
names a parent the device has not been given), then Deletes child first (a
folder moved out of a deleted one has already been moved when its old
parent goes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from lxml import etree
from twisted.internet.defer import CancelledError
from twisted.logger import Logger

from bluesync import wbxml
from bluesync.eas.context import CommandContext
from bluesync.eas.responses import wbxml_response
from bluesync.store.database import DATABASE_DOWN
from bluesync.store.folders import Folder, parse_server_id
from bluesync.store.syncstate import HIERARCHY, SyncState
from bluesync.web.rendering import Response

log = Logger()

NS = "FolderHierarchy"

# Status values shared by the four commands (MS-ASCMD 2.2.3.177.3-6).
SUCCESS = 1
SERVER_ERROR = 6
INVALID_SYNC_KEY = 9
MALFORMED = 10
# ... and by two of them each (MS-ASCMD 2.2.3.177.3, .4, .6).
NO_FOLDER = 4  # FolderUpdate, FolderDelete: ServerId is not a live folder
NO_PARENT = 5  # FolderCreate, FolderUpdate: ParentId is not a live folder

# DisplayName is a string (MS-ASDTYPE 2.7) with no stated bound; we refuse
# longer names as a semantic error (Status 10) so one request cannot store
# an arbitrarily large name that every device then has to display.
MAX_NAME_LENGTH = 255

ADD = "Add"
UPDATE = "Update"
DELETE = "Delete"


def q(name: str) -> str:
    return wbxml.qname(NS, name)


# ----------------------------------------------------------------- requests


class Refused(Exception):
    """
    The request gets the failure C{status}; C{reason} is logged.

    Raised anywhere below L{guarded}, which answers it: the commands then
    read as their success path, and every refusal is logged and answered
    the same way (no SyncKey, no ServerId: MS-ASCMD 2.2.3.181.1, 2.2.3.166.2).
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


class Malformed(Refused):
    """
    The request is not the command's document, or asks for something no
    folder tree can hold: Status 10.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(MALFORMED, f"malformed request: {reason}")


def request_fields(ctx: CommandContext, command: str, names: Iterable[str],
                   required: bool = False) -> dict[str, str | None]:
    """
    The text of each named FolderHierarchy child of the C{command} root:
    None for a child that is absent, "" for one that is empty.

    @raise Malformed: no body, another root, a named child given twice or
        holding elements instead of text, or (with C{required}) absent.
    """
    root = ctx.document
    if root is None or root.tag != q(command):
        raise Malformed(f"root is not {command}")
    found: dict[str, str | None] = {}
    for name in names:
        children = root.findall(q(name))
        if len(children) > 1:
            raise Malformed(f"{name} given {len(children)} times")
        if not children:
            found[name] = None
            continue
        child = children[0]
        if len(child):
            raise Malformed(f"{name} holds elements")
        found[name] = child.text or ""
    missing = [name for name, text in found.items() if text is None] if required else []
    if missing:
        raise Malformed(f"missing {', '.join(missing)}")
    return found


def request_parent(value: str) -> int | None:
    """
    A request ParentId: None for the root ("0"), else a folder id.

    @raise Refused: Status 5 (FolderCreate, FolderUpdate: the parent does
        not exist), when it cannot name any folder of ours.
    """
    if value == "0":
        return None
    parsed = parse_server_id(value)
    if parsed is None:
        raise Refused(NO_PARENT, f"ParentId {value!r} names no folder")
    return parsed


def request_folder(value: str) -> int:
    """
    A request ServerId as a folder id.

    @raise Refused: Status 4 (FolderUpdate, FolderDelete: the folder does
        not exist), when it cannot name any folder of ours.
    """
    parsed = parse_server_id(value)
    if parsed is None:
        raise Refused(NO_FOLDER, f"ServerId {value!r} names no folder")
    return parsed


def display_name(fields: dict[str, str | None]) -> str:
    """
    The request's DisplayName.

    @raise Malformed: empty, blank or over L{MAX_NAME_LENGTH}.
    """
    name = fields["DisplayName"]
    if not (name and name.strip()) or len(name) > MAX_NAME_LENGTH:
        raise Malformed(f"unusable DisplayName {name!r}")
    return name


# -------------------------------------------------------------- sync states


def own_stamps(state: SyncState) -> list[int]:
    return [int(stamp) for stamp in state.state.get("own", ())]


def compact(modseq: int, own: Iterable[int]) -> tuple[int, list[int]]:
    """
    Fold own stamps that continue C{modseq} into it; drop those below it.
    """
    pending = sorted({stamp for stamp in own if stamp > modseq})
    while pending and pending[0] == modseq + 1:
        modseq = pending.pop(0)
    return modseq, pending


async def load_state(ctx: CommandContext, key: str | None) -> SyncState:
    """
    The hierarchy state named by C{key}.

    @raise Refused: Status 9, the key is unknown or stale: the device must
        start over with FolderSync 0.
    """
    state = await ctx.server.store.sync_states.get(ctx.device.id, HIERARCHY, key or "")
    if state is None:
        raise Refused(INVALID_SYNC_KEY, f"unknown hierarchy sync key {key!r}")
    return state


async def save_own_change(ctx: CommandContext, state: SyncState, stamp: int) -> SyncState:
    """
    The state after a change the device made itself at hierarchy C{stamp}.
    """
    modseq, own = compact(state.modseq, own_stamps(state) + [stamp])
    return await ctx.server.store.sync_states.save_next(ctx.device.id, HIERARCHY, state, modseq, {"own": own})


def unseen_changes(modseq: int, own: Iterable[int], current: int) -> bool:
    """
    Whether a device whose latest hierarchy state is (C{modseq}, C{own})
    has changes waiting when the account's counter is C{current}: some
    stamp in (modseq, current] is not its own.
    """
    own_in_range = sum(1 for stamp in set(own) if modseq < stamp <= current)
    return current - modseq > own_in_range


async def hierarchy_pending(store, account_id: int, device_pk: int) -> bool:
    """
    Whether the device must run FolderSync: it has no hierarchy state, or
    another device changed the hierarchy since its latest one.  Two small
    indexed reads; for Ping (Status 7, MS-ASCMD 2.2.3.177.11).
    """
    latest = (await store.sync_states.latest(device_pk, [HIERARCHY])).get(HIERARCHY)
    if latest is None:
        return True
    current = await store.folders.hierarchy_modseq(account_id)
    return unseen_changes(latest.modseq, own_stamps(latest), current)


@dataclass(frozen=True)
class HierarchyChange:
    kind: str
    folder: Folder


def changes_since(modseq: int, own: Iterable[int], folders: Iterable[Folder]) -> list[HierarchyChange]:
    """
    What a device at (C{modseq}, C{own}) is told about C{folders} (those
    stamped after C{modseq}), in the order it must apply them.
    """
    own = set(own)
    upserts: list[HierarchyChange] = []
    deletes: list[HierarchyChange] = []
    for folder in folders:
        known = folder.created_hierarchy_modseq <= modseq or folder.created_hierarchy_modseq in own
        mine = folder.hierarchy_modseq in own
        if folder.deleted:
            if known and not mine:
                deletes.append(HierarchyChange(DELETE, folder))
        elif not known:
            upserts.append(HierarchyChange(ADD, folder))
        elif not mine:
            upserts.append(HierarchyChange(UPDATE, folder))
    return parents_first(upserts) + list(reversed(parents_first(deletes)))


def parents_first(changes: list[HierarchyChange]) -> list[HierarchyChange]:
    """
    C{changes} reordered so that a folder whose parent is also among them
    comes after it; otherwise in the given order.
    """
    by_id = {change.folder.id: change for change in changes}
    ordered: list[HierarchyChange] = []
    placed: set[int] = set()
    for change in changes:
        # Walk up to the highest unplaced ancestor in the set, then place
        # the chain top-down.  Iterative: a deep tree costs no recursion.
        chain = []
        current = change
        while current is not None and current.folder.id not in placed and current not in chain:
            chain.append(current)
            current = by_id.get(current.folder.parent_id)
        for item in reversed(chain):
            placed.add(item.folder.id)
            ordered.append(item)
    return ordered


# ------------------------------------------------------------------ answers


def answer(command: str, status: int, *children: tuple[str, str]) -> Response:
    """
    A C{command} response: Status, then the given (name, text) children in
    the order the spec lists them.
    """
    root = etree.Element(q(command))
    etree.SubElement(root, q("Status")).text = str(status)
    for name, text in children:
        etree.SubElement(root, q(name)).text = text
    return wbxml_response(root)


def folder_parent(folder: Folder) -> str:
    return "0" if folder.parent_id is None else str(folder.parent_id)


def change_element(parent, change: HierarchyChange) -> None:
    """
    One Add/Update (ServerId, ParentId, DisplayName, Type: MS-ASCMD
    2.2.3.7.2, 2.2.3.190) or Delete (ServerId: 2.2.3.47.2) of a FolderSync
    Changes element.
    """
    element = etree.SubElement(parent, q(change.kind))
    etree.SubElement(element, q("ServerId")).text = change.folder.server_id
    if change.kind == DELETE:
        return
    etree.SubElement(element, q("ParentId")).text = folder_parent(change.folder)
    etree.SubElement(element, q("DisplayName")).text = change.folder.name
    etree.SubElement(element, q("Type")).text = str(change.folder.type)


async def guarded(ctx: CommandContext, command: str, handle) -> Response:
    """
    Run C{handle()} and answer what it raises: L{Refused} (L{Malformed}
    included) is its Status, logged with its reason; a fault of ours is
    Status 6 (MS-ASCMD 2.2.3.177.3-6: "an error occurred on the
    server", which phones retry) with the traceback logged.  An unreachable
    database stays the 503 the resource answers, and a cancelled request
    stays cancelled.
    """
    try:
        return await handle()
    except (CancelledError, *DATABASE_DOWN):
        raise
    except Refused as e:
        log.info(
            "{account} {device} {command} refused: {reason}",
            account=ctx.account.address,
            device=ctx.request.device_id,
            command=command,
            reason=e.reason,
        )
        return answer(command, e.status)
    except Exception:
        log.failure(
            "{account} {device} {command} failed",
            account=ctx.account.address,
            device=ctx.request.device_id,
            command=command,
        )
        return answer(command, SERVER_ERROR)
