"""The shared handler loader and Lambda context in tests/support behave as the tests that use them rely on."""

from __future__ import annotations

import os
import sys

import pytest
from support.context import LambdaContext
from support.handlers import load_handler


def test_a_fresh_load_runs_the_module_again_and_stays_out_of_sys_modules():
    first, second = load_handler("pretraffic_hook"), load_handler("pretraffic_hook")
    assert first is not second and first.__name__ == "pretraffic_hook_app"
    assert callable(first.lambda_handler) and "pretraffic_hook_app" not in sys.modules


def test_a_cached_load_is_imported_once_under_its_name():
    try:
        module = load_handler("pretraffic_hook", module_name="cached_hook_app", cached=True)
        assert sys.modules["cached_hook_app"] is module
        assert load_handler("pretraffic_hook", module_name="cached_hook_app", cached=True) is module
    finally:
        sys.modules.pop("cached_hook_app", None)


def test_env_is_set_through_monkeypatch_and_refused_without_it(monkeypatch):
    with pytest.raises(ValueError, match="monkeypatch"):
        load_handler("pretraffic_hook", env={"MODELOPS_SUPPORT_PROBE": "1"})
    assert "MODELOPS_SUPPORT_PROBE" not in os.environ
    load_handler("pretraffic_hook", env={"MODELOPS_SUPPORT_PROBE": "1"}, monkeypatch=monkeypatch)
    assert os.environ["MODELOPS_SUPPORT_PROBE"] == "1"


def test_the_context_has_what_powertools_reads():
    context = LambdaContext(function_name="batch", memory_limit_in_mb=3008)
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:batch"
    assert (context.aws_request_id, context.get_remaining_time_in_millis()) == ("req-1", 300_000)
    from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model

    model = build_lambda_context_model(context)
    assert (model.function_name, model.function_memory_size, model.function_request_id) == ("batch", 3008, "req-1")
