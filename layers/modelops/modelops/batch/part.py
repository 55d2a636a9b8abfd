"""Score one part (an object, a byte range of one, or a run of a Parquet object's row groups).

Predictions stream into an open multipart upload at their final key: nothing is readable there until
the commit step completes the upload. Rejects and the part's stats go to the attempt's work area, the
stats last, so a stats file means the part is complete. A retried part starts a new upload and rewrites
its stats; the commit completes only the uploads named in the stats and aborts the rest, so retries
never duplicate rows.

Chunks are parsed one step ahead in a background thread and scored on one worker thread per CPU.
Memory: the read buffer, at most MODELOPS_BATCH_MAX_LINE_BYTES of an unfinished line (a longer line is
rejected, its bytes dropped as they are read), at most (3 + workers) chunks (one parsing, one handed over, one waiting for a worker, the rest scoring) and
two upload parts, whatever the input size. A Parquet part is read a row group at a time instead, and its row
groups are decoded by the workers (see batch.parquet).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ..adapters.aws import aws_errors
from ..core.errors import ModelFault, ModelOpsError
from ..model.artifact import Manifest
from ..model.missing import NA_VALUES, missing_tokens
from ..model.schema import FeatureSchema
from ..monitoring.drift import DriftAccumulator
from .blocks import BlockSizes
from .config import BatchConfig
from .parquet import FetchedGroup, ParquetReader
from .prefetch import prefetched
from .readers import (
    PARQUET,
    ByteStream,
    Chunk,
    CsvParser,
    EmptyInput,
    GzipStream,
    JsonLinesParser,
    Unread,
    csv_field,
    line_blocks,
    read_header,
    read_size,
)
from .scoring import Scorer
from .store import ObjectStore
from .workers import ordered_map, quick_gil_handoff, worker_count
from .writer import MultipartWriter

REJECTED_HEADER = b"object,line,reason\n"
SOURCE_COLUMNS = ("object", "line")  # what names a prediction's input row when the run has no id columns
PREDICTION = "__prediction__"


class ObjectStream:
    """One streamed ranged GET; read errors become one-line ModelOpsErrors; closed when the part is done."""

    def __init__(self, store: ObjectStore, key: str, etag: str, start: int):
        self.store, self.key, self.etag, self.start = store, key, etag, start
        self._body: Any = None

    def read(self, n: int) -> bytes:
        if self._body is None:
            self._body = self.store.open_range(self.key, self.etag, self.start)
        with aws_errors(f"reading {self.store.uri(self.key)}", self.store.bucket):
            try:
                return self._body.read(n)
            except (OSError, ValueError) as exc:
                raise ModelOpsError(f"reading {self.store.uri(self.key)}: {exc}") from None

    def __enter__(self) -> ObjectStream:
        return self

    def __exit__(self, *_: Any) -> None:
        if self._body is not None:
            with contextlib.suppress(Exception):
                self._body.close()


@dataclass
class ScoredChunk:
    chunk: Chunk
    body: bytes  # prediction lines
    feature_counts: dict[str, np.ndarray] | None  # drift bin counts of this chunk
    prediction_counts: dict[str, np.ndarray] | None
    scored: int = 0
    rejected: list[tuple[int, str]] | None = None  # the chunk's rejects, parsing and scoring together
    warned_rows: int = 0
    warnings: dict[str, int] | None = None


def _without_features(chunk: Chunk) -> Chunk:
    """The chunk as the caller gets it back once scored: ids, rejects and counts, its feature matrix dropped, so
    that scored chunks waiting for their turn hold only their output."""
    return dataclasses.replace(chunk, matrix=np.empty((0, *chunk.matrix.shape[1:]), dtype=chunk.matrix.dtype))


def _line_span(chunk: Chunk) -> str:
    lines = chunk.row_lines
    if lines is None or not len(lines):
        return "a chunk"
    return f"the chunk of lines {int(lines[0])}-{int(lines[-1])} of its part"


def predictions_key(config: BatchConfig, run_date: str, index: int) -> str:
    return config.output_folder(run_date) + f"predictions/part-{index:05d}.csv"


def part_keys(config: BatchConfig, run_date: str, attempt: str, index: int) -> dict[str, str]:
    """Predictions go to their final key as an open multipart upload (invisible until the commit completes
    it); rejects and stats stay in the attempt's work area."""
    base = config.attempt_folder(run_date, attempt) + f"part-{index:05d}"
    return {
        "predictions": predictions_key(config, run_date, index),
        "rejected": base + ".rejected.csv",
        "stats": base + ".json",
    }


