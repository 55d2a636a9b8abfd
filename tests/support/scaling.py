"""Application Auto Scaling (moto) and Lambda provisioned concurrency (a botocore Stubber) for the live alias.

moto has no Lambda provisioned concurrency API, so the Stubber answers GetAlias, GetProvisionedConcurrencyConfig and
PutProvisionedConcurrencyConfig with the shapes of the Lambda API reference (botocore validates both the requests and
the responses against the service model); the not-found error code is the documented
ProvisionedConcurrencyConfigNotFoundException."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber
from modelops.rollout.scaling import DIMENSION, NAMESPACE, resource_id

FN = "modelops-dev-PredictFunction-abc"
ALIAS_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FN}:live"


def register(autoscaling, low: int, high: int) -> None:
    autoscaling.register_scalable_target(
        ServiceNamespace=NAMESPACE,
        ResourceId=resource_id(FN, "live"),
        ScalableDimension=DIMENSION,
        MinCapacity=low,
        MaxCapacity=high,
    )


def lambda_stub(weights: dict[str, float] | None = None, requested: int | None = None):
    lam = boto3.client("lambda", region_name="us-east-1")
    stub = Stubber(lam)
    alias = {"AliasArn": ALIAS_ARN, "Name": "live", "FunctionVersion": "7"}
    if weights:
        alias["RoutingConfig"] = {"AdditionalVersionWeights": weights}
    stub.add_response("get_alias", alias, {"FunctionName": FN, "Name": "live"})
    if weights:
        return lam, stub
    params = {"FunctionName": FN, "Qualifier": "live"}
    if requested is None:
        stub.add_client_error(
            "get_provisioned_concurrency_config", "ProvisionedConcurrencyConfigNotFoundException", http_status_code=404
        )
    else:
        stub.add_response(
            "get_provisioned_concurrency_config",
            {
                "RequestedProvisionedConcurrentExecutions": requested,
                "AvailableProvisionedConcurrentExecutions": requested,
                "AllocatedProvisionedConcurrentExecutions": requested,
                "Status": "READY",
                "LastModified": "2026-12-01T08:00:00+0000",
            },
            params,
        )
    return lam, stub


def expect_put(stub: Stubber, value: int) -> None:
    stub.add_response(
        "put_provisioned_concurrency_config",
        {"RequestedProvisionedConcurrentExecutions": value, "Status": "IN_PROGRESS"},
        {"FunctionName": FN, "Qualifier": "live", "ProvisionedConcurrentExecutions": value},
    )
