"""Streaming readers: an object's byte range -> chunks of at most N rows -> (ids, feature matrix, rejects).

Memory is set by the chunk size: only the current read buffer and chunk of lines are held. A part is read with one ranged, streamed GET; a byte-range part owns the lines that *start* inside its
range (the first partial line belongs to the previous part, the last line is read to its end).

CSV numbers are parsed in bulk: the numeric fields of about a thousand lines are joined into one JSON
array text and parsed by orjson (JSON numbers are a subset of Python float syntax, so the values
are identical to float()). A sub-block that is not plain numbers is split in halves until the bad
lines are isolated and parsed one by one, which names the reason for each rejected line.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Protocol

import numpy as np
import orjson

from ..errors import InputError
from ..schema import FeatureSchema

READ_BYTES = 8 * 1024**2
HEADER_MAX_BYTES = 1024**2
FAST_LINES = 1024  # lines per bulk parse: large enough to amortise, small enough to stay in cache
SLOW_LINES = 64  # below this a failing sub-block is parsed line by line
_NUMBER_BYTES = b"0123456789.eE+-,"
_MISSING = object()

Fetch = Callable[[int, int], bytes]  # (start, end) -> bytes [start, end)


@dataclass
class Chunk:
    ids: list[bytes]  # CSV-encoded id field(s) per scored row
    matrix: np.ndarray  # scored rows x features, in schema order
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    lines: int = 0  # lines consumed, blank ones included


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Parsing allocates millions of short-lived floats and lists but no reference cycles; the cyclic
    collector would otherwise rescan them over and over (it halves parse throughput)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class ByteStream(Protocol):
    def read(self, n: int) -> bytes: ...


def line_chunks(
    stream: ByteStream, size: int, start: int, end: int, chunk_rows: int, read_bytes: int = READ_BYTES
) -> Iterator[list[bytes]]:
    """Lists of at most `chunk_rows` lines (without their newline): the lines starting in [start, end).

    `stream` reads the object from byte max(start - 1, 0) on; reading stops once the last owned line is
    complete, so only one read buffer plus one chunk of lines is ever held.
    """
    pos = start - 1 if start > 0 else start
    skip_partial = start > 0
    buf = b""
    done = False
    newlines = 0  # in buf, counted once per read
    while not done:
        if pos < size:
            data = stream.read(min(read_bytes, size - pos))
            if not data:
                raise InputError(f"object ended early at byte {pos} of {size}")
            pos += len(data)
            buf += data
            newlines += data.count(b"\n")
        at_eof = pos >= size
        if skip_partial:
            i = buf.find(b"\n")
            if i < 0:
                if at_eof:
                    return
                continue
            buf, skip_partial = buf[i + 1 :], False
            newlines -= 1
        if end < size:
            rel = end - 1 - (pos - len(buf))  # buf ends at pos until the owned range is cut
            if rel < 0:
                buf, newlines, done = b"", 0, True
            else:
                j = buf.find(b"\n", rel)
                if j >= 0:
                    buf, done = buf[: j + 1], True
                    newlines = buf.count(b"\n")
        if at_eof and not done:
            if buf and not buf.endswith(b"\n"):
                buf += b"\n"
                newlines += 1
            done = True
        while newlines >= chunk_rows:
            lines = buf.split(b"\n", chunk_rows)
            buf = lines.pop()
            newlines -= chunk_rows
            yield lines
    if buf:
        lines = buf.split(b"\n")
        lines.pop()
        yield lines


def read_header(fetch: Fetch, size: int, where: str) -> tuple[list[str], int]:
    """The CSV header's column names and the byte offset where data starts."""
    head = fetch(0, min(size, HEADER_MAX_BYTES)) if size else b""
    end = head.find(b"\n")
    if end < 0 and len(head) < size:
        raise InputError(f"{where}: header line is longer than {HEADER_MAX_BYTES} bytes")
    line = head if end < 0 else head[:end]
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise InputError(f"{where}: header is not UTF-8 text") from None
    if not text.strip():
        raise InputError(f"{where}: no CSV header line")
    names = [n.strip() for n in next(csv.reader([text]))]
    return names, (len(head) if end < 0 else end + 1)


def csv_field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def id_text(value: object) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