@dataclass
class Source:
    stream: ByteStream  # positioned where line_blocks expects it: the byte before `start`
    start: int  # first byte of the part's lines
    parser: CsvParser | JsonLinesParser
    first_line: int  # line number of the part's first line (2 after a CSV header)
    size: int | None  # bytes the stream holds; None for decompressed data (read to its end)
    empty: bool = False  # no bytes at all after decompression: nothing to parse, not even a header


class _NoBytes:
    def read(self, n: int) -> bytes:
        return b""


_HEADERS: dict[tuple[str, str, str], list[str]] = {}  # (bucket, key, ETag) -> CSV header, shared by an object's parts


def _remember_header(store: ObjectStore, key: str, etag: str, header: list[str]) -> None:
    if len(_HEADERS) >= 64:
        _HEADERS.clear()
    _HEADERS[(store.bucket, key, etag)] = header


def open_input(
    stack: contextlib.ExitStack,
    store: ObjectStore,
    part: dict[str, Any],
    schema: FeatureSchema,
    id_columns: tuple[str, ...],
    missing: frozenset[str] = NA_VALUES,
) -> Source:
    """One streamed GET for the part. A CSV part at the start of its object reads the header from that same
    stream; a later byte range takes it from an earlier part of the same object version in this process, or
    reads it with a small GET of its own. A gzip object is one part, decompressed as it streams."""
    key, etag, size, where = part["key"], part["etag"], part["size"], store.uri(part["key"])
    start = part["start"]
    stream: ByteStream
    length: int | None = size
    if part.get("compression") == "gzip":
        if start != 0 or part["end"] != size:
            raise ModelOpsError(f"{where}: a gzip object cannot be read from a byte range; plan it whole")
        stream, length = GzipStream(stack.enter_context(ObjectStream(store, key, etag, 0)), where), None
    if part["format"] != "csv":
        if length is not None:
            stream = stack.enter_context(ObjectStream(store, key, etag, max(start - 1, 0)))
        parser = JsonLinesParser(schema, id_columns, source=key, object_start=start == 0)
        return Source(stream, start, parser, 1, length)
    if start == 0:
        if length is not None:
            stream = stack.enter_context(ObjectStream(store, key, etag, 0))
        try:
            header, data_start, head = read_header(stream, length, where)
        except EmptyInput:
            return Source(_NoBytes(), 0, JsonLinesParser(schema, id_columns), 1, 0, empty=True)
        csv_parser = CsvParser(header, schema, id_columns, where, source=key, missing=missing)
        _remember_header(store, key, etag, header)
        # put back what the header read took past the byte before the data
        return Source(Unread(head[max(data_start - 1, 0) :], stream), data_start, csv_parser, 2, length)
    known = _HEADERS.get((store.bucket, key, etag))
    if known is None:
        with ObjectStream(store, key, etag, 0) as first_bytes:
            known = read_header(first_bytes, size, where)[0]
        _remember_header(store, key, etag, known)
    body = stack.enter_context(ObjectStream(store, key, etag, start - 1))
    return Source(body, start, CsvParser(known, schema, id_columns, where, source=key, missing=missing), 1, size)


