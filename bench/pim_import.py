"""
Contact import and export benchmark (issue 7): `bluesync-admin import` of
a generated .vcf of N cards into a fresh account, then `export`, each run
as the administrator runs it (a separate process on the same database),
timed from the outside.

    python bench/pim_import.py                 # 5,000 cards, embedded PostgreSQL
    python bench/pim_import.py --cards 20000

The cards look like a phone's address book (name, organisation, two
phones, two e-mail addresses, an address, a birthday, a note).  Figures
are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bluesync.store.embedded import EmbeddedPostgres  # noqa: E402


def card(number: int) -> str:
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"N:Lastname{number};Firstname{number};;;\r\nFN:Firstname{number} Lastname{number}\r\n"
        f"ORG:Company {number % 97};Department {number % 7}\r\nTITLE:Engineer\r\n"
        f"EMAIL;TYPE=INTERNET;TYPE=pref:first{number}@example.org\r\n"
        f"EMAIL;TYPE=INTERNET;TYPE=HOME:private{number}@example.net\r\n"
        f"TEL;TYPE=CELL:+33 6 {number % 100:02d} {number % 1000:03d} {number:05d}\r\n"
        f"TEL;TYPE=WORK:+33 4 72 {number % 100:02d} {number:05d}\r\n"
        f"ADR;TYPE=HOME:;;{number} rue de la Paix;Lyon;;69001;France\r\n"
        f"BDAY:{1950 + number % 50}-{1 + number % 12:02d}-{1 + number % 28:02d}\r\n"
        f"NOTE:Met at the conference of {2000 + number % 25}.\r\n"
        f"UID:bench-{number}\r\nEND:VCARD\r\n"
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def admin(config: Path, *args: str, stdin: bytes = b"") -> tuple[str, subprocess.CompletedProcess]:
    """
    Run bluesync-admin; its wall time and the CPU time it and its worker
    processes used (PostgreSQL's is not counted), as text.
    """
    started, cpu = time.monotonic(), _cpu()
    result = subprocess.run([sys.executable, "-m", "bluesync.admin.cli", "--config", str(config), *args],
                            input=stdin, capture_output=True, cwd=ROOT)
    if result.returncode:
        raise SystemExit(f"bluesync-admin {' '.join(args)} failed: {result.stderr.decode()}")
    return f"{time.monotonic() - started:.2f} s wall, {_cpu() - cpu:.2f} s CPU", result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=5000)
    arguments = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bluesync-pim-bench-"))
    embedded = EmbeddedPostgres(directory)
    try:
        dsn = embedded.start()
        config = directory / "bluesync.ini"
        config.write_text(f"[database]\ndsn = {dsn}\npool_size = 2\n")
        vcf = directory / "contacts.vcf"
        vcf.write_text("".join(card(n) for n in range(arguments.cards)))
        admin(config, "user", "add", "bench@example.org", "--password-stdin", stdin=b"a long secret\n")
        baseline, _ = admin(config, "user", "list")
        print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, cards: {arguments.cards},"
              f" file: {vcf.stat().st_size / 1e6:.1f} MB")
        print(f"admin start-up (user list): {baseline}")
        elapsed, result = admin(config, "import", "bench@example.org", str(vcf))
        print(f"import: {elapsed}  ({result.stdout.decode().strip().splitlines()[-1]})")
        elapsed, result = admin(config, "import", "bench@example.org", str(vcf))
        print(f"import again (all replaced): {elapsed}")
        output = directory / "out.vcf"
        elapsed, result = admin(config, "export", "bench@example.org", "Contacts", "-o", str(output))
        print(f"export: {elapsed}  ({output.read_bytes().count(b'BEGIN:VCARD')} cards)")
    finally:
        embedded.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
