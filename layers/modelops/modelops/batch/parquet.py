"""Parquet input: an object's row groups -> only the model's feature and id columns -> (ids, features, rejects).

fastparquet decodes the column chunks (snappy, zstd, gzip, lz4 and brotli through cramjam). It needs pandas,
which the ML runtime layer ships zipped for DataFrame models; modelops.model.frames extracts it on first use, so
only a run that reads Parquet pays for it. fastparquet, cramjam and fsspec come from the batch functions'
Parquet layer (layers/parquet).

Reads are ranged GETs of the object version that was planned: the footer (one GET for its last 64 KiB, a
second one only for a larger footer), then per row group one GET per run of selected column chunks that
lie side by side (RangeFile.fetch_spans), so columns the model does not use are never fetched or decoded. When
the selected chunks of the part's row groups follow each other (every column selected, or only small gaps),
one streamed GET reads them all forward instead (RangeFile.stream).
The reading thread only fetches a row group's selected column chunks (FetchedGroup); the scoring workers
decode them, one row group each, side by side. A row group is decoded whole, then cut into chunks of
MODELOPS_BATCH_CHUNK_ROWS rows: memory holds about one row group's selected columns as float64 (twice: the
decoded columns and the chunks' row matrices) per worker, plus one fetched row group waiting, and a row
group whose selected columns would decode to more than MAX_ROW_GROUP_BYTES is refused with a hint rather
than risk the function's memory.

Row numbers stand where CSV has line numbers: row 1 is the file's first row. A part is a range of row
groups (batch.plan); its rows are numbered from 1 within the part (the commit step adds the rows of the
object's earlier parts, as for CSV lines), while a run without id columns names each row by its absolute
row number, which the row groups' metadata gives every part.

Values follow the feature schema as for CSV: null and NaN (and a missing-value token in a text column)
are missing, allowed in the features the model was trained with gaps in and rejecting the row in the
others; infinite numbers are rejected; a number feature stored as text is parsed as CSV text is, so the
same bad value gets the same reason; a column of another type (timestamps, binary, nested) rejects its rows
with the type named.
"""

from __future__ import annotations

import contextlib
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ..core.errors import InputError, ModelOpsError
from ..model.missing import NA_VALUES
from ..model.schema import NUMBER, FeatureSchema
from .readers import Chunk, _bool_field, csv_field, integer_ids, line_ids, padded_ids, source_prefix
from .store import ObjectStore

MAGIC = b"PAR1"
TAIL_READ_BYTES = 64 * 1024
MAX_FOOTER_BYTES = 64 * 1024**2
MAX_ROW_GROUP_BYTES = 1024**3  # selected columns of one row group, decoded to float64
FILL_BLOCK_ROWS = 4096
MERGE_GAP_BYTES = 1024**2  # column chunks closer than this are fetched with one GET (the gap is read and dropped)
# Row groups whose selected spans are closer than this (side by side when every column is selected) are read
# through one streamed GET per part. Small, so that unused columns between row groups are still not fetched.
STREAM_GAP_BYTES = 8 * 1024


def load_fastparquet() -> Any:
    """fastparquet, with pandas from the runtime layer's archive when it is not installed."""
    from ..model.frames import import_pandas

    try:
        import_pandas()
        import fastparquet
    except ModuleNotFoundError as exc:
        raise ModelOpsError(
            f"reading Parquet needs fastparquet and pandas ({exc}); the batch functions get them from the "
            "Parquet layer and the ML runtime layer"
        ) from exc
    return fastparquet


def merged_spans(ranges: list[tuple[int, int]], gap: int = MERGE_GAP_BYTES) -> list[tuple[int, int]]:
    """[start, end) spans, sorted, with those at most `gap` bytes apart joined (the gap is read and dropped)."""
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start - merged[-1][1] <= gap:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


