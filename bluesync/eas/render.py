"""
Items -> EAS ApplicationData, per content class.

The sync, ItemOperations and Search commands all serve items; this module
picks the converter in bluesync/items/ for the item's class and feeds it
the stored content, summary and shared state.  Contacts, calendar, tasks
and notes also depend on who reads them (L{Reader}): the zone dates are
shown in, the device family (birthdays) and the account's address (whether
a meeting is the user's own).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone, tzinfo
from zoneinfo import ZoneInfo

from twisted.logger import Logger

from bluesync.eas import meetings
from bluesync.eas.syncoptions import SyncOptions
from bluesync.items import calendar, contacts, email, notes, tasks
from bluesync.items.records import from_record
from bluesync.store.items import Item

log = Logger()

PLAIN_TEXT = (email.BodyPreference(1, None),)
PIM_CLASSES = ("Contacts", "Calendar", "Tasks", "Notes")


@dataclass(frozen=True)
class Reader:
    """
    Who PIM items are rendered for.  C{tz}: the users' zone ([server]
    default_timezone); C{family}: "android" for AOSP-derived clients,
    which read birthdays as UTC dates (items/contacts.py); C{owner}: the
    account's address.
    """

    tz: tzinfo | None = None
    family: str | None = None
    owner: str | None = None


def zone(name: str) -> tzinfo:
    return timezone.utc if name.upper() == "UTC" else ZoneInfo(name)


def device_family(device_type: str, user_agent: str) -> str | None:
    """
    "android" for the Exchange clients derived from AOSP's (they say so in
    their device type or user agent), None for every other client.
    """
    if "android" in f"{device_type} {user_agent}".lower():
        return contacts.ANDROID
    return None


def reader_for(ctx) -> Reader:
    """The L{Reader} of a command's device and account."""
    device = ctx.device
    request = ctx.request
    return Reader(
        tz=zone(ctx.server.config.server.default_timezone),
        family=device_family(getattr(device, "device_type", None) or request.device_type,
                             getattr(device, "user_agent", None) or request.user_agent),
        owner=ctx.account.address,
    )


def email_state(item: Item) -> email.ItemState:
    return email.ItemState(
        read=item.read,
        flag=from_record(email.Flag, item.flag) if item.flag else None,
        categories=tuple(item.categories),
        last_verb_executed=item.last_verb,
        last_verb_time=item.last_verb_time,
    )


def application_data(item: Item, server_id: str, version: str, options: SyncOptions,
                     reader: Reader | None = None):
    """
    The full ApplicationData of an item, or None for a class we cannot
    serve (it is then left out of the response, never half-sent).
    """
    if item.content_class in PIM_CLASSES:
        return pim_data(item, version, options, reader or Reader())
    if item.content_class == "Email":
        summary = from_record(email.MessageSummary, item.summary)
        return email.application_data(
            item.content,
            summary,
            email_state(item),
            version=version,
            body_preferences=options.body_preferences or PLAIN_TEXT,
            mime_support=options.mime_support,
            mime_truncation=options.mime_truncation,
            file_reference_prefix=f"{server_id}:",
            meeting_request=meeting_request(item, summary, version, reader or Reader()),
            prepared=from_record(email.Rendition, item.rendition) if item.rendition else None,
        )
    return None


def needs_raw(options: SyncOptions) -> bool:
    """
    Whether serving email with C{options} may need the raw message even
    when the store kept a rendition: only to send MIME (MS-ASAIRS Type 4),
    which MIMESupport must allow.  Meeting messages always need it, which
    the store knows (L{bluesync.store.items.ItemStore.changes}).
    """
    return bool(options.mime_support) and any(p.type == email.BODY_MIME for p in options.body_preferences)


MEETING_CLASSES = ("IPM.Schedule.Meeting.Request", "IPM.Schedule.Meeting.Canceled")


def meeting_request(item: Item, summary: email.MessageSummary, version: str, reader: Reader):
    """
    The Email:MeetingRequest of a meeting request or cancellation
    (MS-ASEMAIL 2.2.2.48), None for any other message.
    """
    if not summary.message_class.startswith(MEETING_CLASSES):
        return None
    return meetings.meeting_request(email.invitation(item.content), version, tz=reader.tz, owner=reader.owner)


def change_data(item: Item, version: str):
    """
    The ApplicationData of a server Change: only what can change.
    """
    if item.content_class == "Email":
        return email.change_data(email_state(item), version=version)
    return None


def pim_render(klass: str, content: bytes, version: str, reader: Reader, preferences=PLAIN_TEXT):
    """
    The ApplicationData of a stored contact, event, task or note for a
    device of C{version}; None for a note to a client older than 14.0,
    which has no Notes class.

    @raise Exception: whatever the converter raises for a broken object.
    """
    if klass == "Contacts":
        return contacts.to_eas(content, version, tz=reader.tz, family=reader.family, body_preferences=preferences)
    if klass == "Calendar":
        return calendar.to_eas(content, version, tz=reader.tz, body_preferences=preferences, owner=reader.owner)
    if klass == "Tasks":
        return tasks.to_eas(content, version, tz=reader.tz, body_preferences=preferences)
    if float(version) < 14.0:
        return None
    return notes.to_eas(content, version, body_preferences=preferences)


def pim_data(item: Item, version: str, options: SyncOptions, reader: Reader):
    """
    The ApplicationData of a contact, event, task or note, or None when
    the stored object cannot be served (a broken import): logged, left out.
    """
    klass = item.content_class
    try:
        return pim_render(klass, item.content, version, reader, options.body_preferences or PLAIN_TEXT)
    except contacts.ConversionError as e:
        log.warn("item {item} ({klass}) cannot be served: {error}", item=item.id, klass=klass, error=str(e))
    except Exception:
        log.failure("item {item} ({klass}) cannot be served", item=item.id, klass=klass)
    return None
