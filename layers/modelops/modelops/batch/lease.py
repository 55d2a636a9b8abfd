"""One run per date: a lease object, batch/output/<date>/_lease.json, changed only by conditional writes.

A run takes the lease before it plans (If-None-Match: * when there is none, If-Match on the ETag read when the
last one was released or has expired), so of two runs for the same date exactly one gets it; the other waits
(the state machine's wait loop) or stops (the CLI). The lease names the run's attempt, its owner and an expiry:
a run that crashed without releasing blocks the date only until then, and the next run takes it over with
If-Match, so two takers cannot both win.

A holder renews it (If-Match on the ETag it has just read, after checking the attempt is still its own; a lease
that a sibling part has just renewed is only checked) when a part starts, every third of the lease while a part is scored, and at the start of the commit and again right
before the manifest is written: a run whose lease was taken over fails there, before it changes any output. The
expiry (MODELOPS_BATCH_LEASE_SECONDS, default 30 minutes) is longer than Lambda's 15-minute limit, so a commit
that has renewed it cannot be overtaken in a Lambda. Runs release it on success and on failure.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from ..adapters.objectstore import read_state, swap_state
from ..core import env as settings
from ..core.clock import iso_seconds
from ..core.errors import ConflictError
from ..ports import ObjectStore

RENEW_TRIES = 5  # parts of one run renew side by side; a lost If-Match race is read again and retried
# A lease with at least this share of its time left was just renewed (by a sibling part, most often): it is
# only checked, not written again, so thousands of parts starting together make one write, not thousands of
# If-Match races. 0.9 of the 30-minute default is 27 minutes, more than a Lambda's 15.
FRESH_SHARE = 0.9


class LeaseBusy(ConflictError):
    """Another run holds the date's lease and it has not expired."""

    def __init__(self, message: str, holder: dict[str, Any]):
        super().__init__(message)
        self.holder = holder


class LeaseLost(ConflictError):
    """This run's lease expired and another run took it over."""


def owner() -> str:
    """Who runs: the Lambda function, or host and process id."""
    name = settings.raw("AWS_LAMBDA_FUNCTION_NAME")
    return f"lambda {name}" if name else f"{socket.gethostname()} pid {os.getpid()}"


class DateLease:
    def __init__(
        self, store: ObjectStore, key: str, run_date: str, ttl_seconds: float, clock: Callable[[], float] = time.time
    ):
        self.store, self.key, self.run_date, self.ttl, self.clock = store, key, run_date, ttl_seconds, clock

    def read(self) -> tuple[dict[str, Any], str | None]:
        return read_state(self.store, self.key)

    def _write(self, state: dict[str, Any], etag: str | None) -> None:
        swap_state(self.store, self.key, json.dumps(state).encode(), etag)

    def busy_message(self, state: dict[str, Any]) -> str:
        return f"run {state['attempt']} holds {self.run_date} until {iso_seconds(float(state['expires_at']))}"

    def acquire(self, attempt: str) -> dict[str, Any]:
        """Take the lease for `attempt`, or raise LeaseBusy. Never waits."""
        now = self.clock()
        state, etag = self.read()
        if state.get("attempt") and now < float(state.get("expires_at", 0)):
            raise LeaseBusy(self.busy_message(state), state)
        new = {
            "run_date": self.run_date,
            "attempt": attempt,
            "owner": owner(),
            "acquired_at": iso_seconds(now),
            "expires_at": now + self.ttl,
        }
        if state.get("attempt"):
            new["took_over"] = state["attempt"]  # expired: that run died or overran
        try:
            self._write(new, etag)
        except ConflictError:
            state, _ = self.read()
            holder = state if state.get("attempt") else {"attempt": "?", "expires_at": now}
            raise LeaseBusy(self.busy_message(holder), holder) from None
        return new

    def renew(self, attempt: str) -> None:
        """Prove `attempt` still holds the lease, and extend it; LeaseLost if another run has it."""
        for _ in range(RENEW_TRIES):
            state, etag = self.read()
            if state.get("attempt") != attempt:
                now_held = f"run {state['attempt']} holds it" if state.get("attempt") else "it was released"
                raise LeaseLost(
                    f"run {self.run_date} attempt {attempt} lost its lease ({now_held}); nothing more is written"
                )
            if float(state.get("expires_at", 0)) - self.clock() >= self.ttl * FRESH_SHARE:
                return
            try:
                self._write({**state, "expires_at": self.clock() + self.ttl}, etag)
                return
            except ConflictError:
                continue  # a sibling part renewed at the same moment: read again
        raise LeaseLost(f"run {self.run_date} attempt {attempt}: the lease kept changing while it was renewed")

    def holds(self, attempt: str) -> bool:
        return self.read()[0].get("attempt") == attempt

    def release(self, attempt: str) -> bool:
        """Give the lease back; False when it is no longer this attempt's (nothing is changed then)."""
        state, etag = self.read()
        if state.get("attempt") != attempt:
            return False
        try:
            self._write(
                {"run_date": self.run_date, "released_by": attempt, "released_at": iso_seconds(self.clock())}, etag
            )
        except ConflictError:
            return False
        return True
