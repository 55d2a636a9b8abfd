"""Batch building blocks without S3: run dates, byte-range line splitting, bulk CSV parsing, formatting."""

from __future__ import annotations

import datetime as dt
import io
import time

import numpy as np
import pytest
from modelops.batch.blocks import BlockSizes
from modelops.batch.dates import logical_run_date, parse_run_date
from modelops.batch.events import run_request
from modelops.batch.readers import CsvParser, integer_ids, line_blocks, line_ids
from modelops.batch.scoring import fixed_decimals
from modelops.core.errors import InputError
from modelops.model.schema import Feature, FeatureSchema


def test_logical_run_date_is_yesterday_in_the_schedule_time_zone():
    # 02:00 on the 15th in Shanghai is 18:00 UTC on the 14th: the run scores the 14th.
    assert logical_run_date(dt.datetime(2026, 3, 14, 18, 0, tzinfo=dt.UTC), "Asia/Shanghai") == "2026-03-14"
    assert logical_run_date(dt.datetime(2026, 3, 14, 18, 0, tzinfo=dt.UTC), "UTC") == "2026-03-13"
    assert logical_run_date(dt.datetime(2026, 3, 1, 1, 0), "UTC") == "2026-02-28"
    with pytest.raises(InputError, match="time zone 'Mars/Olympus' is unknown"):
        logical_run_date(dt.datetime(2026, 3, 1), "Mars/Olympus")


def test_run_request_from_scheduler_event_and_overrides():
    assert run_request({"time": "2026-03-14T18:00:00Z"}, "Asia/Shanghai").run_date == "2026-03-14"
    assert run_request({"scheduled_time": "2026-03-14T18:00:00Z"}, "UTC").run_date == "2026-03-13"
    backfill = run_request({"run_date": "2025-01-02", "force": True, "attempt": 3}, "UTC")
    assert (backfill.run_date, backfill.force, backfill.attempt) == ("2025-01-02", True, 3)
    for bad, field in [
        ({"run_date": "2025-13-01"}, "run_date"),
        ({"run_date": "yesterday"}, "run_date"),
        ({"force": "yes"}, "force"),
        ({"attempt": 0}, "attempt"),
        ({"time": "noon"}, "time"),
    ]:
        with pytest.raises(InputError) as err:
            run_request(bad, "UTC")
        assert err.value.field == field
    assert parse_run_date("2024-02-29") == "2024-02-29"


def test_block_sizes_start_short_hold_the_chunk_size_and_shrink_towards_the_end():
    line = b"1,2.5,3.25\n"
    lines = 10_000
    data = line * lines
    sizes = BlockSizes(1_000, workers=2, total_bytes=len(data))
    blocks = [b.count(b"\n") for b in line_blocks(io.BytesIO(data), len(data), 0, len(data), sizes, read_bytes=4096)]

    assert sum(blocks) == lines and max(blocks) == 1_000
    assert blocks[:3] == [125, 250, 500]  # scoring starts after 1/8 of a chunk, not a whole one
    middle = blocks.index(1_000)
    assert blocks[middle : middle + 5] == [1_000] * 5
    tail = blocks[len(blocks) - blocks[::-1].index(1_000) :]  # after the last full chunk
    # guided: each late block takes a quarter of what is left (2 workers), never below 1/8 of a chunk
    assert tail == sorted(tail, reverse=True) and len(tail) >= 4 and min(tail[:-1]) >= 125
    assert tail[-1] <= 125


def test_fixed_block_sizes_and_sizes_for_an_unknown_length():
    data = b"x\n" * 50
    fixed = [b.count(b"\n") for b in line_blocks(io.BytesIO(data), len(data), 0, len(data), 17)]
    assert fixed == [17, 17, 16]
    guess = BlockSizes(16, workers=4, total_bytes=0)  # nothing known about the end: ramp, then chunk size
    assert [guess.next(0, 0), guess.next(2, 1), guess.next(6, 3), guess.next(14, 7)] == [2, 4, 8, 16]
    with pytest.raises(ValueError):
        BlockSizes(0)


@pytest.mark.parametrize("trailing_newline", [True, False])
def test_byte_ranges_own_each_line_exactly_once(trailing_newline):
    rng = np.random.default_rng(0)
    lines = [("x" * int(rng.integers(0, 40))).encode() + b"%d" % i for i in range(300)]
    data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")

    for part_bytes in (1, 7, 64, 1000, len(data)):
        got = []
        for start in range(0, len(data), part_bytes):
            stream = io.BytesIO(data[max(start - 1, 0) :])
            for block in line_blocks(stream, len(data), start, min(len(data), start + part_bytes), 17, read_bytes=50):
                assert block.endswith(b"\n") and block.count(b"\n") <= 17
                got += block.split(b"\n")[:-1]
        assert got == lines, part_bytes


def _parser(names, header):
    schema = FeatureSchema(tuple(Feature(n, "number") for n in names))
    return CsvParser(header, schema, ("id",), "test.csv")


