"""Bulk CSV parsing (batch.bulkcsv via CsvParser) checked against a plain line-by-line reference parser
(csv module + float()) on generated inputs with deliberate damage, and the pieces around it: header
reading from the data stream, the scoring pool, output line assembly."""

from __future__ import annotations

import csv
import io
import math
import sys
import threading
import time

import numpy as np
import pytest
from modelops.batch import bulkcsv, readers, workers
from modelops.batch.readers import CsvParser, JsonLinesParser, Unread, csv_field, line_blocks, read_header
from modelops.batch.scoring import Scorer
from modelops.batch.workers import limit_openmp_threads, ordered_map, quick_gil_handoff
from modelops.core.errors import InputError
from modelops.model.artifact import load_from_dir
from modelops.model.inference import without_idle_imputers
from modelops.model.schema import Feature, FeatureSchema

FEATURES = ["a", "b", "c", "d"]


def reference(header: list[str], text: bytes, id_columns: tuple[str, ...], first_line: int = 2):
    """What the parser must produce: ids, feature rows in schema order, rejected line numbers."""
    ids, rows, rejected = [], [], []
    for i, raw in enumerate(text.split(b"\n")[:-1]):
        line = first_line + i
        raw = raw.removesuffix(b"\r")
        if not raw.strip():
            continue
        if b"\0" in raw:
            rejected.append(line)
            continue
        fields = next(csv.reader([raw.decode()], strict=True))
        if len(fields) != len(header):
            rejected.append(line)
            continue
        try:
            values = [float(fields[header.index(n)].strip()) for n in FEATURES]
        except ValueError:
            rejected.append(line)
            continue
        if not all(math.isfinite(v) for v in values):
            rejected.append(line)
            continue
        ids.append(",".join(csv_field(fields[header.index(c)]) for c in id_columns).encode())
        rows.append(values)
    return ids, np.array(rows).reshape(-1, len(FEATURES)), rejected


def number(rng: np.random.Generator) -> str:
    v = float(rng.normal() * 10.0 ** rng.integers(-6, 7))
    style = rng.integers(0, 5)
    if style == 0:
        return repr(v)
    if style == 1:
        return f"{v:.4f}"
    if style == 2:
        return f"{v:.3e}"
    if style == 3:
        return str(int(v))
    return f"{v:.17g}"


DAMAGE = [
    lambda f, rng: f + ["7.0"],  # one field too many
    lambda f, rng: f[:-1],  # one field too few
    lambda f, rng: [*f[:-1], "abc"],
    lambda f, rng: [*f[:-1], "nan"],
    lambda f, rng: [*f[:-1], "inf"],
    lambda f, rng: [*f[:-1], "1e400"],  # overflows to infinity
    lambda f, rng: [*f[:-1], "[2]"],
    lambda f, rng: [*f[:-1], ""],
    lambda f, rng: [*f[:-1], " 2.5"],  # float() accepts the space: not a reject
    lambda f, rng: [*f[:-1], "1_000"],  # float() accepts underscores: not a reject
    lambda f, rng: [*f[:-1], "0x10"],
    lambda f, rng: [*f[:-1], bulkcsv.SENTINEL.decode()],  # a real number equal to the row marker
    lambda f, rng: [*f[:-1], "2\x003"],
    lambda f, rng: [],  # blank line
]


def make_csv(rng, header, id_columns, rows, damage_rate, id_maker):
    lines = []
    for i in range(rows):
        fields = []
        for name in header:
            if name in FEATURES:
                fields.append(number(rng))
            elif name in id_columns:
                fields.append(id_maker(i, rng))
            else:
                fields.append(f"x{rng.integers(0, 99)}")
        if rng.random() < damage_rate:
            fields = DAMAGE[rng.integers(0, len(DAMAGE))](fields, rng)
        lines.append(",".join(fields))
    return ("\n".join(lines) + "\n").encode()


