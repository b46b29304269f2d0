"""Plain text from HTML for the ``:excerpt`` modifier of the ``fields`` parameter.

PocketBase parses the value as an HTML5 document (``golang.org/x/net/html``) and walks
the tree: text nodes are written with runs of ``\\t \\n \\f \\r`` and space collapsed,
elements of a few kinds (``head script style iframe svg img button form select`` ...)
are skipped with everything inside them, and every element that is not inline (``a b
br code em i span strong sub sup`` ...) puts one space before and after its content.
So ``<b>Hel</b>lo`` gives ``Hello``, ``a<br>b`` gives ``ab`` and ``<p>a</p><p>b</p>``
gives ``a b``. Entities are decoded, ``&nbsp;`` stays a no-break space.

The tree matters (``<title>`` first in a document goes to ``<head>``; ``<p>`` closes at
the next block; ``</div>`` with no open ``div`` is ignored; text inside ``<table>`` is
moved before it), so this module holds a compact HTML5 tokenizer and tree builder that
follow the specification's rules, as Go's parser does, for everything that changes which
text is kept and where spaces go. Attributes are read (to find where a tag ends) and
dropped, except as the identity of formatting elements.
"""

from __future__ import annotations

import functools
import html.entities
import re
from dataclasses import dataclass, field

# -- tokens ------------------------------------------------------------------------------

TEXT, START, END = 1, 2, 3
_RAW_TAGS = frozenset({"iframe", "noembed", "noframes", "noscript", "plaintext", "script",
                       "style", "textarea", "title", "xmp"})
_TAG_SPACE = " \n\r\t\f"
_LONGEST_LEGACY_ENTITY = 6
_ENTITIES = html.entities.html5


@dataclass
class HtmlToken:
    kind: int
    data: str = ""
    attrs: tuple[tuple[str, str], ...] = ()
    self_closing: bool = False


def _numeric_reference(code: int) -> str:
    if 0x80 <= code <= 0x9F:
        try:
            return bytes([code]).decode("cp1252")
        except UnicodeDecodeError:
            return chr(code)
    if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        return "\ufffd"
    return chr(code)


def unescape(text: str) -> str:
    """Character references decoded as in HTML text (not attribute values)."""
    if "&" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        amp = text.find("&", i)
        if amp < 0:
            out.append(text[i:])
            break
        out.append(text[i:amp])
        i = amp
        rest = text[amp:]
        if len(rest) <= 1:
            out.append("&")
            i += 1
            continue
        if rest[1] == "#":
            if len(rest) <= 2:
                out.append("&")
                i += 1
                continue
            j = 2
            hexa = rest[j] in "xX"
            if hexa:
                j += 1
            digits_start = j
            digits = "0123456789abcdefABCDEF" if hexa else "0123456789"
            while j < len(rest) and rest[j] in digits:
                j += 1
            number = rest[digits_start:j]
            if j < len(rest) and rest[j] == ";":
                j += 1
            if not number:
                out.append("&")
                i += 1
                continue
            out.append(_numeric_reference(int(number, 16 if hexa else 10)))
            i += j
            continue
        j = 1
        while j < len(rest) and rest[j].isascii() and rest[j].isalnum():
            j += 1
        if j < len(rest) and rest[j] == ";":
            j += 1
        name = rest[1:j]
        if name and name in _ENTITIES:
            out.append(_ENTITIES[name])
            i += j
            continue
        for k in range(min(len(name) - 1, _LONGEST_LEGACY_ENTITY), 1, -1):
            if name[:k] in _ENTITIES:
                out.append(_ENTITIES[name[:k]])
                i += k + 1
                break
        else:
            out.append(rest[:j])
            i += j
    return "".join(out)


