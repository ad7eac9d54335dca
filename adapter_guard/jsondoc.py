"""Read adapter_config.json, and edit it without rewriting it.

``load`` parses with the C ``json`` module (the lint path reads about a
thousand configs per run, so that is the fast path). Source positions are
only needed to point at lines and to edit, so they are built lazily, on the
first ``span``/``key_line``/``edits`` call, by a small position-tracking
scanner that reuses the stdlib's string and number tokenizers.

Edits replace exactly the bytes of a value, or insert a member after the last
member of an object, in that object's own style. Every other byte (key order,
indentation, number spelling, escapes, line endings, the trailing newline)
stays as it was.
"""

from __future__ import annotations

import codecs
import itertools
import json
import math
import os
import re
import sys
from collections import namedtuple
from collections.abc import Iterable, Sequence
from json.decoder import scanstring
from json.scanner import NUMBER_RE

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the lint path
if TYPE_CHECKING:
    from typing import Any

JsonPath = tuple[str | int, ...]

#: Deepest nesting ``load`` accepts. Real configs are 2-3 levels deep; the
#: bound keeps the C parser far from Python's recursion limit.
MAX_DEPTH = 512

_DEFAULT_INDENT = "    "  # what mlx_lm.lora writes (json.dump(indent=4))
_MISSING = object()
_WHOLE = object()  # trie marker: the set replaces this whole subtree

_WS = re.compile(r"[ \t\n\r]*").match
_INDENT = re.compile(r"[ \t]*").match
_NUMBER = NUMBER_RE.match
_KEY_SEPARATOR = re.compile(r"[ \t]*:[ \t]*").fullmatch
_ITEM_SEPARATOR = re.compile(r"[ \t]*,[ \t]*").fullmatch
_BRACKET_OR_QUOTE = re.compile(r'[\[\]{}"]').search
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL).match
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class JsonDocError(ValueError):
    """A document that cannot be read, or a set that cannot be applied."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        if self.line is None:
            return self.message
        return f"{self.message} (line {self.line}, column {self.column})"


class Edit(namedtuple("Edit", ["start", "end", "text"])):
    """Replace ``text[start:end]`` of the original with ``text`` (start and end: int, text: str).

    A ``collections.namedtuple``: ``typing.NamedTuple`` would import ``typing`` on the lint path."""

    __slots__ = ()


def format_path(path: JsonPath) -> str:
    """``('lora_parameters', 'keys', 0)`` -> ``lora_parameters.keys[0]``; odd keys are quoted."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        elif _PLAIN_KEY(key):
            out += f".{key}" if out else key
        else:
            out += f"[{json.dumps(key)}]"
    return out or "(top level)"


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*").fullmatch


# -- loading ------------------------------------------------------------------


def load(data: bytes | str) -> Document:
    """Decode and parse a config file; raise ``JsonDocError`` for anything mlx-lm could not read."""
    text = _decode(data) if isinstance(data, (bytes, bytearray)) else data
    if text.startswith("\ufeff"):
        raise JsonDocError(_BOM_MESSAGE, 1, 1)
    if not text.strip(" \t\n\r"):
        raise JsonDocError("file is empty" if not text else "file contains only whitespace", 1, 1)
    # Counting brackets is C-fast; only a file with many of them needs the real depth scan.
    if text.count("{") + text.count("[") > MAX_DEPTH:
        deep_at = _first_too_deep(text)
        if deep_at is not None:
            raise JsonDocError(f"nesting deeper than {MAX_DEPTH} levels", *_line_column(text, deep_at))

    ticks_before = next(_SPECIAL_SEEN)
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise JsonDocError(_describe(exc.msg), exc.lineno, exc.colno) from None
    except RecursionError:  # only if the caller's own stack is already deep
        raise JsonDocError("nesting too deep to parse", 1, 1) from None
    except ValueError:  # an integer longer than Python's int digit limit (3.10.7+); json.load fails too
        limit = getattr(sys, "get_int_max_str_digits", lambda: 4300)()
        long_number = re.search(rf"\d{{{limit + 1},}}", text)
        where = _line_column(text, long_number.start()) if long_number else (1, 1)
        raise JsonDocError(f"number too long to read: more than {limit} digits", *where) from None
    doc = Document(text, value)
    if next(_SPECIAL_SEEN) != ticks_before + 1:
        tree = doc._tree()  # the scanner knows the paths
        doc.duplicates = tree.duplicates
        doc.nonfinite = tree.nonfinite
    return doc


