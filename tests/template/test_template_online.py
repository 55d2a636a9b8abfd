"""The [online] part of template.yaml: API auth, the live alias pinned to the SSM champion version,
layers and architecture, least-privilege IAM, TLS-only bucket, and the provisioned-concurrency /
SnapStart exclusivity. Checked on the template itself and on samtranslator's output (CloudFormation
cannot be run offline; moto cannot deploy SAM-translated templates)."""

from __future__ import annotations

import copy
import json

from support.template import TEMPLATE, flatten, sam_translate


def _predict(template):
    return template["Resources"]["PredictFunction"]["Properties"]


def test_template_lints_clean():
    from cfnlint.api import lint_file

    errors = [m for m in lint_file(TEMPLATE) if m.rule.id.startswith("E")]
    assert not errors, [str(m) for m in errors]


def test_api_requires_a_key_with_usage_plan(template):
    api = template["Resources"]["PredictApi"]
    assert api["Type"] == "AWS::Serverless::Api"
    auth = api["Properties"]["Auth"]
    assert auth["ApiKeyRequired"] is True
    plan = auth["UsagePlan"]
    assert plan["CreateUsagePlan"] == "PER_API"
    assert set(plan["Throttle"]) == {"RateLimit", "BurstLimit"} and plan["Quota"]["Period"] == "DAY"


def test_translated_api_routes_go_to_the_live_alias_with_keys(translated):
    body = translated["PredictApi"]["Properties"]["Body"]
    assert {"/predict", "/model", "/health", "/openapi.json", "/docs", "/{proxy+}"} <= set(body["paths"])
    for path, keyed in (
        ("/predict", True),
        ("/model", True),
        ("/{proxy+}", True),
        ("/health", False),
        ("/openapi.json", False),
        ("/docs", False),
    ):
        method = body["paths"][path]["x-amazon-apigateway-any-method"]
        assert bool(method.get("security")) is keyed, path
        assert "PredictFunctionAliaslive" in json.dumps(method["x-amazon-apigateway-integration"]["uri"])
    types = {r["Type"] for r in translated.values()}
    assert {"AWS::ApiGateway::UsagePlan", "AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlanKey"} <= types


def test_cors_header_only_when_an_origin_is_configured(translated, template):
    options = translated["PredictApi"]["Properties"]["Body"]["paths"]["/predict"]["options"]
    origin = options["x-amazon-apigateway-integration"]["responses"]["default"]["responseParameters"][
        "method.response.header.Access-Control-Allow-Origin"
    ]
    assert origin["Fn::If"][0] == "CorsEnabled" and origin["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    assert template["Conditions"]["CorsEnabled"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CorsAllowOrigin"}, ""]}]}
    assert _predict(template)["Environment"]["Variables"]["MODELOPS_CORS_ORIGIN"] == {"Ref": "CorsAllowOrigin"}


def test_function_shape(template):
    props = _predict(template)
    assert props["CodeUri"] == "functions/predict/" and props["Handler"] == "app.lambda_handler"
    assert props["AutoPublishAlias"] == "live"
    assert props["Layers"] == [{"Ref": "MLRuntimeLayer"}, {"Ref": "ModelOpsLayer"}]
    assert props["MemorySize"] == {"Ref": "PredictMemorySize"}
    globals_ = template["Globals"]["Function"]
    assert globals_["Architectures"] == ["arm64"]
    major, minor = globals_["Runtime"].removeprefix("python").split(".")
    assert (int(major), int(minor)) >= (3, 12)


def test_model_version_pinned_from_ssm(template):
    param = template["Parameters"]["ModelVersion"]
    assert param["Type"] == "AWS::SSM::Parameter::Value<String>"
    # No default: a shared default would let two stacks read (and retrain) the same pin.
    assert "Default" not in param
    env = _predict(template)["Environment"]["Variables"]
    assert env["MODELOPS_MODEL_VERSION"] == {"Ref": "ModelVersion"}
    assert "${ModelVersion}" in _predict(template)["VersionDescription"]["Fn::Sub"]


