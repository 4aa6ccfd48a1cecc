from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from bluesync.config import ConfigError, load_config, parse_config


class ConfigTests(SynchronousTestCase):
    def test_defaults(self):
        """An empty file gives loopback HTTP, an embedded database and ./var."""
        config = parse_config("", base=Path("/srv/x"))
        self.assertEqual(config.server.listen, ("tcp:8080:interface=127.0.0.1",))
        self.assertTrue(config.database.embedded)
        self.assertEqual(config.server.state_dir, Path("/srv/x/var"))
        self.assertEqual(config.mail.lmtp_listen, ("tcp:2424:interface=127.0.0.1",))
        self.assertEqual((config.push.min_heartbeat, config.push.max_heartbeat), (60, 3540))

    def test_values(self):
        """Settings are parsed into their types; listen takes several endpoints."""
        config = parse_config(
            "[server]\nlisten =\n  tcp:80\n  ssl:443:privateKey=k.pem:certKey=c.pem\n"
            "log_format = JSON\n[database]\ndsn = host=db dbname=x\npool_size = 4\n"
            "[policy]\npassword_required = yes\nunknown_device = quarantine\n"
        )
        self.assertEqual(config.server.listen, ("tcp:80", "ssl:443:privateKey=k.pem:certKey=c.pem"))
        self.assertEqual(config.server.log_format, "json")
        self.assertFalse(config.database.embedded)
        self.assertEqual(config.database.pool_size, 4)
        self.assertIs(config.policy.password_required, True)
        self.assertEqual(config.policy.unknown_device, "quarantine")
        self.assertEqual(parse_config("[server]\ndefault_timezone = Europe/Paris\n").server.default_timezone,
                         "Europe/Paris")
        self.assertEqual(parse_config("").server.default_timezone, "UTC")

    def test_unknown_setting(self):
        """A misspelt setting is an error naming it, not a silent default."""
        error = self.assertRaises(ConfigError, parse_config, "[server]\nlistn = tcp:1\n", "f.ini")
        self.assertEqual(str(error), "f.ini: [server] listn: unknown setting")

    def test_unknown_section(self):
        """An unknown section is refused."""
        error = self.assertRaises(ConfigError, parse_config, "[serve]\n", "f.ini")
        self.assertIn("unknown section [serve]", str(error))

    def test_bad_values(self):
        """Each bad value names its section and setting."""
        cases = {
            "[database]\npool_size = many\n": "[database] pool_size",
            "[policy]\npassword_required = perhaps\n": "[policy] password_required",
            "[server]\nlog_format = xml\n": "[server] log_format",
            "[server]\nlisten = 8080\n": "[server] listen",
            "[push]\nmin_heartbeat = 100\nmax_heartbeat = 50\n": "[push] min_heartbeat",
            "[sync]\nmax_window_size = 1000\n": "[sync] max_window_size",
            "[server]\ndefault_timezone = Mars/Olympus\n": "[server] default_timezone",
        }
        for text, expected in cases.items():
            error = self.assertRaises(ConfigError, parse_config, text, "f.ini")
            self.assertIn(expected, str(error))

    def test_syntax_error(self):
        """A file that is not INI gives one line, not a traceback."""
        error = self.assertRaises(ConfigError, parse_config, "listen = x\n", "f.ini")
        self.assertTrue(str(error).startswith("f.ini: "))
        self.assertNotIn("\n", str(error))

    def test_missing_file(self):
        """A missing file is named in the error."""
        error = self.assertRaises(ConfigError, load_config, "/nonexistent/bluesync.ini")
        self.assertIn("/nonexistent/bluesync.ini", str(error))

    def test_sample_file(self):
        """The documented sample parses and its values are the defaults."""
        sample = Path(__file__).parent.parent / "etc" / "bluesync.ini"
        config = load_config(sample)
        defaults = parse_config("")
        self.assertEqual(config, defaults)
