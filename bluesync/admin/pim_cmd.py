"""
bluesync-admin import USER FILE [--folder NAME] and export USER FOLDER [-o FILE]:
contacts from and to vCard files (.vcf, one or many cards), events, tasks
and notes from and to iCalendar files (.ics).

Import stores each entry in the standard form the sync serves (issue 7):

- a .vcf is cut into its cards; each card is stored as it came (vCard
  2.1, 3.0 or 4.0), given a UID when it has none; a card with a line
  bluesync.items.vcard cannot read is rejected, naming the line;
- an .ics is cut into one stored VCALENDAR per UID: a recurring event's
  master with its RECURRENCE-ID overrides, together with the VTIMEZONEs
  they use.  VEVENTs go to a calendar, VTODOs to a tasks and VJOURNALs to
  a notes folder: the default ones, or the folder --folder names (whose
  class must fit).
- an entry whose UID is already in the folder replaces it (importing a
  file again updates, never duplicates); every entry is checked by
  rendering it as a 16.1 device would get it, and every rejected one is
  reported with its reason.  Entries are written a few hundred at a time,
  each batch in one transaction with one change stamp, so a 5,000-card
  file takes seconds and the account's phones get one push per batch.

Exit status: 0 everything imported, 3 some entries rejected (the others
are imported), 1 nothing could be done (no account, no folder, unreadable
file).  Export writes one .vcf or .ics of a folder to standard output or
to -o FILE; the count goes to standard error.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import icalendar
from twisted.internet import threads

from bluesync.config import ConfigError, load_config
from bluesync.eas import pim, render
from bluesync.items import vcard
from bluesync.store import folders as F
from bluesync.store.items import NewItem

BATCH = 500
# From this many entries on, they are checked by several processes.
PARALLEL_FROM = 400
PRODID = "-//bluesync//bluesync import//EN"
# Which default folder each iCalendar component and vCard goes to.
COMPONENT_CLASS = {"VEVENT": "Calendar", "VTODO": "Tasks", "VJOURNAL": "Notes", "VCARD": "Contacts"}
DEFAULT_FOLDER = {"Contacts": F.CONTACTS, "Calendar": F.CALENDAR, "Tasks": F.TASKS, "Notes": F.NOTES}
NOUN = {"Contacts": "a contact", "Calendar": "an event", "Tasks": "a task", "Notes": "a note"}
CHECK_VERSION = "16.1"
ALL_IMPORTED, FAILED, SOME_REJECTED = 0, 1, 3


def register(subparsers) -> None:
    importing = subparsers.add_parser(
        "import", help="import contacts (.vcf) or events, tasks and notes (.ics) into an account",
        description="Import a .vcf or .ics file.  Exit status 0: all imported; 3: some entries rejected "
                    "(listed on standard error, the others imported); 1: nothing imported.")
    importing.add_argument("address", metavar="USER")
    importing.add_argument("file", metavar="FILE")
    importing.add_argument("--folder", metavar="NAME",
                           help="the folder to import into (default: the account's Contacts, Calendar, Tasks or Notes)")
    importing.set_defaults(run=_import, needs_store=True)

    exporting = subparsers.add_parser("export", help="write a contacts (.vcf) or calendar, tasks or notes (.ics) folder")
    exporting.add_argument("address", metavar="USER")
    exporting.add_argument("folder", metavar="FOLDER", help="the folder's name, e.g. Contacts or Calendar")
    exporting.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    exporting.set_defaults(run=_export, needs_store=True)


def _error(message: str) -> int:
    print(f"bluesync-admin: {message}", file=sys.stderr)
    return FAILED


# -- reading files (pure) ----------------------------------------------------

@dataclass
class Entry:
    """One thing to store: its class, stored bytes and UID, or why not."""

    klass: str
    label: str
    content: bytes = b""
    uid: str = ""
    error: str | None = None
    card: vcard.Card | None = None      # a contact as read, so the check does not read it again


_UID_LINE = re.compile(r"^(?:[A-Za-z0-9-]+\.)?UID[;:]", re.IGNORECASE)


def read_vcards(text: str) -> list[Entry]:
    """
    The cards of a .vcf, so that one broken card is reported (with the
    line that breaks it) and the others kept.
    """
    entries: list[Entry] = []
    for found in vcard.read(text, strict=True):
        if isinstance(found, vcard.VCardError):
            if found.card_line is None:
                entries.append(Entry("Contacts", f"line {found.line}", error=found.message))
            elif found.line == found.card_line:
                entries.append(Entry("Contacts", f"card at line {found.card_line}", error=found.message))
            else:
                entries.append(Entry("Contacts", f"card at line {found.card_line}", error=str(found)))
        else:
            entries.append(_card(found))
    return entries


def _card(card: vcard.Card) -> Entry:
    """The card's Entry: its lines as they came, with a UID line added when it has none."""
    label = f"card at line {card.line}"
    lines = card.source
    uid = card.first("UID")
    uid = uid.text().strip() if uid is not None else ""
    if not uid:
        uid = str(uuid.uuid4())
        lines = [line for line in lines if not _UID_LINE.match(line)]
        lines.insert(len(lines) - 1, f"UID:{uid}")
    content = ("\r\n".join(lines) + "\r\n").encode("utf-8")
    return Entry("Contacts", label, content, uid, card=card)