def test_new_model_version_publishes_a_new_lambda_version(template):
    """SAM's version id ignores parameter values in the environment, so the pin also goes into the
    version's Description: a changed Description makes CloudFormation replace (= publish) the version."""
    first = sam_translate(template, ModelVersion="20260101T000000000Z-aaaaaa")["Resources"]
    second = sam_translate(template, ModelVersion="20260102T000000000Z-bbbbbb")["Resources"]
    versions = [k for k in first if first[k]["Type"] == "AWS::Lambda::Version" and k.startswith("PredictFunction")]
    assert len(versions) == 1 and versions[0] in second  # same logical id: SAM alone would not republish
    description = first[versions[0]]["Properties"]["Description"]
    assert "${ModelVersion}" in description["Fn::Sub"]
    alias = first["PredictFunctionAliaslive"]["Properties"]
    assert alias["FunctionVersion"] == {"Fn::GetAtt": [versions[0], "Version"]}
    # code changes still publish through SAM's code hash
    changed = copy.deepcopy(template)
    changed["Resources"]["PredictFunction"]["Properties"]["CodeUri"] = "functions/predict-v2/"
    third = sam_translate(changed)["Resources"]
    assert versions[0] not in third


def test_provisioned_concurrency_and_snapstart_are_exclusive(template, translated):
    from support.template import conditions_of

    param = template["Parameters"]["PredictScalingMode"]
    assert param["Default"] == "OnDemand"
    for mode in param["AllowedValues"]:
        conditions = conditions_of(template, PredictScalingMode=mode)
        assert not (conditions["PredictWarm"] and conditions["PredictSnapStart"]), mode
        assert conditions["PredictWarm"] == (mode in ("Provisioned", "Autoscaled")), mode
    assert sorted(param["AllowedValues"]) == ["Autoscaled", "OnDemand", "Provisioned", "SnapStart"]
    props = _predict(template)
    assert props["ProvisionedConcurrencyConfig"]["Fn::If"][0] == "PredictWarm"
    assert props["SnapStart"]["Fn::If"][0] == "PredictSnapStart"
    assert props["SnapStart"]["Fn::If"][1] == {"ApplyOn": "PublishedVersions"}
    # after translation provisioned concurrency sits on the live alias, SnapStart on the function
    alias = translated["PredictFunctionAliaslive"]["Properties"]
    assert alias["ProvisionedConcurrencyConfig"]["Fn::If"][0] == "PredictWarm"
    assert translated["PredictFunction"]["Properties"]["SnapStart"]["Fn::If"][0] == "PredictSnapStart"


def _statements(role):
    for policy in role["Properties"].get("Policies", []):
        yield from flatten(policy["PolicyDocument"]["Statement"])


def test_least_privilege_iam(translated):
    for name, resource in translated.items():
        if resource["Type"] == "AWS::IAM::Role":
            for statement in _statements(resource):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert "*" not in actions, name
    predict = list(_statements(translated["PredictFunctionRole"]))
    s3 = [
        s
        for s in predict
        if any(str(a).startswith("s3:") for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))
    ]
    assert len(s3) == 1 and s3[0]["Action"] == "s3:GetObject"
    assert s3[0]["Resource"] == {"Fn::Sub": "${ModelBucket.Arn}/${RegistryPrefix}/models/${ModelName}/*"}


def test_model_bucket_is_tls_only_and_private(template):
    bucket = template["Resources"]["ModelBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    statements = template["Resources"]["ModelBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    deny = [
        s
        for s in statements
        if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
    ]
    assert deny and deny[0]["Action"] == "s3:*" and deny[0]["Principal"] == "*"


def test_docs_capture_and_limits_are_parameters(template):
    env = _predict(template)["Environment"]["Variables"]
    assert env["MODELOPS_DOCS"] == {"Ref": "ApiDocs"} and template["Parameters"]["ApiDocs"]["AllowedValues"] == [
        "on",
        "off",
    ]
    assert env["MODELOPS_CAPTURE"] == {"Ref": "OnlineCapture"}
    assert env["MODELOPS_MAX_ROWS"] == {"Ref": "PredictMaxRows"}