class Tokenizer:
    """Tokens of an HTML text, split as ``golang.org/x/net/html`` splits them."""

    def __init__(self, text: str):
        self.s = text.replace("\r\n", "\n").replace("\r", "\n")
        self.i = 0
        self.raw_tag = ""
        self.allow_cdata = False

    def next_is_not_raw_text(self) -> None:
        self.raw_tag = ""

    def _raw_text(self) -> HtmlToken | None:
        tag, s, start = self.raw_tag, self.s, self.i
        self.raw_tag = ""
        if tag == "plaintext":
            self.i = len(s)
        else:
            i = start
            while True:
                j = s.find("</", i)
                if j < 0:
                    self.i = len(s)
                    break
                after = j + 2 + len(tag)
                if s[j + 2:after].lower() == tag and after < len(s) and s[after] in " \n\r\t\f/>":
                    self.i = j
                    break
                i = j + 2
        data = s[start:self.i]
        if not data:
            return None
        if tag in ("textarea", "title"):
            data = unescape(data)
        return HtmlToken(TEXT, data.replace("\x00", "\ufffd"))

    def next(self) -> HtmlToken | None:
        """The next token; None at the end (or inside a tag the text never closes)."""
        while True:
            if self.raw_tag:
                token = self._raw_text()
                if token is not None:
                    return token
            s, n, start = self.s, len(self.s), self.i
            if start >= n:
                return None
            i = start
            while True:
                j = s.find("<", i)
                if j < 0 or j + 1 >= n:
                    self.i = n
                    return HtmlToken(TEXT, unescape(s[start:]))
                c = s[j + 1]
                if (c.isascii() and c.isalpha()) or c in "/!?":
                    break
                i = j + 1
            if j > start:
                self.i = j
                return HtmlToken(TEXT, unescape(s[start:j]))
            if c == "/":
                if j + 2 >= n:
                    self.i = n
                    return HtmlToken(TEXT, s[j:])
                c2 = s[j + 2]
                if c2 == ">":
                    self.i = j + 3
                    continue
                if c2.isascii() and c2.isalpha():
                    token = self._tag(j + 2, END)
                    if token is None:
                        return None
                    return token
                self._until_close_angle(j + 2)
                continue
            if c == "!":
                token = self._markup_declaration(j + 2)
                if token is not None:
                    return token
                continue
            if c == "?":
                self._until_close_angle(j + 1)
                continue
            return self._tag(j + 1, START)

    def _until_close_angle(self, i: int) -> None:
        close = self.s.find(">", i)
        self.i = len(self.s) if close < 0 else close + 1

    def _markup_declaration(self, i: int) -> HtmlToken | None:
        s = self.s
        if s.startswith("--", i):
            self._comment(i + 2)
            return None
        if s[i:i + 7].lower() == "doctype":
            self._until_close_angle(i + 7)
            return None
        if self.allow_cdata and s.startswith("[CDATA[", i):
            close = s.find("]]>", i + 7)
            end = len(s) if close < 0 else close
            self.i = len(s) if close < 0 else close + 3
            return HtmlToken(TEXT, s[i + 7:end].replace("\x00", "\ufffd"))
        self._until_close_angle(i)
        return None

    def _comment(self, i: int) -> None:
        s, n = self.s, len(self.s)
        dashes, beginning = 0, True
        while i < n:
            c = s[i]
            i += 1
            if c == "-":
                dashes += 1
                continue
            if c == ">" and (dashes >= 2 or beginning):
                self.i = i
                return
            if c == "!" and dashes >= 2:
                if i >= n:
                    break
                if s[i] == ">":
                    self.i = i + 1
                    return
                if s[i] == "-":
                    i += 1
                    dashes, beginning = 1, False
                    continue
            dashes, beginning = 0, False
        self.i = n

    def _tag(self, i: int, kind: int) -> HtmlToken | None:
        """A start or end tag whose name begins at ``i``; None when the text ends inside it."""
        s, n = self.s, len(self.s)
        name_start = i
        while i < n and s[i] not in _TAG_SPACE and s[i] not in "/>":
            i += 1
        if i >= n:
            self.i = n
            return None
        name = s[name_start:i].lower()
        attrs: list[tuple[str, str]] = []
        while True:
            while i < n and s[i] in _TAG_SPACE:
                i += 1
            if i >= n:
                self.i = n
                return None
            if s[i] == ">":
                i += 1
                break
            # attribute name (a leading "=" is part of it)
            key_start = i
            i += 1
            while i < n and s[i] not in _TAG_SPACE and s[i] not in "/>=":
                i += 1
            if s[key_start] == "/" and i == key_start + 1:
                key = ""
                i = key_start + 1
            else:
                key = s[key_start:i].lower()
            value = ""
            j = i
            while j < n and s[j] in _TAG_SPACE:
                j += 1
            if j < n and s[j] == "=" and key:
                j += 1
                while j < n and s[j] in _TAG_SPACE:
                    j += 1
                if j >= n:
                    self.i = n
                    return None
                quote = s[j]
                if quote in "'\"":
                    close = s.find(quote, j + 1)
                    if close < 0:
                        self.i = n
                        return None
                    value, i = s[j + 1:close], close + 1
                elif quote == ">":
                    i = j
                else:
                    k = j
                    while k < n and s[k] not in _TAG_SPACE and s[k] != ">":
                        k += 1
                    value, i = s[j:k], k
            if key:
                attrs.append((key, unescape(value)))
        self.i = i
        self_closing = s[i - 2] == "/" if i >= 2 else False
        if kind == START and name in _RAW_TAGS:
            self.raw_tag = name
        return HtmlToken(kind, name, tuple(attrs), self_closing)


# -- the tree --------------------------------------------------------------------------

@dataclass(eq=False)
class Node:
    tag: str = ""  # "" for a text node or the document
    text: str = ""
    ns: str = "html"
    attrs: tuple[tuple[str, str], ...] = ()
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)



def _text_node(text: str) -> Node:
    return Node(text=text, ns="#text")


_SPECIAL = frozenset({
    "address", "applet", "area", "article", "aside", "base", "basefont", "bgsound",
    "blockquote", "body", "br", "button", "caption", "center", "col", "colgroup", "dd",
    "details", "dir", "div", "dl", "dt", "embed", "fieldset", "figcaption", "figure", "footer",
    "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header",
    "hgroup", "hr", "html", "iframe", "img", "input", "keygen", "li", "link", "listing",
    "main", "marquee", "menu", "meta", "nav", "noembed", "noframes", "noscript", "object",
    "ol", "p", "param", "plaintext", "pre", "script", "search", "section", "select", "source",
    "style", "summary", "table", "tbody", "td", "template", "textarea", "tfoot", "th", "thead",
    "title", "tr", "track", "ul", "wbr", "xmp",
})
_FORMATTING = frozenset({
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt",
    "u",
})
_SCOPE = frozenset({
    "applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", "select",
})
_FOREIGN_SCOPE = frozenset({("math", "mi"), ("math", "mo"), ("math", "mn"), ("math", "ms"),
                            ("math", "mtext"), ("math", "annotation-xml"),
                            ("svg", "foreignobject"), ("svg", "desc"), ("svg", "title")})
