"""template.yaml: POST /feedback on a REST API of its own (FeedbackApi) with its own usage plan, key, throttle and
quota; the prediction API's usage plan does not reach it; the label token secret is readable by the predict and
feedback functions only. Checked on the template and on samtranslator's output."""

from __future__ import annotations

import json

import pytest
from support.template import flatten


def test_feedback_is_routed_on_its_own_api_only(template, translated):
    for lid, resource in template["Resources"].items():
        for event in (resource.get("Properties") or {}).get("Events", {}).values():
            props = event.get("Properties") or {}
            if props.get("Path") == "/feedback":
                assert (lid, props["RestApiId"]) == ("FeedbackFunction", {"Ref": "FeedbackApi"})
            elif props.get("RestApiId") == {"Ref": "FeedbackApi"}:
                pytest.fail(f"{lid} has a route on the feedback API: {props}")
    feedback_paths = translated["FeedbackApi"]["Properties"]["Body"]["paths"]
    assert set(feedback_paths) == {"/feedback"} and set(feedback_paths["/feedback"]) == {"post"}
    post = feedback_paths["/feedback"]["post"]
    assert post["security"] == [{"api_key": []}]
    assert "FeedbackFunction.Arn" in json.dumps(post["x-amazon-apigateway-integration"]["uri"])
    assert "/feedback" not in translated["PredictApi"]["Properties"]["Body"]["paths"]


def test_each_api_has_its_own_usage_plan_and_key(template, translated):
    plan = template["Resources"]["FeedbackApi"]["Properties"]["Auth"]["UsagePlan"]
    assert plan["CreateUsagePlan"] == "PER_API"
    assert plan["Throttle"] == {
        "RateLimit": {"Ref": "FeedbackThrottleRateLimit"},
        "BurstLimit": {"Ref": "FeedbackThrottleBurstLimit"},
    }
    assert plan["Quota"] == {"Limit": {"Ref": "FeedbackQuotaPerDay"}, "Period": "DAY"}
    assert template["Resources"]["FeedbackApi"]["Properties"]["Auth"]["ApiKeyRequired"] is True
    plans = {lid: r["Properties"] for lid, r in translated.items() if r["Type"] == "AWS::ApiGateway::UsagePlan"}
    assert set(plans) == {"PredictApiUsagePlan", "FeedbackApiUsagePlan"}
    # the prediction key's plan does not include the feedback API's stage, and the other way round
    assert plans["PredictApiUsagePlan"]["ApiStages"] == [
        {"ApiId": {"Ref": "PredictApi"}, "Stage": {"Ref": "PredictApiStage"}}
    ]
    assert plans["FeedbackApiUsagePlan"]["ApiStages"] == [
        {"ApiId": {"Ref": "FeedbackApi"}, "Stage": {"Ref": "FeedbackApiStage"}}
    ]
    # samtranslator resolves the plan's parameters to their defaults
    assert plans["FeedbackApiUsagePlan"]["Throttle"] == {"RateLimit": 10, "BurstLimit": 20}
    assert plans["FeedbackApiUsagePlan"]["Quota"] == {"Limit": 100000, "Period": "DAY"}
    links = {
        r["Properties"]["KeyId"]["Ref"]: r["Properties"]["UsagePlanId"]["Ref"]
        for r in translated.values()
        if r["Type"] == "AWS::ApiGateway::UsagePlanKey"
    }
    assert links == {"PredictApiApiKey": "PredictApiUsagePlan", "FeedbackApiApiKey": "FeedbackApiUsagePlan"}


def test_feedback_stage_is_set_up_like_the_prediction_stage(template, translated):
    stage = translated["FeedbackApiStage"]["Properties"]
    assert stage["StageName"] == {"Ref": "ApiStageName"} and stage["TracingEnabled"] is True
    (setting,) = stage["MethodSettings"]
    assert setting["MetricsEnabled"] is True
    assert setting["ThrottlingRateLimit"] == {"Ref": "FeedbackThrottleRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "FeedbackThrottleBurstLimit"}
    api = template["Resources"]["FeedbackApi"]
    assert api["Properties"]["EndpointConfiguration"] == {"Type": "REGIONAL"}
    for param in ("FeedbackThrottleRateLimit", "FeedbackThrottleBurstLimit", "FeedbackQuotaPerDay", "LabelWindowHours"):
        assert template["Parameters"][param]["Type"] == "Number" and template["Parameters"][param]["MinValue"] >= 1
    outputs = template["Outputs"]
    condition, rest_url, _ = outputs["FeedbackUrl"]["Value"]["Fn::If"]  # other ApiTypes: test_template_front_doors
    assert condition == "RestFrontDoor" and "${FeedbackApi}" in rest_url["Fn::Sub"]
    assert outputs["FeedbackApiKeyId"]["Value"] == {"Ref": "FeedbackApiApiKey"}


def test_the_label_token_secret_is_generated_and_readable_by_predict_and_feedback_only(template, translated):
    secret = template["Resources"]["LabelTokenSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret" and secret["Properties"]["GenerateSecretString"]
    grants: dict[str, list] = {}
    for lid, resource in translated.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in flatten(policy["PolicyDocument"]["Statement"]):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if any(str(a).startswith("secretsmanager:") or a == "*" for a in actions):
                    grants.setdefault(lid, []).append((actions, statement["Resource"]))
    assert grants == {
        "PredictFunctionRole": [(["secretsmanager:GetSecretValue"], {"Ref": "LabelTokenSecret"})],
        "FeedbackFunctionRole": [(["secretsmanager:GetSecretValue"], {"Ref": "LabelTokenSecret"})],
    }
    for function in ("PredictFunction", "FeedbackFunction"):
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["MODELOPS_LABEL_TOKEN_SECRET"] == {"Ref": "LabelTokenSecret"}
    feedback_env = template["Resources"]["FeedbackFunction"]["Properties"]["Environment"]["Variables"]
    assert feedback_env["MODELOPS_LABEL_WINDOW_HOURS"] == {"Ref": "LabelWindowHours"}
