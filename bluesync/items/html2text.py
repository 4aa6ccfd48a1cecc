"""
HTML to readable plain text, and plain text to simple HTML.

Used when a client asks for a body type the message does not carry: an
HTML-only message asked for as plain text (AirSyncBase:Type 1), a plain
message asked for as HTML (Type 2), and for previews and the search index.

Both functions are pure and never raise on bad input: mail HTML is often
broken, and the worst outcome here is a less pretty text.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

__all__ = ["html_to_text", "text_to_html"]

# Elements whose content is never shown as text.
_HIDDEN = frozenset({"script", "style", "head", "title", "template", "noscript",
                     "object", "iframe", "svg", "xml"})

# Block elements: separated from what surrounds them by one line break...
_LINE_BLOCKS = frozenset({"div", "tr", "table", "section", "article", "header",
                          "footer", "nav", "aside", "address", "form",
                          "fieldset", "center", "dl", "dt", "dd", "main",
                          "figure", "figcaption", "caption", "details",
                          "summary", "tbody", "thead", "tfoot", "body"})
# ...and these by an empty line.
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
                         "blockquote", "pre", "hr"})
_CELLS = frozenset({"td", "th"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "area", "base",
                   "col", "embed", "param", "source", "track", "wbr"})

_SPACES = re.compile(r"[ \t\n\r\f\v\u00a0\u200b]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


class _TextWriter:
    """
    Accumulates text as lines, collapsing whitespace the way a browser does,
    with pending line breaks applied lazily so that nested blocks do not
    stack up empty lines.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.current: list[str] = []
        self.pending_breaks = 0
        self.quote_depth = 0
        self.line_depth = 0

    def _at_line_start(self) -> bool:
        return not self.current

    def _ends_with_space(self) -> bool:
        for piece in reversed(self.current):
            if piece:
                return piece.endswith((" ", "\t"))
        return True

    def _flush_breaks(self) -> None:
        if not self.pending_breaks:
            return
        if self.lines or self.current:
            self.lines.append("".join(self.current).rstrip())
            self.current = []
            # Blank lines between blocks belong to a quote only when both
            # neighbours are inside it.
            blank = ("> " * min(self.line_depth, self.quote_depth)).rstrip()
            for _ in range(self.pending_breaks - 1):
                self.lines.append(blank)
        self.pending_breaks = 0

    def _start_line_if_needed(self) -> None:
        if not self.current:
            self.line_depth = self.quote_depth
            self.current.append("> " * self.quote_depth)

    def block_break(self, count: int) -> None:
        """Ask for `count` line breaks (1 = new line, 2 = empty line)."""
        if self.lines or "".join(self.current).strip():
            self.pending_breaks = max(self.pending_breaks, count)

    def hard_break(self) -> None:
        """A <br>: always ends the line, even an empty one."""
        self._flush_breaks()
        self._start_line_if_needed()
        self.lines.append("".join(self.current).rstrip())
        self.current = []

    def text(self, data: str) -> None:
        data = _SPACES.sub(" ", data)
        if not data.strip():
            if data and not self._ends_with_space() and not self.pending_breaks:
                self.current.append(" ")
            return
        self._flush_breaks()
        self._start_line_if_needed()
        if self._ends_with_space():
            data = data.lstrip(" ")
        self.current.append(data)

    def preformatted(self, data: str) -> None:
        data = data.replace("\r\n", "\n").replace("\r", "\n")
        chunks = data.split("\n")
        for i, chunk in enumerate(chunks):
            if i:
                self.hard_break()
            if chunk:
                self._flush_breaks()
                self._start_line_if_needed()
                self.current.append(chunk.replace("\u00a0", " "))

    def raw(self, data: str) -> None:
        """Text that must appear as is (list markers, separators)."""
        self._flush_breaks()
        self._start_line_if_needed()
        self.current.append(data)

    def result(self) -> str:
        lines = self.lines + (["".join(self.current).rstrip()] if self.current else [])
        out = "\n".join(line.rstrip() for line in lines)
        out = _BLANK_RUNS.sub("\n\n", out)
        return out.strip("\n")