def test_bulk_parse_matches_float_and_isolates_bad_lines():
    names = ["a", "b", "c"]
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5000, 3)) * 10.0 ** rng.integers(-5, 5, size=(5000, 3))
    text = io.StringIO()
    for i, row in enumerate(X):
        text.write(f"{i}," + ",".join(repr(float(v)) for v in row) + "\n")
    lines = text.getvalue().encode().split(b"\n")[:-1]
    lines[1234] = b"1234,1.0,oops,2.0"
    lines[4321] = b"4321,1.0,2.0"
    chunk = _parser(names, ["id", "c", "a", "b"]).parse(b"\n".join(lines) + b"\n", first_line=2)
    keep = [i for i in range(5000) if i not in (1234, 4321)]
    # columns come back in schema order (a, b, c) although the file has c first
    np.testing.assert_array_equal(chunk.matrix, X[keep][:, [1, 2, 0]])
    assert chunk.id_list() == [str(i).encode() for i in keep]
    assert chunk.rejected == [(1236, "column 'a': 'oops' is not a number"), (4323, "expected 4 fields, found 3")]


def test_parse_when_id_column_is_not_first():
    chunk = _parser(["a", "b"], ["a", "id", "b"]).parse(b'1.5,x1,2\r\n-3,"x,2",4e2\r\n', first_line=2)
    np.testing.assert_array_equal(chunk.matrix, [[1.5, 2.0], [-3.0, 400.0]])
    assert chunk.id_list() == [b"x1", b'"x,2"']


def _texts(matrix: np.ndarray) -> list[bytes]:
    return [bytes(row).replace(b"\0", b"") for row in matrix]  # zero bytes are padding wherever they stand


@pytest.mark.parametrize(
    "values",
    [
        np.arange(1200),
        np.array([0, -1, 9, 10, -10, 99, 100, -100, 2**63 - 1, -(2**63)], dtype=np.int64),
        np.random.default_rng(3).integers(-(2**63), 2**63 - 1, 3000, dtype=np.int64),
        np.arange(6, dtype=np.uint64) + np.uint64(2**64 - 6),  # beyond int64
        np.array([-128, 0, 127], dtype=np.int8),
        np.array([7], dtype=np.uint16),
        np.array([], dtype=np.int64),
    ],
)
def test_integer_ids_are_the_numbers_decimal_text(values):
    assert _texts(integer_ids(values)) == [str(int(v)).encode() for v in values]


def test_line_ids_are_the_prefix_and_the_line_number():
    assert _texts(line_ids(b"k.csv,", 98, 4)) == [b"k.csv,98", b"k.csv,99", b"k.csv,100", b"k.csv,101"]
    assert line_ids(b"k,", 1, 0).shape == (0, 2)


def test_fixed_decimals_are_six_place_probabilities():
    p = np.array([[0.0, 1.0], [1 / 3, 2 / 3], [0.25, 0.75]])
    assert [bytes(r).decode() for r in fixed_decimals(p)] == [
        ",0.000000,1.000000",
        ",0.333333,0.666667",
        ",0.250000,0.750000",
    ]
    q = np.random.default_rng(2).random((1000, 3))
    back = np.array([[float(v) for v in bytes(r).decode().split(",")[1:]] for r in fixed_decimals(q)])
    assert np.abs(back - q).max() <= 5e-7 + 1e-12


def test_fixed_decimals_of_a_fortran_ordered_array_as_of_a_c_ordered_one():
    """A multi-class HistGradientBoosting model's predict_proba is Fortran-ordered; every batch run of such a
    model failed in the byte view of fixed_decimals."""
    p = np.random.default_rng(5).dirichlet(np.ones(3), size=50)
    fortran = np.asfortranarray(p)
    assert not fortran.flags.c_contiguous
    assert fixed_decimals(fortran).tobytes() == fixed_decimals(np.ascontiguousarray(p)).tobytes()
    assert np.array_equal(fortran, p)  # the caller's array is left as it was


def test_fixed_decimals_match_integer_formatting_of_the_rounded_millionths():
    """Byte for byte what integer formatting writes for round-half-even(p * 10^6), p clipped to [0, 1]: a million
    random values, every millionth, the ties between them, and values just around the edges."""
    rng = np.random.default_rng(7)
    edges = [0.0, -0.0, 1.0, 0.5e-6, 1.5e-6, 2.5e-6, 1e-7, 0.9999995, 0.9999994999, 0.99999950001, 1 - 1e-7]
    edges += [np.nextafter(1.0, 0.0), 1.0000001, -1e-9, 5e-324, 0.0005, 0.0009995, 0.0010005, 0.1234565, 0.5]
    values = np.concatenate(
        [rng.random(1_000_000), edges, np.arange(1_000_001) / 1e6, (np.arange(1_000_000) + 0.5) / 1e6, [0.0]]
    ).reshape(-1, 2)
    millionths = np.rint(np.clip(values, 0.0, 1.0) * 1e6).astype(np.int64).ravel().tolist()
    expected = "".join(f",{q // 10**6}.{q % 10**6:06d}" for q in millionths)
    lines = fixed_decimals(values)
    assert lines.shape == (len(values), 18)
    assert lines.tobytes().decode() == expected
    assert bytes(fixed_decimals(np.array([[0.5e-6, 0.9999995]]))) == b",0.000000,1.000000"  # the halfway values


def test_prefetched_keeps_order_passes_errors_and_stops_early():
    from modelops.batch.prefetch import prefetched

    assert list(prefetched(iter(range(50)))) == list(range(50))
    assert list(prefetched(iter(range(5)), depth=0)) == list(range(5))

    def failing():
        yield 1
        raise ValueError("bad block")

    with pytest.raises(ValueError, match="bad block"):
        list(prefetched(failing()))
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    gen = prefetched(endless())
    assert next(gen) == 0
    gen.close()  # the consumer stops: the producer thread ends instead of running on
    count = len(produced)
    time.sleep(0.3)
    assert count <= 4 and len(produced) == count
