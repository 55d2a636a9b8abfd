"""The template reader behind the local tools: what it resolves for a function (handler, code, layers,
environment from Globals + function, API routes) and how it fails."""

from __future__ import annotations

import pytest
from support.local_fixtures import REPO, write_echo_project

from devtools.template import LocalContext, Template, TemplateError


def _ssm(values: dict[str, str]):
    def resolve(service: str, reference: str) -> str:
        assert service == "ssm"
        return values[reference]

    return resolve


def test_predict_function_resolves_from_the_repository_template():
    pin = "/modelops/modelops-local/breast-cancer/champion"  # ModelVersion has no default: samconfig names the pin
    context = LocalContext(
        resources={"ModelBucket": "local-bucket"},
        parameters={"ModelVersion": pin},
        dynamic_ref=_ssm({pin: "20260101T000000Z-abc123"}),
    )
    spec = Template(REPO / "template.yaml", context).function("PredictFunction")
    assert spec.handler == "app.lambda_handler"
    assert spec.code_dir == REPO / "functions" / "predict"
    assert (spec.code_dir / "app.py").exists()
    assert REPO / "layers" / "modelops" in spec.layer_dirs
    assert REPO / "layers" / "mlruntime" in spec.layer_dirs
    assert spec.runtime.startswith("python3.") and spec.architecture == "arm64"
    env = spec.environment
    assert env["MODELOPS_REGISTRY"] == "s3://local-bucket/registry"
    assert env["MODELOPS_MODEL_NAME"] == "breast-cancer"
    assert env["MODELOPS_MODEL_VERSION"] == "20260101T000000Z-abc123"  # pinned through SSM, not an alias
    assert all(isinstance(v, str) for v in env.values())
    routes = {(r.method, r.path) for r in spec.routes}
    assert routes & {("POST", "/predict"), ("ANY", "/predict")}
    assert {r.api for r in spec.routes} == {"PredictApi"}


def test_globals_function_overrides_conditions_and_pseudo_parameters(tmp_path):
    path = write_echo_project(tmp_path)
    on = Template(
        path,
        LocalContext(
            parameters={"Extra": "on"},
            region="eu-west-1",
            dynamic_ref=_ssm({"/modelops/modelops-local/breast-cancer/champion": "v9"}),
        ),
    )
    spec = on.function("EchoFunction")
    assert spec.environment == {
        "MODELOPS_REGISTRY": "s3://modelops-local-modelbucket/registry",
        "MODELOPS_MODEL_NAME": "breast-cancer",
        "ECHO_EXTRA": "on",
        "MODELOPS_MODEL_VERSION": "v9",
    }
    assert spec.memory_mb == 256 and spec.timeout == 30 and spec.architecture == "x86_64"
    assert spec.python_path == [tmp_path / "functions" / "echo", REPO / "layers" / "modelops"]
    assert (
        on.resolve({"Fn::Sub": "${AWS::Region}/${AWS::AccountId}/${!Literal}"}) == "eu-west-1/123456789012/${Literal}"
    )
    assert on.resolve({"Fn::GetAtt": ["ModelBucket", "Arn"]}) == "arn:aws:s3:::modelops-local-modelbucket"
    assert on.resolve({"Fn::Join": ["-", ["a", {"Ref": "ModelName"}]]}) == "a-breast-cancer"
    off = Template(path, LocalContext(dynamic_ref=_ssm({"/modelops/modelops-local/breast-cancer/champion": "v9"})))
    assert "ECHO_EXTRA" not in off.function("EchoFunction").environment
    assert off.api_stage("EchoApi") == "v1"
    assert {(r.method, r.path) for r in off.function("EchoFunction").routes} == {
        ("GET", "/items/{id}"),
        ("ANY", "/{proxy+}"),
    }


def test_unknown_function_names_the_known_ones(tmp_path):
    with pytest.raises(TemplateError, match="no function 'Nope'.*EchoFunction"):
        Template(write_echo_project(tmp_path)).function("Nope")


def test_dynamic_reference_without_a_resolver_is_a_clear_error(tmp_path):
    with pytest.raises(TemplateError, match="resolve:ssm"):
        Template(write_echo_project(tmp_path)).function("EchoFunction")


def test_unknown_ref_and_missing_template(tmp_path):
    t = Template(write_echo_project(tmp_path))
    with pytest.raises(TemplateError, match="!Ref Missing"):
        t.resolve({"Ref": "Missing"})
    with pytest.raises(TemplateError, match="cannot read"):
        Template(tmp_path / "absent.yaml")


def test_auto_publish_alias_resources_and_ssm_typed_parameters(tmp_path):
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Parameters:\n"
        "  Pinned: {Type: 'AWS::SSM::Parameter::Value<String>', Default: /modelops/m/champion}\n"
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: fn/, Handler: app.h, Runtime: python3.12, AutoPublishAlias: live}\n"
        "  Hook:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties:\n"
        "      CodeUri: hook/\n"
        "      Handler: app.h\n"
        "      Runtime: python3.12\n"
        "      Environment:\n"
        "        Variables: {TARGET: !Ref Fn.Version, ALIAS: !Ref Fn.Alias, PINNED: !Ref Pinned,\n"
        "                    NUMBER: !GetAtt Fn.Version.Version}\n"
    )
    t = Template(tmp_path / "template.yaml", LocalContext(dynamic_ref=_ssm({"/modelops/m/champion": "v7"})))
    env = t.function("Hook").environment
    assert env["PINNED"] == "v7"  # the parameter's value is the SSM parameter's, as CloudFormation resolves it
    assert env["TARGET"] == "arn:aws:lambda:us-east-1:123456789012:function:modelops-local-fn:1"
    assert env["ALIAS"].endswith(":function:modelops-local-fn:live") and env["NUMBER"] == "1"
    # a value given for an SSM-typed parameter is the name of the SSM parameter to resolve, as in CloudFormation
    overridden = Template(
        tmp_path / "template.yaml",
        LocalContext(parameters={"Pinned": "/modelops/m/other"}, dynamic_ref=_ssm({"/modelops/m/other": "v8"})),
    )
    assert overridden.function("Hook").environment["PINNED"] == "v8"
    assert t.api_functions() == []
