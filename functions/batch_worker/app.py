"""Step Functions steps of the batch fan-out: score one part (Distributed Map item), then commit; release the
run date's lease when a part or the commit failed."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from modelops.batch import metrics
from modelops.core.errors import InputError
from modelops.wiring import batch as batch_wiring

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    step = event.get("step") if isinstance(event, dict) else None
    if step not in ("score_part", "commit", "release") or not isinstance(event.get("run"), dict):
        raise InputError("event: expected {'step': 'score_part'|'commit'|'release', 'run': {...}}", field="step")
    runner = batch_wiring.build()
    run = event["run"]
    if step == "score_part":
        if not isinstance(event.get("part"), dict):
            raise InputError("part: the Map item is missing", field="part")
        stats = runner.score_part(run, event["part"])
        logger.info("batch part scored", extra=stats)
        return stats
    if step == "release":  # a part or the commit failed: the date is free for a rerun
        released = runner.release(run)
        logger.warning("batch run failed; lease released", extra={"run_date": run.get("run_date"), "held": released})
        return {"status": "released" if released else "not_held", "run_date": run.get("run_date")}
    manifest = runner.commit(run)
    metrics.emit(metrics.run_documents(manifest))
    logger.info("batch run committed", extra={"run_date": manifest["run_date"], "rows": manifest["rows"]})
    return {"status": "succeeded", "run_date": manifest["run_date"], "rows": manifest["rows"]}