LAYOUTS = [
    (["id", "a", "b", "c", "d"], ("id",)),
    (["id", "extra", "c", "a", "d", "b"], ("id",)),
    (["a", "b", "c", "d"], ()),
    (["cust", "region", "a", "b", "c", "d"], ("cust", "region")),
    (["region", "cust", "a", "b", "c", "d"], ("cust",)),
    (["a", "id", "b", "c", "d"], ("id",)),  # id among the features: line-by-line parsing only
]
IDS = {
    "numeric": lambda i, rng: str(i),
    "text": lambda i, rng: f"c-{i:05d}",
    "long": lambda i, rng: f"user-{i}-" + "x" * int(rng.integers(20, 50)),
}


def _schema():
    return FeatureSchema(tuple(Feature(n, "number") for n in FEATURES))


def _check(header, id_columns, text, monkeypatch=None):
    parser = CsvParser(header, _schema(), id_columns, "t.csv")
    chunk = parser.parse(text, first_line=2)
    want_ids, want_rows, want_rejected = reference(header, text, id_columns)
    assert [line for line, _ in chunk.rejected] == want_rejected
    np.testing.assert_array_equal(chunk.matrix, want_rows)  # exact: same doubles as float()
    assert chunk.id_list() == want_ids
    assert chunk.lines == text.count(b"\n")
    return parser, chunk


@pytest.mark.parametrize("header,id_columns", LAYOUTS)
@pytest.mark.parametrize("ids", sorted(IDS))
def test_bulk_parse_equals_line_by_line_reference(header, id_columns, ids, monkeypatch):
    rng = np.random.default_rng(len(header) * 7 + len(ids))
    monkeypatch.setattr(readers, "SUB_BLOCK_BYTES", 2000)  # many sub-blocks, each split on damage
    for damage_rate in (0.0, 0.02, 0.3):
        text = make_csv(rng, header, id_columns, 700, damage_rate, IDS[ids])
        _check(header, id_columns, text)
        _check(header, id_columns, text.replace(b"\n", b"\r\n"))


def test_clean_input_takes_the_bulk_path_and_long_ids_widen_the_window(monkeypatch):
    slow = []
    original = CsvParser._slow_line
    monkeypatch.setattr(CsvParser, "_slow_line", lambda self, *a: slow.append(a[1]) or original(self, *a))
    rng = np.random.default_rng(3)
    header = ["id", "a", "b", "c", "d"]
    parser, chunk = _check(header, ("id",), make_csv(rng, header, ("id",), 3000, 0.0, IDS["numeric"]))
    assert slow == [] and len(chunk.matrix) == 3000 and parser.bulk.window == 8
    parser, _ = _check(header, ("id",), make_csv(rng, header, ("id",), 300, 0.0, IDS["long"]))
    assert slow == [] and parser.bulk.window == 64
    # ids longer than the widest window are still parsed, line by line
    text = make_csv(rng, header, ("id",), 100, 0.0, lambda i, rng: "k" * 300 + str(i))
    _check(header, ("id",), text)
    assert len(slow) == 100


def test_misaligned_neighbours_are_rejected_not_shifted():
    # one line has a field too many and the next one too few: the totals match, the rows do not
    text = b"1,1.0,2.0,3.0,4.0\n2,1.0,2.0,3.0,4.0,5.0\n3,1.0,2.0,3.0\n4,5.0,6.0,7.0,8.0\n" * 40
    _, chunk = _check(["id", "a", "b", "c", "d"], ("id",), text)
    assert len(chunk.rejected) == 80 and chunk.id_list()[:2] == [b"1", b"4"]


