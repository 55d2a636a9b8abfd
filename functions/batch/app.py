"""Scheduled batch scoring entry: resolve the run date, check dependencies, score small inputs here.

Large inputs are planned and handed back to the state machine for the Distributed Map fan-out.
Answers: succeeded | skipped | waiting (retry later: dependencies, or another run holds the date) |
timed_out (never ready) | fanout.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from modelops.batch import metrics
from modelops.batch.events import run_request
from modelops.batch.run import scheduled_step
from modelops.wiring import batch as batch_wiring

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runner = batch_wiring.build()
    config = runner.config
    request = run_request(event, config.timezone)
    result = scheduled_step(
        runner,
        request.run_date,
        request.force,
        request.attempt,
        request.max_attempts,
        request.wait_seconds,
    )
    status = result["status"]
    if status == "waiting":
        logger.warning(
            "batch run waiting (dependencies, or another run holding the date)",
            extra={k: result[k] for k in ("run_date", "attempt", "max_attempts", "waiting_for")},
        )
    elif status == "timed_out":
        metrics.emit([metrics.dependency_timeout_document(config.model_name or "", request.run_date)])
        logger.error(result["error"], extra={"run_date": request.run_date, "waiting_for": result["waiting_for"]})
    elif status == "succeeded":
        metrics.emit(metrics.run_documents(result["manifest"]))
        result = summary(result["manifest"])
    else:
        logger.info(f"batch run {status}", extra={"run_date": request.run_date})
    return result


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """Step Functions payloads are small: the manifest itself stays in S3."""
    return {
        "status": "succeeded",
        "run_date": manifest["run_date"],
        "rows": manifest["rows"],
        "model": manifest["model"],
        "outputs": manifest["outputs"],
    }
