"""
What device management costs each request: DeviceStore.touch (the one
query every EAS POST makes, now also finding the access rule that decides
for the device) with 0, 10 and 100 access rules, and the access decision
itself (bluesync.devices.state.decide, pure Python).

    python bench/device_access.py                 # embedded PostgreSQL in a temp dir
    python bench/device_access.py --repeat 5000

Figures (p50 and p99 in milliseconds, or microseconds for decide) are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted.internet import defer, task  # noqa: E402

from bluesync.devices import state  # noqa: E402
from bluesync.store import migrations  # noqa: E402
from bluesync.store.database import connect  # noqa: E402
from bluesync.store.embedded import EmbeddedPostgres  # noqa: E402
from bluesync.store.rules import ACTIONS, FIELDS  # noqa: E402
from bluesync.store.store import Store  # noqa: E402


def percentiles(samples: list[float], scale: float) -> str:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return f"p50 {statistics.median(samples) * scale:7.3f}  p99 {p99 * scale:7.3f}"


async def run(reactor, repeat: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="bluesync-bench-devices-"))
    embedded = EmbeddedPostgres(directory)
    try:
        dsn = embedded.start()
        database = await connect(dsn, 2)
        await migrations.migrate(database)
        store = Store(database)
        account = await store.create_account("alice@example.org", "Alice", "x")
        for number in range(50):
            await store.devices.touch(account.id, f"DEVICE{number}", "iPhone", f"Apple/{number}", "16.1", "Sync")
        fields, actions = list(FIELDS.values()), list(ACTIONS.values())
        added = 0
        for rules in (0, 10, 100):
            while added < rules:
                await store.rules.add(fields[added % 4], f"NoSuchThing{added}*", actions[added % 3])
                added += 1
            samples = []
            for number in range(repeat):
                started = time.perf_counter()
                await store.devices.touch(account.id, f"DEVICE{number % 50}", "iPhone", f"Apple/{number % 50}",
                                          "16.1", "Sync")
                samples.append(time.perf_counter() - started)
            print(f"touch, {rules:3d} rules (ms):   {percentiles(samples, 1000)}")
        device = await store.devices.get(account.id, "DEVICE1")
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            state.decide(device, time.time())
            samples.append(time.perf_counter() - started)
        print(f"decide (µs):               {percentiles(samples, 1e6)}")
        database.close()
    finally:
        embedded.stop()
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(run(reactor, args.repeat)))


if __name__ == "__main__":
    main()
