from datetime import datetime, timezone

from twisted.trial.unittest import SynchronousTestCase

from bluesync.items.email import Flag, ItemState, parse_message
from bluesync.items.email import MessageSummary
from bluesync.items.records import from_record, to_record

RAW = (
    b"From: =?utf-8?q?Ren=C3=A9e?= <renee@example.org>\r\nTo: alice@example.org\r\n"
    b"Subject: caf\xc3\xa9\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <1@x>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n"
)


class RecordTests(SynchronousTestCase):
    def test_summary_round_trip(self):
        """A MessageSummary survives JSON with its datetimes, bytes and tuples."""
        import json

        summary = parse_message(RAW)
        record = json.loads(json.dumps(to_record(summary)))
        self.assertEqual(from_record(MessageSummary, record), summary)

    def test_nested_and_missing(self):
        """Nested dataclasses rebuild; missing fields take defaults."""
        state = ItemState(read=True, flag=Flag(status=2, due_date=datetime(2026, 1, 2, tzinfo=timezone.utc)))
        self.assertEqual(from_record(ItemState, to_record(state)), state)
        self.assertEqual(from_record(ItemState, {"read": True, "future_field": 1}), ItemState(read=True))

    def test_dropped_required_field(self):
        """A required field left out of a record comes back empty, not as an error."""
        summary = parse_message(RAW)
        record = to_record(summary)
        del record["body_text_for_search"]
        self.assertEqual(from_record(MessageSummary, record).body_text_for_search, "")

    def test_rendition_round_trip(self):
        """A rendition with its attachment list survives JSON."""
        import json
        from pathlib import Path

        from bluesync.items.email import Rendition, rendition

        raw = (Path(__file__).parent / "data" / "attachments.eml").read_bytes()
        prepared = rendition(raw)
        self.assertTrue(prepared.attachments)
        self.assertEqual(from_record(Rendition, json.loads(json.dumps(to_record(prepared)))), prepared)

    def test_prepare_matches_separate_parses(self):
        """prepare() gives what parse_message() and rendition() give separately."""
        from datetime import datetime, timezone
        from pathlib import Path

        from bluesync.items.email import prepare, rendition

        received = datetime(2026, 11, 26, tzinfo=timezone.utc)
        for path in sorted((Path(__file__).parent / "data").glob("*.eml")):
            raw = path.read_bytes()
            self.assertEqual(prepare(raw, received), (parse_message(raw, received), rendition(raw)), path.name)
