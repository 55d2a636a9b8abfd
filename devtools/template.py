"""Read template.yaml the way `sam local` does: a function's handler, code and layer directories,
environment (Globals merged with the function's own) and API routes, with intrinsics resolved
against local values (parameter defaults, a local bucket name, SSM dynamic references)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "template.yaml"
FUNCTION_TYPES = {"AWS::Serverless::Function", "AWS::Lambda::Function"}
LAYER_TYPES = {"AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"}
NO_VALUE = object()
SSM_PARAMETER_TYPE = "AWS::SSM::Parameter::Value<"
DYNAMIC_REF = re.compile(r"\{\{resolve:(ssm|ssm-secure|secretsmanager):([^}]+)\}\}")
SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(Exception):
    """The template cannot be read or does not describe what was asked for."""


@dataclass
class ApiRoute:
    api: str | None  # logical id of the RestApi, None for the implicit API
    path: str
    method: str  # upper-case, or ANY


@dataclass
class FunctionSpec:
    logical_id: str
    handler: str
    code_dir: Path
    layer_dirs: list[Path]
    environment: dict[str, str]
    runtime: str
    architecture: str
    timeout: int
    memory_mb: int
    routes: list[ApiRoute] = field(default_factory=list)

    @property
    def python_path(self) -> list[Path]:
        """Code first, then each layer as Lambda mounts it (a layer's python/ folder when it has one)."""
        paths = [self.code_dir]
        for layer in self.layer_dirs:
            paths.append(layer / "python" if (layer / "python").is_dir() else layer)
        return paths


@dataclass
class LocalContext:
    """Values that stand in for the cloud when the template is resolved locally."""

    parameters: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)  # logical id -> physical name for Ref
    region: str = "us-east-1"
    account_id: str = "123456789012"
    stack_name: str = "modelops-local"
    dynamic_ref: Callable[[str, str], str] | None = None  # (service, reference) -> value


