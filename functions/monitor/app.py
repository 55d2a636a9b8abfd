"""Monitor function (scheduled): drift of captured online requests and quality from labelled predictions
over a sliding window, per model version, published as CloudWatch metrics (EMF). On {"action": "shadow"}
(the ShadowTest schedule) it compares the shadow candidate with the champion on the window's captured
requests instead (modelops.experiments.shadow) and stores the report under the data prefix's shadow/."""

from __future__ import annotations

import time

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from modelops.capture.labelled import read_window
from modelops.experiments import shadow
from modelops.monitoring import quality as monitoring
from modelops.registry import CHAMPION
from modelops.wiring import monitor as monitor_wiring

logger = Logger()


@logger.inject_lambda_context
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    parts = monitor_wiring.build()
    registry, name, store, prefix = parts.registry, parts.name, parts.store, parts.prefix
    window_seconds, limit = parts.window_seconds, parts.max_records
    now = time.time()
    since = now - window_seconds
    if isinstance(event, dict) and event.get("action") == shadow.EVENT_ACTION:
        result = shadow.scheduled(
            registry, name, store, prefix, parts.shadow_version, since=since, until=now, max_records=limit
        )
        logger.info("shadow test", extra=result)
        return result
    window = read_window(store, prefix, since=since, until=now, max_records=limit)
    captured, labelled = window.captured, window.labelled
    serving = registry.get_alias(name, CHAMPION).version
    manifests: dict = {}

    def manifest(version: str):
        if version not in manifests:
            manifests[version] = registry.manifest(name, version)
        return manifests[version]

    summary = monitoring.monitor_window(manifest, serving, name, captured, labelled, monitoring.EmfSink())
    summary.update(window_hours=window_seconds / 3600, **window.counts())
    if window.dropped_captured or window.dropped_feedback:
        logger.warning("monitoring window over %d records: the oldest were dropped", limit, extra=window.counts())
    logger.info("monitoring window published", extra=summary)
    return summary
