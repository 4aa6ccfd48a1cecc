"""
Throughput of the WBXML codec on two realistic documents.

    /work/venv/bin/python bench/wbxml_bench.py [--repeat N]

"emails": a Sync response of 500 emails with 2 KB bodies (text-heavy).
"contacts": a Sync response of 5,000 contacts with ten short fields each
(token-dense, the worst case for a per-token loop).

Prints, for each document and direction, the best of N runs in MB/s (of
WBXML) and elements/s.  Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from lxml import etree

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

from bluesync.wbxml import decode, encode, qname  # noqa: E402


def _sub(parent, namespace, name, text=None):
    element = etree.SubElement(parent, qname(namespace, name))
    if text is not None:
        element.text = text
    return element


def _sync_response(add_items, count):
    """A Sync response with one collection and C{count} Add commands."""
    sync = etree.Element(qname("AirSync", "Sync"))
    collection = _sub(_sub(sync, "AirSync", "Collections"),
                      "AirSync", "Collection")
    _sub(collection, "AirSync", "SyncKey", "1234567890")
    _sub(collection, "AirSync", "CollectionId", "5")
    _sub(collection, "AirSync", "Status", "1")
    commands = _sub(collection, "AirSync", "Commands")
    for i in range(count):
        add = _sub(commands, "AirSync", "Add")
        _sub(add, "AirSync", "ServerId", "5:%d" % (i,))
        add_items(_sub(add, "AirSync", "ApplicationData"), i)
    return sync


def _email(data, i):
    body_text = ("Dear colleague, the quarterly figures are attached. "
                 "Regards, Zoë — 季度报告 📈\n") * 28
    _sub(data, "Email", "To", '"Anne Example" <anne@example.com>')
    _sub(data, "Email", "From", '"Bob Example" <bob@example.com>')
    _sub(data, "Email", "Subject", "Quarterly figures #%d" % (i,))
    _sub(data, "Email", "DateReceived", "2024-05-01T10:%02d:00.000Z"
         % (i % 60,))
    _sub(data, "Email", "DisplayTo", "Anne Example")
    _sub(data, "Email", "Importance", "1")
    _sub(data, "Email", "Read", "0")
    body = _sub(data, "AirSyncBase", "Body")
    _sub(body, "AirSyncBase", "Type", "1")
    _sub(body, "AirSyncBase", "EstimatedDataSize", str(len(body_text)))
    _sub(body, "AirSyncBase", "Data", body_text[:2048])
    _sub(data, "Email", "MessageClass", "IPM.Note")
    _sub(data, "Email", "InternetCPID", "65001")
    flag = _sub(data, "Email", "Flag")
    del flag
    _sub(data, "AirSyncBase", "NativeBodyType", "1")
    _sub(data, "Email2", "ConversationIndex", "AdmKq3c=")


def _contact(data, i):
    _sub(data, "Contacts", "FileAs", "Person%d, Ann" % (i,))
    _sub(data, "Contacts", "FirstName", "Ann")
    _sub(data, "Contacts", "LastName", "Person%d" % (i,))
    _sub(data, "Contacts", "Email1Address", "ann%d@example.com" % (i,))
    _sub(data, "Contacts", "MobilePhoneNumber", "+4412345%04d" % (i,))
    _sub(data, "Contacts", "CompanyName", "Example Ltd")
    _sub(data, "Contacts", "JobTitle", "Engineer")
    _sub(data, "Contacts", "BusinessAddressCity", "Zürich")
    _sub(data, "Contacts2", "NickName", "Annie")
    _sub(data, "Contacts", "Birthday", "1980-01-%02dT00:00:00.000Z"
         % (i % 28 + 1,))


def _best(function, argument, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function(argument)
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    documents = [
        ("emails (500 x 2 KB body)", _sync_response(_email, 500)),
        ("contacts (5,000 x 10 fields)", _sync_response(_contact, 5000)),
    ]
    for label, tree in documents:
        data = encode(tree)
        elements = sum(1 for _ in tree.iter())
        assert decode(data) is not None
        size_mb = len(data) / 1e6
        print("%s: %d bytes, %d elements" % (label, len(data), elements))
        for direction, function, argument in (("decode", decode, data),
                                              ("encode", encode, tree)):
            seconds = _best(function, argument, args.repeat)
            print("  %s: %7.1f ms  %7.1f MB/s  %9.0f elements/s"
                  % (direction, seconds * 1e3, size_mb / seconds,
                     elements / seconds))


if __name__ == "__main__":
    main()