_BOM_MESSAGE = (
    "file starts with a UTF-8 byte-order mark, which json.load(open(path)) "
    "(how mlx-lm reads adapter_config.json) rejects; save it as UTF-8 without BOM"
)


def _decode(data: bytes | bytearray) -> str:
    if data.startswith(codecs.BOM_UTF8):
        raise JsonDocError(_BOM_MESSAGE, 1, 1)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise JsonDocError("file is UTF-16 encoded; JSON config files must be UTF-8", 1, 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise JsonDocError(f"byte 0x{data[exc.start]:02x} is not valid UTF-8", line, column) from None


# The C parser reports duplicate keys and NaN/Infinity through these hooks.
# One shared decoder saves building a new one per file; the hooks tick a
# shared counter (``next`` on itertools.count is atomic), and a file whose
# parse saw a tick gets the exact answer from the scanner. Another thread's
# tick can only cause a needless scan, never a missed one.
_SPECIAL_SEEN = itertools.count()


def _object_from_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # last value wins at the first position: exactly json.loads
    if len(result) != len(pairs):
        next(_SPECIAL_SEEN)
    return result


def _nonfinite_constant(name: str) -> float:
    next(_SPECIAL_SEEN)
    return _NONFINITE[name]


_DECODER = json.JSONDecoder(object_pairs_hook=_object_from_pairs, parse_constant=_nonfinite_constant)


_MESSAGES = {
    "Extra data": "unexpected data after the end of the JSON value",
    "Expecting value": "expected a JSON value",
    "Invalid control character at": "raw control character (tab, newline, ...) inside a string",
    "Unterminated string starting at": "unterminated string",
    "Expecting property name enclosed in double quotes": "expected a key in double quotes (or a trailing comma)",
}


def _describe(msg: str) -> str:
    msg = _MESSAGES.get(msg, msg)
    return msg[:1].lower() + msg[1:]


def _first_too_deep(text: str) -> int | None:
    """Offset of the first bracket nested deeper than MAX_DEPTH, skipping strings."""
    depth = 0
    pos = 0
    while True:
        match = _BRACKET_OR_QUOTE(text, pos)
        if match is None:
            return None
        ch = match.group()
        pos = match.end()
        if ch == '"':
            rest = _STRING_REST(text, pos)
            if rest is None:  # unterminated string: the parser will report it
                return None
            pos = rest.end()
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        else:
            depth -= 1


def _line_column(text: str, pos: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, pos) + 1
    return text.count("\n", 0, pos) + 1, pos - line_start + 1


# -- the position tree --------------------------------------------------------


_OBJECT, _ARRAY, _SCALAR = "object", "array", "scalar"  # node kinds


class _Node:
    """A value's source span; containers also hold their entries."""

    __slots__ = ("start", "end", "kind", "parent", "key", "members", "by_key", "items")

    def __init__(self, kind: str, start: int, parent: _Node | None, key: Any):
        self.kind = kind
        self.start = start
        self.end = start
        self.parent = parent
        self.key = key  # member key or item index in the parent
        if kind == _OBJECT:
            self.members: list[_Member] = []  # source order, duplicates included
            self.by_key: dict[str, _Member] = {}  # the last occurrence, as json.loads
        elif kind == _ARRAY:
            self.items: list[_Node] = []

    @property
    def path(self) -> JsonPath:
        keys = []
        node = self
        while node.parent is not None:
            keys.append(node.key)
            node = node.parent
        return tuple(reversed(keys))

    @property
    def entries(self) -> list[_Node]:
        """Child values in source order."""
        if self.kind == _OBJECT:
            return [m.value for m in self.members]
        return self.items if self.kind == _ARRAY else []

    def entry_starts(self) -> list[int]:
        if self.kind == _OBJECT:
            return [m.key_start for m in self.members]
        return [item.start for item in self.items]

    def entry_ends(self) -> list[int]:
        return [value.end for value in self.entries]


class _Member:
    __slots__ = ("key", "key_start", "key_end", "value")

    def __init__(self, key: str, key_start: int, key_end: int):
        self.key = key
        self.key_start = key_start
        self.key_end = key_end
        self.value: _Node


class _Tree:
    __slots__ = ("root", "duplicates", "nonfinite")

    def __init__(self, root: _Node, duplicates: list, nonfinite: list):
        self.root = root
        self.duplicates = duplicates
        self.nonfinite = nonfinite


# One regex call per token keeps the scanner cheap: a key with its colon, a
# separator with the whitespace around it.
_KEY = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*")[ \t\n\r]*:[ \t\n\r]*', re.DOTALL).match
_AFTER_VALUE = re.compile(r"[ \t\n\r]*([,}\]])[ \t\n\r]*").match


_LITERAL_BY_FIRST_CHAR = {"n": "null", "t": "true", "f": "false", "N": "NaN", "I": "Infinity", "-": "-Infinity"}


def _scan(text: str) -> _Tree:
    """Positions of every value in ``text``, which the C parser has already accepted.

    Iterative (an explicit stack), so depth never meets the recursion limit.
    """
    # Locals, not globals: this loop is the cost of the span path.
    key_match, after_value, number_match, ws_match = _KEY, _AFTER_VALUE, _NUMBER, _WS
    new_node, new_member, scan_string = _Node, _Member, scanstring
    duplicates: list[tuple[JsonPath, str]] = []
    reported: set[tuple[int, str]] = set()  # (object, key) pairs already in duplicates
    nonfinite: list[JsonPath] = []
    stack: list[_Node] = []
    parent: _Node | None = None  # the innermost open container
    in_object = False  # whether ``parent`` is an object
    root: _Node | None = None
    pos = ws_match(text, 0).end()
    while True:
        # A value starts here (after its key, inside an object).
        if in_object:
            match = key_match(text, pos)
            key_start, key_end = match.span(1)
            key = text[key_start + 1 : key_end - 1]
            if "\\" in key:
                key = scan_string(text, key_start + 1)[0]
            member = new_member(key, key_start, key_end)
            if key in parent.by_key and (id(parent), key) not in reported:
                reported.add((id(parent), key))
                duplicates.append((parent.path, key))
            parent.members.append(member)
            parent.by_key[key] = member
            pos = match.end()
        elif parent is not None:
            key = len(parent.items)
        else:
            key = None

        ch = text[pos]
        if ch == "{" or ch == "[":
            node = new_node(_OBJECT if ch == "{" else _ARRAY, pos, parent, key)
        else:
            node = new_node(_SCALAR, pos, parent, key)
            if ch == '"':
                pos = scan_string(text, pos + 1)[1]
            else:
                number = number_match(text, pos) if ch in "-0123456789" else None
                if number is not None:
                    pos = number.end()
                else:
                    literal = _LITERAL_BY_FIRST_CHAR[ch]
                    pos += len(literal)
                    if literal in _NONFINITE:
                        nonfinite.append(node.path)
            node.end = pos
        if in_object:
            member.value = node
        elif parent is not None:
            parent.items.append(node)
        else:
            root = node

        if node.kind != _SCALAR:
            pos = ws_match(text, pos + 1).end()
            if text[pos] not in "}]":
                stack.append(node)
                parent = node
                in_object = node.kind == _OBJECT
                continue
            pos += 1
            node.end = pos

        # The value is complete: close every container that ends here.
        while stack:
            match = after_value(text, pos)
            if match.group(1) == ",":
                pos = match.end()
                break
            pos = match.end(1)
            parent.end = pos
            stack.pop()
            parent = stack[-1] if stack else None
            in_object = parent is not None and parent.kind == _OBJECT
        else:
            assert root is not None
            return _Tree(root, duplicates, nonfinite)


# -- the document ---------------------------------------------------------------


class Document:
    """A parsed config: its text, its value, and (lazily) where each value sits."""

    __slots__ = ("text", "value", "duplicates", "nonfinite", "_tree_cache", "_style_cache")

    def __init__(self, text: str, value: Any):
        self.text = text
        #: The plain value, exactly what ``json.loads(text)`` returns.
        self.value = value
        #: ``(path of the object, key)`` for each key an object repeats.
        self.duplicates: list[tuple[JsonPath, str]] = []
        #: Paths of values written as NaN, Infinity or -Infinity.
        self.nonfinite: list[JsonPath] = []
        self._tree_cache: _Tree | None = None
        self._style_cache: _Style | None = None

    def _tree(self) -> _Tree:
        if self._tree_cache is None:
            self._tree_cache = _scan(self.text)
        return self._tree_cache

    def _node(self, path: JsonPath) -> tuple[_Node, int]:
        """The deepest existing node along ``path``, and how many keys of it matched."""
        node = self._tree().root
        for depth, key in enumerate(path):
            child = _child_node(node, key)
            if child is None:
                return node, depth
            node = child
        return node, len(path)

    def span(self, path: JsonPath) -> tuple[int, int] | None:
        """``(start, end)`` offsets of the value at ``path`` in ``text``, or None if absent."""
        node, matched = self._node(path)
        return (node.start, node.end) if matched == len(path) else None

    def key_line(self, path: JsonPath) -> int:
        """1-based line of the key at ``path`` (of the value, for list items; 1 for the root).

        For a path that does not exist, the line of its deepest existing ancestor.
        """
        node, _ = self._node(path)
        if node.parent is None:
            return 1
        pos = node.parent.by_key[node.key].key_start if node.parent.kind == _OBJECT else node.start
        return self.text.count("\n", 0, pos) + 1

    def set_values(self, sets: Iterable[tuple[JsonPath, Any]]) -> str:
        """The text with every ``(path, value)`` applied, as minimal edits of the original."""
        edits, target = self._plan(list(sets))
        if not edits:
            return self.text
        parts = []
        pos = 0
        for edit in edits:
            parts.append(self.text[pos : edit.start])
            parts.append(edit.text)
            pos = edit.end
        parts.append(self.text[pos:])
        new_text = "".join(parts)
        # Never hand back a file that does not say what was asked.
        if not _json_equal(json.loads(new_text), target):
            raise RuntimeError("internal error: the edited text does not parse to the values set")
        return new_text

    def edits(self, sets: Iterable[tuple[JsonPath, Any]]) -> list[Edit]:
        """The text edits (sorted, non-overlapping) that apply ``sets``.

        Sets apply in order, like assignments: later ones win, and missing
        parent objects are created. A value that already equals its target
        is left alone, spelling included.
        """
        return self._plan(list(sets))[0]

    def _plan(self, sets: list[tuple[JsonPath, Any]]) -> tuple[list[Edit], Any]:
        try:
            target = _target_value(self.value, sets)
        except _Unreachable as exc:
            node, _ = self._node(exc.where)
            message = f"cannot set {format_path(exc.path)}: {exc.problem}"
            raise JsonDocError(message, *_line_column(self.text, node.start)) from None
        scope: dict = {}
        for path, _ in sets:
            node = scope
            for key in path:
                node = node.setdefault(key, {})
            node[_WHOLE] = True
        return self._diff(target, scope), target

    def _diff(self, target: Any, scope: dict) -> list[Edit]:
        """Compare the original with ``target``, only where the sets reach."""
        edits: list[Edit] = []
        work = [(self._tree().root, self.value, target, scope)]
        while work:
            node, old, new, scope = work.pop()
            whole = scope is _WHOLE or _WHOLE in scope
            if node.kind == _OBJECT and isinstance(new, dict) and old.keys() <= new.keys():
                keys = new.keys() if whole else [k for k in scope if k is not _WHOLE]
                missing = [k for k in keys if k not in old]
                if missing and not node.members:
                    edits.append(self._replace(node, new))
                    continue
                if missing:
                    edits.append(self._insert(node, missing, new))
                for key in keys:
                    if key in old:
                        work.append((node.by_key[key].value, old[key], new[key], _WHOLE if whole else scope[key]))
            elif node.kind == _ARRAY and isinstance(new, list) and len(new) == len(old):
                indices = range(len(new)) if whole else [k for k in scope if k is not _WHOLE]
                for index in indices:
                    work.append((node.items[index], old[index], new[index], _WHOLE if whole else scope[index]))
            elif not _same_scalar(old, new):
                edits.append(self._replace(node, new))
        edits.sort()
        return edits

    # -- rendering in the file's own style --

    def _style(self) -> _Style:
        if self._style_cache is None:
            self._style_cache = _Style(self.text, self._tree().root)
        return self._style_cache

    def _replace(self, node: _Node, value: Any) -> Edit:
        style = self._style()
        if node.entries and isinstance(value, (dict, list)):
            multiline = _is_multiline(self.text, node)  # a non-empty container keeps its own shape
        elif node.parent is None:
            multiline = True  # e.g. a top-level {} grows into a block, as mlx_lm.lora writes it
        else:
            multiline = _is_multiline(self.text, node.parent)
        prefix = _line_indent(self.text, node.start)
        return Edit(node.start, node.end, style.render(value, multiline, prefix))

    def _insert(self, obj: _Node, keys: Sequence[str], new: dict) -> Edit:
        """Add members after the last member of ``obj``, separated as its own members are."""
        text = self.text
        style = self._style()
        last = obj.members[-1]
        if len(obj.members) >= 2:
            separator = text[obj.members[-2].value.end : last.key_start]
        else:
            gap = text[obj.start + 1 : last.key_start]
            separator = "," + gap if "\n" in gap else style.item_separator
        multiline = "\n" in separator
        prefix = _line_indent(text, last.key_start)  # new members go on lines like the last one
        key_separator = text[last.key_end : last.value.start]
        if not _KEY_SEPARATOR(key_separator):
            key_separator = style.key_separator
        inserted = "".join(
            separator + style.dumps(key) + key_separator + style.render(new[key], multiline, prefix)
            for key in keys
        )
        return Edit(last.value.end, last.value.end, inserted)


def _child_node(node: _Node, key: Any) -> _Node | None:
    if node.kind == _OBJECT and isinstance(key, str):
        member = node.by_key.get(key)
        return member.value if member is not None else None
    if node.kind == _ARRAY and type(key) is int and 0 <= key < len(node.items):
        return node.items[key]
    return None


def _is_multiline(text: str, node: _Node) -> bool:
    """Whether a container puts its entries on their own lines."""
    starts = node.entry_starts()
    if not starts:
        return "\n" in text[node.start : node.end]
    if "\n" in text[node.start + 1 : starts[0]]:
        return True
    return len(starts) >= 2 and "\n" in text[node.entry_ends()[-2] : starts[-1]]


def _line_indent(text: str, pos: int) -> str:
    line_start = text.rfind("\n", 0, pos) + 1
    return _INDENT(text, line_start).group()


class _Style:
    """How this file writes JSON, learnt from its own text."""

    __slots__ = ("newline", "ensure_ascii", "indent", "key_separator", "item_separator")

    def __init__(self, text: str, root: _Node):
        self.newline = "\r\n" if "\r\n" in text else "\n"
        # Raw non-ASCII in the file means the author writes it raw; otherwise escape as json.dump does.
        self.ensure_ascii = text.isascii()
        self.indent = None
        self.key_separator = None
        inline_separator = None
        work = [root]
        while work and (self.indent is None or self.key_separator is None or inline_separator is None):
            node = work.pop()
            if node.kind == _SCALAR:
                continue
            starts, ends = node.entry_starts(), node.entry_ends()
            if self.key_separator is None and node.kind == _OBJECT and node.members:
                first = node.members[0]
                candidate = text[first.key_end : first.value.start]
                if _KEY_SEPARATOR(candidate):
                    self.key_separator = candidate
            if self.indent is None and starts and "\n" in text[node.start + 1 : starts[0]]:
                outer = _line_indent(text, node.start)
                inner = _line_indent(text, starts[0])
                if len(inner) > len(outer) and inner.startswith(outer):
                    self.indent = inner[len(outer) :]
            if inline_separator is None and len(starts) >= 2:
                candidate = text[ends[0] : starts[1]]
                if _ITEM_SEPARATOR(candidate):
                    inline_separator = candidate
            work.extend(reversed(node.entries))  # document order
        self.indent = self.indent or _DEFAULT_INDENT
        self.key_separator = self.key_separator or ": "
        self.item_separator = inline_separator or ("," + self.key_separator[len(self.key_separator.rstrip()) :])

    def dumps(self, value: Any, **kwargs: Any) -> str:
        return json.dumps(value, ensure_ascii=self.ensure_ascii, allow_nan=False, **kwargs)

    def render(self, value: Any, multiline: bool, prefix: str) -> str:
        """``value`` as this file would write it at a line indented by ``prefix``."""
        if multiline and isinstance(value, (dict, list)) and value:
            block = self.dumps(value, indent=self.indent, separators=(",", self.key_separator))
            return block.replace("\n", self.newline + prefix)
        return self.dumps(value, separators=(self.item_separator, self.key_separator))


# -- target values ----------------------------------------------------------------


class _Unreachable(Exception):
    """A set whose path runs through something that is not an object (or a list, by index)."""

    def __init__(self, where: JsonPath, problem: str):
        self.where = where  # the value in the way
        self.problem = problem
        self.path: JsonPath = ()  # the set's whole path


def _target_value(value: Any, sets: Sequence[tuple[JsonPath, Any]]) -> Any:
    """``value`` with the sets applied in order, copying only the containers on their paths."""
    owned: set[int] = set()  # containers created or copied here, safe to mutate

    def own(container: Any) -> Any:
        if id(container) not in owned:
            container = dict(container) if isinstance(container, dict) else list(container)
            owned.add(id(container))
        return container

    root = value
    for path, new in sets:
        path = tuple(path)
        if not path:
            root = new
            continue
        try:
            root = parent = own(_container(root, ()))
            for depth, key in enumerate(path):
                _check_slot(parent, key, path[:depth])
                if depth == len(path) - 1:
                    parent[key] = new
                elif isinstance(parent, dict) and key not in parent:
                    parent[key] = {}  # a missing parent object is created
                    owned.add(id(parent[key]))
                else:
                    parent[key] = own(_container(parent[key], path[: depth + 1]))
                parent = parent[key]
        except _Unreachable as exc:
            exc.path = path
            raise
    return root


def _container(value: Any, where: JsonPath) -> Any:
    if not isinstance(value, (dict, list)):
        raise _Unreachable(where, f"{_name(where)} is {_kind(value)}, not an object")
    return value


def _check_slot(container: dict | list, key: Any, where: JsonPath) -> None:
    if isinstance(container, dict):
        if not isinstance(key, str):
            raise _Unreachable(where, f"{_name(where)} is an object, whose keys are strings, not {key!r}")
    elif type(key) is not int or not 0 <= key < len(container):
        raise _Unreachable(where, f"{_name(where)} is a list without index {key!r}")


def _name(where: JsonPath) -> str:
    return format_path(where) if where else "the top level"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _same_scalar(a: Any, b: Any) -> bool:
    """Equal and of the same JSON type (``1``, ``1.0`` and ``true`` differ; NaN equals NaN)."""
    if type(a) is not type(b) or isinstance(a, (dict, list)):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


def _json_equal(a: Any, b: Any) -> bool:
    """Deep, type-strict equality, without recursion."""
    work = [(a, b)]
    while work:
        a, b = work.pop()
        if isinstance(a, dict):
            if type(b) is not dict or a.keys() != b.keys():
                return False
            work.extend((a[k], b[k]) for k in a)
        elif isinstance(a, list):
            if type(b) is not list or len(a) != len(b):
                return False
            work.extend(zip(a, b, strict=True))
        elif not _same_scalar(a, b):
            return False
    return True


# -- diffs ---------------------------------------------------------------------------


def unified_diff(path: str, before: str, after: str) -> str:
    """A ``git diff``-style unified diff of one file, empty when nothing changed."""
    import difflib  # only fixes and --diff need it; keep it off the lint path's import time

    lines = difflib.unified_diff(
        _lines(before),
        _lines(after),
        fromfile=_diff_path("a/" + path),
        tofile=_diff_path("b/" + path),
    )
    out = []
    for line in lines:
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


def _lines(text: str) -> list[str]:
    """Lines as git and patch see them: ended by "\n" only (a JSON string may hold a raw U+2028 or NEL)."""
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


_C_ESCAPES = {0x07: "\\a", 0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v", 0x0C: "\\f", 0x0D: "\\r",
              0x22: '\\"', 0x5C: "\\\\"}


def _diff_path(name: str) -> str:
    """A path as git prints it in a diff header: C-quoted unless it is plain printable ASCII.

    A file name holding a newline would otherwise start a line of its own in
    the diff (and in a CI log, a line such as ``::error ...``).
    """
    raw = os.fsencode(name)  # undecodable file-name bytes come back as themselves
    if all(0x20 <= b < 0x7F and b not in (0x22, 0x5C) for b in raw):
        return name
    return '"' + "".join(_C_ESCAPES.get(b) or (chr(b) if 0x20 <= b < 0x7F else f"\\{b:03o}") for b in raw) + '"'