class _HTMLToText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = _TextWriter()
        self.hidden_depth = 0
        self.hidden_stack: list[str] = []
        self.pre_depth = 0
        # One entry per open list: None for <ul>, the next number for <ol>.
        self.lists: list[int | None] = []
        # Open links: (href, text length of the output when the link opened).
        self.links: list[tuple[str, list[str]]] = []
        self.cell_open = False

    # Text collected inside an open <a> goes to the link's buffer too, so the
    # URL can be left out when the text already shows it.
    def _link_text(self, data: str) -> None:
        for _, buffer in self.links:
            buffer.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        tag = tag.lower()
        if tag in _HIDDEN:
            if tag not in _VOID:
                self.hidden_stack.append(tag)
            return
        if self.hidden_stack:
            return
        out = self.out
        if tag == "br":
            out.hard_break()
        elif tag == "hr":
            out.block_break(2)
            out.raw("-" * 20)
            out.block_break(2)
        elif tag in _PARAGRAPHS:
            if tag == "blockquote":
                out.block_break(2)
                out.quote_depth += 1
            elif tag in ("ul", "ol"):
                out.block_break(1 if self.lists else 2)
                start = 1
                if tag == "ol":
                    for name, value in attrs:
                        if name == "start" and value and value.strip().isdigit():
                            start = int(value.strip())
                self.lists.append(start if tag == "ol" else None)
            else:
                out.block_break(2)
                if tag == "pre":
                    self.pre_depth += 1
        elif tag == "li":
            out.block_break(1)
            indent = "  " * max(len(self.lists) - 1, 0)
            if self.lists and self.lists[-1] is not None:
                number = self.lists[-1]
                self.lists[-1] = number + 1
                out.raw(f"{indent}{number}. ")
            else:
                out.raw(f"{indent}- ")
        elif tag in _LINE_BLOCKS:
            out.block_break(1)
            if tag == "tr":
                self.cell_open = False
        elif tag in _CELLS:
            if self.cell_open:
                out.text(" ")
            self.cell_open = True
        elif tag == "a":
            href = ""
            for name, value in attrs:
                if name == "href" and value:
                    href = value.strip()
            self.links.append((href, []))
        elif tag == "img":
            alt = ""
            for name, value in attrs:
                if name == "alt" and value:
                    alt = value.strip()
            if alt:
                out.text(alt)
                self._link_text(alt)

    def handle_endtag(self, tag: str) -> None:
        tag = tag.lower()
        if self.hidden_stack:
            if tag in self.hidden_stack:
                while self.hidden_stack and self.hidden_stack.pop() != tag:
                    pass
            return
        out = self.out
        if tag in _PARAGRAPHS:
            if tag == "blockquote":
                out.block_break(2)
                out.quote_depth = max(out.quote_depth - 1, 0)
            elif tag in ("ul", "ol"):
                if self.lists:
                    self.lists.pop()
                out.block_break(1 if self.lists else 2)
            else:
                if tag == "pre":
                    self.pre_depth = max(self.pre_depth - 1, 0)
                out.block_break(2)
        elif tag in _LINE_BLOCKS or tag == "li":
            out.block_break(1)
        elif tag == "a" and self.links:
            href, buffer = self.links.pop()
            shown = _SPACES.sub(" ", "".join(buffer)).strip()
            target = href
            if target.lower().startswith("mailto:"):
                target = target[7:].split("?", 1)[0]
            if (target and not target.startswith("#")
                    and not target.lower().startswith(("javascript:", "cid:", "data:"))
                    and target != shown and href != shown):
                addition = f" <{target}>" if shown else target
                out.text(addition)
                self._link_text(addition)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag.lower() not in _VOID:
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self.hidden_stack:
            return
        if self.pre_depth:
            self.out.preformatted(data)
        else:
            self.out.text(data)
        self._link_text(data)


_TAG = re.compile(r"<[^>]*>")
_HIDDEN_BLOCK = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)


def _crude_text(markup: str) -> str:
    """Last resort when the parser gives up: strip tags, unescape."""
    text = _HIDDEN_BLOCK.sub(" ", markup)
    text = re.sub(r"<br\s*/?>|</p\s*>|</div\s*>", "\n", text, flags=re.I)
    text = html.unescape(_TAG.sub(" ", text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")


def html_to_text(markup: str) -> str:
    """
    Render HTML as readable plain text: scripts, styles and the head are
    dropped, blocks become lines, lists get "- " or "1. " markers, links
    become "text <url>", quotes get "> " and entities are decoded. Lines are
    separated by "\\n".
    """
    parser = _HTMLToText()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:
        return _crude_text(markup)
    return parser.out.result()


_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.I)


def _linkify(escaped_line: str) -> str:
    def link(match: re.Match[str]) -> str:
        url = match.group(0)
        href = url if "://" in url else "http://" + url
        return f'<a href="{href}">{url}</a>'
    return _URL.sub(link, escaped_line)


def text_to_html(text: str) -> str:
    """
    Render plain text as a small HTML document: characters are escaped, line
    breaks become <br>, runs of spaces are kept with &nbsp; and web addresses
    become links.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = []
    for line in text.split("\n"):
        escaped = html.escape(line, quote=True)
        escaped = _linkify(escaped)
        # Keep indentation and runs of spaces visible.
        escaped = re.sub(r"(?<= ) ", "&nbsp;", escaped)
        if escaped.startswith(" "):
            escaped = "&nbsp;" + escaped[1:]
        escaped = escaped.replace("\t", "&nbsp;&nbsp;&nbsp;&nbsp;")
        lines.append(escaped)
    body = "<br>\r\n".join(lines)
    return ("<html><head><meta http-equiv=\"Content-Type\" "
            "content=\"text/html; charset=utf-8\"></head>"
            f"<body>{body}</body></html>")
