from twisted.application.service import ServiceMaker

bluesync = ServiceMaker(
    "bluesync",
    "bluesync.tap",
    "Exchange ActiveSync server (email, contacts, calendar, push)",
    "bluesync",
)
