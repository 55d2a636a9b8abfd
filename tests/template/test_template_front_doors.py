"""template.yaml's ApiType: rest (REST APIs with API keys), http (HTTP APIs, IAM or JWT) or url (function URLs,
IAM). Checked on samtranslator's output with the conditions decided per ApiType (template_support.decide): each
front door's resources exist only with it and invoke the live alias, the feedback front door is a separate
IAM-only one, the rollback alarms exist for each, and the outputs are the right URLs."""

from __future__ import annotations

import pytest
from support.template import NO_VALUE, conditions_of, decide, sam_translate

from devtools.cfn_eval import Evaluator

API_TYPES = ("rest", "http", "url")
NEW_VERSION_ALARMS = [
    "PredictNewVersionErrorsAlarm",
    "PredictNewVersionServerErrorsAlarm",
    "PredictNewVersionLatencyAlarm",
    "PredictNewVersionScoreShiftAlarm",
]
JWT = {"ApiType": "http", "JwtIssuer": "https://issuer.example.com/", "JwtAudience": "client-a,client-b"}


@pytest.fixture(scope="module")
def translated(template):
    return sam_translate(template)


def deployed(translated: dict, **parameters: str) -> dict:
    """The resources and outputs CloudFormation would create for these parameters, Fn::If decided."""
    conditions = conditions_of(translated, **parameters)

    def exists(entry: dict) -> bool:
        return "Condition" not in entry or conditions[entry["Condition"]]

    return {
        "Resources": {k: decide(v, conditions) for k, v in translated["Resources"].items() if exists(v)},
        "Outputs": {k: decide(v, conditions) for k, v in translated["Outputs"].items() if exists(v)},
    }


def of_type(resources: dict, prefix: str) -> dict:
    return {k: v for k, v in resources.items() if v["Type"].startswith(prefix)}


def disabled_endpoint(resource: dict) -> bool:
    (server,) = resource["Properties"]["Body"]["servers"]
    return server["x-amazon-apigateway-endpoint-configuration"]["disableExecuteApiEndpoint"]