def _tzids(component) -> set[str]:
    found = set()
    for _, value in component.property_items(recursive=True):
        params = getattr(value, "params", None)
        if params and "TZID" in params:
            found.add(str(params["TZID"]))
        for inner in getattr(value, "dts", ()) or ():
            if getattr(inner, "params", None) and "TZID" in inner.params:
                found.add(str(inner.params["TZID"]))
    return found


def _label(component) -> str:
    summary = component.get("SUMMARY")
    uid = component.get("UID")
    name = {"VEVENT": "event", "VTODO": "task", "VJOURNAL": "note"}.get(component.name, component.name)
    if summary:
        return f"{name} {str(summary)!r} ({uid})"
    return f"{name} {uid}"


def read_calendar(data: bytes) -> list[Entry]:
    """
    One Entry per UID of an .ics: the master and its overrides in one
    VCALENDAR with the VTIMEZONEs they use.

    @raise ValueError: the file is not iCalendar at all.
    """
    calendars = icalendar.Calendar.from_ical(data, multiple=True)
    zones: dict[str, icalendar.Timezone] = {}
    groups: dict[tuple[str, str], list] = {}
    entries: list[Entry] = []
    for source in calendars:
        for component in source.subcomponents:
            if component.name == "VTIMEZONE":
                zones.setdefault(str(component.get("TZID")), component)
            elif component.name in COMPONENT_CLASS:
                uid = str(component.get("UID", "")).strip()
                if not uid:
                    uid = str(uuid.uuid4())
                    component.add("UID", uid)
                groups.setdefault((component.name, uid), []).append(component)
            elif component.name not in ("VFREEBUSY",):
                entries.append(Entry("Calendar", component.name or "component",
                                     error=f"{component.name} is not an event, task or note"))
    for (name, uid), members in groups.items():
        members.sort(key=lambda c: "RECURRENCE-ID" in c)
        klass = COMPONENT_CLASS[name]
        label = _label(members[0])
        if name != "VEVENT" and len(members) > 1:
            entries.append(Entry(klass, label, uid=uid, error=f"UID {uid} is used by {len(members)} {name}s"))
            continue
        stored = icalendar.Calendar()
        stored.add("PRODID", PRODID)
        stored.add("VERSION", "2.0")
        used = set().union(*(_tzids(m) for m in members))
        for tzid in sorted(used):
            if tzid in zones:
                stored.add_component(zones[tzid])
        for member in members:
            stored.add_component(member)
        entries.append(Entry(klass, label, stored.to_ical(), uid))
    return entries