class RangeFile:
    """A read-only, seekable view of one object version for fastparquet, served by ranged GETs.

    `fetch_spans(ranges)` reads byte spans (side-by-side ones with one GET); `holding(spans)` is a view of
    its own over spans already fetched, for a decoder on another thread. A read outside the held spans (the
    footer is held once read) is one GET of exactly that span. After `stream(runs)`, a span fetched inside one
    of those runs is read from one streamed GET of the whole run, opened at its first span and read forward
    (row group after row group), instead of a GET of its own."""

    def __init__(self, store: ObjectStore, key: str, etag: str, size: int):
        self.store, self.key, self.etag, self.size = store, key, etag, size
        self.pos = 0
        self.gets = 0
        self._spans: list[tuple[int, bytes]] = []
        self._runs: list[tuple[int, int]] = []
        self._body: Any = None
        self._body_pos = self._body_end = 0

    def _fetch(self, start: int, end: int) -> bytes:
        self.gets += 1
        body = self.store.open_range(self.key, self.etag, start, end)
        try:
            data = body.read()
        except (OSError, ValueError) as exc:
            raise ModelOpsError(f"reading {self.store.uri(self.key)}: {exc}") from None
        finally:
            body.close()
        if len(data) != end - start:
            raise InputError(f"{self.store.uri(self.key)}: object ended early at byte {start + len(data)}")
        return data

    def keep(self, start: int, data: bytes) -> None:
        self._spans.append((start, data))

    def stream(self, runs: list[tuple[int, int]]) -> None:
        """The [start, end) runs that later fetches read forward through, one streamed GET per run."""
        self._runs = sorted(runs)

    def fetch_spans(self, ranges: list[tuple[int, int]]) -> list[tuple[int, bytes]]:
        """(start, bytes) of these [start, end) spans, side-by-side ones joined, each read from the streamed run
        that holds it or with a GET of its own."""
        return [(start, self._streamed(start, end) or self._fetch(start, end)) for start, end in merged_spans(ranges)]

    def holding(self, spans: list[tuple[int, bytes]]) -> RangeFile:
        """A reader of the same object version that serves these fetched spans, with a position of its own, so
        that row groups can be decoded on several threads at once."""
        view = RangeFile(self.store, self.key, self.etag, self.size)
        view._spans = list(spans)
        return view

    def _streamed(self, start: int, end: int) -> bytes | None:
        """The span read from the streamed GET of its run, or None when no run holds it."""
        if self._body is None or not self._body_pos <= start < end <= self._body_end:
            run = next(((a, b) for a, b in self._runs if a <= start < end <= b), None)
            if run is None:
                return None
            self._close_body()
            self.gets += 1
            self._body = self.store.open_range(self.key, self.etag, run[0], run[1])
            self._body_pos, self._body_end = run
        self._read_body(start - self._body_pos)  # the gap before the span: read and dropped
        return self._read_body(end - start)

    def _read_body(self, n: int) -> bytes:
        pieces, left = [], n
        try:
            while left > 0:
                piece = self._body.read(left)
                if not piece:
                    break
                pieces.append(piece)
                left -= len(piece)
        except (OSError, ValueError) as exc:
            raise ModelOpsError(f"reading {self.store.uri(self.key)}: {exc}") from None
        if left:
            raise InputError(f"{self.store.uri(self.key)}: object ended early at byte {self._body_pos + n - left}")
        self._body_pos += n
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _close_body(self) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            with contextlib.suppress(Exception):
                body.close()

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else self.size + offset
        if not 0 <= self.pos <= self.size:
            raise InputError(f"{self.store.uri(self.key)}: not a valid Parquet file (offset {self.pos} is outside it)")
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        start = self.pos
        for begin, data in self._spans:
            if begin <= start and end <= begin + len(data):
                self.pos = end
                return data[start - begin : end - begin]
        self.pos = end
        return self._fetch(start, end) if end > start else b""

    def close(self) -> None:
        self._spans = []
        self._close_body()


def open_parquet(store: ObjectStore, key: str, etag: str, size: int) -> tuple[Any, RangeFile]:
    """(fastparquet.ParquetFile, its RangeFile), from the footer read with one or two GETs."""
    where = store.uri(key)
    if size < 12:
        raise InputError(f"{where}: not a Parquet file (only {size} bytes)", field="input")
    file = RangeFile(store, key, etag, size)
    tail_start = max(0, size - TAIL_READ_BYTES)
    tail = file._fetch(tail_start, size)
    if tail[-4:] != MAGIC:
        raise InputError(f"{where}: not a Parquet file (no PAR1 at its end)", field="input")
    footer = struct.unpack("<I", tail[-8:-4])[0]
    if footer > MAX_FOOTER_BYTES or footer + 12 > size:
        raise InputError(f"{where}: not a valid Parquet file (footer of {footer} bytes)", field="input")
    if footer + 8 > len(tail):
        tail_start = size - 8 - footer
        tail = file._fetch(tail_start, size)
    file.keep(tail_start, tail)
    fastparquet = load_fastparquet()
    try:
        pf = fastparquet.ParquetFile(file)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{where}: not a valid Parquet file ({exc})", field="input") from None
    return pf, file