_IMPLIED_END = frozenset({
    "dd", "dt", "li", "optgroup", "option", "p", "rb", "rp", "rt", "rtc",
})
_CLOSES_P = frozenset({
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div",
    "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "main", "menu",
    "nav", "ol", "p", "search", "section", "summary", "ul",
})
_HEADINGS = frozenset({
    "h1", "h2", "h3", "h4", "h5", "h6",
})
_HEAD_TAGS = frozenset({
    "base", "basefont", "bgsound", "link", "meta", "noframes", "script", "style", "template",
    "title", "noscript",
})
_VOID = frozenset({
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "hr", "img", "input",
    "keygen", "link", "meta", "param", "source", "track", "wbr",
})
_TABLE_CONTEXT = frozenset({
    "table", "tbody", "tfoot", "thead", "tr",
})
_BREAKOUT = frozenset({
    "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em",
    "embed", "h1", "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li", "listing",
    "menu", "meta", "nobr", "ol", "p", "pre", "ruby", "s", "small", "span", "strong", "strike",
    "sub", "sup", "table", "tt", "u", "ul", "var",
})
_MARKER = Node(tag="#marker")
_NOT_FRAMESET = frozenset({
    "pre", "listing", "li", "dd", "dt", "button", "applet", "marquee", "object", "table",
    "area", "br", "embed", "img", "keygen", "wbr", "input", "hr", "textarea", "xmp", "iframe",
    "select",
})
_BLOCKS_CLOSED_BY_END = frozenset({
    "address", "article", "aside", "blockquote", "button", "center", "details", "dialog",
    "dir", "div", "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup",
    "listing", "main", "menu", "nav", "ol", "pre", "search", "section", "select", "summary",
    "ul",
})
_MAX_OPEN = 512


class TooDeep(Exception):
    """More than 512 elements open at once: PocketBase's parser gives up."""


def _hidden(attrs: tuple[tuple[str, str], ...]) -> bool:
    return any(k == "type" and v.lower() == "hidden" for k, v in attrs)


def _special(node: Node) -> bool:
    if node.ns == "html":
        return node.tag in _SPECIAL
    return (node.ns, node.tag) in _FOREIGN_SCOPE


def _is(node: Node, *tags: str) -> bool:
    return node.ns == "html" and node.tag in tags


def _integration_point(node: Node) -> bool:
    """An SVG ``foreignObject``/``desc``/``title``, or a MathML ``annotation-xml`` holding
    HTML: HTML start tags and text inside it are HTML again."""
    if node.ns == "svg":
        return node.tag in ("foreignobject", "desc", "title")
    return node.ns == "math" and node.tag == "annotation-xml" and any(
        k == "encoding" and v.lower() in ("text/html", "application/xhtml+xml") for k, v in node.attrs)


