"""
A long fuzz run of the WBXML decoder: every input must decode or raise
WBXMLError; anything else is a bug.

    /work/venv/bin/python bench/fuzz_wbxml.py [--engine random|atheris]
        [--cases 1000000] [--seconds 300] [--seed N]

random (default, no extra package): structure-aware mutation of valid
documents (the spec example, a Sync request, documents of random real
tokens) plus token streams built from WBXML's global tokens; seeded, so a
finding can be replayed with --seed.

atheris (pip package "atheris"): coverage-guided libFuzzer over the same
decoder, seeded with the same documents; stops after --cases runs or
--seconds.

Both stop by themselves and print how many cases ran, how many decoded,
how many were refused with WBXMLError, and every other exception (type,
message, input in hex).  A successful decode is also re-encoded and
decoded again, which must give the same tree.  The exit status is 1 if
any other exception was found.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from lxml import etree  # noqa: E402

from bluesync.wbxml import (  # noqa: E402
    CODE_PAGES,
    Limits,
    WBXMLError,
    decode,
    encode,
    set_opaque,
)

HEADER = b"\x03\x01\x6a\x00"
#: Small limits so that the limit checks themselves get exercised.
LIMITS = Limits(max_depth=16, max_elements=500, max_bytes=4096)
TAGS = [tag for page in CODE_PAGES.values() for tag in page.tags
        if not tag.alias]


def _shape(element):
    """Tag, text and children: what must survive re-encoding."""
    return (element.tag, element.text, [_shape(child) for child in element])


class Tally:
    """Counts of outcomes, and the unexpected exceptions themselves."""

    def __init__(self):
        self.cases = self.decoded = self.refused = 0
        self.findings: list[tuple[str, bytes]] = []

    def run(self, data: bytes) -> None:
        self.cases += 1
        try:
            root = decode(data, limits=LIMITS)
            again = decode(encode(root), limits=LIMITS)
            if _shape(again) != _shape(root):
                raise AssertionError("re-encoding changed the tree")
            self.decoded += 1
        except WBXMLError:
            self.refused += 1
        except Exception:
            if len(self.findings) < 20:
                self.findings.append((traceback.format_exc(limit=3), data))

    def report(self, engine: str, seconds: float) -> int:
        print("engine %s: %d cases in %.1f s (%.0f/s): %d decoded, %d"
              " refused with WBXMLError, %d other exceptions"
              % (engine, self.cases, seconds, self.cases / max(seconds, 1e-9),
                 self.decoded, self.refused, len(self.findings)))
        for trace, data in self.findings:
            print("--- input %s" % (data.hex(" "),))
            print(trace)
        return 1 if self.findings else 0


def random_tree(rng: random.Random, depth: int = 0):
    """A small tree of real tokens from any page."""
    tag = rng.choice(TAGS)
    element = etree.Element(tag.qualified_name)
    roll = rng.random()
    if depth < 5 and roll < 0.4:
        for _ in range(rng.randint(1, 4)):
            element.append(random_tree(rng, depth + 1))
    elif roll < 0.8:
        if tag.opaque:
            set_opaque(element, rng.randbytes(rng.randint(1, 20)))
        else:
            element.text = rng.choice(["1", "Zoë", "a&b<c>", "日本", "📈",
                                       "x" * rng.randint(1, 40)])
    return element


def seeds(rng: random.Random) -> list[bytes]:
    """Valid documents to mutate."""
    here = os.path.dirname(os.path.abspath(__file__))
    data_dir = os.path.join(here, os.pardir, "tests", "wbxml", "data")
    found = []
    for name in ("sync_request.wbxml", "foldersync_request.wbxml"):
        with open(os.path.join(data_dir, name), "rb") as f:
            found.append(f.read())
    with open(os.path.join(data_dir, "spec_sync_contact.hex")) as f:
        found.append(bytes.fromhex(f.read()))
    found.extend(encode(random_tree(rng)) for _ in range(60))
    return [doc for doc in found if len(doc) <= LIMITS.max_bytes]


INTERESTING = [0x00, 0x01, 0x02, 0x03, 0x04, 0x40, 0x43, 0x44, 0x80, 0x83,
               0x84, 0xC0, 0xC3, 0xC4, 0x05, 0x45, 0x85, 0xC5, 0x3F, 0x7F,
               0xFF, 0x19, 0x1A, 0xED, 0xF0, 0xC0, 0x80]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """A few random edits of a document, most often just one."""
    buf = bytearray(data)
    for _ in range(min(6, 1 + int(rng.expovariate(1.5)))):
        kind = rng.randrange(8)
        at = rng.randint(0, len(buf))
        if kind == 0 and buf:
            buf[at % len(buf)] ^= 1 << rng.randrange(8)
        elif kind == 1 and buf:
            buf[at % len(buf)] = rng.choice(INTERESTING)
        elif kind == 2:
            buf[at:at] = bytes([rng.choice(INTERESTING)])
        elif kind == 3:
            del buf[at:at + rng.randint(1, 8)]
        elif kind == 4:
            del buf[at:]
        elif kind == 5:
            buf[at:at] = rng.randbytes(rng.randint(1, 8))
        elif kind == 6 and len(buf) > 8:
            start = rng.randrange(len(buf) - 4)
            piece = buf[start:start + rng.randint(1, 16)]
            buf[at:at] = piece * rng.randint(1, 40)
        elif kind == 7:
            buf[at:at] = bytes([0xC3]) + bytes(
                [rng.choice([0x00, 0x05, 0x7F, 0x81, 0xFF])]
                * rng.randint(1, 6))
    return bytes(buf)


def token_soup(rng: random.Random) -> bytes:
    """A valid header then random tokens, biased towards WBXML's own."""
    body = bytearray()
    for _ in range(rng.randint(0, 40)):
        roll = rng.random()
        if roll < 0.3:
            body.append(rng.choice(INTERESTING))
        elif roll < 0.5:
            body += b"\x03" + rng.randbytes(rng.randint(0, 6)) + b"\x00"
        elif roll < 0.6:
            body += bytes([0x00, rng.randint(0, 30)])
        else:
            body.append(rng.randrange(256))
    return HEADER + bytes(body)


