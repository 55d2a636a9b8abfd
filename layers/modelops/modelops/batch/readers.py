"""Streaming readers: an object's byte range -> blocks of at most N whole lines -> (ids, features, rejects).

Memory is set by the chunk size: only the current read and one block of lines are held. A line longer than
MODELOPS_BATCH_MAX_LINE_BYTES is rejected as a row without being held: its bytes are dropped as they are read
(capped_lines). A part is read
with one ranged, streamed GET; a byte-range part owns the lines that *start* inside its range (the first
partial line belongs to the previous part, the last line is read to its end).

A block is one bytes object of whole lines, each ending with a newline. CSV blocks are parsed in bulk
(batch.bulkcsv: no Python object per line or value) in sub-blocks of about 256 KiB; a sub-block that
does not qualify is split in halves until the bad lines are isolated and parsed one by one, which names
the reason for each rejected line.

Ids travel as a zero-padded byte matrix (one row per scored row), so output lines are assembled with
array operations too. CSV text never contains NUL bytes: lines with one are rejected. Without id columns a
row's id is its object and line number ('key,line').

A gzip object is decompressed as it streams (GzipStream) and read whole, from its first byte: its length is
unknown until the end, and it cannot be entered in the middle. A UTF-8 byte order mark is skipped at the
start of an object.

Values follow the feature schema as the predict API applies it: missing values (modelops.model.missing tokens in
CSV, null in JSON) become NaN in the features the model's schema marks nullable and reject the row in the
others, a bool feature takes true/false/1/0, and JSON Lines values are checked by the same code as request
rows, so both name the same reason for a bad value.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import orjson

from ..core.errors import InputError
from ..model.missing import NA_VALUES
from ..model.schema import MAX_STRING_LENGTH, FeatureSchema, bool_problem
from .blocks import BlockSizes
from .bulkcsv import BulkCsv

READ_BYTES = 8 * 1024**2
MIN_READ_BYTES = 1024**2


def read_size(max_line_bytes: int) -> int:
    """Bytes per read: 8 MiB, or less with a small line bound (twice the bound, at least 1 MiB), so that a
    small bound keeps the whole read path small."""
    return min(READ_BYTES, max(2 * max_line_bytes, MIN_READ_BYTES))


HEADER_MAX_BYTES = 1024**2
# Bulk parsing granularity. simdjson holds the GIL while it parses, and scoring threads need the GIL for a
# moment between trees: short parse calls keep their waits short (256 KiB measured about 4% faster end to
# end than 1 MiB with HistGradientBoosting; 128 KiB gained nothing more).
SUB_BLOCK_BYTES = 256 * 1024
SLOW_LINES = 64  # below this a failing sub-block is parsed line by line
_MISSING = object()
_BOOL_TEXT = {"true": 1.0, "false": 0.0}  # what pandas' to_csv writes for bool columns (any case)
BOM = b"\xef\xbb\xbf"  # UTF-8 byte order mark, as Excel and some exporters write


def padded_ids(ids: list[bytes]) -> np.ndarray:
    """Id texts as an (n, width) uint8 matrix, zero-padded on the right."""
    if not ids:
        return np.zeros((0, 0), dtype=np.uint8)
    fixed = np.array(ids, dtype=bytes)  # numpy pads fixed-width byte strings with NULs
    return fixed.view(np.uint8).reshape(len(ids), fixed.dtype.itemsize)


def stack_ids(parts: list[np.ndarray]) -> np.ndarray:
    width = max((p.shape[1] for p in parts), default=0)
    out = np.zeros((sum(len(p) for p in parts), width), dtype=np.uint8)
    row = 0
    for p in parts:
        out[row : row + len(p), : p.shape[1]] = p
        row += len(p)
    return out


def line_ids(prefix: bytes, first: int, count: int) -> np.ndarray:
    """Ids 'prefix<line>' for lines first .. first + count - 1, as a zero-padded (count, width) uint8 matrix,
    built with array operations (the bulk CSV path has no Python object per line)."""
    if count <= 0:
        return np.zeros((0, len(prefix)), dtype=np.uint8)
    numbers = integer_ids(np.arange(first, first + count, dtype=np.int64))
    out = np.empty((count, len(prefix) + numbers.shape[1]), dtype=np.uint8)
    out[:, : len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    out[:, len(prefix) :] = numbers
    return out


# two ASCII digits of 0..99 as one little-endian uint16 each
_DIGIT_PAIRS = np.array([[48 + i // 10, 48 + i % 10] for i in range(100)], dtype=np.uint8).view("<u2").ravel()


def integer_ids(values: np.ndarray) -> np.ndarray:
    """Integers (any numpy integer dtype, unsigned 64-bit included) as their decimal text in an (n, width)
    uint8 matrix: right-aligned, the places before a number's first digit (and after a minus sign) are zero
    bytes, which are padding like any other. Two digits per division, from a table: about 5 times faster
    than numpy's astype(bytes), which formats value by value."""
    n = len(values)
    if n == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    negative = None
    if values.dtype.kind == "u":
        magnitude = values.astype(np.uint64)
    else:
        signed = values.astype(np.int64)  # a copy (astype copies): negated in place below
        magnitude = signed.view(np.uint64)
        if signed.min() < 0:
            negative = signed < 0
            np.negative(magnitude, out=magnitude, where=negative)  # wraps to |v|, int64's minimum included
    digits = len(str(int(magnitude.max())))
    width = digits + digits % 2
    sign = 0 if negative is None else 1
    out = np.empty((n, sign + width), dtype=np.uint8)
    text = out[:, sign:]
    pairs = np.empty((n, width // 2), dtype="<u2")
    rest = np.empty_like(magnitude)
    quotient = magnitude.copy()
    for j in range(width // 2 - 1, -1, -1):
        np.divmod(quotient, 100, out=(quotient, rest))
        pairs[:, j] = _DIGIT_PAIRS[rest]
    text[:] = pairs.view(np.uint8)
    for place in range(width - 1):  # a leading zero digit becomes padding; the last digit always stays
        text[:, place] *= magnitude >= 10 ** (width - 1 - place)
    if negative is not None:
        out[:, 0] = np.where(negative, ord("-"), 0)
    return out


@dataclass
class Chunk:
    ids: np.ndarray  # (scored rows, width) uint8: each row's CSV-encoded id field(s); zero bytes are padding
    matrix: np.ndarray  # scored rows x features, in schema order
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    lines: int = 0  # lines consumed, blank ones included
    row_lines: np.ndarray | None = None  # line number of each scored row (rows refused after parsing need it)

    def id_list(self) -> list[bytes]:
        return [bytes(row).replace(b"\0", b"") for row in self.ids]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Parsing allocates many short-lived objects but no reference cycles; the cyclic collector would
    otherwise rescan them over and over."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class ByteStream(Protocol):
    def read(self, n: int) -> bytes: ...


def owned_bytes(
    stream: ByteStream, size: int | None, start: int, end: int | None, read_bytes: int = READ_BYTES
) -> Iterator[bytes]:
    """The bytes of the lines starting in [start, end), in pieces as read; the last piece ends with a newline.

    `stream` reads the object from byte max(start - 1, 0) on; reading stops once the last owned line is
    complete. size None: a stream of unknown length (decompressed data), read whole to its end.
    """
    if size is None:
        yield from _whole_stream(stream, start > 0, read_bytes)
        return
    end = size if end is None else end
    pos = start - 1 if start > 0 else start  # object offset of the next byte read
    skip_partial = start > 0  # through the first newline: that line started in the previous range
    last = b"\n"
    while pos < size:
        data = stream.read(min(read_bytes, size - pos))
        if not data:
            raise InputError(f"object ended early at byte {pos} of {size}")
        offset, pos = pos, pos + len(data)
        if skip_partial:
            i = data.find(b"\n")
            if i < 0:
                continue
            data, offset, skip_partial = data[i + 1 :], offset + i + 1, False
            if end < size and offset >= end:
                return  # no line starts inside the range
        if end < size:
            j = data.find(b"\n", max(end - 1 - offset, 0))  # the newline ending the last owned line
            if j >= 0:
                yield data[: j + 1]
                return
        if data:
            last = data[-1:]
            yield data
    if last != b"\n" and not skip_partial:
        yield b"\n"


def _whole_stream(stream: ByteStream, skip_partial: bool, read_bytes: int) -> Iterator[bytes]:
    """Every line to the end of the stream; skip_partial: first through the first newline (the stream then
    starts at the byte before the first owned line, as for a byte range)."""
    last = b"\n"
    while data := stream.read(read_bytes):
        if skip_partial:
            i = data.find(b"\n")
            if i < 0:
                continue
            data, skip_partial = data[i + 1 :], False
            if not data:
                continue
        last = data[-1:]
        yield data
    if last != b"\n" and not skip_partial:
        yield b"\n"


LONG_LINE = b"\0line longer than "  # stands in for a line over the bound: "<LONG_LINE><bound>\0\n"


def long_line_reason(raw: bytes) -> str | None:
    """The reject reason when `raw` is the stand-in for a line that was longer than the bound."""
    if not raw.startswith(LONG_LINE):
        return None
    bound = raw[len(LONG_LINE) :].rstrip(b"\0").decode()
    return f"line longer than {bound} bytes (MODELOPS_BATCH_MAX_LINE_BYTES)"


def capped_lines(pieces: Iterator[bytes], max_line_bytes: int) -> Iterator[bytes]:
    """The same lines, except that each line longer than max_line_bytes (newline not counted) is replaced by
    one short stand-in line (LONG_LINE), so line numbers stay right and the parser rejects it with the bound.

    Only the start of a line not yet ended is held, and never more than max_line_bytes of it: the rest of an
    over-long line is dropped as it is read, up to its newline. `pieces` ends with a newline (owned_bytes).
    """
    marker = LONG_LINE + str(max_line_bytes).encode() + b"\0\n"
    tail: list[bytes] = []  # the current unfinished line, while it is within the bound
    tail_bytes = 0
    dropping = False  # inside a line already over the bound
    for piece in pieces:
        first = piece.find(b"\n")
        if first < 0:
            if not dropping:
                tail_bytes += len(piece)
                if tail_bytes > max_line_bytes:
                    tail, tail_bytes, dropping = [], 0, True
                else:
                    tail.append(piece)
            continue
        if dropping or tail_bytes + first > max_line_bytes:
            yield marker
        else:
            yield from tail
            yield piece[: first + 1]
        tail, tail_bytes, dropping = [], 0, False
        last = piece.rfind(b"\n")
        pos = first + 1
        if last - first - 1 > max_line_bytes and _has_long_line(piece, first + 1, last, max_line_bytes):
            newlines = np.flatnonzero(np.frombuffer(piece, dtype=np.uint8, count=last + 1, offset=0) == ord("\n"))
            lengths = np.diff(newlines) - 1
            for i in np.flatnonzero(lengths > max_line_bytes):
                begin, stop = int(newlines[i]) + 1, int(newlines[i + 1]) + 1
                if begin > pos:
                    yield piece[pos:begin]
                yield marker
                pos = stop
        if last + 1 > pos:
            yield piece[pos : last + 1]
        rest = len(piece) - last - 1
        if rest > max_line_bytes:
            dropping = True
        elif rest:
            tail, tail_bytes = [piece[last + 1 :]], rest


def _has_long_line(piece: bytes, pos: int, last: int, max_line_bytes: int) -> bool:
    """Whether a line in piece[pos : last + 1] (whole lines) is longer than max_line_bytes. Each step jumps to
    the last newline within max_line_bytes + 1 bytes: a line that fits has its newline there. A few finds
    per read, instead of locating every newline (line_blocks does that once, later)."""
    while pos <= last:
        newline = piece.rfind(b"\n", pos, pos + max_line_bytes + 1)
        if newline < 0:
            return True
        pos = newline + 1
    return False


def line_blocks(
    stream: ByteStream,
    size: int | None,
    start: int,
    end: int | None,
    block_rows: int | BlockSizes,
    read_bytes: int = READ_BYTES,
    max_line_bytes: int | None = None,
) -> Iterator[bytes]:
    """Blocks of whole lines (each ending with a newline): the lines starting in [start, end).

    block_rows: lines per block, or a BlockSizes that picks each block's size. Each read piece is scanned
    for newlines once. max_line_bytes: a longer line becomes a stand-in that its parser rejects
    (capped_lines), so memory holds at most that much of one line, however long the line is.
    """
    sizes = block_rows if isinstance(block_rows, BlockSizes) else BlockSizes.fixed(block_rows)
    target = sizes.next(0, 0)
    held: list[bytes] = []
    lines = bytes_done = lines_done = 0
    pieces = owned_bytes(stream, size, start, end, read_bytes)
    if max_line_bytes is not None:
        pieces = capped_lines(pieces, max_line_bytes)
    for piece in pieces:
        # numpy finds the newlines mostly outside the GIL (bytes.count holds it for milliseconds per piece,
        # while the scoring threads wait for it between trees)
        newlines = np.flatnonzero(np.frombuffer(piece, dtype=np.uint8) == ord("\n"))
        count = len(newlines)
        used = taken = 0  # bytes and newlines of this piece already in a yielded block
        while lines + count - taken >= target:
            need = target - lines
            cut = int(newlines[taken + need - 1]) + 1
            held.append(piece[used:cut])
            block = b"".join(held)
            yield block
            bytes_done, lines_done = bytes_done + len(block), lines_done + target
            held, lines, used, taken = [], 0, cut, taken + need
            target = sizes.next(bytes_done, lines_done)
        if used < len(piece):
            held.append(piece[used:] if used else piece)
            lines += count - taken
    if held:
        yield b"".join(held)


HEADER_READ_BYTES = 64 * 1024


class EmptyInput(InputError):
    """The object holds no bytes at all (after decompression): nothing to read, not even a header."""


def read_header(stream: ByteStream, size: int | None, where: str) -> tuple[list[str], int, bytes]:
    """The CSV header's column names, the byte offset where data starts, and the bytes read for it.

    `stream` reads the object from its first byte; it is read only as far as the header's newline (in
    small pieces), so the same stream can go on to deliver the data. size None: a stream of unknown length.
    """
    head = b""
    limit = HEADER_MAX_BYTES if size is None else min(size, HEADER_MAX_BYTES)
    ended = False
    while b"\n" not in head and len(head) < limit:
        piece = stream.read(HEADER_READ_BYTES if size is None else min(HEADER_READ_BYTES, size - len(head)))
        if not piece:
            if size is not None:
                raise InputError(f"{where}: object ended early at byte {len(head)} of {size}")
            ended = True
            break
        head += piece
    if not head and (size == 0 or ended):
        raise EmptyInput(f"{where}: empty object", field="input")
    end = head.find(b"\n")
    if end < 0 and not ended and (size is None or len(head) < size):
        raise InputError(f"{where}: header line is longer than {HEADER_MAX_BYTES} bytes")
    line = head if end < 0 else head[:end]
    try:
        text = line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise InputError(f"{where}: header is not UTF-8 text") from None
    if not text.strip():
        raise InputError(f"{where}: no CSV header line")
    names = [n.strip() for n in next(csv.reader([text]))]
    return names, (len(head) if end < 0 else end + 1), head


class Unread:
    """A stream with bytes already read put back in front of it."""

    def __init__(self, prefix: bytes, stream: ByteStream):
        self.prefix, self.stream = prefix, stream

    def read(self, n: int) -> bytes:
        if not self.prefix:
            return self.stream.read(n)
        out, self.prefix = self.prefix[:n], self.prefix[n:]
        return out


class GzipStream:
    """The decompressed bytes of a gzip stream (one or more members, as `cat a.gz b.gz` makes), read in
    pieces: memory holds one compressed read and zlib's window, whatever the object's size."""

    def __init__(self, stream: ByteStream, where: str):
        import gzip

        self.where = where
        self._file = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[call-overload]

    def read(self, n: int) -> bytes:
        import zlib

        try:
            return self._file.read(n)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{self.where}: not a valid gzip file: {exc}", field="input") from None


def csv_field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def id_text(value: object) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def source_prefix(source: str | None, id_columns: tuple[str, ...]) -> bytes | None:
    """Without id columns each row is named by its object and line: the id text starts with the object."""
    return None if id_columns or source is None else (csv_field(source) + ",").encode()


class CsvParser:
    """source: the object's key; with no id columns each row's id is then 'object,line'. missing: cell
    values read as missing (modelops.model.missing), allowed in the features the model was trained with gaps in."""

    def __init__(
        self,
        header: list[str],
        schema: FeatureSchema,
        id_columns: tuple[str, ...],
        where: str,
        *,
        source: str | None = None,
        missing: frozenset[str] = NA_VALUES,
    ):
        for name in (*schema.names, *id_columns):
            if name not in header:
                kind = "id column" if name in id_columns else "feature column"
                hint = " (or set no id columns to name each row by its object and line)" if name in id_columns else ""
                raise InputError(f"{where}: missing required {kind} '{name}'{hint}", field=name, code="missing_column")
        if len(set(header)) != len(header):
            raise InputError(f"{where}: a column name is repeated in the header", field="header")
        self.schema = schema
        self.ncols = len(header)
        self.names = schema.names
        self.feature_idx = [header.index(n) for n in schema.names]
        self.id_idx = [header.index(c) for c in id_columns]
        self.prefix = source_prefix(source, id_columns)
        self.missing = missing
        self.bulk = self._bulk_layout()

    def _bulk_layout(self) -> BulkCsv | None:
        """Bulk parsing needs numeric features after all other columns, and the id columns side by side
        in header order among those leading columns."""
        others = sorted(set(range(self.ncols)) - set(self.feature_idx))
        lead = len(others)
        if not self.schema.all_numeric or others != list(range(lead)):
            return None
        first = self.id_idx[0] if self.id_idx else 0
        if self.id_idx != list(range(first, first + len(self.id_idx))) or first + len(self.id_idx) > lead:
            return None
        return BulkCsv(self.ncols, lead, (first, first + len(self.id_idx)), self.feature_idx)

    def parse(self, block: bytes, first_line: int) -> Chunk:
        if b"\r" in block:  # CRLF line endings
            block = block.replace(b"\r\n", b"\n")
        ids: list[np.ndarray] = []
        mats: list[np.ndarray] = []
        rejected: list[tuple[int, str]] = []
        numbers: list[np.ndarray] = []
        line = first_line
        with gc_paused():
            pos = 0
            while pos < len(block):
                cut = block.find(b"\n", pos + SUB_BLOCK_BYTES) + 1 or len(block)
                line += self._parse(block[pos:cut], line, ids, mats, rejected, numbers)
                pos = cut
        dtype = np.float64 if self.schema.all_numeric else object
        matrix = np.concatenate(mats) if mats else np.zeros((0, len(self.names)), dtype=dtype)
        row_lines = np.concatenate(numbers) if numbers else np.zeros(0, dtype=np.int64)
        return Chunk(stack_ids(ids), matrix, rejected, line - first_line, row_lines)

    def _parse(
        self,
        block: bytes,
        line0: int,
        ids: list[np.ndarray],
        mats: list[np.ndarray],
        rejected: list[tuple[int, str]],
        numbers: list[np.ndarray],
    ) -> int:
        """Parse whole lines; returns how many were consumed."""
        if self.bulk is not None:
            result = self.bulk.parse(block)
            if result is not None:
                count = len(result[1])  # the bulk path takes no blank lines: row i is line line0 + i
                ids.append(result[0] if self.prefix is None else line_ids(self.prefix, line0, count))
                mats.append(result[1])
                numbers.append(np.arange(line0, line0 + count, dtype=np.int64))
                return count
        lines = block.count(b"\n")
        if lines > SLOW_LINES:
            mid = block.find(b"\n", len(block) // 2)
            if mid == len(block) - 1:
                mid = block.rfind(b"\n", 0, len(block) // 2)
            if mid >= 0:
                done = self._parse(block[: mid + 1], line0, ids, mats, rejected, numbers)
                return done + self._parse(block[mid + 1 :], line0 + done, ids, mats, rejected, numbers)
        rows: list[list] = []
        row_ids: list[bytes] = []
        row_lines: list[int] = []
        for i, raw in enumerate(block.split(b"\n")[:lines]):
            values = self._slow_line(raw, line0 + i, row_ids, rejected)
            if values is not None:
                rows.append(values)
                row_lines.append(line0 + i)
        if rows:
            ids.append(padded_ids(row_ids))
            mats.append(np.array(rows, dtype=np.float64 if self.schema.all_numeric else object))
            numbers.append(np.array(row_lines, dtype=np.int64))
        return lines

    def _slow_line(self, raw: bytes, line: int, ids: list[bytes], rejected: list[tuple[int, str]]) -> list | None:
        if not raw.strip():
            return None
        if b"\0" in raw:
            rejected.append((line, long_line_reason(raw) or "line contains a NUL byte"))
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
            if value in self.missing:
                if not f.nullable:  # as the online API refuses null: the model saw no gaps here
                    what = "is empty" if value == "" else f"has the missing value '{value[:40]}'"
                    rejected.append((line, f"column '{f.name}' {what}"))
                    return None
                values.append(math.nan)
                continue
            if f.dtype == "number":
                if f.is_bool:
                    flag = _bool_field(value)
                    if isinstance(flag, str):
                        rejected.append((line, f"column '{f.name}': {flag}"))
                        return None
                    values.append(flag)
                    continue
                try:
                    number = float(value)
                except ValueError:
                    rejected.append((line, f"column '{f.name}': '{value[:40]}' is not a number"))
                    return None
                if not math.isfinite(number):
                    rejected.append((line, f"column '{f.name}': '{value[:40]}' is not a finite number"))
                    return None
                values.append(number)
            elif len(value) > MAX_STRING_LENGTH:
                rejected.append((line, f"column '{f.name}': longer than {MAX_STRING_LENGTH} characters"))
                return None
            else:
                values.append(value)
        if self.prefix is not None:
            ids.append(self.prefix + str(line).encode())
        else:
            ids.append(",".join(csv_field(fields[i]) for i in self.id_idx).encode())
        return values


def _bool_field(text: str) -> float | str:
    """A bool feature's CSV field as 1.0/0.0, or the problem, worded as the predict API words it."""
    if text.lower() in _BOOL_TEXT:
        return _BOOL_TEXT[text.lower()]
    try:
        number = float(text)
    except ValueError:
        return bool_problem(text)
    return number if number in (0.0, 1.0) else bool_problem(number)


class JsonLinesParser:
    """One JSON object per line. There is no header, so a missing feature or id field rejects that row.
    null is a missing value, allowed in the features the model was trained with gaps in.

    source: the object's key; with no id columns each row's id is then 'object,line'. object_start: the
    part starts at the object's first byte, where a UTF-8 byte order mark may stand."""

    def __init__(
        self,
        schema: FeatureSchema,
        id_columns: tuple[str, ...],
        *,
        source: str | None = None,
        object_start: bool = False,
    ):
        self.schema = schema
        self.id_columns = id_columns
        self.prefix = source_prefix(source, id_columns)
        self._bom = object_start

    def parse(self, block: bytes, first_line: int) -> Chunk:
        if self._bom:
            self._bom = False
            if block.startswith(BOM):
                block = block[len(BOM) :]
        lines = block.split(b"\n")
        lines.pop()  # after the last newline
        ids: list[bytes] = []
        rows: list[list] = []
        rejected: list[tuple[int, str]] = []
        row_lines: list[int] = []
        for i, raw in enumerate(lines):
            if raw.strip() and self._line(raw, first_line + i, ids, rows, rejected):
                row_lines.append(first_line + i)
        dtype = np.float64 if self.schema.all_numeric else object
        matrix = np.array(rows, dtype=dtype) if rows else np.zeros((0, len(self.schema.names)), dtype=dtype)
        return Chunk(padded_ids(ids), matrix, rejected, len(lines), np.array(row_lines, dtype=np.int64))

    def _line(self, raw: bytes, line: int, ids: list[bytes], rows: list[list], rejected: list[tuple[int, str]]) -> bool:
        too_long = long_line_reason(raw)
        if too_long:
            rejected.append((line, too_long))
            return False
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            rejected.append((line, "not valid JSON"))
            return False
        if not isinstance(obj, dict):
            rejected.append((line, "expected a JSON object"))
            return False
        values = []
        for f in self.schema.features:
            value = obj.get(f.name, _MISSING)
            if value is None and f.nullable:
                values.append(math.nan)
                continue
            if value is _MISSING:
                rejected.append((line, f"missing field '{f.name}'"))
                return False
            try:  # the predict API's own value check, null included: the same reason for the same value
                values.append(FeatureSchema.check_value(f, value, f"field '{f.name}'"))
            except InputError as exc:
                rejected.append((line, str(exc)))
                return False
        id_values = []
        for c in self.id_columns:
            value = obj.get(c, _MISSING)
            if value is _MISSING:
                rejected.append((line, f"missing id field '{c}'"))
                return False
            text = id_text(value)
            if "\0" in text:
                rejected.append((line, f"id field '{c}' contains a NUL character"))
                return False
            id_values.append(csv_field(text))
        ids.append(",".join(id_values).encode() if self.prefix is None else self.prefix + str(line).encode())
        rows.append(values)
        return True


GZIP_SUFFIX = ".gz"
PARQUET = "parquet"
PARQUET_SUFFIXES = (".parquet", ".parq")  # compressed inside (per column chunk), never as a whole


def format_of(key: str) -> str | None:
    """csv, jsonl or parquet from the object's name; a .gz suffix (compression_of) does not change the
    format of csv or jsonl."""
    name = key.rsplit("/", 1)[-1].lower()
    if name.endswith(PARQUET_SUFFIXES):
        return PARQUET
    name = name.removesuffix(GZIP_SUFFIX)
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return None


def compression_of(key: str) -> str | None:
    return "gzip" if key.lower().endswith(GZIP_SUFFIX) else None
