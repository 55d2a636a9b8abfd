"""The retrain lock: one retrain at a time, with an expiry and a cooldown between retrains.

The lock is one small JSON object in the registry's store, changed only by conditional writes
(If-None-Match on first creation, If-Match on the ETag that was read afterwards; modelops.adapters.objectstore). Of two runs that
read the same state, exactly one write succeeds; the other gets 412 and backs off. S3 was chosen
over a DynamoDB conditional put because the registry already lives there (no extra table, no extra
IAM surface), S3 conditional writes are strongly consistent, and the registry's alias writes use the
same mechanism.

State kept in the object:
    holder, acquired_at, expires_at    set while a run holds it; an expired holder (crashed run,
                                       Lambda timeout) may be taken over
    last_decided_at, last_outcome      when the last run that reached a decision finished; a new
                                       run is refused until the cooldown has passed
Failed runs release the lock without starting a cooldown, so a transient failure does not block
the next alarm for a day.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..adapters.objectstore import read_state, swap_state
from ..core.clock import iso_seconds
from ..core.errors import ConflictError
from ..ports import ObjectStore

DEFAULT_TTL_SECONDS = 20 * 60  # longer than the retrain function's 15-minute Lambda maximum
DEFAULT_COOLDOWN_SECONDS = 24 * 3600


class LockBusy(ConflictError):
    """Another retrain holds the lock and it has not expired."""


class CooldownActive(ConflictError):
    """The previous retrain decided too recently."""


@dataclass
class Lease:
    holder: str
    acquired_at: float
    expires_at: float
    took_over: str | None = None


class RetrainLock:
    def __init__(
        self,
        store: ObjectStore,
        key: str,
        *,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        self.store, self.key = store, key
        self.ttl, self.cooldown, self.clock = ttl_seconds, cooldown_seconds, clock

    @classmethod
    def for_registry(cls, registry: Any, name: str, **kwargs: Any) -> RetrainLock:
        return cls(registry.store, registry.key("locks", name, "retrain.json"), **kwargs)

    # ---- state ---------------------------------------------------------------------------
    def read(self) -> tuple[dict[str, Any], str | None]:
        return read_state(self.store, self.key)

    def _write(self, state: dict[str, Any], etag: str | None) -> None:
        try:
            swap_state(self.store, self.key, json.dumps(state).encode(), etag)
        except ConflictError:
            raise LockBusy("another retrain changed the lock at the same moment; this one backs off") from None

    # ---- operations ------------------------------------------------------------------------
    def acquire(self, *, ignore_cooldown: bool = False) -> Lease:
        """Take the lock or raise LockBusy / CooldownActive. Never waits."""
        now = self.clock()
        state, etag = self.read()
        holder = state.get("holder")
        took_over = None
        if holder:
            if now < float(state.get("expires_at", 0)):
                raise LockBusy(
                    f"a retrain is already running (holder {holder}, since {iso_seconds(state['acquired_at'])}, "
                    f"lock expires {iso_seconds(state['expires_at'])})"
                )
            took_over = holder  # the previous run died without releasing
        last = state.get("last_decided_at")
        if last is not None and not ignore_cooldown and now < float(last) + self.cooldown:
            raise CooldownActive(
                f"the last retrain decided at {iso_seconds(last)} ({state.get('last_outcome')}); "
                f"cooldown lasts until {iso_seconds(float(last) + self.cooldown)}"
            )
        lease = Lease(
            holder=f"{int(now)}-{secrets.token_hex(4)}", acquired_at=now, expires_at=now + self.ttl, took_over=took_over
        )
        self._write({**state, "holder": lease.holder, "acquired_at": now, "expires_at": lease.expires_at}, etag)
        return lease

    def release(self, lease: Lease, *, outcome: str | None = None) -> bool:
        """Give the lock back. With an outcome, the cooldown starts now. Returns False when the lease was
        lost (expired and taken over), in which case nothing is changed."""
        state, etag = self.read()
        if state.get("holder") != lease.holder:
            return False
        new = {k: v for k, v in state.items() if k not in ("holder", "acquired_at", "expires_at")}
        if outcome is not None:
            new.update(last_decided_at=self.clock(), last_outcome=outcome)
        try:
            self._write(new, etag)
        except LockBusy:
            return False
        return True

    def status(self) -> dict[str, Any]:
        state, _ = self.read()
        now = self.clock()
        out: dict[str, Any] = {"locked": bool(state.get("holder")) and now < float(state.get("expires_at", 0))}
        if state.get("holder"):
            out.update(holder=state["holder"], expires_at=iso_seconds(state["expires_at"]))
        if state.get("last_decided_at") is not None:
            until = float(state["last_decided_at"]) + self.cooldown
            out.update(
                last_decided_at=iso_seconds(state["last_decided_at"]),
                last_outcome=state.get("last_outcome"),
                cooldown_until=iso_seconds(until),
                in_cooldown=now < until,
            )
        return out
