"""
bluesync-admin wbxml decode / encode, driven through argparse as the main
CLI will drive them.
"""

import argparse
import io
import os
import sys

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from bluesync.admin import wbxml_cmd
from bluesync.wbxml import decode
from tests.wbxml.helpers import canonical, data_path, parse_xml, read_data


class _Stdio:
    """A text stream with a .buffer, as sys.stdin/stdout have."""

    def __init__(self, data=b""):
        self.buffer = io.BytesIO(data)

    def write(self, text):
        self.buffer.write(text.encode("utf-8"))

    def flush(self):
        pass

    def value(self):
        return self.buffer.getvalue()


class WBXMLCommandTests(SynchronousTestCase):
    """The wbxml command registered on a throwaway parser."""

    def setUp(self):
        self.stdout = _Stdio()
        self.stderr = io.StringIO()
        self.patch(sys, "stdout", self.stdout)
        self.patch(sys, "stderr", self.stderr)

    def run_command(self, *argv, stdin=b""):
        """Parse C{argv} as bluesync-admin would, run it, return status."""
        self.patch(sys, "stdin", _Stdio(stdin))
        parser = argparse.ArgumentParser(prog="bluesync-admin")
        wbxml_cmd.register(parser.add_subparsers())
        args = parser.parse_args(["wbxml", *argv])
        return args.run(args)

    def assertOneErrorLine(self, fragment):
        """stderr holds exactly one line, mentioning C{fragment}."""
        lines = self.stderr.getvalue().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(fragment, lines[0])
        self.assertIn("error", lines[0])

    def test_decode_file(self):
        """decode prints indented, prefixed XML of a sample request."""
        status = self.run_command("decode", data_path("sync_request.wbxml"))
        self.assertEqual(status, 0)
        output = self.stdout.value()
        self.assertIn(b"<airsync:Sync", output)
        self.assertIn(b'xmlns:airsyncbase="AirSyncBase:"', output)
        self.assertIn(b"\n      <airsync:SyncKey>1632113337</airsync:SyncKey>",
                      output)
        self.assertEqual(canonical(decode(read_data("sync_request.wbxml"))),
                         canonical(parse_xml("sync_request.xml")))
        self.assertEqual(canonical(etree.fromstring(output)),
                         canonical(parse_xml("sync_request.xml")))

    def test_decode_hex_stdin(self):
        """decode --hex reads spaced, multi-line hex from stdin."""
        status = self.run_command("decode", "--hex", "-",
                                  stdin=read_data("spec_sync_contact.hex"))
        self.assertEqual(status, 0)
        self.assertIn(b"<contacts:FileAs>Funk, Don</contacts:FileAs>",
                      self.stdout.value())

    def test_encode_file(self):
        """encode writes the WBXML of an XML file to -o."""
        output = self.mktemp()
        status = self.run_command("encode", data_path("sync_request.xml"),
                                  "-o", output)
        self.assertEqual(status, 0)
        with open(output, "rb") as f:
            self.assertEqual(f.read(), read_data("sync_request.wbxml"))
        self.assertEqual(self.stdout.value(), b"")

    def test_encode_stdin_stdout(self):
        """encode - writes binary WBXML to stdout."""
        status = self.run_command(
            "encode", "-", stdin=read_data("foldersync_request.xml"))
        self.assertEqual(status, 0)
        self.assertEqual(self.stdout.value(),
                         read_data("foldersync_request.wbxml"))

    def test_encode_hex(self):
        """encode --hex prints spaced hex, sixteen bytes a line."""
        status = self.run_command("encode", "--hex",
                                  data_path("spec_sync_contact.xml"))
        self.assertEqual(status, 0)
        lines = self.stdout.value().decode("ascii").splitlines()
        self.assertEqual(lines[0], "03 01 6A 00 45 5C 4F 50 03 43 6F 6E 74 61"
                                   " 63 74")
        self.assertEqual(len(lines), 7)
        self.assertEqual(bytes.fromhex(" ".join(lines)),
                         bytes.fromhex(read_data("spec_sync_contact.hex")
                                       .decode("ascii")))

    def test_hex_round_trip(self):
        """encode --hex output is accepted by decode --hex."""
        self.run_command("encode", "--hex", data_path("sync_request.xml"))
        hex_text = self.stdout.value()
        self.stdout.buffer.seek(0)
        self.stdout.buffer.truncate()
        self.assertEqual(self.run_command("decode", "--hex", "-",
                                          stdin=hex_text), 0)
        self.assertIn(b"<email:Read>1</email:Read>", self.stdout.value())

    def test_bad_wbxml(self):
        """A file that is not WBXML: one line on stderr, status 2."""
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b"\x03\x01\x6a\x00\x45\x11\x01")
        self.assertEqual(self.run_command("decode", path), 2)
        self.assertOneErrorLine("unknown tag token 0x11 on code page 0"
                                " (AirSync) (at byte 5)")
        self.assertEqual(self.stdout.value(), b"")

    def test_bad_hex(self):
        """Hex input that is not hex."""
        self.assertEqual(self.run_command("decode", "--hex", "-",
                                          stdin=b"03 01 zz"), 2)
        self.assertOneErrorLine("not hex")

    def test_missing_file(self):
        """A file that does not exist."""
        missing = os.path.join(self.mktemp(), "nope.wbxml")
        self.assertEqual(self.run_command("decode", missing), 2)
        self.assertOneErrorLine("cannot read")

    def test_bad_xml(self):
        """XML that is not well-formed, or not ActiveSync."""
        self.assertEqual(self.run_command("encode", "-", stdin=b"<Sync"), 2)
        self.assertOneErrorLine("not well-formed")
        self.stderr.seek(0)
        self.stderr.truncate()
        self.assertEqual(self.run_command(
            "encode", "-", stdin=b'<Sync xmlns="AirSync:" a="1"/>'), 2)
        self.assertOneErrorLine("attributes")

    def test_unwritable_output(self):
        """An output path that cannot be written."""
        target = os.path.join(self.mktemp(), "missing-dir", "out.wbxml")
        self.assertEqual(self.run_command(
            "encode", data_path("foldersync_request.xml"), "-o", target), 2)
        self.assertOneErrorLine("cannot write")

    def test_no_subcommand(self):
        """wbxml alone prints usage and returns 2."""
        self.assertEqual(self.run_command(), 2)
        self.assertIn("decode or encode", self.stderr.getvalue())
