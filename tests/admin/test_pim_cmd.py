"""
bluesync-admin import and export, run as a separate process against a
test database named by a configuration file, exactly as an administrator
runs them; what they store is then read through the store and served as
Sync would serve it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import icalendar
from twisted.internet import threads

from bluesync.eas import render
from bluesync.passwords import hash_password
from bluesync.store import folders as F
from tests.support import DatabaseTestCase

DATA = Path(__file__).resolve().parent.parent / "items" / "data"

BROKEN = """BEGIN:VCARD
VERSION:3.0
FN:Carl Example
N:Example;Carl;;;
UID:carl-1
END:VCARD
BEGIN:VCARD
VERSION:3.0
FN:Dora
PHOTO;ENCODING=b;TYPE=JPEG:!!!not base64!!!
BDAY:not a date
UID:dora-1
END:VCARD
BEGIN:VCARD
VERSION:3.0
FN:Eve Example
END:VCARD
stray text
BEGIN:VCARD
VERSION:3.0
FN:Fay
"""

PARIS_SERIES = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example//Calendar 1.0//EN
BEGIN:VTIMEZONE
TZID:Europe/Paris
BEGIN:DAYLIGHT
DTSTART:19810329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
END:DAYLIGHT
BEGIN:STANDARD
DTSTART:19961027T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:weekly-paris@example.org
DTSTAMP:20260301T120000Z
DTSTART;TZID=Europe/Paris:20260305T100000
DTEND;TZID=Europe/Paris:20260305T110000
RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=TH
EXDATE;TZID=Europe/Paris:20260319T100000
SUMMARY:Weekly sync
END:VEVENT
BEGIN:VEVENT
UID:weekly-paris@example.org
DTSTAMP:20260301T120000Z
RECURRENCE-ID;TZID=Europe/Paris:20260402T100000
DTSTART;TZID=Europe/Paris:20260403T140000
DTEND;TZID=Europe/Paris:20260403T150000
SUMMARY:Moved
END:VEVENT
BEGIN:VTODO
UID:todo-1@example.org
DTSTAMP:20260301T120000Z
SUMMARY:File the report
DUE;VALUE=DATE:20261127
STATUS:NEEDS-ACTION
END:VTODO
BEGIN:VJOURNAL
UID:note-1@example.org
DTSTAMP:20260301T120000Z
SUMMARY:Ideas
DESCRIPTION:More tea.
END:VJOURNAL
BEGIN:VEVENT
UID:broken@example.org
DTSTAMP:20260301T120000Z
SUMMARY:No start
END:VEVENT
END:VCALENDAR
"""


def card(number: int) -> str:
    return (f"BEGIN:VCARD\r\nVERSION:3.0\r\nN:Person{number};Test;;;\r\nFN:Test Person{number}\r\n"
            f"EMAIL;TYPE=INTERNET:person{number}@example.org\r\nTEL;TYPE=CELL:+33 6 00 00 {number:05d}\r\n"
            f"ORG:Example {number % 17}\r\nUID:person-{number}\r\nEND:VCARD\r\n")


def unfolded(text: str) -> list[str]:
    """A vCard file's logical lines, whatever its line ends."""
    return text.replace("\r\n", "\n").replace("\n ", "").strip("\n").split("\n")


def properties(component) -> dict:
    """Property name -> its values as iCalendar text, for comparing components."""
    found: dict[str, list] = {}
    for name, value in component.property_items(recursive=False):
        if name in ("BEGIN", "END"):
            continue
        found.setdefault(name, []).append(value.to_ical() if hasattr(value, "to_ical") else str(value))
    return found