def test_empty_leading_fields():
    # an empty first field leaves no room for the placeholder number: those lines go line by line
    header = ["id", "extra", "a", "b", "c", "d"]
    lines = [b"%d,e%d,1.5,2,3,4" % (i, i) for i in range(200)]
    lines[10], lines[11], lines[150] = b",e,1.5,2,3,4", b"11,,1.5,2,3,4", b",,0.5,2,3,4"
    _, chunk = _check(header, ("id",), b"\n".join(lines) + b"\n")
    assert chunk.id_list()[10:12] == [b"", b"11"] and len(chunk.matrix) == 200
    lines = [b"%d,1.5,2,3,4" % i for i in range(200)]
    lines[7] = b",1.5,2,3,4"
    _, chunk = _check(["id", *FEATURES], ("id",), b"\n".join(lines) + b"\n")
    assert chunk.id_list()[6:9] == [b"6", b"", b"8"]


def test_reasons_for_rejected_lines():
    header = ["id", "a", "b", "c", "d"]
    text = b"1,1,2,3,4\n2,1,2,x,4\n\n3,1,2,3\n4,1,2,3,1e999\n5,1,2\x00,3,4\n6,1,2,3,4\n"
    chunk = CsvParser(header, _schema(), ("id",), "t.csv").parse(text, first_line=2)
    assert chunk.id_list() == [b"1", b"6"]
    assert chunk.rejected == [
        (3, "column 'c': 'x' is not a number"),
        (5, "expected 5 fields, found 4"),
        (6, "column 'd': '1e999' is not a finite number"),
        (7, "line contains a NUL byte"),
    ]
    assert chunk.lines == 7


def test_jsonl_rejects_an_id_with_a_nul_character():
    parser = JsonLinesParser(_schema(), ("id",))
    chunk = parser.parse(
        b'{"id": "a\\u0000b", "a": 1, "b": 2, "c": 3, "d": 4}\n{"id": 7, "a": 1, "b": 2, "c": 3, "d": 4}\n', 1
    )
    assert chunk.id_list() == [b"7"] and chunk.rejected == [(1, "id field 'id' contains a NUL character")]


def test_header_read_from_the_data_stream_in_pieces(monkeypatch):
    monkeypatch.setattr(readers, "HEADER_READ_BYTES", 7)  # the header takes several reads
    data = b"id,a,b,c,d\n1,1,2,3,4\n2,5,6,7,8"
    stream = io.BytesIO(data)
    names, start, head = read_header(stream, len(data), "t.csv")
    assert names == ["id", "a", "b", "c", "d"] and start == 11 and len(head) > start
    rest = Unread(head[start - 1 :], stream)  # the stream resumes at the byte before the data
    blocks = list(line_blocks(rest, len(data), start, len(data), 10, read_bytes=4))
    assert b"".join(blocks) == b"1,1,2,3,4\n2,5,6,7,8\n"
    only_header = b"id,a,b,c,d"
    names, start, _ = read_header(io.BytesIO(only_header), len(only_header), "t.csv")
    assert start == len(only_header)
    monkeypatch.setattr(readers, "HEADER_MAX_BYTES", 20)
    with pytest.raises(InputError, match="header line is longer than 20 bytes"):
        read_header(io.BytesIO(b"x" * 50 + b"\n1\n"), 53, "t.csv")
    with pytest.raises(InputError, match="ended early"):
        read_header(io.BytesIO(b"id,a"), 10, "t.csv")


