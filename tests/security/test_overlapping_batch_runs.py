"""Two runs for one date (a scheduled run and a manual rerun or backfill, or a double delivery of the schedule)
interleaved at the dangerous points, against moto S3 (which implements PutObject's If-None-Match and If-Match).

Run A scores with model version v1 and run B with v2, so every prediction row says which run wrote it. Whatever
the interleaving, at most one manifest exists, it names the committing run's attempt, and every file it lists holds
that run's rows; the other run waits (a clear "run <attempt> holds <date> until <time>") or fails with LeaseLost
before it changes any output. The lease's clock is the runners' `clock`, moved by hand.
"""

from __future__ import annotations

import json

import pytest
from modelops.batch.lease import DateLease, LeaseBusy, LeaseLost
from modelops.batch.run import BatchRunner, scheduled_step
from modelops.batch.store import Store
from support.batch import BUCKET, DATE, csv_bytes, features_and_rows, keys, put_input, read_csv, register_champion
from support.batch import config as batch_config

from modelops_cli import main as cli_main

OUT = f"batch/output/{DATE}/"
LEASE = 600
ROWS = 300


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def versions(s3, registry, classifier_dir, classifier_v2_dir):
    v1 = register_champion(registry, classifier_dir)
    v2 = registry.register(classifier_v2_dir).version
    names, X = features_and_rows(ROWS, seed=9)
    put_input(s3, "a.csv", csv_bytes(names, X[:200]))
    put_input(s3, "b.csv", csv_bytes(names, X[200:], ids=[f"b{i}" for i in range(100)]))
    return v1, v2


def make_runner(s3, registry, clock: Clock, version: str, **overrides) -> BatchRunner:
    c = batch_config(model_version=version, lease_seconds=LEASE, chunk_rows=40, **overrides)
    r = BatchRunner(c, store=Store(BUCKET, s3=s3), registry=registry)
    r.clock = clock
    return r


def manifests(s3) -> list[dict]:
    return [
        json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())
        for k in keys(s3, OUT)
        if k.endswith("_manifest.json")
    ]


def assert_committed_by(s3, run: dict) -> None:
    """Exactly one manifest, naming `run`'s attempt, and every row of every file it lists written by `run`."""
    (m,) = manifests(s3)
    assert m["attempt"] == run["attempt"] and m["model"] == run["model"]
    files = [*m["outputs"]["predictions"], m["outputs"]["rejected"]]
    assert all(f.startswith(OUT) and "/_attempts/" not in f for f in files)
    rows = [r for key in m["outputs"]["predictions"] for r in read_csv(s3, key)]
    assert len(rows) == ROWS == m["rows"]["scored"]
    assert {r["model_version"] for r in rows} == {run["model"]["version"]}


def test_a_run_started_between_plan_and_commit_waits_clearly(s3, registry, versions, capsys):
    v1, v2 = versions
    clock = Clock()
    a, b = make_runner(s3, registry, clock, v1), make_runner(s3, registry, clock, v2)
    run_a = a.prepare(DATE)["run"]

    waiting = b.prepare(DATE, force=True)  # force still goes through the lease
    until = "2027-01-15T08:10:00Z"  # clock.now + LEASE
    assert waiting["status"] == "waiting"
    assert waiting["waiting_for"] == [f"run {run_a['attempt']} holds {DATE} until {until}"]
    step = scheduled_step(b, DATE, False, 1, 5, 60)  # the state machine waits and asks again
    assert step["status"] == "waiting" and step["attempt"] == 2 and step["waiting_for"] == waiting["waiting_for"]
    assert cli_main(["batch", "run", "--bucket", BUCKET, "--registry", f"s3://{BUCKET}/registry", "--model",
                     "breast-cancer", "--upstream-marker", "", "--date", DATE]) == 75  # fmt: skip
    err = capsys.readouterr().err
    assert err == f"run {DATE}: waiting: run {run_a['attempt']} holds {DATE} until {until}\n"
    assert not [k for k in keys(s3, OUT) if "/_attempts/" in k and run_a["attempt"] not in k]  # B planned nothing
    assert f"run {run_a['attempt']} holds {DATE} until {until}" in b.status(DATE)["reasons"]

    a.execute(run_a)
    assert_committed_by(s3, run_a)
    assert b.prepare(DATE)["status"] == "skipped"  # the lease is free again, and the date is done


def test_a_lease_that_expires_while_scoring_is_taken_over_and_the_first_run_fails(s3, registry, versions):
    v1, v2 = versions
    clock = Clock()
    a, b = make_runner(s3, registry, clock, v1), make_runner(s3, registry, clock, v2)
    run_a = a.prepare(DATE)["run"]
    taken: list[dict] = []

    def stall_then_b_runs(chunk) -> None:  # A is slow: its lease expires in the middle of a part
        if not taken:
            clock.now += LEASE + 1
            prepared = b.prepare(DATE)
            assert prepared["status"] == "ready"
            taken.append(prepared["run"])
            lease, _ = b.lease(DATE).read()
            assert lease["took_over"] == run_a["attempt"] and lease["attempt"] == prepared["run"]["attempt"]
            b.execute(prepared["run"])  # B scores and commits while A is still scoring

    a.on_chunk = stall_then_b_runs
    with pytest.raises(LeaseLost, match=f"attempt {run_a['attempt']} lost its lease"):
        a.execute(run_a)
    assert_committed_by(s3, taken[0])
    assert not [k for k in keys(s3, OUT) if "/_attempts/" in k]
    assert not s3.list_multipart_uploads(Bucket=BUCKET, Prefix=OUT).get("Uploads")


