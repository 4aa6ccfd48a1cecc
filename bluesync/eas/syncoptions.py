"""
The Options of a Sync (and GetItemEstimate) collection, read once into a
plain object that can also be cached for empty and Partial Sync requests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from bluesync.items.email import BodyPreference

AIRSYNC = "{AirSync:}"
AIRSYNCBASE = "{AirSyncBase:}"


class OptionsError(ValueError):
    """
    Options that cannot be honoured (Sync Status 4, protocol error).
    """


@dataclass(frozen=True)
class SyncOptions:
    filter_type: int = 0
    body_preferences: tuple[BodyPreference, ...] = ()
    conflict: int = 1             # 0 client wins, 1 server wins (the default)
    mime_support: int = 0
    mime_truncation: int | None = None
    truncation: int | None = None  # 12.1 AirSync:Truncation, superseded by BodyPreference
    max_items: int | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["body_preferences"] = [asdict(p) for p in self.body_preferences]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "SyncOptions":
        data = dict(data)
        data["body_preferences"] = tuple(BodyPreference(**p) for p in data.get("body_preferences", ()))
        return cls(**data)


def _int(element, low: int, high: int, what: str) -> int:
    try:
        value = int((element.text or "").strip())
    except ValueError:
        raise OptionsError(f"{what} is not a number") from None
    if not low <= value <= high:
        raise OptionsError(f"{what} {value} out of range")
    return value


def _body_preference(element) -> BodyPreference:
    body_type = None
    truncation = None
    all_or_none = False
    preview = 0
    for child in element:
        name = child.tag
        if name == AIRSYNCBASE + "Type":
            body_type = _int(child, 1, 8, "BodyPreference Type")
        elif name == AIRSYNCBASE + "TruncationSize":
            truncation = _int(child, 0, 2**32 - 1, "TruncationSize")
        elif name == AIRSYNCBASE + "AllOrNone":
            all_or_none = (child.text or "1").strip() == "1"
        elif name == AIRSYNCBASE + "Preview":
            preview = _int(child, 0, 255, "Preview")
    if body_type is None:
        raise OptionsError("BodyPreference without Type")
    return BodyPreference(body_type, truncation, all_or_none, preview)


def parse_options(elements, content_class: str | None = None) -> SyncOptions:
    """
    Read the Options elements of a collection.  16.x may send several, one
    per Class (e.g. SMS beside Email): only the one for the folder's class
    (or without a Class) applies.
    """
    chosen = None
    for element in elements:
        klass = element.find(AIRSYNC + "Class")
        if klass is None or content_class is None or (klass.text or "").strip() == content_class:
            chosen = element
            break
    if chosen is None:
        return SyncOptions()
    values: dict = {}
    preferences = []
    for child in chosen:
        name = child.tag
        if name == AIRSYNC + "FilterType":
            values["filter_type"] = _int(child, 0, 8, "FilterType")
        elif name == AIRSYNCBASE + "BodyPreference":
            preferences.append(_body_preference(child))
        elif name == AIRSYNC + "Conflict":
            values["conflict"] = _int(child, 0, 1, "Conflict")
        elif name == AIRSYNC + "MIMESupport":
            values["mime_support"] = _int(child, 0, 2, "MIMESupport")
        elif name == AIRSYNC + "MIMETruncation":
            values["mime_truncation"] = _int(child, 0, 8, "MIMETruncation")
        elif name == AIRSYNC + "Truncation":
            values["truncation"] = _int(child, 0, 9, "Truncation")
        elif name == AIRSYNC + "MaxItems":
            values["max_items"] = _int(child, 0, 2**31 - 1, "MaxItems")
    return SyncOptions(body_preferences=tuple(preferences), **values)