class CsvParser:
    def __init__(self, header: list[str], schema: FeatureSchema, id_columns: tuple[str, ...], where: str):
        for name in (*schema.names, *id_columns):
            if name not in header:
                kind = "id column" if name in id_columns else "feature column"
                raise InputError(f"{where}: missing required {kind} '{name}'", field=name, code="missing_column")
        if len(set(header)) != len(header):
            raise InputError(f"{where}: a column name is repeated in the header", field="header")
        self.schema = schema
        self.ncols = len(header)
        self.names = schema.names
        self.feature_idx = [header.index(n) for n in schema.names]
        self.id_idx = [header.index(c) for c in id_columns]
        others = sorted(set(range(self.ncols)) - set(self.feature_idx))
        # Fast path when non-feature columns (ids, extras) all come first: split them off, parse the rest.
        self.lead = len(others) if others == list(range(len(others))) and schema.all_numeric else None
        if self.lead is not None:
            self.rest_order = [j - self.lead for j in self.feature_idx]

    def parse(self, lines: list[bytes], first_line: int) -> Chunk:
        if lines and lines[0].endswith(b"\r"):  # CRLF line endings
            lines = [line.removesuffix(b"\r") for line in lines]
        ids: list[bytes] = []
        mats: list[np.ndarray] = []
        rejected: list[tuple[int, str]] = []
        with gc_paused():
            for s in range(0, len(lines), FAST_LINES):
                self._parse(lines[s : s + FAST_LINES], first_line + s, ids, mats, rejected)
        width = len(self.names)
        matrix = np.concatenate(mats) if mats else np.zeros((0, width))
        return Chunk(ids, matrix, rejected, len(lines))

    def _parse(
        self, lines: list[bytes], line0: int, ids: list[bytes], mats: list[np.ndarray], rejected: list[tuple[int, str]]
    ) -> None:
        if self.lead is not None and self._fast(lines, ids, mats):
            return
        if len(lines) > SLOW_LINES:
            half = len(lines) // 2
            self._parse(lines[:half], line0, ids, mats, rejected)
            self._parse(lines[half:], line0 + half, ids, mats, rejected)
            return
        rows = []
        for i, raw in enumerate(lines):
            values = self._slow_line(raw, line0 + i, ids, rejected)
            if values is not None:
                rows.append(values)
        if rows:
            mats.append(np.array(rows, dtype=np.float64 if self.schema.all_numeric else object))

    def _fast(self, lines: list[bytes], ids: list[bytes], mats: list[np.ndarray]) -> bool:
        lead = self.lead
        if lead:
            parts = [line.split(b",", lead) for line in lines]
            if any(len(p) <= lead for p in parts):
                return False
            rest = [p[lead] for p in parts]
        else:
            rest = lines
        width = self.ncols - (lead or 0)
        # one flat JSON array is cheaper than a list per row; the per-line separator count keeps rows aligned
        if any(c != width - 1 for c in map(bytes.count, rest, repeat(b","))):
            return False
        blob = b",".join(rest)
        if b'"' in blob or blob.translate(None, _NUMBER_BYTES):
            return False
        try:
            values = orjson.loads(b"[" + blob + b"]")
            matrix = np.array(values, dtype=np.float64)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            return False
        if matrix.shape != (len(lines) * width,):
            return False
        matrix = matrix.reshape(len(lines), width)[:, self.rest_order]
        if not np.isfinite(matrix).all():
            return False
        if self.id_idx == [0] and lead == 1:
            ids.extend(p[0] for p in parts)
        elif self.id_idx:
            ids.extend(b",".join([p[i] for i in self.id_idx]) for p in parts)
        else:
            ids.extend([b""] * len(lines))
        mats.append(matrix)
        return True

    def _slow_line(self, raw: bytes, line: int, ids: list[bytes], rejected: list[tuple[int, str]]) -> list | None:
        if not raw.strip():
            return None
        try:
            text = raw.decode("utf-8")
            fields = next(csv.reader([text], strict=True))
        except UnicodeDecodeError:
            rejected.append((line, "line is not valid UTF-8"))
            return None
        except (csv.Error, StopIteration) as exc:
            rejected.append((line, f"not valid CSV: {exc}"))
            return None
        if len(fields) != self.ncols:
            rejected.append((line, f"expected {self.ncols} fields, found {len(fields)}"))
            return None
        values: list = []
        for f, j in zip(self.schema.features, self.feature_idx, strict=True):
            value = fields[j].strip()
            if value == "":
                rejected.append((line, f"column '{f.name}' is empty"))
                return None
            if f.dtype == "number":
                try:
                    number = float(value)
                except ValueError:
                    rejected.append((line, f"column '{f.name}': '{value[:40]}' is not a number"))
                    return None
                if not math.isfinite(number):
                    rejected.append((line, f"column '{f.name}': '{value[:40]}' is not a finite number"))
                    return None
                values.append(number)
            else:
                values.append(value)
        ids.append(",".join(csv_field(fields[i]) for i in self.id_idx).encode())
        return values


class JsonLinesParser:
    """One JSON object per line. There is no header, so a missing feature or id field rejects that row."""

    def __init__(self, schema: FeatureSchema, id_columns: tuple[str, ...]):
        self.schema = schema
        self.id_columns = id_columns

    def parse(self, lines: list[bytes], first_line: int) -> Chunk:
        ids: list[bytes] = []
        rows: list[list] = []
        rejected: list[tuple[int, str]] = []
        for i, raw in enumerate(lines):
            if raw.strip():
                self._line(raw, first_line + i, ids, rows, rejected)
        dtype = np.float64 if self.schema.all_numeric else object
        matrix = np.array(rows, dtype=dtype) if rows else np.zeros((0, len(self.schema.names)), dtype=dtype)
        return Chunk(ids, matrix, rejected, len(lines))

    def _line(self, raw: bytes, line: int, ids: list[bytes], rows: list[list], rejected: list[tuple[int, str]]) -> None:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            rejected.append((line, "not valid JSON"))
            return
        if not isinstance(obj, dict):
            rejected.append((line, "expected a JSON object"))
            return
        values = []
        for f in self.schema.features:
            value = obj.get(f.name, _MISSING)
            if value is _MISSING or value is None:
                rejected.append((line, f"missing field '{f.name}'"))
                return
            if f.dtype == "number":
                if type(value) not in (int, float) or not math.isfinite(value):
                    rejected.append((line, f"field '{f.name}': expected a finite number"))
                    return
                value = float(value)
            elif not isinstance(value, str):
                rejected.append((line, f"field '{f.name}': expected a string"))
                return
            values.append(value)
        id_values = []
        for c in self.id_columns:
            value = obj.get(c, _MISSING)
            if value is _MISSING:
                rejected.append((line, f"missing id field '{c}'"))
                return
            id_values.append(csv_field(id_text(value)))
        ids.append(",".join(id_values).encode())
        rows.append(values)


def format_of(key: str) -> str | None:
    name = key.rsplit("/", 1)[-1].lower()
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return None
