"""
CPU time per contact of the contacts converter on the cards of
bench/pim_import.py: reading a card, to_eas (what every Sync that sends a
contact and every imported card pays), from_eas (a device's Add) and
merge (a device's Change), in microseconds per card, the best of a few
runs of process CPU time (the machine may be shared). Not asserted
anywhere.

    /work/venv/bin/python bench/contacts_convert.py [--cards 500] [--repeat 7]

Runs against whichever bluesync is on the path first (this checkout), so
the same command measures an older checkout too (the "read" line needs
bluesync.items.vcard).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
sys.path.insert(0, os.path.dirname(__file__))

from pim_import import card  # noqa: E402

from bluesync.items import contacts  # noqa: E402


def per_card(work, items: list, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for item in items:
            work(item)
        best = min(best, time.process_time() - started)
    return best / len(items) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    arguments = parser.parse_args()
    cards = [card(n).encode() for n in range(arguments.cards)]
    served = [contacts.to_eas(c, "16.1") for c in cards]
    stored = [contacts.from_eas(data, "16.1")[0] for data in served]
    print(f"{len(cards)} cards of {sum(map(len, cards)) // len(cards)} bytes, best of {arguments.repeat}, "
          f"load average {os.getloadavg()[0]:.1f}")
    try:
        from bluesync.items import vcard
        print(f"read (vcard.parse_one):  {per_card(lambda c: vcard.parse_one(c.decode()), cards, arguments.repeat):6.0f} us")
    except ImportError:
        pass
    print(f"to_eas 16.1:             {per_card(lambda c: contacts.to_eas(c, '16.1'), cards, arguments.repeat):6.0f} us")
    print(f"columns:                 {per_card(contacts.columns, cards, arguments.repeat):6.0f} us")
    print(f"from_eas 16.1:           {per_card(lambda d: contacts.from_eas(d, '16.1'), served, arguments.repeat):6.0f} us")
    pairs = list(zip(cards, stored))
    print(f"merge:                   {per_card(lambda p: contacts.merge(*p), pairs, arguments.repeat):6.0f} us")


if __name__ == "__main__":
    main()
