"""A stand-in for the context object the Lambda runtime passes to a handler.

The attributes are those of the Python runtime's context (Lambda developer guide, "Using the Lambda context object to
retrieve Python function information") that Powertools' inject_lambda_context and our handlers read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LambdaContext:
    function_name: str = "f"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "req-1"
    invoked_function_arn: str = ""
    remaining_time_in_millis: int = 300_000

    def __post_init__(self) -> None:
        if not self.invoked_function_arn:
            arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
            object.__setattr__(self, "invoked_function_arn", arn)

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_time_in_millis
