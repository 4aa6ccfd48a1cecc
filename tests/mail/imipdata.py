"""
iMIP messages for the meeting tests, written as Outlook and Google write
them: multipart/alternative with a text/calendar part carrying METHOD,
events in Europe/Paris with a VTIMEZONE.
"""

from __future__ import annotations

PARIS = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\n"
    "BEGIN:STANDARD\r\nDTSTART:16011028T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\nDTSTART:16010325T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
)


def vevent(*, uid: str = "meeting-1@example.net", sequence: int = 0, start: str = "20260310T100000",
           end: str = "20260310T110000", summary: str = "Budget review", location: str = "Room 4",
           organizer: str = "carol@example.net", attendees: tuple = ("alice@example.org",),
           partstat: str = "NEEDS-ACTION", rrule: str | None = None, recurrence_id: str | None = None,
           status: str | None = None, extra: str = "") -> str:
    lines = ["BEGIN:VEVENT", f"UID:{uid}", f"SEQUENCE:{sequence}", "DTSTAMP:20260301T090000Z",
             f"DTSTART;TZID=Europe/Paris:{start}", f"DTEND;TZID=Europe/Paris:{end}",
             f"SUMMARY:{summary}", f"LOCATION:{location}",
             f"ORGANIZER;CN=Carol Organizer:mailto:{organizer}"]
    for attendee in attendees:
        lines.append(f"ATTENDEE;CN={attendee.split('@')[0].title()};ROLE=REQ-PARTICIPANT;"
                     f"PARTSTAT={partstat};RSVP=TRUE:mailto:{attendee}")
    if rrule:
        lines.append(f"RRULE:{rrule}")
    if recurrence_id:
        lines.append(f"RECURRENCE-ID;TZID=Europe/Paris:{recurrence_id}")
    if status:
        lines.append(f"STATUS:{status}")
    lines.append("X-MICROSOFT-CDO-BUSYSTATUS:BUSY")
    if extra:
        lines.append(extra)
    lines.append("END:VEVENT")
    return "\r\n".join(lines) + "\r\n"


def calendar(method: str, *events: str) -> str:
    return ("BEGIN:VCALENDAR\r\nPRODID:-//Example Corp//Calendar//EN\r\nVERSION:2.0\r\n"
            f"METHOD:{method}\r\n{PARIS}{''.join(events)}END:VCALENDAR\r\n")


def message(method: str, *events: str, sender: str = "Carol Organizer <carol@example.net>",
            to: str = "alice@example.org", subject: str = "Budget review",
            message_id: str = "<invite-1@example.net>") -> bytes:
    ics = calendar(method, *events)
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Sun, 01 Mar 2026 09:00:00 +0000\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYou are invited.\r\n"
        f'--b1\r\nContent-Type: text/calendar; charset=utf-8; method={method}\r\n\r\n{ics}'
        "--b1--\r\n"
    ).encode()
