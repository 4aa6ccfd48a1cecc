"""
bluesync-admin device actions, rules, audit and admins, run as a separate
process against the database the real Site serves: a decision taken in the
CLI reaches the phone on its next request, and its held Ping at once,
through PostgreSQL NOTIFY.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from twisted.internet import defer, threads

from tests.devices.support import FOLDERSYNC_0, OUTLOOK_UA, DeviceTestCase, ping_xml, status
from tests.push.helpers import until


def rows(output: str) -> list[dict[str, str]]:
    lines = output.splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


class ManageTests(DeviceTestCase):
    async def _set_up(self):
        await super()._set_up()
        directory = tempfile.mkdtemp(prefix="bluesync-cli-")
        self.config_path = os.path.join(directory, "bluesync.ini")
        with open(self.config_path, "w") as f:
            f.write(f"[database]\ndsn = {self.dsn}\npool_size = 1\n[mail]\nhostname = mail.example.org\n")

    def cli(self, *args, stdin: str | None = None):
        environment = dict(os.environ, SUDO_USER="operator")
        return threads.deferToThread(
            subprocess.run,
            [sys.executable, "-m", "bluesync.admin.cli", "--config", self.config_path, *args],
            capture_output=True, text=True, timeout=120, input=stdin, env=environment,
        )

    async def ok(self, *args, stdin: str | None = None) -> str:
        result = await self.cli(*args, stdin=stdin)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    async def test_block_reaches_the_held_ping(self):
        """device block from the CLI answers the phone's held Ping with 129, lists it blocked, audits it."""
        client = self.phone()
        await self.ready(client)
        device = await self.device()
        (modseq,) = (await self.store.folders.modseqs(self.account.id, [self.inbox.id])).values()
        await self.store.sync_states.save_next(device.id, self.inbox.id, None, modseq)
        ping = defer.ensureDeferred(client.post("Ping", ping_xml(900, self.inbox.id)))
        await until(lambda: self.notifier.held_count() == 1, "the Ping to be held")

        listed = rows(await self.ok("device", "list", "alice@example.org"))
        self.assertEqual(listed[0]["state"], "allowed")
        self.assertTrue(listed[0]["ping"].startswith("held until "), listed[0])

        output = await self.ok("device", "block", "alice@example.org", "PHONE1", "--reason", "lost on a train")
        self.assertEqual(output, "PHONE1 of alice@example.org is blocked\n")
        self.assertEqual(status(await ping, "ping:Status"), "129")
        self.assertEqual(status(await client.post("FolderSync", FOLDERSYNC_0), "folderhierarchy:Status"), "129")

        (row,) = rows(await self.ok("device", "list"))
        self.assertEqual((row["device_id"], row["state"], row["why"]), ("PHONE1", "blocked", "administrator"))
        (entry,) = rows(await self.ok("audit"))
        self.assertEqual((entry["actor"], entry["action"], entry["account"], entry["device"], entry["detail"]),
                         ("cli:operator", "device.block", "alice@example.org", "PHONE1", "lost on a train"))
        # One email, from whichever process saw the decision first (the CLI
        # or the server answering the Ping).
        (notice,) = await self.store.items.folder_items(self.account.id, self.inbox.id)
        self.assertEqual(notice.summary["subject"], "Your device iPhone (PHONE1) is blocked")

    async def test_every_action(self):
        """Each device action runs from the CLI and is audited in order; errors exit 1 with a message."""
        client = self.phone()
        await self.ready(client)
        for action in ("quarantine", "allow", "wipe", "cancel-wipe", "account-wipe", "cancel-wipe", "reset",
                       "remove"):
            await self.ok("device", action, "alice@example.org", "PHONE1")
        self.assertEqual([row["action"] for row in rows(await self.ok("audit"))], [
            "device.quarantine", "device.allow", "device.wipe", "device.cancel-wipe", "device.account-wipe",
            "device.cancel-wipe", "device.reset", "device.remove",
        ])
        missing = await self.cli("device", "block", "alice@example.org", "PHONE1")
        self.assertEqual((missing.returncode, missing.stderr),
                         (1, "bluesync-admin: alice@example.org has no device PHONE1\n"))
        nobody = await self.cli("device", "allow", "nobody@example.org", "PHONE1")
        self.assertEqual((nobody.returncode, nobody.stderr), (1, "bluesync-admin: no account nobody@example.org\n"))

    async def test_show(self):
        """device show prints the state, why, the matching rule and what the phone said about itself."""
        await self.ready(self.phone("OUTLOOK", user_agent=OUTLOOK_UA))
        await self.ok("rule", "add", "UserAgent", "Outlook-iOS-Android/*", "quarantine")
        output = await self.ok("device", "show", "alice@example.org", "OUTLOOK")
        fields = dict(line.split(":", 1) for line in output.splitlines())
        fields = {key: value.strip() for key, value in fields.items()}
        self.assertEqual(fields["State"], "quarantined")
        self.assertEqual(fields["Why"], "rule 1")
        self.assertEqual(fields["Matching rule"], "quarantine UserAgent 'Outlook-iOS-Android/*' (rule 1)")
        self.assertEqual(fields["User agent"], OUTLOOK_UA)
        self.assertEqual(fields["Policy"], "provisioned")

    async def test_rules(self):
        """rule add, list and delete; a bad rule is refused with the reason."""
        output = await self.ok("rule", "add", "UserAgent", "Outlook-iOS-Android/*", "block", "--reason", "relay")
        self.assertEqual(output, "rule 1 added: block UserAgent 'Outlook-iOS-Android/*' (priority 10)\n")
        await self.ok("rule", "add", "devicetype", "iPhone", "allow", "--priority", "5")
        listed = rows(await self.ok("rule", "list"))
        self.assertEqual([(r["id"], r["priority"], r["field"], r["pattern"], r["action"], r["created_by"])
                          for r in listed],
                         [("2", "5", "DeviceType", "iPhone", "allow", "cli:operator"),
                          ("1", "10", "UserAgent", "Outlook-iOS-Android/*", "block", "cli:operator")])
        outlook = self.phone("OUTLOOK", user_agent=OUTLOOK_UA, device_type="Outlook")
        self.assertEqual(status(await outlook.post("Provision", None), "provision:Status"), "129")
        self.assertEqual(await self.ok("rule", "delete", "1"),
                         "rule 1 deleted: block UserAgent 'Outlook-iOS-Android/*'\n")
        await self.ready(outlook)
        bad = await self.cli("rule", "add", "Colour", "*", "block")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("unknown field 'Colour'", bad.stderr)
        gone = await self.cli("rule", "delete", "1")
        self.assertEqual((gone.returncode, gone.stderr), (1, "bluesync-admin: no access rule 1\n"))
        self.assertEqual([r["action"] for r in rows(await self.ok("audit"))], ["rule.add", "rule.add", "rule.delete"])

    async def test_audit_since(self):
        """audit --since takes a duration or a date; a bad value exits 2."""
        await self.ok("rule", "add", "DeviceType", "*", "allow")
        self.assertEqual(len(rows(await self.ok("audit", "--since", "1h"))), 1)
        self.assertEqual(rows(await self.ok("audit", "--since", "2999-01-01")), [])
        bad = await self.cli("audit", "--since", "yesterday")
        self.assertEqual(bad.returncode, 2)
        self.assertIn("neither a date", bad.stderr)

    async def test_admins(self):
        """admin add stores an Argon2 hash; a second add of the name fails; list shows it."""
        self.assertEqual(await self.ok("admin", "add", "root", "--password-stdin", stdin="long enough\n"),
                         "administrator root created\n")
        admin = await self.store.admins.get("root")
        self.assertTrue(admin.password_hash.startswith("$argon2id$"))
        again = await self.cli("admin", "add", "root", "--password-stdin", stdin="long enough\n")
        self.assertEqual((again.returncode, again.stderr), (1, "bluesync-admin: administrator root already exists\n"))
        self.assertEqual((await self.ok("admin", "list")).split("\t")[0], "root")
        self.assertEqual([r["action"] for r in rows(await self.ok("audit"))], ["admin.add"])