def test_api_type_parameter_defaults_to_the_rest_api(template):
    p = template["Parameters"]["ApiType"]
    assert p["Default"] == "rest" and p["AllowedValues"] == list(API_TYPES)
    rule = template["Rules"]["JwtNeedsAudience"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtAudience"}, ""]}]}


@pytest.mark.parametrize("api_type", API_TYPES)
def test_each_front_door_exists_only_with_its_api_type(translated, api_type):
    r = deployed(translated, ApiType=api_type)["Resources"]
    http, urls = of_type(r, "AWS::ApiGatewayV2::"), of_type(r, "AWS::Lambda::Url")
    # the REST APIs stay (SAM events cannot be conditional) but are reachable only with ApiType rest
    for api in ("PredictApi", "FeedbackApi"):
        assert disabled_endpoint(r[api]) is (api_type != "rest"), api
    if api_type == "http":
        assert {v["Type"] for v in http.values()} == {
            "AWS::ApiGatewayV2::Api",
            "AWS::ApiGatewayV2::Integration",
            "AWS::ApiGatewayV2::Route",
            "AWS::ApiGatewayV2::Stage",
        }
        assert {k for k, v in http.items() if v["Type"] == "AWS::ApiGatewayV2::Api"} == {
            "PredictHttpApi",
            "FeedbackHttpApi",
        }
    else:
        assert http == {}
    assert set(urls) == ({"PredictFunctionUrl", "FeedbackFunctionUrl"} if api_type == "url" else set())
    assert ("PredictHttpPermission" in r) is (api_type == "http")


def test_the_jwt_authorizer_exists_only_for_http_with_an_issuer(translated):
    assert "PredictHttpJwtAuthorizer" not in deployed(translated, ApiType="http")["Resources"]
    assert (
        "PredictHttpJwtAuthorizer" not in deployed(translated, ApiType="url", JwtIssuer=JWT["JwtIssuer"])["Resources"]
    )
    r = deployed(translated, **JWT)["Resources"]
    authorizer = r["PredictHttpJwtAuthorizer"]["Properties"]
    assert authorizer["AuthorizerType"] == "JWT"
    assert authorizer["IdentitySource"] == ["$request.header.Authorization"]
    assert authorizer["JwtConfiguration"]["Issuer"] == {"Ref": "JwtIssuer"}
    assert authorizer["JwtConfiguration"]["Audience"] == {"Fn::Split": [",", {"Ref": "JwtAudience"}]}


def routes_of(resources: dict, api: str) -> dict[str, dict]:
    return {
        v["Properties"]["RouteKey"]: v["Properties"]
        for v in resources.values()
        if v["Type"] == "AWS::ApiGatewayV2::Route" and v["Properties"]["ApiId"] == {"Ref": api}
    }


@pytest.mark.parametrize("parameters", [{"ApiType": "http"}, JWT], ids=["iam", "jwt"])
def test_http_api_routes_and_their_auth(translated, parameters):
    r = deployed(translated, **parameters)["Resources"]
    jwt = "JwtIssuer" in parameters
    routes = routes_of(r, "PredictHttpApi")
    assert set(routes) == {
        "ANY /predict",
        "ANY /model",
        "ANY /{proxy+}",
        "ANY /health",
        "ANY /openapi.json",
        "ANY /docs",
    }
    for key, route in routes.items():
        assert route["Target"] == {"Fn::Sub": "integrations/${PredictHttpIntegration}"}, key
        if key in ("ANY /health", "ANY /openapi.json", "ANY /docs"):
            assert route["AuthorizationType"] == "NONE" and "AuthorizerId" not in route, key
        elif jwt:
            assert route["AuthorizationType"] == "JWT", key
            assert route["AuthorizerId"] == {"Ref": "PredictHttpJwtAuthorizer"}, key
        else:
            assert route["AuthorizationType"] == "AWS_IAM" and "AuthorizerId" not in route, key
    # labels: only on the feedback API, IAM even when the predict routes take JWTs
    assert routes_of(r, "FeedbackHttpApi") == {
        "POST /feedback": {
            "ApiId": {"Ref": "FeedbackHttpApi"},
            "RouteKey": "POST /feedback",
            "Target": {"Fn::Sub": "integrations/${FeedbackHttpIntegration}"},
            "AuthorizationType": "AWS_IAM",
        }
    }
    assert not any("feedback" in key for key in routes)


def test_http_api_invokes_the_live_alias(translated):
    r = deployed(translated, ApiType="http")["Resources"]
    assert r["PredictFunctionAliaslive"]["Type"] == "AWS::Lambda::Alias"
    assert r["PredictFunctionAliaslive"]["Properties"]["Name"] == "live"
    integration = r["PredictHttpIntegration"]["Properties"]
    assert integration["IntegrationUri"] == {"Ref": "PredictFunctionAliaslive"}  # the alias ARN
    assert integration["IntegrationType"] == "AWS_PROXY" and integration["PayloadFormatVersion"] == "2.0"
    permission = r["PredictHttpPermission"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "PredictFunctionAliaslive"}
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceArn"]["Fn::Sub"].endswith(":${PredictHttpApi}/${ApiStageName}/*")
    feedback = r["FeedbackHttpPermission"]["Properties"]
    assert feedback["SourceArn"]["Fn::Sub"].endswith(":${FeedbackHttpApi}/${ApiStageName}/POST/feedback")
    assert r["FeedbackHttpIntegration"]["Properties"]["IntegrationUri"] == {"Fn::GetAtt": ["FeedbackFunction", "Arn"]}
    # the stage throttles: the API's limits for all callers, the open routes' lower ones per route
    stage = r["PredictHttpStage"]["Properties"]
    assert stage["StageName"] == {"Ref": "ApiStageName"} and stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert set(stage["RouteSettings"]) == {"ANY /health", "ANY /openapi.json", "ANY /docs"}
    for setting in stage["RouteSettings"].values():
        assert setting["ThrottlingRateLimit"] == {"Ref": "OpenRouteThrottleRateLimit"}
    assert r["FeedbackHttpStage"]["Properties"]["DefaultRouteSettings"]["ThrottlingRateLimit"] == {
        "Ref": "FeedbackThrottleRateLimit"
    }


def test_function_urls_use_iam_and_the_predict_one_the_live_alias(translated):
    r = deployed(translated, ApiType="url")["Resources"]
    url = r["PredictFunctionUrl"]
    assert url["Properties"]["TargetFunctionArn"] == {"Ref": "PredictFunction"}
    assert url["Properties"]["Qualifier"] == "live" and url["DependsOn"] == "PredictFunctionAliaslive"
    assert url["Properties"]["AuthType"] == "AWS_IAM" and "Cors" not in url["Properties"]
    feedback = r["FeedbackFunctionUrl"]["Properties"]
    assert feedback["TargetFunctionArn"] == {"Ref": "FeedbackFunction"} and feedback["AuthType"] == "AWS_IAM"
    # no resource policy opens either URL: only this account's principals with an IAM grant get in
    assert not [
        k for k, v in r.items() if v["Type"] == "AWS::Lambda::Permission" and "FunctionUrlAuthType" in v["Properties"]
    ]


@pytest.mark.parametrize("api_type", ["http", "url"])
def test_cors_follows_cors_allow_origin_on_each_front_door(translated, api_type):
    name, key = {"http": ("PredictHttpApi", "CorsConfiguration"), "url": ("PredictFunctionUrl", "Cors")}[api_type]
    assert key not in deployed(translated, ApiType=api_type)["Resources"][name]["Properties"]
    r = deployed(translated, ApiType=api_type, CorsAllowOrigin="https://app.example.com")["Resources"]
    cors = r[name]["Properties"][key]
    assert cors["AllowOrigins"] == [{"Ref": "CorsAllowOrigin"}] and "authorization" in cors["AllowHeaders"]


@pytest.mark.parametrize("api_type", API_TYPES)
def test_the_canary_and_its_rollback_alarms_work_with_every_front_door(translated, api_type):
    r = deployed(translated, ApiType=api_type)["Resources"]
    group = r["PredictFunctionDeploymentGroup"]["Properties"]
    expected = NEW_VERSION_ALARMS + (["PredictNewVersionUrlServerErrorsAlarm"] if api_type == "url" else [])
    assert [a["Name"] for a in group["AlarmConfiguration"]["Alarms"]] == [{"Ref": a} for a in expected]
    assert all(name in r for name in expected)
    assert ("PredictNewVersionUrlServerErrorsAlarm" in r) is (api_type == "url")
    update = r["PredictFunctionAliaslive"]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    assert update["BeforeAllowTrafficHook"] == {"Ref": "PreTrafficHookFunction"}


def test_the_function_url_alarm_watches_the_new_version_behind_the_alias(translated):
    r = deployed(translated, ApiType="url")["Resources"]
    alarm = r["PredictNewVersionUrlServerErrorsAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", "Url5xxCount", "Sum")
    # Lambda's function URL metrics: FunctionName, Resource (function:alias) and ExecutedVersion dimensions
    assert alarm["Dimensions"] == r["PredictNewVersionErrorsAlarm"]["Properties"]["Dimensions"]
    dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dims["Resource"] == {"Fn::Sub": "${PredictFunction}:live"}
    assert dims["ExecutedVersion"]["Fn::GetAtt"][1] == "Version"
    assert alarm["Threshold"] == {"Ref": "RollbackErrorCount"}


def outputs_of(translated: dict, **parameters: str) -> dict[str, str]:
    """The stack's outputs, as CloudFormation would show them, with stand-ins for physical ids."""
    out = deployed(translated, **parameters)
    urls = {"PredictFunctionUrl": "https://predicturlid.lambda-url.us-east-1.on.aws/"}
    urls["FeedbackFunctionUrl"] = "https://feedbackurlid.lambda-url.us-east-1.on.aws/"

    def getatt(lid: str, attribute: str) -> str:
        return urls[lid] if attribute == "FunctionUrl" else f"{lid}.{attribute}"

    values = Evaluator.parameter_values(translated, {"ModelVersion": "1", **parameters})
    pseudo = {"AWS::Region": "us-east-1", "AWS::URLSuffix": "amazonaws.com", "AWS::Partition": "aws"}
    pseudo |= {"AWS::StackName": "s", "AWS::AccountId": "123456789012"}
    evaluator = Evaluator(translated, values, pseudo, ref=lambda lid: lid.lower(), getatt=getatt)
    resolved = {k: evaluator.resolve(v["Value"]) for k, v in out["Outputs"].items()}
    assert NO_VALUE not in resolved.values()
    return resolved


def test_outputs_per_front_door(translated):
    rest = outputs_of(translated)
    assert rest["PredictApiUrl"] == "https://predictapi.execute-api.us-east-1.amazonaws.com/v1"
    assert rest["FeedbackUrl"] == "https://feedbackapi.execute-api.us-east-1.amazonaws.com/v1/feedback"
    assert rest["PredictApiAuth"] == "api-key"
    assert {"PredictApiKeyId", "FeedbackApiKeyId"} <= set(rest)

    http = outputs_of(translated, ApiType="http")
    assert http["PredictApiUrl"] == "https://predicthttpapi.execute-api.us-east-1.amazonaws.com/v1"
    assert http["FeedbackUrl"] == "https://feedbackhttpapi.execute-api.us-east-1.amazonaws.com/v1/feedback"
    assert http["PredictApiAuth"] == "iam" and outputs_of(translated, **JWT)["PredictApiAuth"] == "jwt"

    url = outputs_of(translated, ApiType="url")
    assert url["PredictApiUrl"] == "https://predicturlid.lambda-url.us-east-1.on.aws"  # no trailing slash
    assert url["FeedbackUrl"] == "https://feedbackurlid.lambda-url.us-east-1.on.aws/feedback"
    assert url["PredictApiAuth"] == "iam"
    for outputs in (http, url):  # API keys exist only on the REST API
        assert not {"PredictApiKeyId", "FeedbackApiKeyId"} & set(outputs)
        assert outputs["PredictFunctionLiveAlias"] == rest["PredictFunctionLiveAlias"]


@pytest.mark.parametrize(
    ("parameters", "auth"), [({}, "api-key"), ({"ApiType": "http"}, "iam"), (JWT, "jwt"), ({"ApiType": "url"}, "iam")]
)
def test_the_predict_function_is_told_its_front_door(translated, parameters, auth):
    env = deployed(translated, **parameters)["Resources"]["PredictFunction"]["Properties"]["Environment"]["Variables"]
    assert env["MODELOPS_API_TYPE"] == {"Ref": "ApiType"} and env["MODELOPS_API_AUTH"] == auth
