"""Score one part (an object, or a byte range of one).

Predictions stream into an open multipart upload at their final key: nothing is readable there until
the commit step completes the upload. Rejects and the part's stats go to the attempt's work area, the
stats last, so a stats file means the part is complete. A retried part starts a new upload and rewrites
its stats; the commit completes only the uploads named in the stats and aborts the rest, so retries
never duplicate rows.

Memory: the read buffer, at most three chunks of lines (one parsing, one queued, one scoring) and two
upload parts, whatever the input size.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import orjson

from ..aws import aws_errors
from ..drift import DriftAccumulator
from ..errors import ModelOpsError
from .config import BatchConfig
from .prefetch import prefetched
from .readers import Chunk, CsvParser, JsonLinesParser, csv_field, line_chunks, read_header
from .scoring import Scorer
from .store import Store
from .writer import MultipartWriter

REJECTED_HEADER = b"object,line,reason\n"
PREDICTION = "__prediction__"


class ObjectStream:
    """One streamed ranged GET; read errors become one-line ModelOpsErrors; closed when the part is done."""

    def __init__(self, store: Store, key: str, etag: str, start: int):
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


def score_part(
    config: BatchConfig,
    store: Store,
    run: dict[str, Any],
    part: dict[str, Any],
    scorer: Scorer,
    on_chunk: Callable[[Chunk], None] | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    keys = part_keys(config, run["run_date"], run["attempt"], part["index"])
    key, etag, size = part["key"], part["etag"], part["size"]
    where = store.uri(key)

    def fetch(start: int, end: int) -> bytes:
        return store.get_range(key, etag, start, end)

    manifest = scorer.manifest
    schema = manifest.schema
    if part["format"] == "csv":
        header, data_start = read_header(fetch, size, where)
        parser: CsvParser | JsonLinesParser = CsvParser(header, schema, config.id_columns, where)
        first_line, line_count = (2, 1) if part["start"] == 0 else (1, 0)
        start = data_start if part["start"] == 0 else part["start"]
    else:
        parser = JsonLinesParser(schema, config.id_columns)
        first_line, line_count, start = 1, 0, part["start"]
    stream_from = start - 1 if start > 0 else start
    stream = ObjectStream(store, key, etag, stream_from)
    features = DriftAccumulator(manifest.baseline, schema.names) if schema.names[0] in manifest.baseline else None
    prediction = DriftAccumulator(manifest.baseline, [PREDICTION]) if PREDICTION in manifest.baseline else None

    def parsed() -> Iterator[Chunk]:
        first = first_line
        for lines in line_chunks(stream, size, start, part["end"], config.chunk_rows):
            chunk = parser.parse(lines, first)
            first += chunk.lines
            yield chunk

    scored = rejected = chunks = peak_rows = 0
    with (
        stream,
        contextlib.closing(prefetched(parsed(), config.prefetch)) as parsed_chunks,
        MultipartWriter(store.s3, store.bucket, keys["predictions"], deferred=True) as out,
        MultipartWriter(store.s3, store.bucket, keys["rejected"]) as bad,
    ):
        out.write(scorer.header(config.id_columns))
        bad.write(REJECTED_HEADER)
        for chunk in parsed_chunks:
            chunks += 1
            peak_rows = max(peak_rows, chunk.lines)
            line_count += chunk.lines
            body, tracked = scorer.score(chunk.ids, chunk.matrix, bool(config.id_columns))
            out.write(body)
            if chunk.rejected:
                obj = csv_field(key)
                bad.write("".join(f"{obj},{line},{csv_field(reason)}\n" for line, reason in chunk.rejected).encode())
            if features is not None and len(chunk.matrix) and schema.all_numeric:
                features.add(np.asfortranarray(chunk.matrix))  # contiguous columns: faster binning
            if prediction is not None and len(tracked):
                prediction.add(tracked.reshape(-1, 1))
            scored += len(chunk.matrix)
            rejected += len(chunk.rejected)
            if on_chunk is not None:
                on_chunk(chunk)
    stats = {
        "index": part["index"],
        "key": key,
        "etag": etag,
        "piece": part.get("piece", 0),
        "rows_read": scored + rejected,
        "rows_scored": scored,
        "rows_rejected": rejected,
        "lines": line_count,
        "chunks": chunks,
        "peak_rows": peak_rows,
        "predictions_upload": out.upload,
        "rejected_key": keys["rejected"],
        "drift": {n: c.tolist() for n, c in features.counts.items()} if features else {},
        "prediction_drift": prediction.counts[PREDICTION].tolist() if prediction else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    store.put(keys["stats"], orjson.dumps(stats))
    return stats