class Template:
    def __init__(self, path: str | Path = TEMPLATE, context: LocalContext | None = None):
        self.path = Path(path)
        try:
            self.doc: dict[str, Any] = yaml_parse(self.path.read_text()) or {}
        except OSError as exc:
            raise TemplateError(f"cannot read {self.path}: {exc.strerror}") from None
        self.base = self.path.parent
        self.context = context or LocalContext()
        self.resources: dict[str, dict[str, Any]] = self.doc.get("Resources") or {}

    # ---- public ------------------------------------------------------------------------
    def parameters(self) -> dict[str, str]:
        values = {name: str(p["Default"]) for name, p in (self.doc.get("Parameters") or {}).items() if "Default" in p}
        values.update(self.context.parameters)
        return values

    def function_ids(self) -> list[str]:
        return [lid for lid, r in self.resources.items() if r.get("Type") in FUNCTION_TYPES]

    def function(self, logical_id: str) -> FunctionSpec:
        res = self.resources.get(logical_id)
        if res is None or res.get("Type") not in FUNCTION_TYPES:
            known = ", ".join(self.function_ids()) or "none"
            raise TemplateError(f"{self.path.name} has no function '{logical_id}' (functions: {known})")
        props = {**self._globals(), **(res.get("Properties") or {})}
        env = dict((self._globals().get("Environment") or {}).get("Variables") or {})
        env.update(((res.get("Properties") or {}).get("Environment") or {}).get("Variables") or {})
        resolved_env = {}
        for key, value in env.items():
            v = self.resolve(value)
            if v is not NO_VALUE:
                resolved_env[key] = _text(v)
        code = self.resolve(props.get("CodeUri", "."))
        if not isinstance(code, str):
            raise TemplateError(f"{logical_id}: CodeUri must be a local directory for local runs")
        archs = self.resolve(props.get("Architectures") or ["x86_64"])
        return FunctionSpec(
            logical_id=logical_id,
            handler=str(self.resolve(props.get("Handler", ""))),
            code_dir=(self.base / code).resolve(),
            layer_dirs=[self._layer_dir(logical_id, ref) for ref in props.get("Layers") or []],
            environment=resolved_env,
            runtime=str(self.resolve(props.get("Runtime", ""))),
            architecture=str(archs[0]),
            timeout=int(self.resolve(props.get("Timeout", 3))),
            memory_mb=int(self.resolve(props.get("MemorySize", 128))),
            routes=self._routes(res),
        )

    def api_functions(self, api: str | None = None) -> list[FunctionSpec]:
        """Functions with API events, optionally only those attached to one RestApi."""
        served = [
            lid
            for lid in self.function_ids()
            if any(api is None or r.api == api for r in self._routes(self.resources[lid]))
        ]
        return [self.function(lid) for lid in served]

    def api_stage(self, api: str | None) -> str:
        props = (self.resources.get(api or "", {}) or {}).get("Properties") or {}
        stage = self.resolve(props.get("StageName", "Prod"))
        return str(stage) if stage is not NO_VALUE else "Prod"

    # ---- intrinsics --------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._dynamic(value)
        if isinstance(value, list):
            return [v for v in (self.resolve(x) for x in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            fn = INTRINSICS.get(key)
            if fn is not None:
                return fn(self, arg)
        out = {}
        for k, v in value.items():
            r = self.resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.context.region,
            "AWS::AccountId": self.context.account_id,
            "AWS::StackName": self.context.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{self.context.region}:{self.context.account_id}:stack/"
            f"{self.context.stack_name}/local",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        params = self.parameters()
        if name in params:
            declared = (self.doc.get("Parameters") or {}).get(name) or {}
            if str(declared.get("Type", "")).startswith(SSM_PARAMETER_TYPE):
                # as in CloudFormation, the value given (or defaulted) is the SSM parameter's name
                return self._dynamic(f"{{{{resolve:ssm:{params[name]}}}}}")
            return params[name]
        if name in self.context.resources:
            return self.context.resources[name]
        if name in self.resources:
            return f"{self.context.stack_name}-{name}".lower()
        base, _, generated = name.partition(".")
        if generated in ("Version", "Alias") and self.resources.get(base, {}).get("Type") in FUNCTION_TYPES:
            # resources SAM generates for AutoPublishAlias: a published version and the alias
            arn = f"arn:aws:lambda:{self.context.region}:{self.context.account_id}:function:{self._ref(base)}"
            return f"{arn}:1" if generated == "Version" else f"{arn}:live"
        # resources SAM generates for a DeploymentPreference: the CodeDeploy application and a group per function
        deployed = name.removesuffix("DeploymentGroup")
        properties = self.resources.get(deployed, {}).get("Properties") or {}
        if name == "ServerlessDeploymentApplication" or (deployed != name and "DeploymentPreference" in properties):
            return f"{self.context.stack_name}-{name}".lower()
        raise TemplateError(f"!Ref {name}: no such parameter or resource")

    def _get_att(self, arg: Any) -> str:
        if isinstance(arg, str):
            head, _, rest = arg.partition(".")
            generated = rest.split(".", 1)
            arg = [f"{head}.{generated[0]}", generated[1]] if len(generated) == 2 else [head, rest]
        lid, attr = arg[0], self.resolve(arg[1])
        if str(attr).startswith(("Version.", "Alias.")):  # the YAML loader split `Fn.Version.Version` at the first dot
            generated, attr = str(attr).split(".", 1)
            lid = f"{lid}.{generated}"
        if lid.endswith((".Version", ".Alias")):  # SAM's AutoPublishAlias resources
            arn = self._ref(lid)
            return arn.rsplit(":", 1)[1] if attr in ("Version", "Name") else arn
        if lid not in self.resources:
            raise TemplateError(f"!GetAtt {lid}.{attr}: no such resource")
        physical = self._ref(lid)
        rtype = self.resources[lid].get("Type", "")
        if attr == "Arn":
            service = rtype.split("::")[1].lower() if "::" in rtype else "unknown"
            if service == "s3":
                return f"arn:aws:s3:::{physical}"
            return f"arn:aws:{service}:{self.context.region}:{self.context.account_id}:{physical}"
        return f"{physical}.{attr}"

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] or {})
        local = {k: self.resolve(v) for k, v in variables.items()}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return _text(local[name])
            if "." in name and not name.startswith("AWS::"):
                return self._get_att(name)
            return _text(self._ref(name))

        return self._dynamic(SUB_VAR.sub(one, text).replace("${!", "${"))

    def _dynamic(self, text: str) -> str:
        if "{{resolve:" not in text:
            return text
        if self.context.dynamic_ref is None:
            raise TemplateError(f"'{text}' needs a dynamic reference resolver (e.g. local SSM)")
        resolver = self.context.dynamic_ref
        return DYNAMIC_REF.sub(lambda m: resolver(m.group(1), m.group(2)), text)

    def _condition(self, name: str) -> bool:
        conditions = self.doc.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"condition '{name}' is not defined")
        return bool(self.resolve(conditions[name]))

    # ---- helpers -----------------------------------------------------------------------
    def _globals(self) -> dict[str, Any]:
        return dict((self.doc.get("Globals") or {}).get("Function") or {})

    def _layer_dir(self, function_id: str, ref: Any) -> Path:
        lid = ref.get("Ref") if isinstance(ref, dict) else None
        layer = self.resources.get(lid or "")
        if layer is None or layer.get("Type") not in LAYER_TYPES:
            raise TemplateError(f"{function_id}: layer {ref!r} is not a layer defined in this template")
        props = layer.get("Properties") or {}
        content = self.resolve(props.get("ContentUri") or props.get("Content"))
        if not isinstance(content, str):
            raise TemplateError(f"{lid}: ContentUri must be a local directory for local runs")
        return (self.base / content).resolve()

    def _routes(self, res: dict[str, Any]) -> list[ApiRoute]:
        routes = []
        for event in ((res.get("Properties") or {}).get("Events") or {}).values():
            if event.get("Type") != "Api":
                continue
            props = event.get("Properties") or {}
            api_ref = props.get("RestApiId")
            api = api_ref.get("Ref") if isinstance(api_ref, dict) else api_ref
            routes.append(
                ApiRoute(
                    api=api,
                    path=str(self.resolve(props["Path"])),
                    method=str(self.resolve(props.get("Method", "ANY"))).upper(),
                )
            )
        return routes


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def _if(t: Template, arg: list[Any]) -> Any:
    return t.resolve(arg[1] if t._condition(arg[0]) else arg[2])


INTRINSICS: dict[str, Callable[[Template, Any], Any]] = {
    "Ref": lambda t, a: t._ref(a),
    "Fn::Sub": lambda t, a: t._sub(a),
    "Fn::GetAtt": lambda t, a: t._get_att(a),
    "Fn::Join": lambda t, a: _text(t.resolve(a[0])).join(_text(x) for x in t.resolve(a[1])),
    "Fn::Select": lambda t, a: t.resolve(a[1])[int(t.resolve(a[0]))],
    "Fn::Split": lambda t, a: _text(t.resolve(a[1])).split(t.resolve(a[0])),
    "Fn::If": _if,
    "Fn::Equals": lambda t, a: _text(t.resolve(a[0])) == _text(t.resolve(a[1])),
    "Fn::Not": lambda t, a: not t.resolve(a[0]),
    "Fn::And": lambda t, a: all(t.resolve(x) for x in a),
    "Fn::Or": lambda t, a: any(t.resolve(x) for x in a),
    "Condition": lambda t, a: t._condition(a),
    "Fn::FindInMap": lambda t, a: t.doc["Mappings"][t.resolve(a[0])][t.resolve(a[1])][t.resolve(a[2])],
}