@pytest.mark.parametrize("first", ["stale", "taker"])
def test_both_runs_reach_commit_and_only_the_lease_holder_commits(s3, registry, versions, first):
    v1, v2 = versions
    clock = Clock()
    a, b = make_runner(s3, registry, clock, v1), make_runner(s3, registry, clock, v2)
    run_a = a.prepare(DATE)["run"]
    for part in a.parts(run_a):
        a.score_part(run_a, part)
    clock.now += LEASE + 1  # A stalls before its commit (a slow Lambda start, a paused process)
    run_b = b.prepare(DATE)["run"]
    for part in b.parts(run_b):
        b.score_part(run_b, part)

    if first == "stale":
        with pytest.raises(LeaseLost):
            a.commit(run_a)
        assert manifests(s3) == []  # A stopped before it changed any output
        b.commit(run_b)
    else:
        b.commit(run_b)
        with pytest.raises(LeaseLost):
            a.commit(run_a)
    assert_committed_by(s3, run_b)


def test_a_lease_taken_over_during_the_commit_stops_it_before_the_manifest(s3, registry, versions):
    v1, v2 = versions
    clock = Clock()
    a, b = make_runner(s3, registry, clock, v1), make_runner(s3, registry, clock, v2)
    run_a = a.prepare(DATE)["run"]
    for part in a.parts(run_a):
        a.score_part(run_a, part)
    taken: list[dict] = []
    complete = a.store.complete_upload

    def complete_then_lose_the_lease(key, upload_id, parts):
        complete(key, upload_id, parts)
        if not taken:  # the commit overran its lease and B took the date over
            clock.now += LEASE + 1
            taken.append(b.prepare(DATE)["run"])

    a.store.complete_upload = complete_then_lose_the_lease  # type: ignore[method-assign]
    with pytest.raises(LeaseLost):
        a.commit(run_a)
    assert manifests(s3) == []  # checked again right before the manifest: nothing was committed
    run_b = taken[0]
    for part in b.parts(run_b):
        b.score_part(run_b, part)
    b.commit(run_b)
    assert_committed_by(s3, run_b)


def test_two_takers_of_a_stale_lease_cannot_both_win(s3):
    clock = Clock()
    store = Store(BUCKET, s3=s3)
    key = OUT + "_lease.json"
    DateLease(store, key, DATE, LEASE, clock).acquire("crashed")
    clock.now += LEASE + 1
    first, second = DateLease(store, key, DATE, LEASE, clock), DateLease(store, key, DATE, LEASE, clock)
    stale = [first.read()]  # both read the same expired lease ...
    first.read = lambda: stale.pop() if stale else DateLease.read(first)  # type: ignore[method-assign]
    second.acquire("second")  # ... the second writes first (If-Match on the stale ETag) ...
    with pytest.raises(LeaseBusy, match=f"run second holds {DATE}"):
        first.acquire("first")  # ... so the first's If-Match on the same ETag fails
    assert DateLease(store, key, DATE, LEASE, clock).read()[0]["attempt"] == "second"


def test_parts_starting_together_renew_the_lease_with_one_write(s3):
    """Hundreds of parts of one run start at once (Distributed Map) and each renews the lease. They all read it
    before the first write lands; the first renews it, and the others, losing the If-Match race, read it again,
    see it was just renewed and only check it. One write, no LeaseLost, however many parts."""
    clock = Clock()
    store = Store(BUCKET, s3=s3)
    key = OUT + "_lease.json"
    DateLease(store, key, DATE, LEASE, clock).acquire("run")
    clock.now += LEASE / 2  # the run planned for a while: the lease needs renewing
    parts = [DateLease(store, key, DATE, LEASE, clock) for _ in range(200)]
    snapshot = parts[0].read()
    writes = []
    for part in parts:
        stale = [snapshot]  # every part's first read is the lease as it was before any part wrote
        part.read = lambda part=part, stale=stale: stale.pop() if stale else DateLease.read(part)  # type: ignore[method-assign]
        original = part._write
        part._write = lambda state, etag, original=original: (original(state, etag), writes.append(etag))  # type: ignore[method-assign]
    for part in parts:
        part.renew("run")
    assert len(writes) == 1
    state, _ = DateLease(store, key, DATE, LEASE, clock).read()
    assert state["attempt"] == "run" and state["expires_at"] == clock.now + LEASE


def test_a_renewal_that_finds_the_lease_taken_over_still_fails_when_it_looks_fresh(s3):
    clock = Clock()
    store = Store(BUCKET, s3=s3)
    key = OUT + "_lease.json"
    DateLease(store, key, DATE, LEASE, clock).acquire("old")
    clock.now += LEASE + 1
    DateLease(store, key, DATE, LEASE, clock).acquire("new")  # fresh, but not "old"'s
    with pytest.raises(LeaseLost, match="run new holds it"):
        DateLease(store, key, DATE, LEASE, clock).renew("old")
