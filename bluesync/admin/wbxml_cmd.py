"""
C{bluesync-admin wbxml}: look inside captured ActiveSync bodies, or build
one by hand, when diagnosing a device.

    wbxml decode FILE [--hex]            WBXML -> indented XML on stdout
    wbxml encode FILE.xml [-o OUT] [--hex]   XML -> WBXML (stdout by default)

C{-} names stdin or stdout.  With C{--hex}, decode reads hex text (any
whitespace allowed, as copied from a packet dump or a specification) and
encode writes spaced hex, sixteen bytes a line.  XML given to encode may be
indented and may use either namespace spelling, "AirSync:" or "AirSync".

The main CLI calls L{register} and then C{args.run(args)}; each command is
a plain function returning the exit status: 0, or 2 after one line on
stderr.
"""

from __future__ import annotations

import argparse
import sys

from lxml import etree

from bluesync.wbxml import WBXMLError, decode, encode

__all__ = ["register"]


class _Failure(Exception):
    """A problem to report on one line of stderr, exiting with status 2."""


def register(subparsers) -> argparse.ArgumentParser:
    """Add the C{wbxml} command and its sub-commands to C{subparsers}."""
    parser = subparsers.add_parser(
        "wbxml", help="decode or encode ActiveSync WBXML",
        description="Decode or encode ActiveSync WBXML (MS-ASWBXML).")
    parser.set_defaults(run=_usage(parser))
    commands = parser.add_subparsers(metavar="COMMAND")

    decoder = commands.add_parser(
        "decode", help="print a WBXML document as indented XML",
        description="Print a WBXML document as indented XML.")
    decoder.add_argument("file", metavar="FILE",
                         help="WBXML input, - for stdin")
    decoder.add_argument("--hex", action="store_true",
                         help="the input is hex text (whitespace allowed)")
    decoder.set_defaults(run=run_decode)

    encoder = commands.add_parser(
        "encode", help="encode an XML document as WBXML",
        description="Encode an XML document as WBXML.")
    encoder.add_argument("file", metavar="FILE.xml",
                         help="XML input, - for stdin")
    encoder.add_argument("-o", "--output", metavar="OUT", default="-",
                         help="where to write the WBXML (default: stdout)")
    encoder.add_argument("--hex", action="store_true",
                         help="write hex text instead of binary")
    encoder.set_defaults(run=run_encode)
    return parser


def _usage(parser):
    """The C{run} of a bare C{wbxml}: say what is missing, status 2."""
    def run(args) -> int:
        parser.print_usage(sys.stderr)
        print("%s: error: a command is required (decode or encode)"
              % (parser.prog,), file=sys.stderr)
        return 2
    return run


def _fail(command: str, error: BaseException | str) -> int:
    message = " ".join(str(error).split())
    print("bluesync-admin wbxml %s: error: %s" % (command, message),
          file=sys.stderr)
    return 2


def _read(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise _Failure("cannot read %s: %s" % (path, e.strerror or e))


def _write(path: str, data: bytes) -> None:
    try:
        if path == "-":
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            with open(path, "wb") as f:
                f.write(data)
    except OSError as e:
        raise _Failure("cannot write %s: %s" % (path, e.strerror or e))


def _from_hex(text: bytes) -> bytes:
    try:
        return bytes.fromhex("".join(text.decode("ascii").split()))
    except (UnicodeDecodeError, ValueError):
        raise _Failure("input is not hex text (pairs of 0-9 A-F, whitespace"
                       " allowed)")


def _to_hex(data: bytes) -> bytes:
    lines = (data[i:i + 16].hex(" ").upper()
             for i in range(0, len(data), 16))
    return ("\n".join(lines) + "\n").encode("ascii")


def run_decode(args) -> int:
    """Decode WBXML from C{args.file} and print it as indented XML."""
    try:
        data = _read(args.file)
        if args.hex:
            data = _from_hex(data)
        root = decode(data)
        xml = etree.tostring(root, pretty_print=True, encoding="utf-8",
                             xml_declaration=True)
        _write("-", xml)
    except (_Failure, WBXMLError) as e:
        return _fail("decode", e)
    return 0


def run_encode(args) -> int:
    """Encode the XML in C{args.file} as WBXML into C{args.output}."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True,
                             remove_comments=True, remove_pis=True,
                             huge_tree=False)
    try:
        try:
            root = etree.fromstring(_read(args.file), parser)
        except etree.XMLSyntaxError as e:
            raise _Failure("%s is not well-formed XML: %s" % (args.file, e))
        data = encode(root)
        _write(args.output, _to_hex(data) if args.hex else data)
    except (_Failure, WBXMLError) as e:
        return _fail("encode", e)
    return 0