def score_part(
    config: BatchConfig,
    store: ObjectStore,
    run: dict[str, Any],
    part: dict[str, Any],
    manifest: Manifest,
    load_scorer: Callable[[], Scorer],
    on_chunk: Callable[[Chunk], None] | None = None,
) -> dict[str, Any]:
    """The input is opened and parsed in a background thread from the start, so reading the first chunk
    overlaps with loading the model (`load_scorer`); `manifest` is that model's manifest."""
    started = time.perf_counter()
    keys = part_keys(config, run["run_date"], run["attempt"], part["index"])
    key = part["key"]
    schema = manifest.schema
    # features without a baseline are reported as not measured (see commit.drift_summary)
    tracked = [n for n in schema.names if n in manifest.baseline]
    features = DriftAccumulator(manifest.baseline, tracked) if tracked else None
    tracked_index = [schema.names.index(n) for n in tracked]
    prediction = DriftAccumulator(manifest.baseline, [PREDICTION]) if PREDICTION in manifest.baseline else None

    workers = worker_count(config.score_workers)
    # a gzip object's decompressed size is unknown, so its blocks do not shrink towards the end
    compressed = part.get("compression") is not None
    sizes = BlockSizes(config.chunk_rows, workers, 0 if compressed else part["end"] - part["start"])

    missing = missing_tokens(manifest.recipe.get("missing_values") or ())  # the tokens it was trained with
    empty: list[bool] = []

    def parsed() -> Iterator[Chunk | FetchedGroup]:
        if part["format"] == PARQUET:  # row groups are read here and decoded by the scoring workers
            yield from ParquetReader(store, part, schema, config.id_columns, config.chunk_rows, missing).fetched()
            return
        with contextlib.ExitStack() as inputs:
            source = open_input(inputs, store, part, schema, config.id_columns, missing)
            if source.empty:
                empty.append(True)
                return
            first = source.first_line
            end = part["end"] if source.size is not None else None
            bound = config.max_line_bytes
            for block in line_blocks(source.stream, source.size, source.start, end, sizes, read_size(bound), bound):
                chunk = source.parser.parse(block, first)
                first += chunk.lines
                yield chunk

    scored = rejected = chunks = peak_rows = lines_read = warned_rows = 0
    warnings: dict[str, int] = {}
    header_lines = 1 if part["format"] == "csv" and part["start"] == 0 else 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(quick_gil_handoff())
        parsed_chunks = stack.enter_context(contextlib.closing(prefetched(parsed(), config.prefetch)))
        scorer = load_scorer()

        def score_chunk(chunk: Chunk) -> ScoredChunk:
            """Runs on a scoring worker: everything here is per chunk; totals are kept by the caller."""
            try:
                result = scorer.score_rows(chunk.ids, chunk.matrix, True)
            except ModelFault as exc:  # not the input's fault: the run fails, like a 500 online
                raise ModelFault(f"{store.uri(key)}, {_line_span(chunk)}: {exc}") from exc
            matrix = chunk.matrix if result.kept is None else chunk.matrix[result.kept]
            rejected = chunk.rejected
            if result.rejected:
                lines = chunk.row_lines if chunk.row_lines is not None else np.arange(len(chunk.matrix))
                rejected = sorted([*rejected, *((int(lines[i]), reason) for i, reason in result.rejected)])
            if features is not None and len(matrix):
                columns = matrix if len(tracked_index) == matrix.shape[1] else matrix[:, tracked_index]
                feature_counts = features.bin_counts(columns)
            else:
                feature_counts = None
            tracked_values = result.tracked
            prediction_counts = (
                prediction.bin_counts(tracked_values.reshape(-1, 1)) if prediction and len(tracked_values) else None
            )
            return ScoredChunk(
                _without_features(chunk),
                result.body,
                feature_counts,
                prediction_counts,
                len(matrix),
                rejected,
                result.warned_rows,
                result.warnings,
            )

        def score_item(item: Chunk | FetchedGroup) -> list[ScoredChunk]:
            """A parsed chunk, or a fetched Parquet row group, decoded here first so that row groups decode side
            by side on the workers rather than in turn on the reading thread."""
            return [score_chunk(chunk) for chunk in ([item] if isinstance(item, Chunk) else item.chunks())]

        results = stack.enter_context(contextlib.closing(ordered_map(score_item, parsed_chunks, workers)))
        out = stack.enter_context(MultipartWriter(store, keys["predictions"], deferred=True))
        bad = stack.enter_context(MultipartWriter(store, keys["rejected"]))
        out.write(scorer.header(config.id_columns or SOURCE_COLUMNS))
        bad.write(REJECTED_HEADER)
        for result in (scored for item_results in results for scored in item_results):
            chunk = result.chunk
            chunks += 1
            peak_rows = max(peak_rows, chunk.lines)
            lines_read += chunk.lines
            out.write(result.body)
            chunk_rejected = result.rejected if result.rejected is not None else chunk.rejected
            if chunk_rejected:
                obj = csv_field(key)
                bad.write("".join(f"{obj},{line},{csv_field(reason)}\n" for line, reason in chunk_rejected).encode())
            if features is not None and result.feature_counts:
                features.merge(result.feature_counts)
            if prediction is not None and result.prediction_counts:
                prediction.merge(result.prediction_counts)
            scored += result.scored
            rejected += len(chunk_rejected)
            warned_rows += result.warned_rows
            for name, count in (result.warnings or {}).items():
                warnings[name] = warnings.get(name, 0) + count
            if on_chunk is not None:
                on_chunk(chunk)
    stats = {
        "index": part["index"],
        "key": key,
        "etag": part["etag"],
        "piece": part.get("piece", 0),
        "rows_read": scored + rejected,
        "rows_scored": scored,
        "rows_rejected": rejected,
        "lines": 0 if empty else header_lines + lines_read,
        "empty": bool(empty) or (compressed and header_lines + lines_read == 0),
        "chunks": chunks,
        "peak_rows": peak_rows,
        "predictions_upload": out.upload,
        "rejected_key": keys["rejected"],
        "warnings": {"rows": warned_rows, "values": dict(sorted(warnings.items()))},
        "drift": {n: c.tolist() for n, c in features.counts.items()} if features else {},
        "prediction_drift": prediction.counts[PREDICTION].tolist() if prediction else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    store.put(keys["stats"], orjson.dumps(stats))
    return stats