def test_ordered_map_keeps_order_bounds_work_in_flight_and_raises_in_turn():
    rng = np.random.default_rng(4)
    delays = rng.uniform(0, 0.01, 40)
    running, peak = [0], [0]
    lock = threading.Lock()

    def work(i):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(delays[i])
        with lock:
            running[0] -= 1
        return i * i

    assert list(ordered_map(work, range(40), workers=3)) == [i * i for i in range(40)]
    assert 1 < peak[0] <= 3
    assert list(ordered_map(work, range(5), workers=1)) == [0, 1, 4, 9, 16]

    def fail_at_7(i):
        if i == 7:
            raise ValueError("bad chunk 7")
        return i

    got = []
    with pytest.raises(ValueError, match="bad chunk 7"):
        for x in ordered_map(fail_at_7, range(20), workers=3):
            got.append(x)
    assert got == list(range(7))
    pulled = []

    def source():
        for i in range(1000):
            pulled.append(i)
            yield i

    results = ordered_map(lambda i: i, source(), workers=2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    results.close()  # the consumer stops: nothing more is pulled from the source
    assert len(pulled) <= 5


def test_ordered_map_runs_the_next_item_while_the_consumer_is_busy_with_a_result():
    started: list[int] = []
    results = ordered_map(lambda i: started.append(i) or i, range(10), workers=2)
    assert next(results) == 0
    deadline = time.monotonic() + 5  # the consumer asks for nothing more: item 2 was already waiting in the pool
    while len(started) < 3 and time.monotonic() < deadline:  # items 1 and 2 start in either order
        time.sleep(0.005)
    assert sorted(started) == [0, 1, 2]
    results.close()


def test_the_short_switch_interval_holds_only_while_scoring():
    before = sys.getswitchinterval()
    with quick_gil_handoff(0.0001):
        assert sys.getswitchinterval() == pytest.approx(0.0001, abs=2e-6)
    assert sys.getswitchinterval() == before
    with pytest.raises(RuntimeError), quick_gil_handoff(0.0001):
        raise RuntimeError("a part fails")
    assert sys.getswitchinterval() == before
    sys.setswitchinterval(0.00005)  # an already shorter interval is kept
    try:
        with quick_gil_handoff(0.0001):
            assert sys.getswitchinterval() == pytest.approx(0.00005, abs=2e-6)
    finally:
        sys.setswitchinterval(before)


def test_openmp_limit_applies_to_the_calling_thread_only():
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    before = _openmp_effective_n_threads()
    seen = []

    def worker():
        limit_openmp_threads(1)
        seen.append(_openmp_effective_n_threads())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [1]
    assert _openmp_effective_n_threads() == before


def test_blas_threads_are_limited_while_the_scoring_pool_runs_and_restored_after():
    from threadpoolctl import threadpool_info

    def blas() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas()
    if not before:
        pytest.skip("no BLAS library loaded")
    seen = list(ordered_map(lambda _: blas(), range(4), workers=2))
    expected = max(1, workers.available_cpus() // 2)
    assert seen == [[expected] * len(before)] * 4
    assert blas() == before


def test_output_lines_for_regressors_and_without_ids(regressor_dir, classifier_dir):
    regressor = Scorer(load_from_dir(regressor_dir))
    names = regressor.manifest.schema.names
    X = np.abs(np.random.default_rng(5).normal(size=(3, len(names))))
    ids = readers.padded_ids([b"a", b"bb", b'"c,d"'])
    body, tracked = regressor.score(ids, X)
    lines = body.decode().splitlines()
    version = regressor.manifest.version
    assert [line.split(",", 1)[0] for line in lines[:2]] == ["a", "bb"] and lines[2].startswith('"c,d",')
    # ..., prediction, model_version, warnings (these rows lie outside the training ranges)
    assert [float(line.rsplit(",", 3)[-3]) for line in lines] == tracked.tolist()
    assert all(line.rsplit(",", 2)[-2] == version for line in lines)
    assert all(line.rsplit(",", 1)[-1].startswith(names[0] + ":out_of_range") for line in lines)
    body, _ = regressor.score(np.zeros((3, 0), np.uint8), X, with_ids=False)
    assert [float(line.split(",")[0]) for line in body.decode().splitlines()] == tracked.tolist()
    classifier = Scorer(load_from_dir(classifier_dir))
    X = np.abs(np.random.default_rng(6).normal(size=(4, len(classifier.manifest.schema.names))))
    body, tracked = classifier.score(np.zeros((4, 0), np.uint8), X, with_ids=False)
    rows = [line.split(",") for line in body.decode().splitlines()]
    assert all(len(r) == 3 + len(classifier.classes) for r in rows)
    assert [float(r[-3]) for r in rows] == pytest.approx(tracked.tolist(), abs=5e-7)


def _warnings_reference(schema: FeatureSchema, X: np.ndarray) -> tuple[list[str], dict[str, int]]:
    """Each row's warnings field and the per-key counts, built from the per-value warnings the API gives."""
    per_row = schema.warnings(X) or [[] for _ in range(len(X))]
    fields, counts = [], {}
    for items in per_row:
        keys = [f"{w['feature']}:{w['code']}" for w in items]
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
        fields.append(csv_field(";".join(keys)))
    return fields, counts


def test_warnings_column_matches_the_per_value_warnings(classifier_dir):
    scorer = Scorer(load_from_dir(classifier_dir))
    schema = scorer.schema
    rng = np.random.default_rng(11)
    low = np.array([f.min for f in schema.features])
    high = np.array([f.max for f in schema.features])
    X = low + (high - low) * rng.uniform(0.05, 0.95, size=(3000, len(low)))  # inside every training range
    outside = rng.random(X.shape) < 0.02  # about half the rows get one or more flagged values
    X[outside] = np.where(rng.random(X.shape) < 0.5, low - 1.0, high + 1.0)[outside]
    X[7, :3] = [high[0] + 1, np.nan, low[2] - 1]  # a missing value is never flagged
    X[8] = high + 1.0  # every feature flagged
    ids = readers.padded_ids([b"r%d" % i for i in range(len(X))])
    scored = scorer.score_rows(ids, X)
    fields, counts = _warnings_reference(schema, X)
    assert 500 < sum(1 for f in fields if f) < 2900
    assert [line.split(",", 5)[5] for line in scored.body.decode().splitlines()] == fields
    assert scored.warnings == counts and scored.warned_rows == sum(1 for f in fields if f)
    clean = scorer.score_rows(ids[:5], np.clip(X[:5], low, high))
    assert clean.body.count(b",\n") == 5 and clean.warnings == {} and clean.warned_rows == 0
    # ids of many widths, and no ids at all: each line's warnings go in front of its own newline
    ids = readers.padded_ids([b"r" * (i % 13 + 1) for i in range(len(X))])
    assert [line.split(",", 5)[5] for line in scorer.score_rows(ids, X).body.decode().splitlines()] == fields
    no_ids = scorer.score_rows(np.zeros((len(X), 0), np.uint8), X, with_ids=False).body.decode()
    assert [line.split(",", 4)[4] for line in no_ids.splitlines()] == fields

    # more than 64 features: the patterns of flagged features are found row by row of packed bits
    keys = [f"f{j}:out_of_range" for j in range(70)]
    scorer._warning_keys = keys
    flags = rng.random((400, 70)) < 0.05
    flags[:, 66] = True
    body = np.frombuffer(b"x,\n" * 400, np.uint8)
    spliced = scorer._with_warnings(body, np.arange(400) * 3 + 2, flags).tobytes().decode()
    assert spliced.splitlines() == ["x," + ";".join(keys[j] for j in np.flatnonzero(row)) for row in flags]
    scorer._warning_keys = [f"{f.name}:out_of_range" for f in schema.features]

    # a key with a comma or a quote is written as one quoted CSV field, as csv_field writes it
    scorer._warning_keys[0] = 'odd,"name":out_of_range'
    quoted = scorer.score_rows(ids[8:9], X[8:9]).body.decode()
    assert quoted.endswith(',"odd,""name"":out_of_range;' + ";".join(scorer._warning_keys[1:]) + '"\n')


def test_idle_imputers_are_skipped_only_for_complete_rows(classifier_dir, classifier_v2_dir):
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    for model_dir in (classifier_dir, classifier_v2_dir):  # logistic (impute, scale, model) and HGB
        scorer = Scorer(load_from_dir(model_dir))
        pipeline = scorer.estimator
        assert [type(s).__name__ for s in scorer.runner._complete_rows_estimator] == [
            type(s).__name__ for _, s in pipeline.steps[1:]
        ]
        names = scorer.manifest.schema.names
        X = np.abs(np.random.default_rng(8).normal(size=(50, len(names))))
        ids = readers.padded_ids([b"r%d" % i for i in range(50)])
        full = Scorer(load_from_dir(model_dir))
        full.runner.fast = False  # every chunk through the whole pipeline's own predict_proba
        assert scorer.score(ids, X)[0] == full.score(ids, X)[0]  # byte-identical output
        X[3, 2] = np.nan  # a missing value: the whole pipeline runs, imputer included
        body, tracked = scorer.score(ids, X)
        assert body == full.score(ids, X)[0]
        np.testing.assert_array_equal(tracked, pipeline.predict_proba(X)[:, -1])

    X = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, 4.0]])
    y = [0, 1, 0]
    from sklearn.linear_model import LogisticRegression

    with_indicator = make_pipeline(SimpleImputer(add_indicator=True), LogisticRegression()).fit(X, y)
    assert without_idle_imputers(with_indicator) is None  # adds columns
    minus_one = make_pipeline(SimpleImputer(missing_values=-1.0), LogisticRegression())
    assert without_idle_imputers(minus_one.fit(np.nan_to_num(X, nan=-1.0), y)) is None  # replaces a number
    dropped = make_pipeline(SimpleImputer(keep_empty_features=False), LogisticRegression())
    with pytest.warns(UserWarning, match="without any observed values"):  # the all-NaN column is dropped
        dropped.fit(np.array([[1.0, np.nan], [2.0, np.nan], [3.0, np.nan]]), y)
    assert without_idle_imputers(dropped) is None
    assert without_idle_imputers(LogisticRegression().fit(X[2:].repeat(2, 0), [0, 1])) is None


