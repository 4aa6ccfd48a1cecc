"""
Shared by the WBXML tests: where the golden data lives, and a canonical
form of a tree to compare trees whatever their prefixes or indentation.
"""

from __future__ import annotations

import os

from lxml import etree

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def data_path(name: str) -> str:
    """The path of a file under tests/wbxml/data."""
    return os.path.join(DATA, name)


def read_data(name: str) -> bytes:
    """The bytes of a file under tests/wbxml/data."""
    with open(data_path(name), "rb") as f:
        return f.read()


def read_hex(name: str) -> bytes:
    """A hex text file under tests/wbxml/data, as bytes."""
    return bytes.fromhex(read_data(name).decode("ascii"))


def parse_xml(name: str):
    """An XML file under tests/wbxml/data, comments dropped."""
    parser = etree.XMLParser(remove_comments=True)
    return etree.parse(data_path(name), parser).getroot()


def _uri(tag: str) -> str:
    """Give a colon-less EAS namespace (as MS-ASWBXML prints) its colon."""
    uri, _, name = tag[1:].partition("}")
    if not uri.endswith(":"):
        uri += ":"
    return "{%s}%s" % (uri, name)


def canonical(element):
    """
    (tag, text, children) with namespaces normalised to the "Page:" form,
    text kept exactly for leaves and dropped where it is only the
    indentation between child elements.
    """
    children = [canonical(child) for child in element]
    text = element.text
    if children or not text:
        text = None
    return (_uri(element.tag), text, children)
