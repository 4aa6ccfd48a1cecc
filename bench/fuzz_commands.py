"""
Command fuzzing (robustness): mutated but well-formed EAS requests against a
real bluesync process, to check that bad input never reaches a traceback or
an HTTP 500 (shared/DESIGN.md: "Bad input never reaches a traceback").

    python bench/fuzz_commands.py                       # 5,000 requests
    python bench/fuzz_commands.py --requests 20000 --seed 7

It starts `twistd -n bluesync` in a temporary state directory (loopback
only, heartbeats capped at 2 s so mutated Pings end quickly), creates an
account, provisions a 14.1 and a 16.1 device, delivers a few messages over
LMTP, then sends each command's valid request after one to three random
mutations of its element tree: an element dropped, duplicated, moved
under another parent, replaced by a tag of another code page, or its text
replaced by hostile text (empty, huge numbers, negative numbers, overlong
strings, control-free Unicode, other folders' and accounts' ids).  A few
requests are byte-level mutations of the encoded body instead.  Sync keys
and folder ids are kept current from the answers, so mutations reach deep
into the handlers rather than stopping at "invalid sync key".

It prints, per command, the HTTP codes and EAS Status values seen, and
fails (exit 1) if any request got a 5xx other than 501 for a command the
version lacks, 503 (and 500 for a
12.1 send the server refuses, which is how 12.1 learns of it), if an
answer serves a Status that is not a small number, or if the server log
holds a traceback; the offending request is printed as XML.  Figures are
printed, never asserted by the tests.
"""

from __future__ import annotations

import argparse
import base64
import copy
import http.client
import os
import random
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import quote

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bluesync import wbxml  # noqa: E402
from bluesync.wbxml.codepages import CODE_PAGES  # noqa: E402

TWISTD = [sys.executable, "-c", "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"]
NS = dict(wbxml.NAMESPACES)

HOSTILE_TEXT = (
    "", "0", "-1", "1", "2", "7", "99999999999999999999", "4294967296", "-2147483649", "1e9", "0x10",
    "NaN", " 1 ", "x" * 300, "é" * 70, "🙂" * 40, "../../etc/passwd", "1:1", "0:0", "9999:9999",
    "1:99999999999", "{inbox}", "{inbox}:1", "{other}", "{other}:1", "2026-13-45T99:99:99.000Z",
    "20261126T120000Z", "true", "<x/>", "'; DROP TABLE items; --", "%00", "a@b", "@", "<>",
)

