"""Parse a block of plain numeric CSV lines in bulk, with no Python object per line or per value.

A block qualifies when the non-feature columns (ids, extras) all come first and every feature field is
a JSON number. JSON numbers are a subset of Python's float syntax and simdjson, like float(), rounds
correctly, so the values are identical to float(). For each block:

1. The first bytes of every line are gathered into one matrix; the id fields are copied out of it as a
   zero-padded byte matrix, and the leading fields, commas included, are overwritten with "0" and spaces:
   one placeholder number, so that every field left on the line parses as a number.
2. Every newline becomes a sentinel number and simdjson parses the whole block as one JSON array,
   writing the numbers straight into a float64 buffer.
3. The sentinel must appear at the end of every row and nowhere else. That proves each line had exactly
   the header's number of fields, so no row can shift into its neighbour's columns.

Anything else (quotes, blank lines, NUL bytes, a field that is not a number, an infinite value, an integer
too big for 64 bits, which simdjson refuses) returns None. The caller then falls back to parsing line by line, which names the reason for each rejected line.
"""

from __future__ import annotations

import threading

import numpy as np
import simdjson

SENTINEL = b"-9.87654321e300"  # an end-of-row marker no real input is expected to contain
_SENTINEL_VALUE = float(SENTINEL)
_ROW_END = b"," + SENTINEL + b","
_COMMA, _ZERO, _SPACE = ord(","), ord("0"), ord(" ")
WINDOWS = (8, 16, 64, 256)  # bytes per line searched for the leading fields; longer ids take the slow path

_parsers = threading.local()  # a simdjson parser reuses its buffers and is not thread-safe


def parse_numbers(text: bytes) -> np.ndarray | None:
    """A JSON array text as a flat float64 array, or None unless every element is a JSON number.

    Nested arrays would be flattened (as_buffer does that), so '[' inside the text is refused here.
    """
    if text.find(b"[", 1) >= 0:
        return None
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = simdjson.Parser()
    try:
        doc = parser.parse(text)
        try:
            if not isinstance(doc, simdjson.Array):
                return None
            return np.frombuffer(doc.as_buffer(of_type="d"), dtype=np.float64)
        finally:
            del doc  # the parser refuses to parse again while a document from it is alive
    except (ValueError, TypeError):  # not JSON, or an element that is not a number
        return None
    except RuntimeError:  # an integer beyond 64 bits (BIGINT_ERROR): float() reads it, line by line
        return None


class BulkCsv:
    """Bulk parsing for one header layout.

    ncols: fields per line. lead: leading non-feature fields. ids: the field range [start, stop) copied
    out as each row's id text (start == stop: none); it must lie within the leading fields.
    feature_idx: the field index of each feature, in schema order.
    """

    def __init__(self, ncols: int, lead: int, ids: tuple[int, int], feature_idx: list[int]):
        if not 0 <= ids[0] <= ids[1] <= lead < ncols:
            raise ValueError(f"id fields {ids} must lie within the {lead} leading fields")
        self.ncols, self.lead, self.ids = ncols, lead, ids
        # numbers per parsed row: the placeholder for the leading fields (if any), then the other fields
        self.row_numbers = ncols - lead + (1 if lead else 0)
        self.columns = np.asarray([j - lead + (1 if lead else 0) for j in feature_idx])
        self.window = WINDOWS[0]  # widened when ids are long, and kept for the next block

    def parse(self, block: bytes) -> tuple[np.ndarray, np.ndarray] | None:
        """(ids as an (n, width) zero-padded uint8 matrix, features as an (n, k) float64 matrix) or None.

        `block` holds whole lines, each ending with a newline, without carriage returns.
        """
        if not block or b'"' in block or b"\0" in block:
            return None
        data = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(data == ord("\n"))
        starts = np.empty_like(ends)
        starts[0], starts[1:] = 0, ends[:-1] + 1
        ids = np.zeros((len(ends), 0), dtype=np.uint8)
        text = block
        if self.lead:
            found = self._leading_fields(data, starts, ends)
            if found is None:
                return None
            ids, lead_end = found
            text = _blank(data, starts, lead_end).tobytes()
        flat = parse_numbers(b"[" + text.replace(b"\n", _ROW_END) + b"0]")
        rows, width = len(ends), self.row_numbers + 1
        if flat is None or flat.size != rows * width + 1:
            return None
        table = flat[:-1].reshape(rows, width)
        if not (table[:, -1] == _SENTINEL_VALUE).all() or np.count_nonzero(flat == _SENTINEL_VALUE) != rows:
            return None
        matrix = table[:, self.columns]
        if not np.isfinite(matrix).all():
            return None
        return ids, matrix

    def _leading_fields(self, data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple | None:
        """Per line: the id bytes (zero-padded matrix) and the offset where the leading fields end."""
        for window in [w for w in WINDOWS if w >= self.window]:
            found = self._search(data, starts, ends, window)
            if found is not None:
                self.window = window
                return found
        return None

    def _search(self, data: np.ndarray, starts: np.ndarray, ends: np.ndarray, window: int) -> tuple | None:
        offsets = np.arange(window)
        head = data[np.minimum(starts[:, None] + offsets, data.size - 1)]  # each line's first bytes
        is_comma = head == _COMMA
        if self.lead == 1:  # the common case needs no running count
            kth = [np.argmax(is_comma, axis=1)]
            complete = is_comma[np.arange(len(starts)), kth[0]]
        else:
            seen = np.cumsum(is_comma, axis=1, dtype=np.int16)
            kth = [np.argmax(is_comma & (seen == k), axis=1) for k in range(1, self.lead + 1)]
            complete = seen[:, -1] >= self.lead
        if not complete.all():
            return None  # a line's leading fields do not end inside the window
        lead_end = kth[-1]  # column of the comma ending the leading fields
        if (starts + lead_end >= ends).any():
            return None  # that comma belongs to the next line: this one has too few fields
        if not lead_end.all():
            return None  # an empty first field leaves no room for the placeholder
        first, stop = self.ids
        if first == stop:
            return np.zeros((len(starts), 0), dtype=np.uint8), lead_end
        begin = np.zeros_like(lead_end) if first == 0 else kth[first - 1] + 1
        length = kth[stop - 1] - begin
        width = int(length.max())
        if first == 0:
            ids = head[:, :width].copy()
        else:
            ids = np.take_along_axis(head, np.minimum(begin[:, None] + offsets[:width], window - 1), axis=1)
        ids[offsets[:width] >= length[:, None]] = 0
        return ids, lead_end


def _blank(data: np.ndarray, starts: np.ndarray, lead_end: np.ndarray) -> np.ndarray:
    """A copy with each line's leading fields and their commas replaced by one '0' and spaces."""
    out = data.copy()
    out[starts] = _ZERO
    spaces = lead_end - 1  # bytes after that '0', up to the comma ending the leading fields
    total = int(spaces.sum())
    if total:
        skip = np.cumsum(spaces) - spaces
        out[np.repeat(starts + 1 - skip, spaces) + np.arange(total)] = _SPACE
    return out
