"""
Inbound iMIP (RFC 6047): a message delivered to local accounts that
carries a meeting (a text/calendar part with METHOD REQUEST, CANCEL or
REPLY, RFC 5546) also changes their calendars.

- REQUEST: the meeting is added to (or updated in) the account's default
  Calendar folder, as received (MeetingStatus 3), unanswered (the user's
  PARTSTAT NEEDS-ACTION) and tentative, until MeetingResponse answers it.
  An update must come from the meeting's organizer and carry a SEQUENCE
  no lower than the stored one.
- CANCEL from the organizer removes the meeting, or the cancelled
  occurrences of it.
- REPLY to a meeting the account organises records the attendee's answer
  in the organizer's event.

The Inbox message itself is stored by delivery as any other; what it
shows the device (Email:MeetingRequest, MessageClass
IPM.Schedule.Meeting.*) is decided when it is served (bluesync/eas/render.py).

When: after the transaction that stored the Inbox copies has committed
(L{bluesync.mail.delivery.deliver_item} for LMTP,
L{bluesync.eas.composemail.send_message} for local recipients), not inside
it. The message is what the MTA is owed: a calendar that cannot be
updated (an unreadable iCalendar, an edit racing with a device, a
database hiccup) must not turn into a 451 and a redelivery of a message
already stored for every other recipient. The calendar step is a
read-modify-write per account that retries on its own. If the process
dies in between, the meeting is still in the Inbox, and MeetingResponse
adds the event it finds missing (MS-ASCMD 2.2.3.18).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Callable, Iterable

from twisted.internet import defer
from twisted.logger import Logger

from bluesync.items import calendar, classify, imip, mime, scheduling
from bluesync.items._eas import ConversionError
from bluesync.items.email import invitation
from bluesync.store.folders import CALENDAR
from bluesync.store.items import ItemChanged, NewItem

log = Logger()

MEETING_CLASS = "IPM.Schedule.Meeting"
ATTEMPTS = 3
DELETE = object()        # an edit's answer: remove the event

__all__ = ["DELETE", "Stored", "add_event", "calendar_item", "find_event", "own_addresses", "process",
           "rewrite"]


# -- the calendar, for this module and MeetingResponse ----------------------

def calendar_item(stored: bytes, tz: tzinfo | None = None) -> NewItem:
    """
    The NewItem of a stored event, with the columns the sync filters on
    (as bluesync/eas/pim.py stores a device's events).
    """
    found = calendar.columns(stored, tz=tz)
    return NewItem(
        content_class="Calendar", content=stored, read=True,
        columns={"uid": found["uid"] or None, "subject": found["subject"], "start_time": found["start"],
                 "end_time": found["last_end"], "size": len(stored)},
    )


async def own_addresses(store, account) -> set[str]:
    return {account.address.lower(), *(a.lower() for a in await store.accounts.aliases(account.id))}


@dataclass(frozen=True)
class Stored:
    folder: object
    item_id: int | None


async def find_event(store, account, uid: str) -> Stored | None:
    """
    The account's default Calendar folder and the event in it with this
    UID (item_id None when there is none); None without a Calendar folder.
    """
    folder = await store.folders.by_type(account.id, CALENDAR)
    if folder is None:
        return None
    item = await store.items.by_uid(account.id, folder.id, uid) if uid else None
    return Stored(folder, item.id if item is not None else None)


async def add_event(store, account, folder, stored: bytes, tz: tzinfo | None = None) -> int:
    (item_id,) = await store.items.store_batch(account.id, folder.id, [calendar_item(stored, tz)], {})
    return item_id


async def rewrite(store, account, folder, item_id: int, edit: Callable[[bytes], object],
                  tz: tzinfo | None = None) -> tuple[str, int | None]:
    """
    Give a stored event what C{edit} makes of its content: new bytes,
    None (leave it), or L{DELETE}. Redone when a device changed the event
    meanwhile. Returns ("changed", "unchanged", "deleted" or "gone", and
    the modseq written, if any).
    """
    for _ in range(ATTEMPTS):
        item = (await store.items.get_many(account.id, [item_id], folder.id)).get(item_id)
        if item is None:
            return "gone", None
        result = edit(item.content)
        if result is None:
            return "unchanged", None
        if result is DELETE:
            modseq = await store.items.delete(account.id, folder.id, item_id)
            return ("deleted" if modseq is not None else "gone"), modseq
        try:
            modseq = await store.items.replace_content(account.id, folder.id, item_id,
                                                       calendar_item(result, tz), expected_modseq=item.modseq)
        except ItemChanged:
            continue
        return ("changed" if modseq is not None else "gone"), modseq
    log.warn("calendar: event {item} of {account} kept changing; meeting update not applied",
             item=item_id, account=account.address)
    return "unchanged", None


# -- inbound iMIP -------------------------------------------------------------

def _sender(raw: bytes) -> str:
    pairs = classify.addresses(mime.parse_bytes(raw), "From")
    return pairs[0][1].lower() if pairs else ""


async def process(store, accounts: Iterable, raw: bytes, *, message_class: str | None = None,
                  tz: tzinfo | None = None) -> dict[int, str]:
    """
    Apply the meeting a delivered message carries to each account's
    calendar; account id -> what happened ("added", "changed", "deleted",
    "unchanged", "ignored", ...). Never raises for the message's sake:
    every failure is logged and leaves that calendar as it was.

    C{message_class}, when known (the delivery parsed it), skips messages
    that are not meetings without parsing them again.
    """
    if message_class is not None and not message_class.startswith(MEETING_CLASS):
        return {}
    ics = invitation(raw)
    if ics is None:
        return {}
    try:
        parsed = imip.parse(ics)
    except ConversionError as e:
        log.info("calendar: meeting message with unreadable iCalendar ignored: {error}", error=str(e))
        return {}
    sender = _sender(raw)
    outcomes = {}
    for account in accounts:
        try:
            outcomes[account.id] = await apply(store, account, ics, parsed, sender, tz)
        except defer.CancelledError:
            raise
        except ConversionError as e:
            log.info("calendar: {method} {uid} for {account} not applied: {error}", method=parsed.method,
                     uid=parsed.uid, account=account.address, error=str(e))
            outcomes[account.id] = "refused"
        except Exception:
            log.failure("calendar: {method} {uid} for {account} failed", method=parsed.method, uid=parsed.uid,
                        account=account.address)
            outcomes[account.id] = "failed"
    return outcomes


async def apply(store, account, ics: str, parsed: imip.Invitation, sender: str,
                tz: tzinfo | None = None) -> str:
    own = await own_addresses(store, account)
    organizer = parsed.organizer.email.lower() if parsed.organizer is not None else ""
    method = parsed.method
    if method not in ("REQUEST", "CANCEL", "REPLY") or not parsed.uid:
        return "ignored"
    if (method == "REPLY") != (organizer in own):
        # A request or cancellation of our own meeting (a copy to
        # ourselves), or a reply to someone else's: not ours to apply.
        return "ignored"
    found = await find_event(store, account, parsed.uid)
    if found is None:
        log.warn("calendar: {account} has no Calendar folder; {method} {uid} not applied",
                 account=account.address, method=method, uid=parsed.uid)
        return "no calendar"
    if found.item_id is None:
        if method != "REQUEST":
            return "unknown meeting"
        item_id = await add_event(store, account, found.folder, scheduling.received(ics, own), tz)
        _logged(account, parsed, "added", item_id)
        return "added"
    refusal: list[str] = []

    def edit(content: bytes):
        if method == "REPLY":
            if not scheduling.is_organizer(content, own):
                refusal.append("the stored event is not the account's meeting")
                return None
            return scheduling.replied(content, ics, sender)
        stored_organizer = scheduling.organizer_of(content)
        if stored_organizer and stored_organizer != organizer:
            refusal.append(f"the meeting's organizer is {stored_organizer}, not {organizer}")
            return None
        if not scheduling.sent_by_organizer(content, sender):
            # The From is all a message says of who sent it (checked for a
            # local account's SendMail, vouched for by the MTA over LMTP);
            # ORGANIZER and SENT-BY are whatever the sender wrote, so the
            # stored event says who may change it.
            refusal.append(f"sent by {sender or 'nobody'}, not by the organizer of the stored meeting")
            return None
        if parsed.sequence < scheduling.sequence_of(content):
            refusal.append(f"SEQUENCE {parsed.sequence} is older than the stored one")
            return None
        if method == "CANCEL":
            result = scheduling.cancelled(ics, content, tz)
            return DELETE if result is None else result
        result = scheduling.received(ics, own, content)
        return result if result != content else None

    outcome, _ = await rewrite(store, account, found.folder, found.item_id, edit, tz)
    if refusal:
        log.info("calendar: {method} {uid} for {account} ignored: {reason}", method=method, uid=parsed.uid,
                 account=account.address, reason=refusal[-1])
        return "ignored"
    _logged(account, parsed, outcome, found.item_id)
    return outcome


def _logged(account, parsed: imip.Invitation, outcome: str, item_id: int) -> None:
    log.info("calendar: {method} {uid} (SEQUENCE {sequence}) for {account}: event {item} {outcome}",
             method=parsed.method, uid=parsed.uid, sequence=parsed.sequence, account=account.address,
             item=item_id, outcome=outcome)