# Valid requests; {inbox} {contacts} {calendar} {tasks} {notes} {drafts}
# {deleted} {item} {folderkey} {key_<folder>} are filled in before each use.
TEMPLATES: dict[str, str] = {
    "FolderSync": '<FolderSync xmlns="FolderHierarchy:"><SyncKey>{folderkey}</SyncKey></FolderSync>',
    "FolderCreate": ('<FolderCreate xmlns="FolderHierarchy:"><SyncKey>{folderkey}</SyncKey><ParentId>{inbox}</ParentId>'
                     '<DisplayName>Fuzz {n}</DisplayName><Type>12</Type></FolderCreate>'),
    "FolderUpdate": ('<FolderUpdate xmlns="FolderHierarchy:"><SyncKey>{folderkey}</SyncKey><ServerId>{custom}</ServerId>'
                     '<ParentId>0</ParentId><DisplayName>Renamed {n}</DisplayName></FolderUpdate>'),
    "FolderDelete": ('<FolderDelete xmlns="FolderHierarchy:"><SyncKey>{folderkey}</SyncKey>'
                     '<ServerId>{custom}</ServerId></FolderDelete>'),
    "Sync": ('<Sync xmlns="AirSync:" xmlns:b="AirSyncBase:" xmlns:e="Email:"><Collections><Collection>'
             '<SyncKey>{key_inbox}</SyncKey><CollectionId>{inbox}</CollectionId><DeletesAsMoves>1</DeletesAsMoves>'
             '<GetChanges>1</GetChanges><WindowSize>5</WindowSize><Options><FilterType>3</FilterType>'
             '<b:BodyPreference><b:Type>2</b:Type><b:TruncationSize>200</b:TruncationSize></b:BodyPreference>'
             '<MIMESupport>1</MIMESupport></Options><Commands>'
             '<Change><ServerId>{item}</ServerId><ApplicationData><e:Read>1</e:Read><e:Flag><e:Status>2</e:Status>'
             '<e:FlagType>Follow up</e:FlagType></e:Flag></ApplicationData></Change>'
             '<Fetch><ServerId>{item}</ServerId></Fetch></Commands></Collection></Collections>'
             '<WindowSize>10</WindowSize></Sync>'),
    "SyncContacts": ('<Sync xmlns="AirSync:" xmlns:c="Contacts:" xmlns:b="AirSyncBase:"><Collections><Collection>'
                     '<SyncKey>{key_contacts}</SyncKey><CollectionId>{contacts}</CollectionId><GetChanges>1</GetChanges>'
                     '<Commands><Add><ClientId>c{n}</ClientId><ApplicationData><c:FirstName>Ann</c:FirstName>'
                     '<c:LastName>Fuzz</c:LastName><c:Email1Address>ann@example.net</c:Email1Address>'
                     '<c:Birthday>1990-02-28T00:00:00.000Z</c:Birthday><c:Categories><c:Category>A</c:Category>'
                     '</c:Categories><b:Body><b:Type>1</b:Type><b:Data>note</b:Data></b:Body></ApplicationData></Add>'
                     '</Commands></Collection></Collections></Sync>'),
    "SyncCalendar": ('<Sync xmlns="AirSync:" xmlns:k="Calendar:" xmlns:b="AirSyncBase:"><Collections><Collection>'
                     '<SyncKey>{key_calendar}</SyncKey><CollectionId>{calendar}</CollectionId>'
                     '<Commands><Add><ClientId>k{n}</ClientId><ApplicationData>'
                     '<k:Timezone>xP///wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAKAAAABQADAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAADAAAABQACAAAAAAAAAMT///8=</k:Timezone>'
                     '<k:StartTime>20261201T090000Z</k:StartTime><k:EndTime>20261201T100000Z</k:EndTime>'
                     '<k:Subject>Standup</k:Subject><k:Recurrence><k:Type>1</k:Type><k:Interval>1</k:Interval>'
                     '<k:DayOfWeek>2</k:DayOfWeek><k:Occurrences>5</k:Occurrences></k:Recurrence>'
                     '<k:Exceptions><k:Exception><k:Deleted>1</k:Deleted>'
                     '<k:ExceptionStartTime>20261208T090000Z</k:ExceptionStartTime></k:Exception></k:Exceptions>'
                     '<k:Attendees><k:Attendee><k:Email>bob@example.net</k:Email><k:Name>Bob</k:Name>'
                     '<k:AttendeeType>1</k:AttendeeType></k:Attendee></k:Attendees><k:BusyStatus>2</k:BusyStatus>'
                     '<k:MeetingStatus>1</k:MeetingStatus></ApplicationData></Add></Commands>'
                     '</Collection></Collections></Sync>'),
    "SyncTasks": ('<Sync xmlns="AirSync:" xmlns:t="Tasks:"><Collections><Collection>'
                  '<SyncKey>{key_tasks}</SyncKey><CollectionId>{tasks}</CollectionId><Commands><Add>'
                  '<ClientId>t{n}</ClientId><ApplicationData><t:Subject>Do it</t:Subject>'
                  '<t:DueDate>2026-12-01T00:00:00.000Z</t:DueDate><t:UtcDueDate>2026-12-01T00:00:00.000Z</t:UtcDueDate>'
                  '<t:Complete>0</t:Complete><t:Recurrence><t:Type>0</t:Type><t:Start>2026-12-01T00:00:00.000Z</t:Start>'
                  '<t:Interval>1</t:Interval></t:Recurrence></ApplicationData></Add></Commands>'
                  '</Collection></Collections></Sync>'),
    "SyncNotes": ('<Sync xmlns="AirSync:" xmlns:n="Notes:" xmlns:b="AirSyncBase:"><Collections><Collection>'
                  '<SyncKey>{key_notes}</SyncKey><CollectionId>{notes}</CollectionId><Commands><Add>'
                  '<ClientId>n{n}</ClientId><ApplicationData><n:Subject>Idea</n:Subject><b:Body><b:Type>1</b:Type>'
                  '<b:Data>text</b:Data></b:Body><n:MessageClass>IPM.StickyNote</n:MessageClass></ApplicationData>'
                  '</Add></Commands></Collection></Collections></Sync>'),
    "GetItemEstimate": ('<GetItemEstimate xmlns="GetItemEstimate:" xmlns:a="AirSync:"><Collections><Collection>'
                        '<a:SyncKey>{key_inbox}</a:SyncKey><CollectionId>{inbox}</CollectionId>'
                        '<a:Options><a:FilterType>0</a:FilterType></a:Options></Collection></Collections>'
                        '</GetItemEstimate>'),
    "Ping": ('<Ping xmlns="Ping:"><HeartbeatInterval>1</HeartbeatInterval><Folders><Folder><Id>{inbox}</Id>'
             '<Class>Email</Class></Folder><Folder><Id>{contacts}</Id><Class>Contacts</Class></Folder></Folders></Ping>'),
    "MoveItems": ('<MoveItems xmlns="Move:"><Move><SrcMsgId>{item}</SrcMsgId><SrcFldId>{inbox}</SrcFldId>'
                  '<DstFldId>{deleted}</DstFldId></Move></MoveItems>'),
    "ItemOperations": ('<ItemOperations xmlns="ItemOperations:" xmlns:a="AirSync:" xmlns:b="AirSyncBase:">'
                       '<Fetch><Store>Mailbox</Store><a:CollectionId>{inbox}</a:CollectionId><a:ServerId>{item}</a:ServerId>'
                       '<Options><b:BodyPreference><b:Type>4</b:Type></b:BodyPreference><Range>0-100</Range></Options>'
                       '</Fetch><EmptyFolderContents><a:CollectionId>{deleted}</a:CollectionId>'
                       '<Options><DeleteSubFolders/></Options></EmptyFolderContents></ItemOperations>'),
    "Search": ('<Search xmlns="Search:" xmlns:a="AirSync:" xmlns:b="AirSyncBase:"><Store><Name>Mailbox</Name>'
               '<Query><And><a:Class>Email</a:Class><a:CollectionId>{inbox}</a:CollectionId>'
               '<FreeText>budget</FreeText></And></Query><Options><Range>0-9</Range><DeepTraversal/>'
               '<b:BodyPreference><b:Type>1</b:Type><b:TruncationSize>100</b:TruncationSize></b:BodyPreference>'
               '</Options></Store></Search>'),
    "Find": ('<Find xmlns="Find:" xmlns:a="AirSync:"><SearchId>2f6c8b5e-4a1d-4c2e-9b7a-1d2e3f4a5b6c</SearchId>'
             '<ExecuteSearch><MailBoxSearchCriterion><Query><a:Class>Email</a:Class>'
             '<a:CollectionId>{inbox}</a:CollectionId><FreeText>subject:budget line</FreeText></Query>'
             '<Options><Range>0-4</Range><DeepTraversal/></Options></MailBoxSearchCriterion></ExecuteSearch></Find>'),
    "FindGAL": ('<Find xmlns="Find:"><SearchId>3a6c8b5e-4a1d-4c2e-9b7a-1d2e3f4a5b6c</SearchId><ExecuteSearch>'
                '<GALSearchCriterion><Query>ali</Query><Options><Range>0-4</Range><Picture><MaxSize>4096</MaxSize>'
                '<MaxPictures>3</MaxPictures></Picture></Options></GALSearchCriterion></ExecuteSearch></Find>'),
    "SearchGAL": ('<Search xmlns="Search:"><Store><Name>GAL</Name><Query>ali</Query><Options><Range>0-4</Range>'
                  '</Options></Store></Search>'),
    "ResolveRecipients": ('<ResolveRecipients xmlns="ResolveRecipients:"><To>alice</To><To>nobody@example.net</To>'
                          '<Options><MaxAmbiguousRecipients>3</MaxAmbiguousRecipients><Availability>'
                          '<StartTime>2026-12-01T00:00:00.000Z</StartTime><EndTime>2026-12-02T00:00:00.000Z</EndTime>'
                          '</Availability></Options></ResolveRecipients>'),
    "MeetingResponse": ('<MeetingResponse xmlns="MeetingResponse:"><Request><UserResponse>1</UserResponse>'
                        '<CollectionId>{inbox}</CollectionId><RequestId>{item}</RequestId></Request></MeetingResponse>'),
    "Settings": ('<Settings xmlns="Settings:"><Oof><Get><BodyType>Text</BodyType></Get></Oof>'
                 '<DeviceInformation><Set><Model>Fuzz</Model><OS>iOS 17</OS><FriendlyName>f</FriendlyName></Set>'
                 '</DeviceInformation><UserInformation><Get/></UserInformation></Settings>'),
    "SettingsOof": ('<Settings xmlns="Settings:"><Oof><Set><OofState>2</OofState>'
                    '<StartTime>2026-12-01T00:00:00.000Z</StartTime><EndTime>2026-12-02T00:00:00.000Z</EndTime>'
                    '<OofMessage><AppliesToInternal/><Enabled>1</Enabled><ReplyMessage>away</ReplyMessage>'
                    '<BodyType>Text</BodyType></OofMessage></Set></Oof></Settings>'),
    "SendMail": ('<SendMail xmlns="ComposeMail:"><ClientId>s{n}</ClientId><SaveInSentItems/>'
                 '<Mime>{mime}</Mime></SendMail>'),
    "SmartReply": ('<SmartReply xmlns="ComposeMail:"><ClientId>r{n}</ClientId><Source><FolderId>{inbox}</FolderId>'
                   '<ItemId>{item}</ItemId></Source><SaveInSentItems/><Mime>{mime}</Mime></SmartReply>'),
    "SmartForward": ('<SmartForward xmlns="ComposeMail:"><ClientId>f{n}</ClientId><Source><FolderId>{inbox}</FolderId>'
                     '<ItemId>{item}</ItemId></Source><ReplaceMime/><Mime>{mime}</Mime></SmartForward>'),
}

