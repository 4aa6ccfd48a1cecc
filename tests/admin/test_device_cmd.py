"""
bluesync-admin device list, run as a separate process against the database
a real device session wrote to over TCP.
"""

import os
import subprocess
import sys
import tempfile

from twisted.internet import threads

from tests.eas.client import EASClient
from tests.eas.test_provision import DEVICE_INFORMATION, provision
from tests.support import SiteTestCase


class DeviceListTests(SiteTestCase):
    async def _set_up(self):
        await super()._set_up()
        directory = tempfile.mkdtemp(prefix="bluesync-cli-")
        self.config_path = os.path.join(directory, "bluesync.ini")
        with open(self.config_path, "w") as f:
            f.write(f"[database]\ndsn = {self.dsn}\npool_size = 1\n")
        self.alice = await self.create_account("alice@example.org")
        await self.create_account("bob@example.org", name="Bob")

    def admin(self, *args):
        return threads.deferToThread(
            subprocess.run,
            [sys.executable, "-m", "bluesync.admin.cli", "--config", self.config_path, *args],
            capture_output=True, text=True, timeout=120,
        )

    def client(self, user, device_id, version, device_type="iPhone", user_agent="Apple-iPhone15C2/2301.341"):
        return EASClient(self.base_url, user, "correct horse", device_id=device_id, version=version,
                         device_type=device_type, user_agent=user_agent, pool=self.pool)

    @staticmethod
    def rows(output: str) -> list[dict[str, str]]:
        lines = output.splitlines()
        header = lines[0].split("\t")
        return [dict(zip(header, line.split("\t"))) for line in lines[1:]]

    async def test_list(self):
        """Devices appear with their DeviceInformation, from Provision (16.1) and from Settings (14.0)."""
        iphone = self.client("alice@example.org", "IPHONEA", "16.1")
        await provision(iphone, DEVICE_INFORMATION)
        android = self.client("alice@example.org", "ANDROIDB", "14.0", "SAMSUNGSMS918B", "Android/14-EAS-8.0")
        await provision(android)
        await android.post("Settings", (
            '<Settings xmlns="Settings:"><DeviceInformation><Set>'
            "<Model>SM-S918B</Model><OS>Android 14</OS><PhoneNumber>+4915112345678</PhoneNumber>"
            "</Set></DeviceInformation></Settings>"
        ))
        await self.client("bob@example.org", "BOBPHONE", "14.1").post(
            "Settings", '<Settings xmlns="Settings:"><UserInformation><Get/></UserInformation></Settings>')
        await self.store.devices.request_wipe((await self.store.devices.get(self.alice.id, "ANDROIDB")).id)

        result = await self.admin("device", "list", "Alice@Example.org")
        self.assertEqual(result.returncode, 0, result.stderr)
        rows = {row["device_id"]: row for row in self.rows(result.stdout)}
        self.assertEqual(set(rows), {"IPHONEA", "ANDROIDB"})
        iphone_row = rows["IPHONEA"]
        self.assertEqual(
            {key: iphone_row[key] for key in (
                "account", "type", "model", "os", "imei", "phone", "protocol", "policy", "last_command", "wipe",
                "user_agent")},
            {"account": "alice@example.org", "type": "iPhone", "model": "iPhone15C2", "os": "iOS 17.4 21E219",
             "imei": "356938035643809", "phone": "+33612345678", "protocol": "16.1", "policy": "provisioned",
             "last_command": "Provision", "wipe": "none", "user_agent": "Apple-iPhone15C2/2301.341"},
        )
        self.assertRegex(iphone_row["first_seen"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")
        android_row = rows["ANDROIDB"]
        self.assertEqual(
            (android_row["model"], android_row["os"], android_row["phone"], android_row["imei"],
             android_row["last_command"], android_row["wipe"], android_row["user_agent"]),
            # last_command is written at most every TOUCH_INTERVAL seconds:
            # the Settings right after Provision is not recorded yet.
            ("SM-S918B", "Android 14", "+4915112345678", "-", "Provision", "pending", "Android/14-EAS-8.0"),
        )

        await self.store.accounts.add_alias("alice@example.org", "sales@example.org")
        by_alias = await self.admin("device", "list", "sales@example.org")
        self.assertEqual({row["device_id"] for row in self.rows(by_alias.stdout)}, {"IPHONEA", "ANDROIDB"})

        everyone = await self.admin("device", "list")
        self.assertEqual(everyone.returncode, 0, everyone.stderr)
        listed = {(row["account"], row["device_id"], row["policy"]) for row in self.rows(everyone.stdout)}
        self.assertEqual(listed, {("alice@example.org", "IPHONEA", "provisioned"),
                                  ("alice@example.org", "ANDROIDB", "provisioned"),
                                  ("bob@example.org", "BOBPHONE", "not provisioned")})

    async def test_unknown_user(self):
        """An unknown account is reported in one line with exit status 1."""
        result = await self.admin("device", "list", "nobody@example.org")
        self.assertEqual(result.returncode, 1)
        self.assertIn("no account nobody@example.org", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