class PimCommandTests(DatabaseTestCase):
    timeout = 300

    async def _set_up(self):
        await super()._set_up()
        directory = tempfile.mkdtemp(prefix="bluesync-pim-")
        self.directory = Path(directory)
        self.config_path = os.path.join(directory, "bluesync.ini")
        with open(self.config_path, "w") as f:
            f.write(f"[database]\ndsn = {self.dsn}\npool_size = 1\n")
        self.account = await self.store.create_account("alice@example.org", "Alice", hash_password("a long secret"))

    def admin(self, *args):
        return threads.deferToThread(
            subprocess.run,
            [sys.executable, "-m", "bluesync.admin.cli", "--config", self.config_path, *args],
            capture_output=True, timeout=240,
        )

    async def folder(self, folder_type: int):
        return await self.store.folders.by_type(self.account.id, folder_type)

    async def items(self, folder_type: int):
        folder = await self.folder(folder_type)
        return await self.store.items.folder_items(self.account.id, folder.id)

    async def test_vcard_round_trip(self):
        """A real-world vCard imports into Contacts, serves to a device and exports unchanged."""
        result = await self.admin("import", "alice@example.org", str(DATA / "apple_contact.vcf"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"1 added, 0 replaced, 0 rejected", result.stdout)
        (item,) = await self.items(F.CONTACTS)
        data = render.pim_render("Contacts", item.content, "16.1", render.Reader())
        self.assertEqual(data.findtext("{Contacts:}Email1Address"), "anna@example.de")
        self.assertEqual(data.findtext("{Contacts:}CompanyName"), "Example GmbH")
        output = self.directory / "out.vcf"
        result = await self.admin("export", "alice@example.org", "Contacts", "-o", str(output))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(unfolded(output.read_text()), unfolded((DATA / "apple_contact.vcf").read_text()))

    async def test_reimport_replaces(self):
        """Importing the same file again replaces the cards (same UIDs), never duplicates them."""
        for _ in range(2):
            result = await self.admin("import", "alice@example.org", str(DATA / "apple_contact.vcf"))
            self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"0 added, 1 replaced", result.stdout)
        self.assertEqual(len(await self.items(F.CONTACTS)), 1)

    async def test_rejected_cards_reported(self):
        """Each bad card is reported with its reason, the good ones are stored, and the exit status is 3."""
        path = self.directory / "mixed.vcf"
        path.write_text(BROKEN)
        result = await self.admin("import", "alice@example.org", str(path))
        self.assertEqual(result.returncode, 3, result.stderr)
        errors = result.stderr.decode().splitlines()
        self.assertEqual(len(errors), 3, errors)
        self.assertTrue(any("card at line 7: line 10: PHOTO is not base64" in line for line in errors), errors)
        self.assertTrue(any("line 18: text outside" in line for line in errors), errors)
        self.assertTrue(any("card at line 19: no END:VCARD" in line for line in errors), errors)
        self.assertIn(b"2 added, 0 replaced, 3 rejected", result.stdout)
        names = sorted(item.content.split(b"FN:")[1].split(b"\r\n")[0] for item in await self.items(F.CONTACTS))
        self.assertEqual(names, [b"Carl Example", b"Eve Example"])

    async def test_real_world_vcards(self):
        """
        Google, Outlook (Windows-1252) and Android exports in one file are
        imported; a card with a broken line is rejected naming the line.
        """
        path = self.directory / "exports.vcf"
        path.write_bytes(b"".join((DATA / name).read_bytes() for name in
                                  ("google_contacts.vcf", "outlook_2_1.vcf", "android_2_1.vcf"))
                         + b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Gus\r\nthis line lost its colon\r\nEND:VCARD\r\n")
        result = await self.admin("import", "alice@example.org", str(path))
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertEqual(result.stderr.decode().splitlines(),
                         ["rejected card at line 84: line 87: not a property (no ':'): 'this line lost its colon'"])
        self.assertIn(b"5 added, 0 replaced, 1 rejected", result.stdout)
        served = {}
        for item in await self.items(F.CONTACTS):
            data = render.pim_render("Contacts", item.content, "16.1", render.Reader())
            served[data.findtext("{Contacts:}LastName")] = data
        self.assertEqual(sorted(served), ["Dupont", "Martin", "Müller", "Weber", "Öztürk"])
        self.assertEqual(served["Müller"].findtext("{Contacts:}BusinessAddressCity"), "München")
        self.assertEqual(served["Öztürk"].findtext("{Contacts:}FirstName"), "Ayşe")
        self.assertEqual(served["Dupont"].findtext("{Contacts:}WebPage"), "https://www.exemple.example/equipe")

    async def test_calendar_file(self):
        """An .ics splits by UID: the series with its override in Calendar, the task in Tasks, the note in Notes."""
        path = self.directory / "mixed.ics"
        path.write_text(PARIS_SERIES)
        result = await self.admin("import", "alice@example.org", str(path))
        self.assertEqual(result.returncode, 3, result.stderr)
        self.assertIn(b"rejected event 'No start' (broken@example.org): VEVENT without DTSTART", result.stderr)
        self.assertIn(b"3 added, 0 replaced, 1 rejected", result.stdout)
        (event,) = await self.items(F.CALENDAR)
        data = render.pim_render("Calendar", event.content, "14.1", render.Reader())
        exceptions = [(e.findtext("{Calendar:}Deleted"), e.findtext("{Calendar:}ExceptionStartTime"),
                       e.findtext("{Calendar:}StartTime")) for e in data.iter("{Calendar:}Exception")]
        self.assertEqual(exceptions, [("1", "20260319T090000Z", None), (None, "20260402T080000Z", "20260403T120000Z")])
        self.assertEqual([i.content_class for i in await self.items(F.TASKS)], ["Tasks"])
        self.assertEqual([i.content_class for i in await self.items(F.NOTES)], ["Notes"])
        output = self.directory / "out.ics"
        result = await self.admin("export", "alice@example.org", "Calendar", "-o", str(output))
        self.assertEqual(result.returncode, 0, result.stderr)
        exported = icalendar.Calendar.from_ical(output.read_bytes())
        original = icalendar.Calendar.from_ical(PARIS_SERIES)
        self.assertEqual([properties(c) for c in exported.walk("VEVENT")],
                         [properties(c) for c in original.walk("VEVENT")][:2])
        self.assertEqual([str(z["TZID"]) for z in exported.walk("VTIMEZONE")], ["Europe/Paris"])

    async def test_real_world_calendars_round_trip(self):
        """Outlook's and Apple's .ics files import into a named folder and export with the same events."""
        result = await self.admin("import", "alice@example.org", str(DATA / "outlook_monthly.ics"))
        self.assertEqual(result.returncode, 0, result.stderr)
        result = await self.admin("import", "alice@example.org", str(DATA / "allday_yearly.ics"))
        self.assertEqual(result.returncode, 0, result.stderr)
        output = self.directory / "calendar.ics"
        result = await self.admin("export", "alice@example.org", "calendar", "-o", str(output))
        self.assertEqual(result.returncode, 0, result.stderr)
        exported = icalendar.Calendar.from_ical(output.read_bytes())
        originals = [c for name in ("outlook_monthly.ics", "allday_yearly.ics")
                     for c in icalendar.Calendar.from_ical((DATA / name).read_bytes()).walk("VEVENT")]
        self.assertEqual([properties(c) for c in exported.walk("VEVENT")], [properties(c) for c in originals])
        self.assertEqual([str(z["TZID"]) for z in exported.walk("VTIMEZONE")], ["W. Europe Standard Time"])
        # Into a user folder by name, on a second account's copy of the export.
        await self.store.folders.create(self.account.id, None, "Team", F.USER_CALENDAR)
        result = await self.admin("import", "alice@example.org", str(output), "--folder", "team")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"Team: 2 added", result.stdout)

    async def test_refusals(self):
        """Unknown accounts, folders and files, and entries of the wrong class, are refused in one line."""
        path = self.directory / "mixed.ics"
        path.write_text(PARIS_SERIES)
        for args, message in (
            (("import", "nobody@example.org", str(path)), b"no account"),
            (("import", "alice@example.org", str(self.directory / "missing.vcf")), b"cannot read"),
            (("import", "alice@example.org", str(path), "--folder", "Inbox"), b"holds email"),
            (("import", "alice@example.org", str(path), "--folder", "Nowhere"), b"no folder"),
            (("export", "alice@example.org", "Inbox"), b"holds email"),
        ):
            result = await self.admin(*args)
            self.assertEqual(result.returncode, 1, args)
            self.assertIn(message, result.stderr)
            self.assertNotIn(b"Traceback", result.stderr)
        result = await self.admin("import", "alice@example.org", str(path), "--folder", "Tasks")
        self.assertEqual(result.returncode, 3)
        self.assertIn(b"an event cannot go into Tasks, a tasks folder", result.stderr)
        self.assertEqual(len(await self.items(F.TASKS)), 1)
        self.assertEqual(await self.items(F.CALENDAR), [])

    async def test_many_contacts(self):
        """5,000 cards import in one run, all stored, exported back in the same number."""
        path = self.directory / "many.vcf"
        path.write_text("".join(card(n) for n in range(5000)))
        result = await self.admin("import", "alice@example.org", str(path))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"5000 added", result.stdout)
        folder = await self.folder(F.CONTACTS)
        self.assertEqual(await self.store.items.count(self.account.id, folder.id), 5000)
        result = await self.admin("export", "alice@example.org", "Contacts")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.count(b"BEGIN:VCARD"), 5000)