# Template name -> the EAS command it is posted as.
COMMAND_OF = {name: name for name in TEMPLATES}
COMMAND_OF.update(SyncContacts="Sync", SyncCalendar="Sync", SyncTasks="Sync", SyncNotes="Sync",
                  SearchGAL="Search", SettingsOof="Settings", FindGAL="Find")

MIME = (b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: fuzz\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def all_tags() -> list[str]:
    return [wbxml.qname(page.name, tag.name) for page in CODE_PAGES.values() for tag in page.tags if not tag.alias]


class Device:
    """One phone: keeps its policy key, folder ids and sync keys current."""

    def __init__(self, port: int, device_id: str, version: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.port = port
        self.auth = "Basic " + base64.b64encode(b"alice@example.org:fuzz password").decode()
        self.device_id = device_id
        self.version = version
        self.policy_key = None
        self.folders: dict[str, str] = {}
        self.custom: list[str] = []
        self.keys: dict[str, str] = {}
        self.folder_key = "0"
        self.items: list[str] = []

    def send(self, command: str, body: bytes, query: str = "",
             content_type: str = "application/vnd.ms-sync.wbxml") -> tuple[int, bytes]:
        headers = {"Authorization": self.auth, "MS-ASProtocolVersion": self.version,
                   "Content-Type": content_type, "User-Agent": "bluesync-fuzz/1"}
        if self.policy_key:
            headers["X-MS-PolicyKey"] = self.policy_key
        url = (f"/Microsoft-Server-ActiveSync?Cmd={command}&User=alice@example.org"
               f"&DeviceId={self.device_id}&DeviceType=iPhone{query}")
        for attempt in range(2):
            try:
                self.connection.request("POST", url, body, headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                # The server may close a connection after an error answer.
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def post_xml(self, command: str, xml: str):
        status, data = self.send(command, wbxml.encode(etree.fromstring(xml.encode())))
        if status != 200:
            raise RuntimeError(f"{command}: HTTP {status}")
        return wbxml.decode(data) if data else None

    def provision(self) -> None:
        policy = "<PolicyType>MS-EAS-Provisioning-WBXML</PolicyType>"
        first = self.post_xml("Provision", f'<Provision xmlns="Provision:"><Policies><Policy>{policy}'
                                           '</Policy></Policies></Provision>')
        self.policy_key = first.xpath("//provision:PolicyKey", namespaces=NS)[0].text
        second = self.post_xml("Provision", f'<Provision xmlns="Provision:"><Policies><Policy>{policy}'
                                            f"<PolicyKey>{self.policy_key}</PolicyKey><Status>1</Status>"
                                            "</Policy></Policies></Provision>")
        self.policy_key = second.xpath("//provision:PolicyKey", namespaces=NS)[0].text

    def folder_sync(self) -> None:
        answer = self.post_xml("FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>')
        names = {"2": "inbox", "3": "drafts", "4": "deleted", "7": "tasks", "8": "calendar", "9": "contacts",
                 "10": "notes"}
        self.custom = []
        for add in answer.xpath("//folderhierarchy:Add", namespaces=NS):
            kind = add.find("{FolderHierarchy:}Type").text
            server_id = add.find("{FolderHierarchy:}ServerId").text
            if kind in names:
                self.folders[names[kind]] = server_id
            elif kind in ("1", "12"):
                self.custom.append(server_id)
        self.folder_key = answer.find("{FolderHierarchy:}SyncKey").text
        for name in ("inbox", "contacts", "calendar", "tasks", "notes"):
            self.fresh_key(name)

    def fresh_key(self, name: str) -> None:
        folder = self.folders[name]
        answer = self.post_xml("Sync", f'<Sync xmlns="AirSync:"><Collections><Collection><SyncKey>0</SyncKey>'
                                       f"<CollectionId>{folder}</CollectionId></Collection></Collections></Sync>")
        self.keys[name] = answer.xpath("//airsync:SyncKey", namespaces=NS)[0].text
        answer = self.post_xml("Sync", f'<Sync xmlns="AirSync:"><Collections><Collection>'
                                       f"<SyncKey>{self.keys[name]}</SyncKey><CollectionId>{folder}</CollectionId>"
                                       "<WindowSize>200</WindowSize></Collection></Collections></Sync>")
        if answer is not None:
            self.learn(answer)
        if name == "inbox":
            self.items = [e.text for e in answer.xpath("//airsync:Add/airsync:ServerId", namespaces=NS)] \
                if answer is not None else self.items

    def learn(self, answer) -> None:
        """Keep sync keys current from any answer that moves them."""
        by_id = {folder: name for name, folder in self.folders.items()}
        for collection in answer.iter("{AirSync:}Collection"):
            key = collection.find("{AirSync:}SyncKey")
            folder = collection.find("{AirSync:}CollectionId")
            if key is not None and folder is not None and folder.text in by_id and key.text:
                self.keys[by_id[folder.text]] = key.text
        key = answer.find("{FolderHierarchy:}SyncKey")
        if key is not None and key.text:
            self.folder_key = key.text

    def fill(self, template: str, n: int) -> str:
        values = dict(self.folders, n=n, item=random.choice(self.items) if self.items else "1:1",
                      folderkey=self.folder_key, custom=random.choice(self.custom) if self.custom else "999999",
                      mime=base64.b64encode(MIME).decode())
        for name, key in self.keys.items():
            values[f"key_{name}"] = key
        return template.format_map(values)


def mutate(root, rng: random.Random, tags: list[str], hostile: list[str]) -> None:
    elements = list(root.iter())
    choice = rng.randrange(6)
    target = rng.choice(elements)
    if choice == 0 and target is not root:
        target.getparent().remove(target)
    elif choice == 1 and target is not root:
        target.addnext(copy.deepcopy(target))
    elif choice == 2:
        leaves = [e for e in elements if len(e) == 0]
        leaf = rng.choice(leaves)
        if not wbxml.tag_for(leaf.tag) or not wbxml.tag_for(leaf.tag).opaque:
            leaf.text = rng.choice(hostile)
    elif choice == 3 and target is not root:
        parents = [e for e in elements if len(e) and e is not target and target not in e.iterancestors()]
        new_parent = rng.choice(parents)
        if target not in new_parent.iterancestors() and new_parent is not target:
            target.getparent().remove(target)
            new_parent.append(target)
    elif choice == 4:
        stranger = etree.Element(rng.choice(tags))
        if rng.random() < 0.5:
            stranger.text = rng.choice(hostile)
        containers = [e for e in elements if len(e)] or [root]
        rng.choice(containers).insert(rng.randrange(0, 3), stranger)
    else:
        # Emptied container: children gone, text left absent.
        containers = [e for e in elements if len(e) and e is not root] or [root]
        for child in list(rng.choice(containers)):
            child.getparent().remove(child)


def byte_mutation(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        position = rng.randrange(4, len(data)) if len(data) > 4 else 0
        data[position] = rng.randrange(256)
    return bytes(data)


# 12.1 sends mail as a raw MIME body with the options in the query string.
LEGACY_SEND = ("SendMail", "SmartReply", "SmartForward")


def legacy_send(device: Device, rng: random.Random, hostile: list[str]) -> tuple[str, str, bytes]:
    """A 12.1 SendMail/SmartReply/SmartForward with a damaged MIME body or query."""
    command = rng.choice(LEGACY_SEND)
    lines = MIME.split(b"\r\n")
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(5)
        if choice == 0 and lines:
            del lines[rng.randrange(len(lines))]
        elif choice == 1:
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(hostile).encode() + b": " + b"x" * rng.choice((1, 999)))
        elif choice == 2:
            lines.insert(rng.randrange(len(lines) + 1), bytes(rng.randrange(256) for _ in range(rng.randint(1, 80))))
        elif choice == 3:
            lines = lines[: rng.randrange(len(lines) + 1)]
        else:
            lines.insert(0, b"Content-Type: multipart/mixed; boundary=" + rng.choice(hostile).encode())
    item = rng.choice(device.items) if device.items and rng.random() < 0.8 else rng.choice(hostile)
    folder = device.folders["inbox"] if rng.random() < 0.8 else rng.choice(hostile)
    query = rng.choice(("&SaveInSent=T", "&SaveInSent=F", "&SaveInSent=" + rng.choice(hostile), ""))
    if command != "SendMail":
        query += f"&ItemId={item}&CollectionId={folder}"
        if rng.random() < 0.2:
            query += "&LongId=" + rng.choice(hostile)
    return command, query, b"\r\n".join(lines)


def deliver(port: int, count: int, start: int) -> None:
    with smtplib.LMTP("127.0.0.1", port) as lmtp:
        for n in range(start, start + count):
            lmtp.sendmail("bob@example.net", ["alice@example.org"],
                          (f"From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: budget {n}\r\n"
                           f"Message-ID: <fuzz{n}@example.net>\r\nContent-Type: text/plain\r\n\r\nbudget line {n}\r\n"
                           ).encode())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    random.seed(args.seed)

    state = Path(tempfile.mkdtemp(prefix="bluesync-fuzz-"))
    http_port, lmtp_port = free_port(), free_port()
    config = state / "bluesync.ini"
    config.write_text(
        f"[server]\nlisten = tcp:{http_port}:interface=127.0.0.1\nstate_dir = {state}/var\n"
        f"[mail]\nlmtp_listen = tcp:{lmtp_port}:interface=127.0.0.1\nrelay_host = 127.0.0.1\nrelay_port = 9\n"
        f"[admin]\nlisten =\n[push]\nmin_heartbeat = 1\nmax_heartbeat = 2\n"
        "[devices]\nautoblock_empty_syncs = 0\nautoblock_user_agents = 0\n"
    )
    env = dict(os.environ, BLUESYNC_CONFIG=str(config))
    log_path = state / "twistd.log"
    server = subprocess.Popen(TWISTD + ["-n", "--pidfile=", "bluesync"], cwd=state, env=env,
                              stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"phones connect to" not in log_path.read_bytes():
            if server.poll() is not None or time.monotonic() > deadline:
                print(log_path.read_text())
                return 1
            time.sleep(0.2)
        for address, name in (("alice@example.org", "Alice Martin"), ("bob@example.org", "Bob Other")):
            added = subprocess.run([sys.executable, "-m", "bluesync.admin.cli", "user", "add", address,
                                    "--name", name, "--password-stdin"], input="fuzz password\n", text=True,
                                   env=env, cwd=state, capture_output=True)
            if added.returncode:
                print(f"bluesync-admin user add failed:\n{added.stderr}")
                return 1
        deliver(lmtp_port, 20, 0)
        devices = [Device(http_port, "FUZZ141", "14.1"), Device(http_port, "FUZZ161", "16.1"),
                   Device(http_port, "FUZZ121", "12.1")]
        for device in devices:
            device.provision()
            device.folder_sync()
        other = Device(http_port, "FUZZBOB", "16.1")
        other.auth = "Basic " + base64.b64encode(b"bob@example.org:fuzz password").decode()
        other.provision()
        other.folder_sync()
        hostile = [text.replace("{inbox}", devices[0].folders["inbox"]).replace("{other}", other.folders["inbox"])
                   for text in HOSTILE_TEXT]
        tags = all_tags()

        codes: dict[str, Counter] = defaultdict(Counter)
        statuses: dict[str, Counter] = defaultdict(Counter)
        failures = []
        delivered = 20
        started = time.perf_counter()
        for n in range(args.requests):
            device = devices[n % len(devices)]
            if device.version == "12.1" and rng.random() < 0.2:
                command, query, body = legacy_send(device, rng, hostile)
                status, data = device.send(command, body, quote(query, safe="&="), "message/rfc822")
                codes[command + " 12.1"][status] += 1
                # 12.1 has no ComposeMail status: a send that cannot be done
                # (no such original, say) is HTTP 500 by MS-ASHTTP 2.2.2.1.1,
                # so only a traceback counts as a failure here.
                if status >= 500 and status not in (500, 503):
                    failures.append((command, status, query + "\n" + body.decode("latin-1")))
                continue
            name = rng.choice(list(TEMPLATES))
            command = COMMAND_OF[name]
            tree = etree.fromstring(device.fill(TEMPLATES[name], n).encode())
            for _ in range(rng.randint(1, 3)):
                mutate(tree, rng, tags, hostile)
            try:
                body = wbxml.encode(tree)
            except wbxml.WBXMLError:
                continue
            if rng.random() < 0.05:
                body = byte_mutation(body, rng)
            status, data = device.send(command, body)
            codes[command][status] += 1
            refused_send = status == 500 and device.version == "12.1" and command in LEGACY_SEND
            # 501: a command the device's version does not have (Find before 16.1).
            if status >= 500 and status not in (501, 503) and not refused_send:
                failures.append((name, status, etree.tostring(tree, pretty_print=True).decode()))
            if status == 200 and data:
                try:
                    answer = wbxml.decode(data)
                except wbxml.WBXMLError as e:
                    failures.append((name, "undecodable answer", str(e)))
                    continue
                for element in answer.iter("{*}Status"):
                    statuses[command][element.text] += 1
                    # Every Status the server writes is a small number; a
                    # hostile one here was stored and is being served back.
                    if not (element.text or "").isdigit() or len(element.text) > 3:
                        failures.append((name, f"served Status {element.text!r}",
                                         etree.tostring(tree, pretty_print=True).decode()))
                device.learn(answer)
                if any(e.text in ("3", "12") for e in answer.iter("{AirSync:}Status")) or \
                        any(e.text == "9" for e in answer.iter("{FolderHierarchy:}Status")):
                    device.folder_sync()
            if n % 500 == 499:
                deliver(lmtp_port, 10, delivered)
                delivered += 10
                for each in devices:
                    each.folder_sync()
        elapsed = time.perf_counter() - started

        print(f"{args.requests} mutated requests in {elapsed:.1f} s (seed {args.seed})")
        for command in sorted(codes):
            http_codes = " ".join(f"{code}x{count}" for code, count in sorted(codes[command].items()))
            eas = " ".join(f"{code}x{count}" for code, count in sorted(statuses[command].items(), key=str))
            print(f"  {command:18} HTTP {http_codes:30} Status {eas}")
        log_text = log_path.read_text(errors="replace")
        tracebacks = log_text.count("Traceback (most recent call last)")
        print(f"server log: {tracebacks} tracebacks, {len(failures)} failed requests")
        # One example of each kind of failure.
        examples = {}
        for name, status, detail in failures:
            examples.setdefault((name, str(status)), (detail, 0))
            examples[(name, str(status))] = (examples[(name, str(status))][0], examples[(name, str(status))][1] + 1)
        for (name, status), (detail, count) in examples.items():
            print(f"--- {name}: {status} ({count} times), for example:\n{detail}")
        if tracebacks:
            index = log_text.index("Traceback (most recent call last)")
            print(log_text[max(0, index - 600):index + 3000])
        return 1 if failures or tracebacks else 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