def run_random(args) -> int:
    rng = random.Random(args.seed)
    corpus = seeds(rng)
    tally = Tally()
    start = time.monotonic()
    deadline = start + args.seconds
    while tally.cases < args.cases:
        if tally.cases % 1000 == 0 and time.monotonic() > deadline:
            break
        if rng.random() < 0.8:
            tally.run(mutate(rng, rng.choice(corpus)))
        else:
            tally.run(token_soup(rng))
    return tally.report("random (seed %d)" % (args.seed,),
                        time.monotonic() - start)


def run_atheris(args) -> int:
    try:
        import atheris
    except ImportError:
        print("atheris is not installed (pip install atheris)",
              file=sys.stderr)
        return 2
    import tempfile

    # Coverage feedback needs the decoder's bytecode instrumented.
    atheris.instrument_all()
    tally = Tally()
    corpus_dir = tempfile.mkdtemp(prefix="wbxml-fuzz-")
    for i, doc in enumerate(seeds(random.Random(args.seed))):
        with open(os.path.join(corpus_dir, "seed%03d" % (i,)), "wb") as f:
            f.write(doc)
    start = time.monotonic()
    deadline = start + args.seconds

    def one_input(data: bytes) -> None:
        tally.run(data)
        # libFuzzer leaves with exit(), which skips Python's atexit: stop
        # here, on our own bounds, and report first.
        finished = tally.cases >= args.cases
        if not finished and tally.cases % 1000 == 0:
            finished = time.monotonic() > deadline
        if finished:
            status = tally.report("atheris", time.monotonic() - start)
            sys.stdout.flush()
            os._exit(status)

    atheris.Setup([sys.argv[0], "-runs=%d" % (args.cases + 10_000,),
                   "-max_total_time=%d" % (args.seconds + 60,),
                   "-max_len=%d" % (LIMITS.max_bytes,),
                   "-seed=%d" % (args.seed or 1,), corpus_dir], one_input)
    atheris.Fuzz()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--engine", choices=("random", "atheris"),
                        default="random")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.engine == "atheris":
        return run_atheris(args)
    return run_random(args)


if __name__ == "__main__":
    sys.exit(main())
