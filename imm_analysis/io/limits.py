"""Named limits on IMM JSON input, and the checks that enforce them on every read path.

The limits keep a hostile or broken export from crashing the interpreter, exhausting memory or
turning into wrong numbers. They are read at call time, so a test (or a user with unusual data)
may change them on this module.

========================  ==============  ==================================================
Limit                     Value           Applies to
========================  ==============  ==================================================
``MAX_DEPTH``             64              nesting of objects and arrays in one JSON document
                                          (an IMM SimpleQuery page is about 5 deep)
``MAX_LINE_BYTES``        64 MiB          one line of a ``.jsonl``/``.ndjson`` file
``MAX_DOCUMENT_BYTES``    1 GiB           one ``.json`` document, string or bytes source
                                          (after gzip decompression)
``INT64_MIN/INT64_MAX``   -2**63, 2**63-1 integer columns (``size``, ``face_count``, ``left``...):
                                          values outside are errors, never wrapped
========================  ==============  ==================================================

Every check names the file, the record and, where it can, the field; with ``errors="collect"``
the bad document becomes one row of ``frame.attrs["errors"]``. The pyarrow fast path for
``.jsonl`` files is only taken when :func:`fast_path_ok` finds nothing the general path
would refuse (size, depth, encoding, a byte order mark, duplicate ``Files`` keys).

Examples
--------
>>> from imm_analysis.io.limits import MAX_DEPTH, too_deep
>>> MAX_DEPTH
64
>>> too_deep({"Files": [{"Figures": [{"Foo": [[[1]]]}]}]}, limit=5)
'Files[0].Figures[0].Foo'
>>> too_deep({"Files": []}) is None
True
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = [
    "MAX_DEPTH",
    "MAX_LINE_BYTES",
    "MAX_DOCUMENT_BYTES",
    "INT64_MIN",
    "INT64_MAX",
    "too_deep",
    "walk",
    "SHAPE_KEYS",
    "count_shape_keys",
    "byte_depth",
    "fast_path_ok",
    "depth_reason",
]

#: deepest nesting of objects and arrays accepted in one JSON document
MAX_DEPTH = 64
#: longest line of a JSON Lines file, in bytes
MAX_LINE_BYTES = 64 << 20
#: largest ``.json`` document (or string / bytes source), in bytes after decompression
MAX_DOCUMENT_BYTES = 1 << 30
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_BOM = b"\xef\xbb\xbf"
#: the response keys whose repetition in one object is an error (JSON parsers keep only the last)
SHAPE_KEYS = frozenset({"Files", "FigureClusters", "File", "FigureCluster"})
_SHAPE_KEY = re.compile(rb'"(?:Files|FigureClusters|File|FigureCluster)"\s*:')


def count_shape_keys(data: bytes) -> int:
    """How many times a :data:`SHAPE_KEYS` name appears as an object member name in JSON text.

    Examples
    --------
    >>> count_shape_keys(b'{"Files": [], "Files": [{"URI": "\\\\"Files\\\\": "}]}')
    2
    """
    return len(_SHAPE_KEY.findall(data))


def depth_reason(limit: int | None = None) -> str:
    """The error reason for a document nested deeper than ``limit`` (default :data:`MAX_DEPTH`).

    Examples
    --------
    >>> depth_reason(3)
    'nested deeper than 3 levels (MAX_DEPTH in imm_analysis.io.limits)'
    """
    return f"nested deeper than {MAX_DEPTH if limit is None else limit} levels (MAX_DEPTH in imm_analysis.io.limits)"


def too_deep(value: Any, limit: int | None = None) -> str | None:
    """The path of the first container nested deeper than ``limit``, or None when within it.

    Iterative (no recursion), so it is safe on any parsed value; it stops at the first
    offender. The top-level value is depth 1.

    Parameters
    ----------
    value : any
        A parsed JSON value (dicts, lists, scalars).
    limit : int, optional
        Deepest nesting allowed; default :data:`MAX_DEPTH`.

    Returns
    -------
    str or None
        ``"Files[0].Figures[0].Foo[0]"``: where the limit is crossed (shown to at most 12 steps).

    Examples
    --------
    >>> too_deep([[[]]], limit=2)
    '[0][0]'
    >>> too_deep([[[]]], limit=3) is None
    True
    """
    return walk(value, limit)[0]


def walk(value: Any, limit: int | None = None, keys: frozenset[str] = frozenset()) -> tuple[str | None, int]:
    """:func:`too_deep` of ``value``, and how many object members it has whose name is in ``keys``.

    One iterative pass; the count is used to spot keys that the JSON parser merged (two
    ``"Files"`` in one object).

    Examples
    --------
    >>> walk([{"Files": []}, {"Files": [{"File": {}}]}], keys=frozenset({"Files", "File"}))
    (None, 3)
    """
    limit = MAX_DEPTH if limit is None else limit
    if not isinstance(value, (dict, list)):
        return None, 0
    count = 0
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > limit:
            return _path_text(path), count
        if isinstance(node, dict):
            if keys:
                count += sum(1 for k in node if k in keys)
            children: Any = node.items()
        else:
            children = enumerate(node)
        for key, child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1, path + (key,) if len(path) < 12 else path))
    return None, count


def _path_text(path: tuple[Any, ...]) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out + ("..." if len(path) >= 12 else "")


def byte_depth(data: bytes) -> int:
    """Deepest bracket nesting of JSON text, brackets inside strings ignored (vectorised, no recursion).

    Each line is measured on its own (JSON Lines). Exact for valid JSON. Text that cannot be
    valid JSON in a way that could hide nesting (a line with an unterminated string, or one that
    closes more brackets than it opened) gives a number above any limit, so a caller that compares
    with a limit refuses it.

    Examples
    --------
    >>> byte_depth(b'{"a": [1, {"b": "[[[\\\\"]]"}]}')
    3
    >>> byte_depth(b'{"a": "unterminated}\\n[[1]]') > 10**6
    True
    >>> byte_depth(b"1"), byte_depth(b"")
    (0, 0)
    """
    return _scan(_compact(data))


#: every byte but the ones the depth scan needs: quotes, brackets, newlines
_DROP = bytes(sorted(set(range(256)) - set(b'"[]{}\n')))


def _compact(data: bytes) -> bytes:
    """``data`` reduced to its structure, by C-speed ``bytes`` passes.

    Escaped backslashes and quotes are removed (every quote left opens or closes a string);
    only quotes, brackets and newlines are kept; then adjacent quote pairs (``""``: a string
    without brackets, or the end of one string and the start of the next) are dropped, which
    changes neither the nesting nor which brackets lie inside strings.
    """
    text = data
    if b"\\" in text:
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    return text.translate(None, _DROP).replace(b'""', b"")


def _scan(text: bytes) -> int:
    """The depth of :func:`_compact` output (:data:`_UNBOUNDED` when a line is not well formed)."""
    arr = np.frombuffer(text, dtype=np.uint8)
    if not len(arr):
        return 0
    ends = np.flatnonzero(arr == 0x0A)
    quotes = np.flatnonzero(arr == 0x22)
    if quotes.size:  # every line must close its strings: an even count of quotes before each line end
        if len(quotes) % 2 or (np.searchsorted(quotes, ends) % 2).any():
            return _UNBOUNDED
    opens = (arr == 0x5B) | (arr == 0x7B)  # [ {
    where = np.flatnonzero(opens | (arr == 0x5D) | (arr == 0x7D))
    if quotes.size:  # a bracket after an odd number of quotes is inside a string
        where = where[np.searchsorted(quotes, where) % 2 == 0]
    if not where.size:
        return 0
    depth = np.cumsum(np.where(opens[where], 1, -1).astype(np.int64))
    if ends.size:  # measure each line from zero: subtract the depth reached before the line starts
        line_start = np.concatenate([[0], ends + 1])[np.searchsorted(ends, where)]
        first = np.searchsorted(where, line_start)  # index of the line's first bracket
        depth -= np.concatenate([[0], depth])[first]
    if depth.min() < 0:
        return _UNBOUNDED
    return int(depth.max())


_UNBOUNDED = 2**31 - 1


def fast_path_ok(data: bytes) -> bool:
    """Whether JSON Lines ``data`` may go to pyarrow: nothing the general loader would refuse.

    False for a byte order mark, invalid UTF-8, a line over :data:`MAX_LINE_BYTES`, nesting
    over :data:`MAX_DEPTH`, or a line with two response keys (``"Files"`` twice). Works in
    blocks of lines, so its memory stays a few times :data:`_BLOCK` whatever the file size.

    Examples
    --------
    >>> fast_path_ok(b'{"Files": []}\\n')
    True
    >>> fast_path_ok(b'\\xef\\xbb\\xbf{"Files": []}\\n'), fast_path_ok(b'{"Files": ["\\xff"]}\\n')
    (False, False)
    >>> fast_path_ok(b'{"Files": [], "Files": []}\\n')
    False
    """
    if data.startswith(_BOM):
        return False
    start, n = 0, len(data)
    while start < n:
        end = data.find(b"\n", min(start + _BLOCK, n))
        end = n if end < 0 else end + 1
        if not _block_ok(data[start:end]):
            return False
        start = end
    return True


#: bytes checked at a time by :func:`fast_path_ok` (whole lines)
_BLOCK = 64 << 20


def _block_ok(block: bytes) -> bool:
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return False
    if len(block) > MAX_LINE_BYTES:  # only then can a line be too long
        arr = np.frombuffer(block, dtype=np.uint8)
        bounds = np.concatenate([[-1], np.flatnonzero(arr == 0x0A), [len(arr)]])
        if int(np.diff(bounds).max()) - 1 > MAX_LINE_BYTES:
            return False
    # Duplicate response keys: the fast path only keeps files where every line has a "Files" key
    # (a line without one is refused later), so as many "Files" as lines means none has two.
    # Other response keys are refused outright (a string value spelled the same: a false alarm,
    # which only sends the file to the general loader).
    lines = block.count(b"\n") + (not block.endswith(b"\n"))
    if block.count(b'"Files"') != lines or any(k in block for k in (b'"File"', b'"FigureCluster"', b'"FigureClusters"')):
        return False
    return _scan(_compact(block)) <= MAX_DEPTH
