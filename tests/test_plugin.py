"""
The twistd plugin, and the quick start run as a user would: twistd in a
subprocess on the embedded defaults, an account made by bluesync-admin, and
OPTIONS over HTTP.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import treq
from twisted.internet import reactor
from twisted.trial import unittest
from twisted.web.client import HTTPConnectionPool

ROOT = Path(__file__).resolve().parent.parent

# twistd as a module: "python -m twisted" is the newer "twist" runner.
TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"]

_DISCOVER = (
    "from twisted.plugin import getPlugins\n"
    "from twisted.application.service import IServiceMaker\n"
    "print(sorted(p.tapname for p in getPlugins(IServiceMaker)))\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PluginTests(unittest.TestCase):
    def test_installed_environment(self):
        """twistd --help in this environment lists bluesync."""
        output = subprocess.run(TWISTD + ["--help"], capture_output=True, text=True, cwd="/", timeout=60).stdout
        self.assertIn("bluesync", output)
        self.assertIn("Exchange ActiveSync server", output)

    def test_regular_install(self):
        """A non-editable install ships twisted/plugins/bluesync_plugin.py where Twisted finds it."""
        target = tempfile.mkdtemp(prefix="bluesync-install-")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps",
             "--target", target, str(ROOT)],
            check=True, capture_output=True, timeout=300,
        )
        self.assertTrue((Path(target) / "twisted" / "plugins" / "bluesync_plugin.py").exists())
        self.assertFalse((Path(target) / "twisted" / "__init__.py").exists())
        self.assertTrue((Path(target) / "bluesync" / "store" / "migrations" / "001_accounts.sql").exists())
        env = dict(os.environ, PYTHONPATH=target)
        output = subprocess.run(
            [sys.executable, "-c", _DISCOVER], capture_output=True, text=True, cwd="/", env=env, timeout=60, check=True
        ).stdout
        self.assertIn("'bluesync'", output)


class QuickStartTests(unittest.TestCase):
    timeout = 120

    async def test_quick_start(self):
        """twistd -n bluesync on embedded defaults serves OPTIONS to an account made with bluesync-admin."""
        state = Path(tempfile.mkdtemp(prefix="bluesync-quick-"))
        port = free_port()
        config = state / "bluesync.ini"
        config.write_text(
            f"[server]\nlisten = tcp:{port}:interface=127.0.0.1\nstate_dir = {state}/var\n"
            "[mail]\nlmtp_listen = tcp:0:interface=127.0.0.1\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n"
        )
        env = dict(os.environ, BLUESYNC_CONFIG=str(config))
        log_path = state / "twistd.log"
        with open(log_path, "wb") as log_file:
            server = subprocess.Popen(
                TWISTD + ["-n", "--pidfile=", "bluesync"],
                cwd=state, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            )
        self.addCleanup(lambda: server.poll() is None and server.kill())
        deadline = time.monotonic() + 60
        while b"phones connect to" not in log_path.read_bytes():
            self.assertIsNone(server.poll(), log_path.read_text())
            self.assertLess(time.monotonic(), deadline, log_path.read_text())
            await _sleep(0.2)
        self.assertIn(f"http://127.0.0.1:{port}/Microsoft-Server-ActiveSync", log_path.read_text())

        added = subprocess.run(
            [sys.executable, "-m", "bluesync.admin.cli", "user", "add", "alice@example.org",
             "--name", "Alice Martin", "--password-stdin"],
            input="a long secret\n", capture_output=True, text=True, env=env, cwd=state, timeout=120,
        )
        self.assertEqual(added.returncode, 0, added.stderr)

        pool = HTTPConnectionPool(reactor, persistent=False)
        url = f"http://127.0.0.1:{port}/Microsoft-Server-ActiveSync"
        response = await treq.request("OPTIONS", url, auth=("alice@example.org", "a long secret"), pool=pool)
        self.assertEqual(response.code, 200)
        self.assertIn("16.1", response.headers.getRawHeaders("MS-ASProtocolVersions")[0])
        await response.content()

        server.send_signal(signal.SIGTERM)
        # twistd re-raises the signal it stopped for, as systemd expects.
        self.assertIn(await _wait(server), (0, -signal.SIGTERM))
        # The embedded cluster stopped with the server.
        self.assertFalse((state / "var" / "postgres" / "postmaster.pid").exists())

    async def test_bad_config(self):
        """A bad configuration stops twistd with one line naming the setting."""
        state = Path(tempfile.mkdtemp(prefix="bluesync-bad-"))
        config = state / "bluesync.ini"
        config.write_text("[server]\nlog_format = xml\n")
        result = subprocess.run(
            TWISTD + ["-n", "--pidfile=", "bluesync", "--config", str(config)],
            capture_output=True, text=True, cwd=state, timeout=60,
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("[server] log_format", result.stdout + result.stderr)
        self.assertNotIn("Traceback", result.stdout + result.stderr)


async def _sleep(seconds: float) -> None:
    from twisted.internet.task import deferLater

    await deferLater(reactor, seconds, lambda: None)


async def _wait(process, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("process did not exit")
        await _sleep(0.1)
    return process.returncode
