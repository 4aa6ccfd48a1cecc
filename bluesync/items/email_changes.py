"""
Reading what a device changed on an email: the ApplicationData of a Sync
Change (MS-ASEMAIL 3.1.5.3: only Read, Flag and Categories may change).

An absent element means "unchanged"; an empty Flag or Categories element
means "cleared" (MS-ASEMAIL 2.2.2.34, MS-ASCMD 2.2.3.11).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

from lxml import etree

from bluesync.items.email import EMAIL, TASKS, Flag, ItemState

UNCHANGED = object()


@dataclass(frozen=True)
class ClientChange:
    read: object = UNCHANGED         # bool, or UNCHANGED
    flag: object = UNCHANGED         # Flag, None (cleared), or UNCHANGED
    categories: object = UNCHANGED   # tuple[str, ...], or UNCHANGED

    def apply(self, state: ItemState) -> ItemState:
        changes = {}
        if self.read is not UNCHANGED:
            changes["read"] = self.read
        if self.flag is not UNCHANGED:
            changes["flag"] = self.flag
        if self.categories is not UNCHANGED:
            changes["categories"] = self.categories
        return replace(state, **changes)


class ChangeError(ValueError):
    """
    The ApplicationData cannot be read (Sync Status 6 for that item).
    """


def _date(text: str | None) -> datetime | None:
    if not text:
        return None
    value = text.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            moment = datetime.strptime(text.strip(), "%Y%m%dT%H%M%SZ")
        except ValueError:
            raise ChangeError(f"bad date {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _flag(element: etree._Element) -> Flag | None:
    if len(element) == 0:
        return None

    def child(namespace: str, name: str) -> str | None:
        found = element.find(f"{{{namespace}}}{name}")
        return found.text if found is not None else None

    # MS-ASEMAIL 2.2.2.68: 0 cleared, 1 complete, 2 active; nothing else
    # is stored (it would be served back to every other device).
    status_text = child(EMAIL, "FlagStatus") or child(EMAIL, "Status")
    if status_text is None:
        status = 2
    elif status_text.strip() in ("0", "1", "2"):
        status = int(status_text)
    else:
        raise ChangeError(f"bad flag status {status_text[:40]!r}")
    if status == 0:
        return None
    reminder = child(TASKS, "ReminderSet")
    return Flag(
        status=status,
        flag_type=child(EMAIL, "FlagType"),
        subject=child(TASKS, "Subject"),
        date_completed=_date(child(TASKS, "DateCompleted")),
        complete_time=_date(child(EMAIL, "CompleteTime")),
        start_date=_date(child(TASKS, "StartDate")),
        due_date=_date(child(TASKS, "DueDate")),
        utc_start_date=_date(child(TASKS, "UtcStartDate")),
        utc_due_date=_date(child(TASKS, "UtcDueDate")),
        reminder_set=None if reminder is None else reminder.strip() == "1",
        reminder_time=_date(child(TASKS, "ReminderTime")),
        ordinal_date=_date(child(TASKS, "OrdinalDate")),
        sub_ordinal_date=child(TASKS, "SubOrdinalDate"),
    )


def client_change(application_data: etree._Element | None) -> ClientChange:
    if application_data is None:
        return ClientChange()
    read = UNCHANGED
    flag = UNCHANGED
    categories = UNCHANGED
    for element in application_data:
        if element.tag == f"{{{EMAIL}}}Read":
            value = (element.text or "").strip()
            if value not in ("0", "1"):
                raise ChangeError(f"bad Read value {value!r}")
            read = value == "1"
        elif element.tag == f"{{{EMAIL}}}Flag":
            flag = _flag(element)
        elif element.tag == f"{{{EMAIL}}}Categories":
            categories = tuple((c.text or "").strip() for c in element if c.tag == f"{{{EMAIL}}}Category")
    return ClientChange(read, flag, categories)
