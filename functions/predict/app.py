"""Predict function: serves the one model version it is pinned to behind API Gateway.

The model loads during init (module import), so a cold start is import + load; requests then go
through modelops.serving.fastpath (a direct path for POST /predict, Powertools routes for the rest).
With SnapStart (PredictScalingMode=SnapStart) the runtime hooks in modelops.serving.snapstart warm the
model up before the snapshot and renew clients and random state after each restore.
"""

from __future__ import annotations

from typing import Any

from modelops.serving import snapstart
from modelops.serving.fastpath import Gateway
from modelops.wiring import predict as wiring

gateway = wiring.build()
snapstart.register(lambda: gateway)  # the hooks act on the gateway in use when they run (see reset)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return gateway.handle(event, context)


def reset() -> Gateway:
    """Rebuild from the current environment (reloads the model); for local tools and tests."""
    global gateway
    gateway = wiring.build()
    return gateway
