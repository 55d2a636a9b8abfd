"""The retrain lock on moto S3: conditional writes, expiry takeover, cooldown."""

from __future__ import annotations

import threading

import pytest
from modelops.adapters.objectstore import LocalObjectStore, S3ObjectStore
from modelops.retrain.lock import CooldownActive, LockBusy, RetrainLock
from support.lifecycle import SerializedPuts


class Clock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(params=["s3", "local"])
def lock(request, clock, tmp_path):
    """The same lock on moto S3 and on a local directory (modelops.adapters.objectstore's two adapters)."""
    if request.param == "s3":
        store = S3ObjectStore("modelops-test", request.getfixturevalue("s3"))
    else:
        store = LocalObjectStore(tmp_path / "registry")
    return RetrainLock(store, "registry/locks/m/retrain.json", ttl_seconds=600, cooldown_seconds=3600, clock=clock)


def test_second_acquire_is_refused_while_held(lock):
    lease = lock.acquire()
    with pytest.raises(LockBusy, match="already running"):
        lock.acquire()
    assert lock.release(lease)
    lock.release(lock.acquire())  # free again, and no cooldown without an outcome


def test_expired_lock_is_taken_over(lock, clock):
    dead = lock.acquire()
    clock.t += 601
    lease = lock.acquire()
    assert lease.took_over == dead.holder
    assert not lock.release(dead)  # the dead run cannot release the new holder's lock
    assert lock.status()["locked"]
    assert lock.release(lease)


def test_cooldown_after_a_decision(lock, clock):
    lock.release(lock.acquire(), outcome="rejected")
    clock.t += 1800
    with pytest.raises(CooldownActive, match="rejected"):
        lock.acquire()
    assert lock.status()["in_cooldown"]
    lock.release(lock.acquire(ignore_cooldown=True))
    clock.t += 1801
    lock.release(lock.acquire())


def test_lost_race_on_conditional_write(lock):
    """Two runs read the same free state; the second write fails its If-None-Match / If-Match condition."""
    state, etag = lock.read()
    lock.acquire()
    with pytest.raises(LockBusy, match="same moment"):
        lock._write({"holder": "other"}, etag)


def test_threads_racing_get_exactly_one_lease(lock):
    if isinstance(lock.store, S3ObjectStore):
        lock.store.s3 = SerializedPuts(lock.store.s3)
    barrier = threading.Barrier(8)
    won, lost = [], []

    def attempt():
        barrier.wait()
        try:
            won.append(lock.acquire())
        except LockBusy:
            lost.append(1)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 7
