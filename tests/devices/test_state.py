"""
The pure parts of device management: access state precedence, rule
patterns, and the --since of the audit trail.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from twisted.trial.unittest import SynchronousTestCase

from bluesync.devices import state
from bluesync.devices.describe import parse_since
from bluesync.store.devices import Device
from bluesync.store.rules import like_pattern

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)

DEVICE = Device(
    id=1, account_id=1, device_id="PHONE1", device_type="iPhone", user_agent="Apple", protocol_version="16.1",
    pending_policy_key=None, policy_key=1, policy_status=1, wipe="none", wipe_requested_at=None,
    wipe_acknowledged_at=None, model="", imei="", friendly_name="", os="", os_language="", phone_number="",
    mobile_operator="", enable_outbound_sms=None, ping_heartbeat=None, ping_folders=None, first_seen=NOW,
    last_seen=NOW, last_command="Sync",
)


class DecideTests(SynchronousTestCase):
    def decide(self, **changes):
        return state.decide(replace(DEVICE, **changes), NOW.timestamp())

    def test_policy(self):
        """Without anything else, the decision taken at first sight stands."""
        self.assertEqual(self.decide(), state.Access("allowed", "policy"))
        self.assertEqual(self.decide(access="quarantined"), state.Access("quarantined", "policy"))

    def test_rule_overrides_policy(self):
        """A matching rule overrides the first-sight decision."""
        self.assertEqual(self.decide(access="quarantined", rule_id=3, rule_action="allowed"),
                         state.Access("allowed", "rule 3"))

    def test_administrator_overrides_rule(self):
        """An administrator's decision for the device overrides a matching rule."""
        self.assertEqual(self.decide(access="allowed", access_reason="admin", rule_id=3, rule_action="blocked"),
                         state.Access("allowed", "administrator"))

    def test_autoblock_until_it_expires(self):
        """An autoblock overrides every decision until its end, then is forgotten."""
        until = NOW + timedelta(minutes=5)
        blocked = self.decide(access="allowed", access_reason="admin", blocked_until=until, autoblock_reason="loop")
        self.assertEqual(blocked, state.Access("autoblocked", "autoblock: loop", until))
        expired = state.decide(replace(DEVICE, blocked_until=until), (until + timedelta(seconds=1)).timestamp())
        self.assertEqual(expired.state, "allowed")

    def test_wipe_first(self):
        """A wipe, pending or done, comes before everything: a blocked lost phone is still wiped."""
        for wipe, expected in (("pending", "wipe pending"), ("wiped", "wiped"),
                               ("pending_account", "account wipe pending"), ("wiped_account", "account wiped")):
            decided = self.decide(wipe=wipe, access="blocked", access_reason="admin",
                                  blocked_until=NOW + timedelta(hours=1))
            self.assertEqual(decided.state, expected)


class PatternTests(SynchronousTestCase):
    def test_like_pattern(self):
        """* and ? become % and _; ILIKE's own wildcards and escape character are escaped."""
        self.assertEqual(like_pattern("Outlook-iOS-Android/*"), "Outlook-iOS-Android/%")
        self.assertEqual(like_pattern("i?hone"), "i_hone")
        self.assertEqual(like_pattern("100%_sure\\"), "100\\%\\_sure\\\\")


class SinceTests(SynchronousTestCase):
    def test_forms(self):
        """--since takes durations back from now, dates and dates with times (UTC unless said)."""
        self.assertEqual(parse_since("7d", NOW), NOW - timedelta(days=7))
        self.assertEqual(parse_since("30m", NOW), NOW - timedelta(minutes=30))
        self.assertEqual(parse_since("2026-04-01", NOW), datetime(2026, 4, 1, tzinfo=timezone.utc))
        self.assertEqual(parse_since("2026-04-01T10:00+02:00", NOW),
                         datetime(2026, 4, 1, 8, 0, tzinfo=timezone.utc))
        for bad in ("yesterday", "", "-5m"):
            self.assertRaises(ValueError, parse_since, bad, NOW)