@dataclass(frozen=True)
class RowGroup:
    index: int
    rows: int
    first_row: int  # rows of the groups before it
    compressed_bytes: int  # all of its column chunks


def row_groups(pf: Any) -> list[RowGroup]:
    out, first = [], 0
    for i, rg in enumerate(pf.row_groups):
        size = sum(int(c.meta_data.total_compressed_size) for c in rg.columns)
        out.append(RowGroup(i, int(rg.num_rows), first, size))
        first += int(rg.num_rows)
    return out


def describe_row_groups(store: ObjectStore, key: str, etag: str, size: int) -> list[RowGroup]:
    """The object's row groups, from its footer (what the planner cuts a large object by)."""
    pf, file = open_parquet(store, key, etag, size)
    file.close()
    return row_groups(pf)


def _column_name(chunk: Any) -> str:
    return ".".join(chunk.meta_data.path_in_schema)


class ParquetReader:
    """Chunks of one Parquet part (row groups [first_group, stop_group)) with only the needed columns."""

    def __init__(
        self,
        store: ObjectStore,
        part: dict[str, Any],
        schema: FeatureSchema,
        id_columns: tuple[str, ...],
        chunk_rows: int,
        missing: frozenset[str] = NA_VALUES,
    ):
        self.store, self.schema, self.id_columns = store, schema, id_columns
        self.where = store.uri(part["key"])
        self.chunk_rows = max(1, chunk_rows)
        self.missing = missing
        self.prefix = source_prefix(part["key"], id_columns)
        self.pf, self.file = open_parquet(store, part["key"], part["etag"], part["size"])
        columns = set(self.pf.columns)
        for name in (*schema.names, *id_columns):
            if name not in columns:
                kind = "id column" if name in id_columns else "feature column"
                hint = " (or set no id columns to name each row by its object and row)" if name in id_columns else ""
                raise InputError(
                    f"{self.where}: missing required {kind} '{name}'{hint}", field=name, code="missing_column"
                )
        self.columns = list(dict.fromkeys([*id_columns, *schema.names]))
        groups = row_groups(self.pf)
        span = part.get("row_groups") or [0, len(groups)]
        self.groups = groups[span[0] : span[1]]

    def fetched(self) -> Iterator[FetchedGroup]:
        """The part's row groups in order, each with its selected column chunks' bytes, not yet decoded: this is
        the reading (one streamed GET when the chunks follow each other), and FetchedGroup.chunks() the decoding,
        which can run on another thread."""
        spans = {g.index: self._spans(g, self.columns) for g in self.groups if g.rows}
        # the part's row groups side by side: one streamed GET reads through all of them
        self.file.stream(merged_spans([s for group_spans in spans.values() for s in group_spans], STREAM_GAP_BYTES))
        line = 1  # row number within the part
        try:
            for group in self.groups:
                if group.rows == 0:
                    continue
                yield FetchedGroup(self, group, line, self.file.fetch_spans(spans[group.index]))
                line += group.rows
        finally:
            self.file.close()

    def decoded(self, fetched: FetchedGroup) -> Iterator[Chunk]:
        """A fetched row group decoded whole, then cut into chunks of chunk_rows rows. Safe to run on several
        threads at once: each decodes from its own view of the fetched bytes."""
        group = fetched.group
        frame = self._decode(group, self.columns, fetched.spans)
        fetched.spans = []  # the compressed bytes are not needed once decoded
        starts = range(0, group.rows, self.chunk_rows)
        chunks = [
            self._chunk(
                frame.iloc[start : start + self.chunk_rows], fetched.first_line + start, group.first_row + start + 1
            )
            for start in starts
        ]
        del frame  # freed before the chunks are scored
        chunks.reverse()
        while chunks:  # handed over one by one, so that each chunk's rows are freed once it is scored
            yield chunks.pop()

    def _spans(self, group: RowGroup, columns: list[str]) -> list[tuple[int, int]]:
        """The byte spans of the group's selected column chunks, checked against the object and the memory bound."""
        decoded = group.rows * len(columns) * 8
        if decoded > MAX_ROW_GROUP_BYTES:
            raise InputError(
                f"{self.where}: row group {group.index} holds {group.rows} rows, {decoded} bytes of the selected "
                f"columns decoded (at most {MAX_ROW_GROUP_BYTES}); write smaller row groups "
                "(e.g. Spark's parquet.block.size)",
                field="input",
            )
        rg = self.pf.row_groups[group.index]
        wanted = set(columns)
        spans: list[tuple[int, int]] = []
        for c in rg.columns:
            if _column_name(c) in wanted:
                md = c.meta_data
                start = int(min(md.dictionary_page_offset or md.data_page_offset, md.data_page_offset))
                end = start + int(md.total_compressed_size)
                if start < 0 or end > self.file.size:
                    raise InputError(f"{self.where}: not a valid Parquet file (row group {group.index})")
                spans.append((start, end))
        if sum(end - start for start, end in spans) > MAX_ROW_GROUP_BYTES:  # held in memory while decoded
            raise InputError(
                f"{self.where}: row group {group.index}'s selected columns take more than {MAX_ROW_GROUP_BYTES} "
                "bytes compressed; write smaller row groups",
                field="input",
            )
        return spans

    def _decode(self, group: RowGroup, columns: list[str], spans: list[tuple[int, bytes]]) -> Any:
        rg = self.pf.row_groups[group.index]
        try:
            return self.pf.read_row_group_file(rg, columns, {}, index=False, infile=self.file.holding(spans))
        except (InputError, ModelOpsError):
            raise
        except Exception as exc:  # corrupt pages or an unsupported encoding: the object's fault
            raise InputError(f"{self.where}: row group {group.index} cannot be decoded: {exc}", field="input") from None

    def _chunk(self, frame: Any, first_line: int, first_row: int) -> Chunk:
        n = len(frame)
        reasons: dict[int, str] = {}  # row -> the first reason that rejects it, in schema order
        dtype = np.float64 if self.schema.all_numeric else object
        columns = []
        for f in self.schema.features:
            values, problems = self._feature(f, frame[f.name])
            columns.append(values)
            for i, reason in problems:
                reasons.setdefault(i, reason)
        matrix = np.empty((n, len(columns)), dtype=dtype)
        # columns into rows block by block: a block of rows stays in cache while each column is written into
        # it (3-4x faster than writing whole columns with a stride of one row)
        for r in range(0, n, FILL_BLOCK_ROWS):
            block = matrix[r : r + FILL_BLOCK_ROWS]
            for j, values in enumerate(columns):
                block[:, j] = values[r : r + FILL_BLOCK_ROWS]
        ids = line_ids(self.prefix, first_row, n) if self.prefix is not None else self._ids(frame, reasons)
        bad = sorted(reasons)
        if bad:
            keep = np.ones(n, dtype=bool)
            keep[bad] = False
            matrix, ids = matrix[keep], ids[keep]
            row_lines = first_line + np.flatnonzero(keep).astype(np.int64)
        else:
            row_lines = np.arange(first_line, first_line + n, dtype=np.int64)
        return Chunk(ids, matrix, [(first_line + i, reasons[i]) for i in bad], n, row_lines)

    def _ids(self, frame: Any, reasons: dict[int, str]) -> np.ndarray:
        """The rows' id fields as a zero-padded byte matrix (readers.padded_ids)."""
        if len(self.id_columns) == 1:
            fast = _plain_ids(frame[self.id_columns[0]])
            if fast is not None:
                return fast
        columns = []
        for name in self.id_columns:
            texts = []
            for i, value in enumerate(frame[name].to_numpy(dtype=object, na_value=None)):
                if value is None:
                    reasons.setdefault(i, f"id column '{name}' is null")
                    texts.append("")
                    continue
                text = value if isinstance(value, str) else _id_text(value)
                if "\0" in text:
                    reasons.setdefault(i, f"id column '{name}' contains a NUL character")
                texts.append(csv_field(text))
            columns.append(texts)
        return padded_ids([",".join(row).encode() for row in zip(*columns, strict=True)])

    def _feature(self, f: Any, column: Any) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """The feature's values as the model gets them, and (row, reason) for each value that rejects its row."""
        import pandas as pd

        dtype = column.dtype
        problems: list[tuple[int, str]] = []
        if f.dtype == NUMBER and (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            gaps = np.isnan(values)
            if gaps.any() and not f.nullable:
                problems += [(int(i), f"column '{f.name}' is null") for i in np.flatnonzero(gaps)]
            infinite = np.isinf(values)
            if infinite.any():
                problems += [
                    (int(i), f"column '{f.name}': {values[i]} is not a finite number") for i in np.flatnonzero(infinite)
                ]
            if f.is_bool:
                wrong = ~gaps & (values != 0.0) & (values != 1.0)
                problems += [
                    (int(i), f"column '{f.name}': {_bool_field(repr(float(values[i])))}") for i in np.flatnonzero(wrong)
                ]
            return values, problems
        if not (pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)):
            if f.dtype != NUMBER and pd.api.types.is_numeric_dtype(dtype):
                return self._text_feature(f, column.astype(object).where(column.notna(), None), problems)
            expected = "a number" if f.dtype == NUMBER else "text"
            reason = f"column '{f.name}' holds {dtype} values in this file, expected {expected}"
            return np.full(len(column), math.nan if f.dtype == NUMBER else None), [
                (i, reason) for i in range(len(column))
            ]
        return self._text_feature(f, column, problems)

    def _text_feature(self, f: Any, column: Any, problems: list[tuple[int, str]]) -> tuple[np.ndarray, list]:
        """Text values, checked as CSV fields are (number features) or as JSON values (text features)."""
        objects = column.to_numpy(dtype=object, na_value=None)
        out = np.empty(len(objects), dtype=np.float64 if f.dtype == NUMBER else object)
        for i, value in enumerate(objects):
            text = value.strip() if isinstance(value, str) else value
            if text is None or (isinstance(text, str) and text in self.missing):
                if not f.nullable:
                    what = (
                        "is null"
                        if text is None
                        else "is empty"
                        if text == ""
                        else f"has the missing value '{text[:40]}'"
                    )
                    problems.append((i, f"column '{f.name}' {what}"))
                out[i] = math.nan
                continue
            if f.dtype != NUMBER:
                try:
                    out[i] = FeatureSchema.check_value(
                        f, text if isinstance(text, str) else _id_text(text), f"column '{f.name}'"
                    )
                except InputError as exc:
                    problems.append((i, str(exc)))
                    out[i] = None
                continue
            out[i] = math.nan
            if not isinstance(text, str):
                problems.append((i, f"column '{f.name}': expected a number, got {type(text).__name__}"))
            elif f.is_bool:
                flag = _bool_field(text)
                if isinstance(flag, str):
                    problems.append((i, f"column '{f.name}': {flag}"))
                else:
                    out[i] = flag
            else:
                try:
                    number = float(text)
                except ValueError:
                    problems.append((i, f"column '{f.name}': '{text[:40]}' is not a number"))
                    continue
                if not math.isfinite(number):
                    problems.append((i, f"column '{f.name}': '{text[:40]}' is not a finite number"))
                    continue
                out[i] = number
        return out, problems


