"""`modelops preflight`: the sample configurations against accounts with small and normal concurrency quotas.

moto does not implement Lambda's GetAccountSettings, so a botocore Stubber answers it with the documented shape
(AccountLimit.ConcurrentExecutions and UnreservedConcurrentExecutions); SSM is moto. The floor Lambda keeps unreserved
is 100, or the whole limit below that: its errors say "decreases account's UnreservedConcurrentExecution below its
minimum value of [10]" in accounts with a limit of 10."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from modelops.rollout.preflight import check_concurrency, check_pin, unreserved_floor
from support.paths import ROOT

from modelops_cli import main


def account(limit: int, unreserved: int | None = None):
    lam = boto3.client("lambda", region_name="us-east-1")
    stub = Stubber(lam)
    stub.add_response(
        "get_account_settings",
        {
            "AccountLimit": {
                "ConcurrentExecutions": limit,
                "UnreservedConcurrentExecutions": limit if unreserved is None else unreserved,
                "TotalCodeSize": 80530636800,
                "CodeSizeUnzipped": 262144000,
                "CodeSizeZipped": 52428800,
            },
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
        },
    )
    stub.activate()
    return lam


def test_floor_is_100_or_the_whole_small_limit():
    assert unreserved_floor(1000) == 100 and unreserved_floor(10) == 10 and unreserved_floor(50) == 50


def test_prod_sample_needs_more_than_a_new_account_has():
    prod = {"PredictScalingMode": "Provisioned", "PredictInstanceCount": "2"}
    new_account = check_concurrency(prod, account(10))
    assert not new_account.ok and "0 can be provisioned" in new_account.detail
    assert "Service Quotas" in new_account.fix and 'PredictScalingMode="OnDemand"' in new_account.fix
    assert check_concurrency(prod, account(1000)).ok
    assert check_concurrency({"PredictScalingMode": "OnDemand"}, object()).ok  # nothing asked of the account


def test_pin_of_another_stack_and_a_missing_pin_are_named(moto_aws):
    ssm = boto3.client("ssm")
    parameters = {"ModelName": "breast-cancer", "ModelVersion": "/modelops/modelops-dev/breast-cancer/champion"}
    checks = check_pin("modelops-prod", parameters, ssm)
    assert [c.ok for c in checks] == [False, False]
    assert checks[0].fix == 'parameter_overrides: ModelVersion="/modelops/modelops-prod/breast-cancer/champion"'
    assert checks[1].fix.startswith("aws ssm put-parameter --name /modelops/modelops-dev/breast-cancer/champion")
    ssm.put_parameter(Name="/modelops/modelops-prod/breast-cancer/champion", Value="none", Type="String")
    own = {**parameters, "ModelVersion": "/modelops/modelops-prod/breast-cancer/champion"}
    assert all(c.ok for c in check_pin("modelops-prod", own, ssm))


def test_cli_checks_the_repository_samconfig(moto_aws, monkeypatch, capsys):
    import modelops.adapters.aws

    lam = account(10)
    real = modelops.adapters.aws.client
    monkeypatch.setattr(modelops.adapters.aws, "client", lambda service: lam if service == "lambda" else real(service))
    boto3.client("ssm").put_parameter(
        Name="/modelops/modelops-prod/breast-cancer/champion", Value="none", Type="String"
    )
    argv = [
        "preflight",
        "--config-env",
        "prod",
        "--samconfig",
        str(ROOT / "samconfig.toml"),
        "--template",
        str(ROOT / "template.yaml"),
    ]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "ok    champion pin: /modelops/modelops-prod/breast-cancer/champion belongs to stack modelops-prod" in out
    assert "FAIL  provisioned concurrency: 2 provisioned instance(s) wanted; account limit 10" in out
    assert err.strip() == "modelops: error: stack modelops-prod is not ready to deploy: provisioned concurrency"


@pytest.mark.parametrize("env", ["default", "prod"])
def test_every_samconfig_environment_names_its_own_pin(env, moto_aws):
    from modelops_cli.preflight import deploy_config

    stack, overrides = deploy_config(ROOT / "samconfig.toml", env)
    checks = check_pin(stack, overrides, boto3.client("ssm"))
    assert checks[0].ok, checks[0].detail


AUTOSCALED = {"PredictScalingMode": "Autoscaled", "PredictInstanceCount": "2", "PredictMaxInstances": "50"}


def test_autoscaled_is_checked_at_its_largest_maximum():
    from modelops.rollout.preflight import check_scaling_range, wanted_concurrency

    assert wanted_concurrency(AUTOSCALED) == ("PredictMaxInstances", 50)
    # 1000 - floor 100 leaves 900: the maximum fits; at a limit of 120 only 20 can be provisioned
    assert check_concurrency(AUTOSCALED, account(1000)).ok
    small = check_concurrency(AUTOSCALED, account(120))
    assert (
        not small.ok and "50 provisioned instance(s) wanted" in small.detail and "PredictMaxInstances" in small.detail
    )
    assert "lower PredictMaxInstances" in small.fix
    # a scheduled maximum counts only when its schedule is set
    business = {**AUTOSCALED, "PredictScaleUpMaxInstances": "400", "PredictScaleUpMinInstances": "5"}
    assert wanted_concurrency(business) == ("PredictMaxInstances", 50)
    business["PredictScaleUpSchedule"] = "cron(0 8 ? * MON-FRI *)"
    assert wanted_concurrency(business) == ("PredictScaleUpMaxInstances", 400)
    assert not check_concurrency(business, account(450)).ok  # 350 available < 400
    assert check_scaling_range(business).ok
    assert check_scaling_range({"PredictScalingMode": "Provisioned"}) is None


def test_a_minimum_above_its_maximum_is_named():
    from modelops.rollout.preflight import check_scaling_range

    inverted = check_scaling_range({**AUTOSCALED, "PredictInstanceCount": "60"})
    assert not inverted.ok and inverted.detail == "PredictInstanceCount=60 > PredictMaxInstances=50"
    scheduled = {
        **AUTOSCALED,
        "PredictScaleDownSchedule": "cron(0 20 ? * * *)",
        "PredictScaleDownMinInstances": "3",
        "PredictScaleDownMaxInstances": "2",
    }
    assert check_scaling_range(scheduled).detail == "PredictScaleDownMinInstances=3 > PredictScaleDownMaxInstances=2"


def test_run_checks_reports_the_autoscaling_range(moto_aws):
    from modelops.rollout.preflight import run_checks

    pin = "/modelops/modelops-dev/breast-cancer/champion"
    boto3.client("ssm").put_parameter(Name=pin, Value="none", Type="String")
    parameters = {**AUTOSCALED, "ModelName": "breast-cancer", "ModelVersion": pin, "PredictInstanceCount": "60"}
    checks = {c.name: c for c in run_checks("modelops-dev", parameters, ssm=boto3.client("ssm"), lam=account(1000))}
    assert not checks["autoscaling range"].ok and checks["provisioned concurrency"].ok