class TreeBuilder:
    """HTML5 tree construction as Go's ``x/net/html`` does it (its deviations from the
    specification included: no "in select" mode, no "in table text" buffering), reduced
    to what changes where text lands: no comments, no doctype (so quirks mode), and
    ``<template>`` contents skipped."""

    def __init__(self, text: str):
        self.tokens = Tokenizer(text)
        self.doc = Node(tag="#document")
        self.html = self._append(self.doc, Node(tag="html"))
        self.head = self._append(self.html, Node(tag="head"))
        self.stack: list[Node] = [self.html]
        self.formatting: list[Node] = []
        self.form: Node | None = None
        self.mode = "head"  # head, body, table, caption, colgroup, tbody, row, cell
        self.done = False
        self.frameset_ok = True
        self.foster = False
        self.newline_after: Node | None = None  # a <pre>/<listing>/<textarea> just opened

    # tree helpers -----------------------------------------------------------------
    @staticmethod
    def _append(parent: Node, child: Node) -> Node:
        child.parent = parent
        parent.children.append(child)
        return child

    @staticmethod
    def _detach(node: Node) -> None:
        if node.parent is not None:
            node.parent.children.remove(node)
            node.parent = None

    @property
    def current(self) -> Node:
        return self.stack[-1]

    def _foster_place(self) -> tuple[Node, int | None]:
        for k in range(len(self.stack) - 1, -1, -1):
            if self.stack[k].tag == "table":
                table = self.stack[k]
                if table.parent is not None:
                    return table.parent, table.parent.children.index(table)
                return self.stack[k - 1], None
        return self.stack[0], None

    def _place(self) -> tuple[Node, int | None]:
        """Where a new node goes: (parent, index or None to append), fostering included."""
        if self.foster and self.current.tag in _TABLE_CONTEXT:
            return self._foster_place()
        return self.current, None

    @staticmethod
    def _put(node: Node, place: tuple[Node, int | None]) -> Node:
        parent, index = place
        node.parent = parent
        if index is None:
            parent.children.append(node)
        else:
            parent.children.insert(index, node)
        return node

    def _insert(self, tag: str, attrs: tuple[tuple[str, str], ...] = (), ns: str = "html") -> Node:
        node = self._put(Node(tag=tag, attrs=attrs, ns=ns), self._place())
        self.stack.append(node)
        if len(self.stack) > _MAX_OPEN:
            raise TooDeep
        return node

    def _insert_void(self, tag: str, attrs: tuple[tuple[str, str], ...] = ()) -> None:
        self._insert(tag, attrs)
        self.stack.pop()

    def _insert_text(self, text: str) -> None:
        if not text:
            return
        parent, index = self._place()
        siblings = parent.children
        at = len(siblings) if index is None else index
        if at > 0 and siblings[at - 1].ns == "#text":
            siblings[at - 1].text += text
            return
        self._put(_text_node(text), (parent, at))

    def _scope_index(self, tags: frozenset[str] | str, kind: str = "default") -> int:
        """The stack index of the nearest open element named in ``tags`` that is in
        scope (``kind`` default, list, button or table); -1 when there is none."""
        wanted = frozenset({tags}) if isinstance(tags, str) else tags
        for i in range(len(self.stack) - 1, -1, -1):
            node = self.stack[i]
            if node.ns == "html":
                if node.tag in wanted:
                    return i
                if kind == "table":
                    if node.tag in ("html", "table", "template"):
                        return -1
                    continue
                if (kind == "list" and node.tag in ("ol", "ul")) or (kind == "button" and node.tag == "button"):
                    return -1
                if node.tag in _SCOPE:
                    return -1
            elif kind != "table" and (node.ns, node.tag) in _FOREIGN_SCOPE:
                return -1
        return -1

    def _in_scope(self, tags: frozenset[str] | str, kind: str = "default") -> bool:
        return self._scope_index(tags, kind) >= 0

    def _pop_until(self, tags: frozenset[str] | str, kind: str = "default") -> bool:
        i = self._scope_index(tags, kind)
        if i < 0:
            return False
        del self.stack[i:]
        return True

    def _implied_end_tags(self, exception: str = "") -> None:
        while len(self.stack) > 1 and self.current.tag in _IMPLIED_END and self.current.tag != exception:
            self.stack.pop()

    def _clear_back(self, *tags: str) -> None:
        while len(self.stack) > 1 and self.current.tag not in (*tags, "html", "template"):
            self.stack.pop()

    def _reset_mode(self) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            tag = self.stack[i].tag
            if tag in ("td", "th") and i:
                self.mode = "cell"
            elif tag == "tr":
                self.mode = "row"
            elif tag in ("tbody", "thead", "tfoot"):
                self.mode = "tbody"
            elif tag in ("caption", "colgroup", "table", "body"):
                self.mode = tag
            elif tag == "html" or i == 0:
                self.mode = "body"
            else:
                continue
            return

    # active formatting elements ---------------------------------------------------
    def _reconstruct(self) -> None:
        af = self.formatting
        if not af or af[-1] is _MARKER or af[-1] in self.stack:
            return
        i = len(af) - 1
        while i > 0 and af[i - 1] is not _MARKER and af[i - 1] not in self.stack:
            i -= 1
        for j in range(i, len(af)):
            af[j] = self._insert(af[j].tag, af[j].attrs)

    def _push_formatting(self, node: Node) -> None:
        same = 0
        key = sorted(node.attrs)
        for k in range(len(self.formatting) - 1, -1, -1):
            other = self.formatting[k]
            if other is _MARKER:
                break
            if other.tag == node.tag and sorted(other.attrs) == key:
                same += 1
                if same >= 3:
                    del self.formatting[k]
        self.formatting.append(node)

    def _clear_to_marker(self) -> None:
        while self.formatting:
            if self.formatting.pop() is _MARKER:
                return

    def _adoption(self, tag: str) -> None:
        """The adoption agency algorithm (misnested formatting elements)."""
        cur = self.current
        if cur.tag == tag and cur not in self.formatting:
            self.stack.pop()
            return
        for _ in range(8):
            fe = None
            for k in range(len(self.formatting) - 1, -1, -1):
                node = self.formatting[k]
                if node is _MARKER:
                    break
                if node.tag == tag:
                    fe = node
                    break
            if fe is None:
                self._end_other(tag)
                return
            if fe not in self.stack:
                self.formatting.remove(fe)
                return
            if not self._in_scope(tag):
                return
            fe_index = self.stack.index(fe)
            furthest = next((n for n in self.stack[fe_index:] if _special(n)), None)
            if furthest is None:
                del self.stack[fe_index:]
                self.formatting.remove(fe)
                return
            common = self.stack[fe_index - 1]
            bookmark = self.formatting.index(fe)
            last = furthest
            x = self.stack.index(furthest)
            inner = 0
            while True:
                inner += 1
                x -= 1
                node = self.stack[x]
                if node is fe:
                    break
                if inner > 3 and node in self.formatting:
                    at = self.formatting.index(node)
                    self.formatting.remove(node)
                    if at <= bookmark:
                        bookmark -= 1
                    continue
                if node not in self.formatting:
                    del self.stack[x]
                    continue
                clone = Node(tag=node.tag, attrs=node.attrs)
                self.formatting[self.formatting.index(node)] = clone
                self.stack[x] = clone
                if last is furthest:
                    bookmark = self.formatting.index(clone) + 1
                self._detach(last)
                self._append(clone, last)
                last = clone
            self._detach(last)
            if common.tag in _TABLE_CONTEXT:
                place = self._foster_place()
                self._put(last, place)
            else:
                self._append(common, last)
            new = Node(tag=fe.tag, attrs=fe.attrs)
            for child in furthest.children:
                child.parent = new
            new.children, furthest.children = furthest.children, []
            self._append(furthest, new)
            if self.formatting.index(fe) < bookmark:
                bookmark -= 1
            self.formatting.remove(fe)
            self.formatting.insert(bookmark, new)
            self.stack.remove(fe)
            self.stack.insert(self.stack.index(furthest) + 1, new)

    # the token loop ---------------------------------------------------------------
    def build(self) -> Node:
        while not self.done:
            self.tokens.allow_cdata = self.current.ns != "html"
            token = self.tokens.next()
            if token is None:
                break
            self.process(token)
        return self.doc

    def process(self, token: HtmlToken) -> None:
        if self._foreign(token):
            self._foreign_token(token)
        else:
            self._by_mode(token)

    def _foreign(self, token: HtmlToken) -> bool:
        node = self.current
        if node.ns == "html":
            return False
        if node.ns == "math" and node.tag in ("mi", "mo", "mn", "ms", "mtext"):
            if token.kind == TEXT or (token.kind == START and token.data not in ("mglyph", "malignmark")):
                return False
        if node.ns == "math" and node.tag == "annotation-xml" and token.kind == START and token.data == "svg":
            return False
        return not (_integration_point(node) and token.kind in (START, TEXT))

    def _foreign_token(self, token: HtmlToken) -> None:
        if token.kind == TEXT:
            if self.frameset_ok and token.data.lstrip(" \t\r\n\f\x00"):
                self.frameset_ok = False
            self._insert_text(token.data.replace("\x00", "\ufffd"))
            return
        if token.kind == START:
            breakout = token.data in _BREAKOUT or (
                token.data == "font" and any(k in ("color", "face", "size") for k, _ in token.attrs))
            if breakout:
                for i in range(len(self.stack) - 1, -1, -1):
                    n = self.stack[i]
                    if n.ns == "html" or _integration_point(n) or (
                            n.ns == "math" and n.tag in ("mi", "mo", "mn", "ms", "mtext")):
                        del self.stack[i + 1:]
                        break
                self._by_mode(token)
                return
            self._insert(token.data, token.attrs, self.current.ns)
            self.tokens.next_is_not_raw_text()  # no raw text in foreign content (<svg><title>)
            if token.self_closing:
                self.stack.pop()
            return
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].tag.lower() == token.data:
                del self.stack[i:]
                return
            if i > 0 and self.stack[i - 1].ns == "html":
                break
        self._by_mode(token)

    def _by_mode(self, token: HtmlToken) -> None:
        handler = {
            "head": self._head_token, "body": self._body_token, "table": self._table_token,
            "caption": self._caption_token, "colgroup": self._colgroup_token,
            "tbody": self._tbody_token, "row": self._row_token, "cell": self._cell_token,
        }[self.mode]
        handler(token)

    def _implied(self, kind: int, name: str) -> None:
        self.process(HtmlToken(kind, name))

    # before <body> --------------------------------------------------------------------
    def _head_token(self, token: HtmlToken) -> None:
        if token.kind == TEXT:
            rest = token.data.lstrip(" \t\r\n\f")
            if rest:
                self._start_body()
                self._by_mode(HtmlToken(TEXT, rest))
            return
        name = token.data
        if token.kind == START:
            if name in ("html", "head"):
                return
            if name == "body":
                self._start_body()
                self.frameset_ok = False
                return
            if name == "frameset":
                self.done = True  # a frameset document has no body text
                return
            if name in _HEAD_TAGS:
                self._append(self.head, Node(tag=name))  # everything in <head> is skipped
                if self.tokens.raw_tag:
                    self.tokens.next()  # its raw text
                elif name == "template":
                    self._skip_template()
                return
            self._start_body()
            self._by_mode(token)
            return
        if name in ("body", "html", "br"):
            self._start_body()
            self._by_mode(token)

    def _skip_template(self) -> None:
        depth = 1
        while depth:
            token = self.tokens.next()
            if token is None:
                return
            if token.kind != TEXT and token.data == "template":
                depth += 1 if token.kind == START else -1

    def _start_body(self) -> None:
        self.mode = "body"
        self.stack.append(self._append(self.html, Node(tag="body")))

    # in body --------------------------------------------------------------------------
    def _body_token(self, token: HtmlToken) -> None:
        if token.kind == TEXT:
            data = token.data
            opened, self.newline_after = self.newline_after, None
            if opened is not None and opened is self.current and not opened.children and data.startswith("\n"):
                data = data[1:]
            if self.current.tag in _RAW_TAGS:  # the text of a raw text element
                self._insert_text(data)
                return
            data = data.replace("\x00", "")
            if data:
                self._reconstruct()
                self._insert_text(data)
                if data.lstrip(" \t\r\n\f"):
                    self.frameset_ok = False
            return
        self.newline_after = None
        if token.kind == START:
            self._body_start(token)
        else:
            self._body_end(token.data)

    def _body_start(self, token: HtmlToken) -> None:
        name, attrs = token.data, token.attrs
        if name in _NOT_FRAMESET and not (name == "input" and _hidden(attrs)):
            self.frameset_ok = False
        if name == "image":
            name = "img"
        if name in ("html", "head", "frame", "caption", "col", "colgroup", "tbody", "td",
                    "tfoot", "th", "thead", "tr"):
            return
        if name == "body":
            if len(self.stack) > 1 and _is(self.stack[1], "body"):
                self.frameset_ok = False
            return
        if name == "frameset":
            if self.frameset_ok and len(self.stack) > 1 and _is(self.stack[1], "body"):
                self._detach(self.stack[1])  # the document becomes a frameset: no body text
                self.done = True
            return
        if name in _HEAD_TAGS:
            if name == "template":
                self._insert_void(name, attrs)
                self._skip_template()
            elif name in _VOID:
                self._insert_void(name, attrs)
            else:
                self._insert(name, attrs)
            return
        if name in _CLOSES_P:
            self._pop_until("p", "button")
            self._insert(name, attrs)
            return
        if name in _HEADINGS:
            self._pop_until("p", "button")
            if _is(self.current, *_HEADINGS):
                self.stack.pop()
            self._insert(name, attrs)
            return
        if name in ("pre", "listing"):
            self._pop_until("p", "button")
            self.newline_after = self._insert(name, attrs)
            return
        if name == "form":
            if self.form is not None:
                return
            self._pop_until("p", "button")
            self.form = self._insert(name, attrs)
            return
        if name in ("li", "dd", "dt"):
            group = ("li",) if name == "li" else ("dd", "dt")
            for i in range(len(self.stack) - 1, -1, -1):
                node = self.stack[i]
                if node.tag in group:
                    del self.stack[i:]
                    break
                if node.tag in ("address", "div", "p") or not _special(node):
                    continue
                break
            self._pop_until("p", "button")
            self._insert(name, attrs)
            return
        if name == "plaintext":
            self._pop_until("p", "button")
            self._insert(name, attrs)
            return
        if name == "button":
            if self._in_scope("button"):
                self._implied_end_tags()
                self._pop_until("button")
            self._reconstruct()
            self._insert(name, attrs)
            return
        if name == "a":
            for k in range(len(self.formatting) - 1, -1, -1):
                node = self.formatting[k]
                if node is _MARKER:
                    break
                if node.tag == "a":
                    self._adoption("a")
                    if node in self.stack:
                        self.stack.remove(node)
                    if node in self.formatting:
                        self.formatting.remove(node)
                    break
            self._reconstruct()
            self._push_formatting(self._insert(name, attrs))
            return
        if name == "nobr":
            self._reconstruct()
            if self._in_scope("nobr"):
                self._adoption("nobr")
                self._reconstruct()
            self._push_formatting(self._insert(name, attrs))
            return
        if name in _FORMATTING:
            self._reconstruct()
            self._push_formatting(self._insert(name, attrs))
            return
        if name in ("applet", "marquee", "object"):
            self._reconstruct()
            self._insert(name, attrs)
            self.formatting.append(_MARKER)
            return
        if name == "table":
            # no doctype means quirks mode, where <table> leaves an open <p> open
            self._insert(name, attrs)
            self.mode = "table"
            return
        if name in ("area", "br", "embed", "img", "keygen", "wbr"):
            self._reconstruct()
            self._insert_void(name, attrs)
            return
        if name == "input":
            self._pop_until("select")
            self._reconstruct()
            self._insert_void(name, attrs)
            return
        if name in ("param", "source", "track"):
            self._insert_void(name, attrs)
            return
        if name == "hr":
            if self._in_scope("p", "button"):
                self._implied_end_tags("p")
                self._pop_until("p")
            if self._in_scope("select"):
                self._implied_end_tags()
            self._insert_void(name, attrs)
            return
        if name == "textarea":
            self.newline_after = self._insert(name, attrs)
            return
        if name == "xmp":
            self._pop_until("p", "button")
            self._reconstruct()
            self._insert(name, attrs)
            return
        if name in ("iframe", "noembed", "noscript"):
            self._insert(name, attrs)
            return
        if name == "select":
            if self._pop_until("select"):
                return
            self._reconstruct()
            self._insert(name, attrs)
            return
        if name in ("option", "optgroup"):
            if self._in_scope("select"):
                self._implied_end_tags("optgroup" if name == "option" else "")
            elif _is(self.current, "option"):
                self.stack.pop()
            self._reconstruct()
            self._insert(name, attrs)
            return
        if name in ("rb", "rtc", "rp", "rt"):
            if self._in_scope("ruby"):
                self._implied_end_tags("rtc" if name in ("rp", "rt") else "")
            self._insert(name, attrs)
            return
        if name in ("math", "svg"):
            self._reconstruct()
            self._insert(name, attrs, name)
            if token.self_closing:
                self.stack.pop()
            return
        self._reconstruct()
        self._insert(name, attrs)

    def _body_end(self, name: str) -> None:
        if name in ("body", "html", "template"):
            return
        if name in _BLOCKS_CLOSED_BY_END:
            if self._in_scope(name):
                self._implied_end_tags()
                self._pop_until(name)
            return
        if name == "form":
            node, self.form = self.form, None
            i = self._scope_index("form")
            if node is None or i < 0 or self.stack[i] is not node:
                return
            self._implied_end_tags()
            self.stack.remove(node)
            return
        if name == "p":
            if not self._in_scope("p", "button"):
                self._implied(START, "p")  # an empty <p> (which may close an <svg>)
            self._pop_until("p", "button")
            return
        if name == "li":
            self._pop_until("li", "list")
            return
        if name in ("dd", "dt"):
            self._pop_until(name)
            return
        if name in _HEADINGS:
            self._pop_until(_HEADINGS)
            return
        if name in _FORMATTING:
            self._adoption(name)
            return
        if name in ("applet", "marquee", "object"):
            if self._pop_until(name):
                self._clear_to_marker()
            return
        if name == "br":
            self._implied(START, "br")  # </br> is a <br>
            return
        self._end_other(name)

    def _end_other(self, name: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            node = self.stack[i]
            if _is(node, name):
                del self.stack[i:]
                return
            if _special(node):
                return

    # tables ---------------------------------------------------------------------------
    def _table_token(self, token: HtmlToken) -> None:
        name, kind = token.data, token.kind
        if kind == TEXT:
            token = HtmlToken(TEXT, token.data.replace("\x00", ""))
            if self.current.tag in _TABLE_CONTEXT and not token.data.strip(" \t\r\n\f"):
                self._insert_text(token.data)
                return
        elif kind == START:
            if name == "caption":
                self._clear_back("table")
                self.formatting.append(_MARKER)
                self._insert(name, token.attrs)
                self.mode = "caption"
                return
            if name == "colgroup":
                self._clear_back("table")
                self._insert(name, token.attrs)
                self.mode = "colgroup"
                return
            if name == "col":
                self._implied(START, "colgroup")
                self.process(token)
                return
            if name in ("tbody", "tfoot", "thead"):
                self._clear_back("table")
                self._insert(name, token.attrs)
                self.mode = "tbody"
                return
            if name in ("td", "th", "tr"):
                self._implied(START, "tbody")
                self.process(token)
                return
            if name == "table":
                if self._pop_until("table", "table"):
                    self._reset_mode()
                    self.process(token)
                return
            if name in ("style", "script", "template"):
                self._body_start(token)
                return
            if name == "input" and _hidden(token.attrs):
                self._insert_void(name, token.attrs)
                return
            if name == "form":
                if self.form is None:
                    self.form = self._insert(name, token.attrs)
                    self.stack.pop()
                return
        else:
            if name == "table":
                if self._pop_until("table", "table"):
                    self._reset_mode()
                return
            if name in ("body", "caption", "col", "colgroup", "html", "tbody", "td", "tfoot",
                        "th", "thead", "tr", "template"):
                return
        self.foster = True
        try:
            self._body_token(token)
        finally:
            self.foster = False

    def _caption_token(self, token: HtmlToken) -> None:
        name, kind = token.data, token.kind
        if (kind == START and name in ("caption", "col", "colgroup", "tbody", "td", "tfoot", "thead", "tr")) or (
                kind == END and name == "table"):
            if self._pop_until("caption", "table"):
                self._clear_to_marker()
                self.mode = "table"
                self.process(token)
            return
        if kind == END and name == "caption":
            if self._pop_until("caption", "table"):
                self._clear_to_marker()
                self.mode = "table"
            return
        if kind == END and name in ("body", "col", "colgroup", "html", "tbody", "td", "tfoot", "th", "thead", "tr"):
            return
        self._body_token(token)

    def _colgroup_token(self, token: HtmlToken) -> None:
        name, kind = token.data, token.kind
        if kind == TEXT:
            rest = token.data.lstrip(" \t\r\n\f")
            if len(rest) < len(token.data):
                self._insert_text(token.data[:len(token.data) - len(rest)])
                if not rest:
                    return
                token = HtmlToken(TEXT, rest)
        elif kind == START:
            if name == "html":
                self._body_token(token)
                return
            if name == "col":
                self._insert_void(name, token.attrs)
                return
            if name == "template":
                self._body_start(token)
                return
        else:
            if name == "colgroup":
                if _is(self.current, "colgroup"):
                    self.stack.pop()
                    self.mode = "table"
                return
            if name in ("col", "template"):
                return
        if not _is(self.current, "colgroup"):
            return
        self.stack.pop()
        self.mode = "table"
        self.process(token)

    def _tbody_token(self, token: HtmlToken) -> None:
        name, kind = token.data, token.kind
        if kind == START:
            if name == "tr":
                self._clear_back("tbody", "tfoot", "thead")
                self._insert(name, token.attrs)
                self.mode = "row"
                return
            if name in ("td", "th"):
                self._implied(START, "tr")
                self.process(token)
                return
            if name in ("caption", "col", "colgroup", "tbody", "tfoot", "thead"):
                if self._pop_until(frozenset({"tbody", "thead", "tfoot"}), "table"):
                    self.mode = "table"
                    self.process(token)
                return
        elif kind == END:
            if name in ("tbody", "tfoot", "thead"):
                if self._in_scope(name, "table"):
                    self._clear_back("tbody", "tfoot", "thead")
                    self.stack.pop()
                    self.mode = "table"
                return
            if name == "table":
                if self._pop_until(frozenset({"tbody", "thead", "tfoot"}), "table"):
                    self.mode = "table"
                    self.process(token)
                return
            if name in ("body", "caption", "col", "colgroup", "html", "td", "th", "tr"):
                return
        self._table_token(token)

    def _row_token(self, token: HtmlToken) -> None:
        name, kind = token.data, token.kind
        if kind == START:
            if name in ("td", "th"):
                self._clear_back("tr")
                self._insert(name, token.attrs)
                self.formatting.append(_MARKER)
                self.mode = "cell"
                return
            if name in ("caption", "col", "colgroup", "tbody", "tfoot", "thead", "tr"):
                if self._in_scope("tr", "table"):
                    self._clear_back("tr")
                    self.stack.pop()
                    self.mode = "tbody"
                    self.process(token)
                return
        elif kind == END:
            if name in ("tr", "table"):
                if self._in_scope("tr", "table"):
                    self._clear_back("tr")
                    self.stack.pop()
                    self.mode = "tbody"
                    if name == "table":
                        self.process(token)
                return
            if name in ("tbody", "tfoot", "thead"):
                if self._in_scope(name, "table") and self._in_scope("tr", "table"):
                    self._clear_back("tr")
                    self.stack.pop()
                    self.mode = "tbody"
                    self.process(token)
                return
            if name in ("body", "caption", "col", "colgroup", "html", "td", "th"):
                return
        self._table_token(token)

    def _cell_token(self, token: HtmlToken) -> None:
        name, kind = token.data, token.kind
        if kind == START and name in ("caption", "col", "colgroup", "tbody", "td", "tfoot", "th", "thead", "tr"):
            if self._pop_until(frozenset({"td", "th"}), "table"):
                self._clear_to_marker()
                self.mode = "row"
                self.process(token)
            return
        if kind == END:
            if name in ("td", "th"):
                if self._pop_until(name, "table"):
                    self._clear_to_marker()
                    self.mode = "row"
                return
            if name in ("body", "caption", "col", "colgroup", "html"):
                return
            if name in ("table", "tbody", "tfoot", "thead", "tr"):
                if not self._in_scope(name, "table"):
                    return
                if self._pop_until(frozenset({"td", "th"}), "table"):
                    self._clear_to_marker()
                self.mode = "row"
                self.process(token)
                return
        self._body_token(token)


@functools.lru_cache(maxsize=8)
def parse(text: str) -> Node:
    """The document tree of ``text``; TooDeep past 512 open elements. The last few trees
    are kept (and never changed): ``fields`` often asks several excerpts of one value."""
    return TreeBuilder(text).build()


# -- the excerpt ------------------------------------------------------------------------

_EXCLUDED = frozenset({
    "head", "style", "script", "iframe", "embed", "applet", "object", "svg", "img", "picture",
    "dialog", "template", "button", "form", "textarea", "input", "select", "option",
})
_INLINE = frozenset({
    "a", "abbr", "acronym", "b", "bdo", "big", "br", "button", "cite", "code", "em", "i",
    "label", "q", "small", "span", "strong", "strike", "sub", "sup", "time",
})
_COLLAPSE = re.compile(r"[\t\n\f\r ]+")
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def excerpt(text: str, limit: int, ellipsis: bool) -> str:
    """About ``limit`` characters of plain text from the HTML ``text``; TooDeep when it
    nests more than 512 elements."""
    out: list[str] = []
    size = 0
    prev_space = False

    def write(piece: str) -> None:
        nonlocal size
        out.append(piece)
        size += len(piece.encode("utf-8"))

    # Iterative walk: (node, index of the next child, whether that child is a block).
    stack: list[tuple[Node, int, bool]] = [(parse(text), 0, False)]
    while stack:
        node, index, pending_block = stack.pop()
        if pending_block and not prev_space:  # the space after a finished block child
            write(" ")
            prev_space = True
        if index == 0:
            if node.ns == "#text":
                piece = _COLLAPSE.sub(" ", node.text)
                if prev_space:
                    piece = piece.lstrip(" ")
                if piece:
                    prev_space = piece.endswith(" ")
                    write(piece)
            if size > limit + 2:
                continue  # enough text: the children are not visited
        while index < len(node.children):
            child = node.children[index]
            index += 1
            if child.ns != "#text" and child.tag in _EXCLUDED:
                continue
            block = child.ns != "#text" and child.tag not in _INLINE
            if block and not prev_space:
                write(" ")
                prev_space = True
            stack.append((node, index, block))
            stack.append((child, 0, False))
            break
    result = "".join(out).strip(_GO_SPACE)
    if len(result.encode("utf-8")) > limit and len(result) > limit:
        result = result[:limit].strip(_GO_SPACE)
        if ellipsis:
            result += "..."
    return result