@dataclass
class FetchedGroup:
    """One row group of a part: its selected column chunks' bytes, read in the part's order by the reading
    thread, and decoded by chunks() wherever that is called (batch.part calls it on a scoring worker, so
    several row groups decode side by side: cramjam's decompression and numpy's copies release the GIL)."""

    reader: ParquetReader
    group: RowGroup
    first_line: int  # the part's row number of the group's first row
    spans: list[tuple[int, bytes]]

    def chunks(self) -> Iterator[Chunk]:
        return self.reader.decoded(self)


def _plain_ids(column: Any) -> np.ndarray | None:
    """A single id column of integers (readers.integer_ids), or of text that needs no CSV quoting (one join and
    split), without nulls, as a byte matrix; None when a value needs the per-value path."""
    import pandas as pd

    if column.isna().any():
        return None
    if pd.api.types.is_integer_dtype(column.dtype):
        return integer_ids(column.to_numpy(dtype=getattr(column.dtype, "numpy_dtype", column.dtype)))
    if not (pd.api.types.is_string_dtype(column.dtype) or pd.api.types.is_object_dtype(column.dtype)):
        return None
    texts = column.to_numpy(dtype=object)
    if not all(isinstance(t, str) for t in texts):
        return None
    joined = "\n".join(texts)
    if any(c in joined for c in ',"\r\0') or joined.count("\n") != len(texts) - 1:
        return None
    fixed = np.array(joined.encode().split(b"\n"), dtype=bytes)
    if not len(fixed):
        return np.zeros((0, 0), dtype=np.uint8)
    return fixed.view(np.uint8).reshape(len(fixed), fixed.dtype.itemsize)


def _id_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)
