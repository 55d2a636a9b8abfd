"""API fuzzing with schemathesis against the running local API (real predict handler under the Runtime
Interface Emulator) and the API's own /openapi.json: schema-valid and schema-violating requests for
every documented operation, at least MIN_CASES in total. No answer may be a 5xx, and every answer must
match what the document declares (status code, content type, headers, body schema). Bounded by
hypothesis' example counts and a wall-clock budget; shrinking is off, so a failure reports the first
failing case as it was sent."""

from __future__ import annotations

import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

MIN_CASES = 1000
BUDGET_SECONDS = 240
PREDICT = "POST /predict"
OTHER_EXAMPLES = 50  # per operation and generation mode; POST /predict (fuzzed last) gets the rest of MIN_CASES
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _fuzz(strategy, examples: int, send) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case) -> None:
        send(case)

    run()


def _has_inputs(operation) -> bool:
    raw = operation.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody") or raw.get("security"))


def test_fuzz_local_api_against_its_openapi_document(predict_stack):
    base = predict_stack.gateway.url
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(op.method.upper() == "POST" and op.path == "/predict" for op in operations)
    session = requests.Session()
    counts: dict[str, int] = {}
    deadline = time.monotonic() + BUDGET_SECONDS

    def send(case, label: str) -> None:
        if time.monotonic() > deadline:
            return
        case.call_and_validate(base_url=base, session=session, checks=CHECKS, timeout=30)
        counts[label] = counts.get(label, 0) + 1

    def label_of(operation) -> str:
        return f"{operation.method.upper()} {operation.path}"

    for operation in sorted(operations, key=lambda op: label_of(op) == PREDICT):
        label = label_of(operation)
        modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
        if not _has_inputs(operation):  # nothing a schema-violating request could violate (GET /health)
            modes = modes[:1]
        for left, mode in zip(range(len(modes), 0, -1), modes, strict=True):
            examples = OTHER_EXAMPLES
            if label == PREDICT:  # this mode's share of what is still missing, with a margin
                examples = max(OTHER_EXAMPLES, -(-(MIN_CASES - sum(counts.values())) // left) + 25)
            _fuzz(
                operation.as_strategy(generation_mode=mode),
                examples,
                lambda case, label=label: send(case, label),
            )

    total = sum(counts.values())
    print(f"schemathesis cases per operation: {counts} (total {total})")
    assert time.monotonic() <= deadline, f"fuzzing ran out of its {BUDGET_SECONDS} s budget after {total} cases"
    assert total >= MIN_CASES, counts