_FAULTS_SCRIPT = """
import resource, sys
import numpy as np
from modelops.batch.workers import tune_malloc
if sys.argv[1] == "tuned":
    tune_malloc()
np.ones(4 << 20)  # warm up numpy
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
held = []
for i in range(20):  # chunk-sized buffers of varying size, a few in flight, as in a scoring run
    held += [np.ones((3 << 20) + i * 1000), np.ones((1 << 20) + i * 500)]
    if len(held) > 4:
        del held[:2]
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_complete_chunks_are_scored_through_the_step_kernels(classifier_dir, classifier_v2_dir):
    """The batch scorer calls the model through the same runner as online, kernels included: a chunk of complete
    rows reaches the final step's kernel, and a chunk with a missing value reaches the step's own predict_proba."""
    for model_dir in (classifier_dir, classifier_v2_dir):  # LogisticRegression and HistGradientBoosting kernels
        scorer = Scorer(load_from_dir(model_dir))
        steps = scorer.runner._complete_rows_call
        assert steps is not None and steps.final_kernel is not None
        kernel_calls: list[int] = []
        kernel = steps.final_kernel
        steps.final_kernel = lambda X, kernel=kernel, calls=kernel_calls: calls.append(len(X)) or kernel(X)
        names = scorer.manifest.schema.names
        X = np.abs(np.random.default_rng(9).normal(size=(40, len(names))))
        ids = readers.padded_ids([b"r%d" % i for i in range(40)])
        expected = scorer.estimator.predict_proba(X)[:, -1]
        body, tracked = scorer.score(ids, X)
        assert kernel_calls == [40]
        np.testing.assert_array_equal(tracked, expected)
        X[5, 1] = np.nan
        scorer.score(ids, X)
        assert kernel_calls == [40]  # the missing value sent the chunk through the imputer and the steps


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator settings")
def test_tuned_allocator_reuses_chunk_sized_buffers_instead_of_faulting_them_in_again():
    import subprocess

    def faults(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT, mode], capture_output=True, text=True, check=True)
        return int(run.stdout)

    default, tuned = faults("default"), faults("tuned")
    assert tuned * 3 < default, (tuned, default)  # page faults counted by the kernel, not timed
