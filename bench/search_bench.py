"""
Mailbox search benchmark (issue 6): one account with 100,000 messages in
several languages, then the searches a phone makes, timed.

    python bench/search_bench.py                   # 100,000 messages, embedded PostgreSQL
    python bench/search_bench.py --messages 20000 --repeat 50

Messages are generated as MIME, turned into items by the delivery path
(bluesync.mail.delivery.new_email_item, in worker processes) and written
through ItemStore.insert in batches, so the index holds exactly what LMTP
delivery would give it.  The database is then vacuumed and analysed, as
autovacuum would have done on a live server.

Two sets of figures, p50 and p99 in milliseconds:

- store: SearchStore.mailbox (one page of ids and the total), the SQL part;
- command: the Search command over HTTP on a loopback port against the
  real Site (parsing, SQL, rendering ten results with a 512-byte plain-text
  body preview, WBXML both ways).

Everything runs in a temporary directory that is removed at the end, unless
--state-dir names one to keep: a later run with the same directory reuses
the messages already loaded.  Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twisted.internet import defer, reactor, task  # noqa: E402

from bluesync.mail.delivery import new_email_item  # noqa: E402
from bluesync.passwords import hash_password  # noqa: E402
from bluesync.store import migrations  # noqa: E402
from bluesync.store.database import connect  # noqa: E402
from bluesync.store.embedded import EmbeddedPostgres  # noqa: E402
from bluesync.store.folders import INBOX, SENT_ITEMS, USER_MAIL  # noqa: E402
from bluesync.store.search import MailboxQuery  # noqa: E402
from bluesync.store.store import Store  # noqa: E402

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)

# Common words per language, most frequent first (the sampling is Zipf-like
# over this order), plus a long tail of names and codes shared by all.
LANGUAGES = {
    "en": ("the to and of a in for is on that with you this be it are from at as your have we will can "
           "please meeting report budget project review team update thanks regards attached schedule "
           "invoice customer contract proposal deadline release planning design draft travel lunch "
           "quarterly sales marketing office holiday training agenda minutes follow question answer "
           "approval order delivery payment account password security server network backup").split(),
    "fr": ("le la les de des du et en un une pour est dans que qui sur avec pas vous nous ce au "
           "réunion rapport budget projet équipe mise jour merci cordialement ci-joint calendrier "
           "facture client contrat proposition échéance livraison conception brouillon déplacement "
           "déjeuner trimestriel ventes bureau congés formation ordre du jour compte-rendu question "
           "réponse validation commande paiement sécurité serveur réseau sauvegarde élève été déjà").split(),
    "de": ("der die das und zu den von mit ist im für auf nicht ein eine sie wir es dem des "
           "Besprechung Bericht Budget Projekt Team Aktualisierung danke Grüße Anhang Termin Rechnung "
           "Kunde Vertrag Angebot Frist Veröffentlichung Planung Entwurf Reise Mittagessen Quartal "
           "Vertrieb Büro Urlaub Schulung Tagesordnung Protokoll Frage Antwort Freigabe Bestellung "
           "Lieferung Zahlung Konto Passwort Sicherheit Server Netzwerk Sicherung Straße Größe").split(),
    "es": ("el la de que y en los se del las un por con no una su para es al lo "
           "reunión informe presupuesto proyecto equipo actualización gracias saludos adjunto agenda "
           "factura cliente contrato propuesta plazo lanzamiento planificación diseño borrador viaje "
           "almuerzo trimestral ventas oficina vacaciones formación acta pregunta respuesta aprobación "
           "pedido entrega pago cuenta contraseña seguridad servidor red copia año mañana").split(),
    "ru": ("и в не на я что с по это как а он к из у за от то мы вы "
           "встреча отчёт бюджет проект команда обновление спасибо приложение расписание счёт клиент "
           "договор предложение срок выпуск планирование дизайн черновик поездка обед квартал продажи "
           "офис отпуск обучение повестка протокол вопрос ответ согласование заказ доставка оплата "
           "аккаунт пароль безопасность сервер сеть резервная копия").split(),
}
LANGUAGE_WEIGHTS = {"en": 50, "fr": 15, "de": 15, "es": 10, "ru": 10}
FIRST = ("Alice Bob Carol David Emma François Gabriel Hélène Igor Julia Karl Léa Marco Nadia Olga Pablo "
         "Quentin Rosa Stefan Tatiana Ugo Vera William Xavier Yasmin Zoé Ahmed Björn Chloé Dmitri").split()
LAST = ("Martin Dupont Müller Schmidt García López Ivanov Smirnov Rossi Bianchi Smith Jones Brown Dubois "
        "Lefèvre Weber Fischer Fernández Petrov Novak Kowalski Jensen Nielsen Silva Costa Moreau").split()


def zipf_weights(count: int) -> list[float]:
    return [1.0 / (rank + 1) for rank in range(count)]


def tail_words(count: int, rng: random.Random) -> list[str]:
    """Invented words for the long tail (names, codes, rare terms)."""
    syllables = "ka lo mi ne su ta ri po de va xo zu be ga hi ju fe qu wy el an or is um".split()
    words = set()
    while len(words) < count:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.tail = tail_words(20000, random.Random(7))
        self.tail_weights = list(itertools.accumulate(zipf_weights(len(self.tail))))
        self.weights = {language: list(itertools.accumulate(zipf_weights(len(words))))
                        for language, words in LANGUAGES.items()}
        self.people = [(f"{first} {last}", f"{first.lower()}.{last.lower()}@example{n % 7}.com")
                       for n, (first, last) in enumerate((f, la) for f in FIRST for la in LAST)]

    def text(self, language: str, count: int) -> str:
        vocabulary = LANGUAGES[language]
        words = []
        for _ in range(count):
            if self.rng.random() < 0.06:
                words.append(self.rng.choices(self.tail, cum_weights=self.tail_weights)[0])
            else:
                words.append(self.rng.choices(vocabulary, cum_weights=self.weights[language])[0])
        return " ".join(words)

    def message(self, number: int) -> tuple[bytes, datetime]:
        rng = self.rng
        language = rng.choices(list(LANGUAGE_WEIGHTS), list(LANGUAGE_WEIGHTS.values()))[0]
        subject = self.text(language, rng.randint(3, 9)).capitalize()
        paragraphs = [self.text(language, rng.randint(15, 60)).capitalize() + "." for _ in range(rng.randint(1, 6))]
        name, address = rng.choice(self.people)
        received = NOW - timedelta(seconds=rng.randint(0, 3 * 365 * 86400))
        body = "\r\n\r\n".join(paragraphs)
        head = (
            f"From: {name} <{address}>\r\nTo: Alice Martin <alice@example.org>\r\n"
            f"Subject: {subject}\r\nDate: {received:%a, %d %b %Y %H:%M:%S +0000}\r\n"
            f"Message-ID: <search{number}@example.net>\r\nMIME-Version: 1.0\r\n"
        )
        if rng.random() < 0.3:
            html = "".join(f"<p>{p}</p>" for p in paragraphs)
            boundary = f"b{number:08d}"
            raw = (
                f"{head}Content-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n"
                f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
                f"{body}\r\n--{boundary}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Transfer-Encoding: 8bit\r\n\r\n<html><body>{html}</body></html>\r\n--{boundary}--\r\n"
            )
        else:
            raw = f"{head}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
        return raw.encode("utf-8"), received


def make_items(args: tuple[int, int, int]):
    """Worker: messages start..end as (NewItem, folder slot)."""
    start, end, seed = args
    generator = Generator(seed)
    out = []
    for number in range(start, end):
        raw, received = generator.message(number)
        slot = generator.rng.choices((0, 1, 2), (70, 20, 10))[0]
        out.append((new_email_item(raw, received), slot))
    return out


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return statistics.median(ordered), p99


async def load(store: Store, account, folders, first: int, count: int, workers: int) -> float:
    started = time.perf_counter()
    chunk = 1000
    jobs = [(start, min(start + chunk, count), start + 1) for start in range(first, count, chunk)]
    loaded = 0
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(make_items, job) for job in jobs]
        for future in futures:
            batch = await _wait_future(future)

            async def work(transaction, batch=batch):
                for item, slot in batch:
                    await store.items.insert(transaction, account.id, folders[slot].id, item)

            await store.database.transaction(work)
            loaded += len(batch)
            if loaded % 10000 == 0:
                print(f"  {loaded} messages stored ({time.perf_counter() - started:.0f} s)", flush=True)
    return time.perf_counter() - started


async def _wait_future(future):
    """A concurrent.futures result, without blocking the reactor."""
    while not future.done():
        await task.deferLater(reactor, 0.05, lambda: None)
    return future.result()


async def time_store(store: Store, account_id: int, name: str, query: MailboxQuery, offset: int,
                     repeat: int) -> None:
    samples = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = await store.search.mailbox(account_id, query, offset, 10)
        samples.append((time.perf_counter() - started) * 1000)
    p50, p99 = percentiles(samples)
    estimated = " (estimate)" if result.total_estimated else ""
    print(f"  {name:<38} p50 {p50:7.2f}  p99 {p99:7.2f}   total {result.total}{estimated}")


def search_xml(free_text: str, extra_query: str = "", range_: str = "0-9") -> str:
    return (
        '<Search xmlns="Search:" xmlns:airsync="AirSync:" xmlns:airsyncbase="AirSyncBase:" xmlns:email="Email:">'
        f"<Store><Name>Mailbox</Name><Query><And><airsync:Class>Email</airsync:Class>{extra_query}"
        f"<FreeText>{free_text}</FreeText></And></Query><Options><Range>{range_}</Range><RebuildResults/>"
        "<DeepTraversal/><airsyncbase:BodyPreference><airsyncbase:Type>1</airsyncbase:Type>"
        "<airsyncbase:TruncationSize>512</airsyncbase:TruncationSize></airsyncbase:BodyPreference>"
        "</Options></Store></Search>"
    )


async def time_command(client, name: str, document: str, repeat: int) -> None:
    from tests.eas.client import text

    samples = []
    answer = None
    for _ in range(repeat):
        started = time.perf_counter()
        answer = await client.post("Search", document)
        samples.append((time.perf_counter() - started) * 1000)
    p50, p99 = percentiles(samples)
    total = text(answer.document, "//search:Total") if answer.document is not None else None
    print(f"  {name:<38} p50 {p50:7.2f}  p99 {p99:7.2f}   total {total}")


async def main(args) -> None:
    directory = Path(args.state_dir) if args.state_dir else Path(tempfile.mkdtemp(prefix="bluesync-search-bench-"))
    embedded = EmbeddedPostgres(directory)
    try:
        dsn = embedded.start()
        database = await connect(dsn, 4)
        try:
            await run(args, database)
        finally:
            database.close()
    finally:
        embedded.stop()
        if not args.state_dir:
            shutil.rmtree(directory, ignore_errors=True)


async def run(args, database) -> None:
    await migrations.migrate(database)
    store = Store(database)
    account = await store.accounts.by_address("alice@example.org")
    if account is None:
        account = await store.create_account("alice@example.org", "Alice Martin", hash_password("bench password"))
        inbox = await store.folders.by_type(account.id, INBOX)
        await store.folders.create(account.id, inbox.id, "Archive", USER_MAIL)
        for number in range(20):
            await store.create_account(f"colleague{number}@example.org", f"Colleague {number}", "x")
    inbox = await store.folders.by_type(account.id, INBOX)
    sent = await store.folders.by_type(account.id, SENT_ITEMS)
    archive = next(f for f in await store.folders.list(account.id) if f.name == "Archive")
    (stored,) = await database.query_one("SELECT count(*) FROM items WHERE account_id = %s", (account.id,))
    if stored < args.messages:
        print(f"loading {args.messages - stored} messages ({args.workers} worker processes)...", flush=True)
        seconds = await load(store, account, (inbox, archive, sent), stored, args.messages, args.workers)
        print(f"loaded in {seconds:.0f} s ({(args.messages - stored) / seconds:.0f} messages/s)")
        await database.execute("VACUUM ANALYZE items")
    else:
        print(f"reusing the {stored} messages of {args.state_dir}")
    row = await database.query_one(
        "SELECT pg_size_pretty(pg_relation_size('items')), pg_size_pretty(pg_relation_size('items_search')),"
        " pg_size_pretty(pg_total_relation_size('items'))"
    )
    print(f"items heap {row[0]}, search index {row[1]}, items total with TOAST and indexes {row[2]}")

    recent = NOW - timedelta(days=30)
    tail = tail_words(20000, random.Random(7))
    rare, uncommon = tail[5000], tail[50]
    cases = [
        ("one common word: meeting", MailboxQuery("meeting"), 0),
        ("one word, another language: réunion", MailboxQuery("reunion"), 0),
        (f"one uncommon word: {uncommon}", MailboxQuery(uncommon), 0),
        (f"one rare word: {rare}", MailboxQuery(rare), 0),
        ("two words: budget report", MailboxQuery("budget report"), 0),
        ("two words, French: projet réunion", MailboxQuery("projet réunion"), 0),
        ("typing, 2 letters: bu", MailboxQuery("bu"), 0),
        ("typing, 3 letters: bud", MailboxQuery("bud"), 0),
        ("typing, 5 letters: budge", MailboxQuery("budge"), 0),
        ("typing, second word: budget re", MailboxQuery("budget re"), 0),
        ("sender name: Hélène", MailboxQuery("helene"), 0),
        ("folder only (Archive): invoice", MailboxQuery("invoice", folder_ids=(archive.id,)), 0),
        ("folder + subfolders (Inbox): invoice", MailboxQuery("invoice", folder_ids=(inbox.id,), deep=True), 0),
        ("last 30 days: invoice", MailboxQuery("invoice", received_after=recent), 0),
        ("last 30 days, no words", MailboxQuery(None, received_after=recent), 0),
        ("page 10 (90-99): meeting", MailboxQuery("meeting"), 90),
        (f"page 10 (90-99): {uncommon}", MailboxQuery(uncommon), 90),
        ("no match", MailboxQuery("zzzzzz"), 0),
    ]
    print(f"\nstore: SearchStore.mailbox, 10 per page, {args.repeat} runs each (ms)")
    for name, query, offset in cases:
        await time_store(store, account.id, name, query, offset, args.repeat)

    from bluesync.config import parse_config
    from bluesync.eas.context import ServerContext
    from bluesync.web.site import build_site
    from twisted.web.client import HTTPConnectionPool
    from tests.eas.client import EASClient

    context = ServerContext(config=parse_config("", "<bench>"), store=store, clock=reactor)
    port = reactor.listenTCP(0, build_site(context), interface="127.0.0.1")
    pool = HTTPConnectionPool(reactor, persistent=True)
    try:
        client = EASClient(f"http://127.0.0.1:{port.getHost().port}", "alice@example.org", "bench password",
                           pool=pool)
        await client.provision()
        commands = [
            ("no match (the fixed cost of a request)", search_xml("zzzzzz")),
            ("one common word: meeting", search_xml("meeting")),
            (f"one rare word: {rare}", search_xml(rare)),
            ("two words: budget report", search_xml("budget report")),
            ("typing, 3 letters: bud", search_xml("bud")),
            ("folder + subfolders (Inbox): invoice",
             search_xml("invoice", f"<airsync:CollectionId>{inbox.id}</airsync:CollectionId>")),
            ("last 30 days: invoice", search_xml(
                "invoice", f"<GreaterThan><email:DateReceived/><Value>{recent:%Y-%m-%dT%H:%M:%S.000Z}</Value>"
                           "</GreaterThan>")),
            ("page 10 (90-99): meeting", search_xml("meeting", range_="90-99")),
        ]
        print(f"\ncommand: Search over HTTP, Range 0-9 unless said, {args.repeat} runs each (ms)")
        for name, document in commands:
            await time_command(client, name, document, args.repeat)
    finally:
        await pool.closeCachedConnections()
        await port.stopListening()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)))
    parser.add_argument("--state-dir", help="keep the database here and reuse it on the next run")
    arguments = parser.parse_args()
    task.react(lambda _reactor: defer.Deferred.fromCoroutine(main(arguments)))