def check_all(entries: list[Entry], zone_name: str) -> list[tuple[Entry, object | None]]:
    """
    L{check} every entry; a large calendar is checked by a pool of worker
    processes (icalendar takes milliseconds per event).  Contacts are
    checked here: a card takes a fraction of a millisecond, less than
    what starting the pool would cost.  Runs in a thread: it blocks.
    """
    if (len(entries) < PARALLEL_FROM or (os.cpu_count() or 1) < 2
            or all(entry.klass == "Contacts" for entry in entries)):
        return _check_chunk(entries, zone_name)
    workers = min(os.cpu_count() or 1, 8)
    size = max(50, -(-len(entries) // (workers * 4)))
    chunks = [entries[start:start + size] for start in range(0, len(entries), size)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return [pair for chunk in pool.map(_check_chunk, chunks, [zone_name] * len(chunks)) for pair in chunk]


def _check_chunk(entries: list[Entry], zone_name: str) -> list[tuple[Entry, object | None]]:
    tz = render.zone(zone_name)
    return [check(entry, tz) for entry in entries]


def _contact_item(entry: Entry, data) -> NewItem:
    """
    A card's NewItem from its rendering: a card is read once, by
    read_vcards, rendered once, by the check, and the columns
    pim.new_item would compute (UID, a name to list it by) are read from
    what the check rendered.
    """
    def value(name: str) -> str:
        return (data.findtext(f"{{Contacts:}}{name}") or "").strip()

    subject = value("FileAs") or ", ".join(p for p in (value("LastName"), value("FirstName")) if p)
    subject = subject or value("CompanyName") or value("Email1Address")
    return NewItem(content_class="Contacts", content=entry.content, read=True,
                   columns={"uid": entry.uid, "subject": subject, "size": len(entry.content)})


def check(entry: Entry, tz) -> tuple[Entry, object | None]:
    """
    The entry and its NewItem, or the entry with the reason it cannot be
    served (rendering it as a 16.1 device would get it).
    """
    if entry.error is not None:
        return entry, None
    try:
        # contacts.to_eas takes the card read_vcards read as well as its text.
        content = entry.card if entry.card is not None else entry.content
        data = render.pim_render(entry.klass, content, CHECK_VERSION, render.Reader(tz=tz))
        if entry.klass == "Contacts":
            new = _contact_item(entry, data)
        else:
            new = pim.new_item(entry.klass, entry.content, tz)
    except KeyError as e:       # a property the converter needs
        entry.error = f"no {e.args[0]}" if e.args else "a required property is missing"
        return entry, None
    except Exception as e:      # the converters' errors: the entry is bad, not the import
        entry.error = str(e) or e.__class__.__name__
        return entry, None
    if not new.columns.get("uid"):
        entry.error = "no UID"
        return entry, None
    return entry, new


# -- writing files (pure) ----------------------------------------------------

def export_vcards(items) -> bytes:
    """The folder's cards, one after the other."""
    parts = []
    for item in items:
        card = item.content.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if not card.endswith(b"\r\n"):
            card += b"\r\n"
        parts.append(card)
    return b"".join(parts)


def export_calendar(items, name: str) -> bytes:
    """One VCALENDAR holding every component and the time zones they use."""
    output = icalendar.Calendar()
    output.add("PRODID", PRODID.replace("import", "export"))
    output.add("VERSION", "2.0")
    output.add("X-WR-CALNAME", name)
    zones: dict[str, object] = {}
    components = []
    for item in items:
        try:
            stored = icalendar.Calendar.from_ical(item.content)
        except ValueError:
            continue
        for component in stored.subcomponents:
            if component.name == "VTIMEZONE":
                zones.setdefault(str(component.get("TZID")), component)
            else:
                components.append(component)
    for tzid in sorted(zones):
        output.add_component(zones[tzid])
    for component in components:
        output.add_component(component)
    return output.to_ical()


# -- the commands ------------------------------------------------------------

@dataclass
class Report:
    added: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)
    rejected: list[Entry] = field(default_factory=list)


async def _named_folder(store, account, name: str):
    matches = [f for f in await store.folders.list(account.id) if f.name.lower() == name.lower()]
    if len(matches) > 1:
        raise LookupError(f"{len(matches)} folders of {account.address} are called {name!r}")
    if not matches:
        raise LookupError(f"{account.address} has no folder {name!r}")
    return matches[0]


def _zone_name(args) -> str:
    try:
        return load_config(args.config).server.default_timezone
    except ConfigError:
        return "UTC"


async def _import(args, store) -> int:
    account = await store.accounts.by_address(args.address.lower())
    if account is None:
        return _error(f"no account {args.address}")
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as e:
        return _error(f"{path}: cannot read: {e.strerror}")
    head = data.lstrip()[:40].upper()
    try:
        if head.startswith(b"BEGIN:VCARD") or path.suffix.lower() in (".vcf", ".vcard"):
            entries = read_vcards(vcard.decode(data))
        elif head.startswith(b"BEGIN:VCALENDAR") or path.suffix.lower() in (".ics", ".ical", ".ifb"):
            entries = read_calendar(data)
        else:
            return _error(f"{path}: neither a vCard (.vcf) nor an iCalendar (.ics) file")
    except ValueError as e:
        return _error(f"{path}: not readable iCalendar: {e}")
    target = None
    if args.folder:
        try:
            target = await _named_folder(store, account, args.folder)
        except LookupError as e:
            return _error(str(e))
        if target.content_class not in pim.CONVERTERS:
            return _error(f"{target.name} holds {target.content_class.lower()}, not contacts, events, tasks or notes")
    report = Report()
    by_folder: dict[int, tuple[object, list]] = {}
    defaults: dict[str, object] = {}       # class -> its default folder, looked up once, not once per entry
    seen: set[tuple[str, str]] = set()
    for entry, new in await threads.deferToThread(check_all, entries, _zone_name(args)):
        if new is not None and target is not None and entry.klass != target.content_class:
            entry.error = f"{NOUN[entry.klass]} cannot go into {target.name}, a {target.content_class.lower()} folder"
        if new is not None and (entry.klass, entry.uid) in seen:
            entry.error = f"UID {entry.uid} appears twice in the file"
        if entry.error is not None:
            report.rejected.append(entry)
            continue
        seen.add((entry.klass, entry.uid))
        folder = target or defaults.get(entry.klass)
        if folder is None:
            folder = defaults[entry.klass] = await store.folders.by_type(account.id, DEFAULT_FOLDER[entry.klass])
        by_folder.setdefault(folder.id, (folder, []))[1].append((entry, new))
    for folder, pending in by_folder.values():
        for start in range(0, len(pending), BATCH):
            batch = pending[start:start + BATCH]
            existing = await store.items.ids_by_uid(account.id, folder.id, [entry.uid for entry, _ in batch])
            added = [new for entry, new in batch if entry.uid not in existing]
            replaced = {existing[entry.uid]: new for entry, new in batch if entry.uid in existing}
            await store.items.store_batch(account.id, folder.id, added, replaced)
            report.added[folder.name] = report.added.get(folder.name, 0) + len(added)
            report.replaced[folder.name] = report.replaced.get(folder.name, 0) + len(replaced)
    for entry in report.rejected:
        print(f"rejected {entry.label}: {entry.error}", file=sys.stderr)
    for folder, _ in by_folder.values():
        print(f"{folder.name}: {report.added.get(folder.name, 0)} added, "
              f"{report.replaced.get(folder.name, 0)} replaced")
    print(f"{path.name}: {sum(report.added.values())} added, {sum(report.replaced.values())} replaced, "
          f"{len(report.rejected)} rejected")
    if report.rejected:
        return SOME_REJECTED
    return ALL_IMPORTED


async def _export(args, store) -> int:
    account = await store.accounts.by_address(args.address.lower())
    if account is None:
        return _error(f"no account {args.address}")
    try:
        folder = await _named_folder(store, account, args.folder)
    except LookupError as e:
        return _error(str(e))
    if folder.content_class not in pim.CONVERTERS:
        return _error(f"{folder.name} holds {folder.content_class.lower()}; export writes contacts, events, "
                      "tasks and notes")
    items = await store.items.folder_items(account.id, folder.id)
    if folder.content_class == "Contacts":
        output = export_vcards(items)
    else:
        output = export_calendar(items, folder.name)
    if args.output:
        try:
            Path(args.output).write_bytes(output)
        except OSError as e:
            return _error(f"{args.output}: cannot write: {e.strerror}")
    else:
        sys.stdout.buffer.write(output)
        sys.stdout.flush()
    print(f"exported {len(items)} items of {folder.name}", file=sys.stderr)
    return ALL_IMPORTED

