"""The whole stack on one machine, like `sam local start-api` against a deployed account: local AWS
(moto server) seeded with the bucket, the champion model and its SSM pin; the template's functions
under the Runtime Interface Emulator; and the local API Gateway in front of them."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.rollout.deploy import MODEL_VERSION_PARAMETER, PinNames

from .emulator import Emulator, EmulatorPool
from .gateway import Gateway
from .localaws import LocalAws
from .proxy_event import Route, build_event
from .seed import ensure_bucket, ensure_champion
from .template import TEMPLATE, FunctionSpec, LocalContext, Template, TemplateError

REPO = TEMPLATE.parent
MODEL_CACHE = REPO / ".local" / "models"
WARMUP_PATH = "/__local_warmup"


@dataclass
class OwnModel:
    """A model of the user's to serve instead of the template's default: a version (default: the champion) of a
    model in a local registry directory, or an artifact directory (model.joblib, manifest.json, golden.json)."""

    registry: str | None = None
    name: str | None = None
    version: str | None = None
    directory: Path | None = None

    def resolve(self) -> tuple[str, str]:
        """(model name, exact version) to serve; ModelOpsError when there is none."""
        from modelops.core.errors import ModelOpsError
        from modelops.model.artifact import load_from_dir
        from modelops.registry import CHAMPION, Registry

        if self.directory is not None:
            manifest = load_from_dir(self.directory).manifest
            return manifest.name, manifest.version
        if not self.registry or not self.name:
            raise ModelOpsError("say which model: a registry directory and a model name, or a model directory")
        if self.registry.startswith("s3://"):
            raise ModelOpsError(
                "the local API serves from a local registry directory or a model directory, not from S3; "
                "download the version first (modelops models download) or pass MODEL_DIR"
            )
        if not Path(self.registry.removeprefix("file://")).is_dir():
            raise ModelOpsError(f"registry directory {self.registry} does not exist")
        registry = Registry(self.registry)
        return self.name, registry.resolve_version(self.name, self.version or CHAMPION)

    def environment(self) -> dict[str, str]:
        """What the functions get instead of the template's registry: absolute paths, as they run elsewhere."""
        if self.directory is not None:
            return {"MODELOPS_MODEL_DIR": str(Path(self.directory).resolve())}
        assert self.registry
        return {"MODELOPS_REGISTRY": str(Path(self.registry.removeprefix("file://")).resolve())}


class LocalStack:
    def __init__(
        self,
        template: str | Path = TEMPLATE,
        *,
        pool_size: int = 2,
        port: int = 0,
        log: Callable[[str], None] = print,
        request_log: Callable[[str], None] | None = None,
        model_cache: Path | None = MODEL_CACHE,
        work_dir: Path | None = None,
        own: OwnModel | None = None,
    ):
        self.template_path = Path(template)
        self.pool_size = pool_size
        self.port = port
        self.log = log
        self.request_log = request_log
        self.model_cache = model_cache
        self._own_work_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="modelops-local-"))
        self.aws = LocalAws(log=self.work_dir / "moto.log")
        self.template: Template | None = None
        self.pools: dict[str, EmulatorPool] = {}
        self.gateway: Gateway | None = None
        self.champion: str | None = None
        self.own = own
        self._own_resolved = own.resolve() if own is not None else None  # fail before anything starts

    # ---- local AWS -------------------------------------------------------------------
    def start_aws(self) -> LocalStack:
        self.log(f"local AWS (moto server) on {self.aws.endpoint}")
        self.aws.start()
        ssm = self.aws.client("ssm")

        def dynamic_ref(service: str, reference: str) -> str:
            if service != "ssm":
                raise TemplateError(f"{{{{resolve:{service}:...}}}} is not available locally")
            name = reference.rsplit(":", 1)[0] if reference.rsplit(":", 1)[-1].isdigit() else reference
            try:
                return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
            except ssm.exceptions.ParameterNotFound:
                raise TemplateError(f"SSM parameter {name} does not exist in the local AWS") from None

        self.template = Template(self.template_path, LocalContext(dynamic_ref=dynamic_ref))
        if self._own_resolved is not None:
            self.template.context.parameters["ModelName"] = self._own_resolved[0]
        self.template.context.parameters.update(self.pin_parameters(self.template))
        return self

    def pin_parameters(self, template: Template) -> dict[str, str]:
        """The stack's own champion pin for a ModelVersion parameter the template leaves without a default, as
        samconfig.toml sets it for each deployed stack."""
        declared = (template.doc.get("Parameters") or {}).get(MODEL_VERSION_PARAMETER) or {}
        if not declared or "Default" in declared:
            return {}
        model = template.parameters().get("ModelName", "breast-cancer")
        return {MODEL_VERSION_PARAMETER: PinNames(template.context.stack_name, model).champion}

    def champion_pin(self) -> str:
        """Name of the SSM parameter the template's ModelVersion resolves (this stack's champion pin when the
        template has no such parameter)."""
        t = self._template()
        params = t.parameters()
        if MODEL_VERSION_PARAMETER in params:
            return params[MODEL_VERSION_PARAMETER]
        return PinNames(t.context.stack_name, params.get("ModelName", "breast-cancer")).champion

    def seed(self) -> str:
        """Create the template's buckets and make sure the served model has a champion."""
        from modelops.registry import Registry

        t = self._template()
        s3 = self.aws.client("s3")
        for lid, res in t.resources.items():
            if res.get("Type") == "AWS::S3::Bucket":
                ensure_bucket(s3, t.resolve({"Ref": lid}))
            elif res.get("Type") == "AWS::SecretsManager::Secret":
                self.ensure_secret(t.resolve({"Ref": lid}))
        params = t.parameters()
        model_name = params.get("ModelName", "breast-cancer")
        if self._own_resolved is not None:  # the user's model: only its pin, in the local SSM
            self.champion = self._own_resolved[1]
            self.aws.client("ssm").put_parameter(
                Name=self.champion_pin(), Value=self.champion, Type="String", Overwrite=True
            )
            self.log(f"serving {model_name} {self.champion} from {self.own_location()}")
            return self.champion
        registry = Registry(self.registry_uri(), s3=s3)
        cache = self.model_cache / model_name if self.model_cache else None
        self.champion = ensure_champion(
            registry, self.aws.client("ssm"), model_name, self.champion_pin(), cache, log=self.log
        )
        return self.champion

    def ensure_secret(self, name: str) -> None:
        """A template secret (GenerateSecretString) in the local AWS: a random value, as CloudFormation makes one."""
        sm = self.aws.client("secretsmanager")
        with contextlib.suppress(sm.exceptions.ResourceExistsException):
            sm.create_secret(Name=name, SecretString=secrets.token_urlsafe(48))

    def own_location(self) -> str:
        assert self.own is not None
        return str(self.own.directory or self.own.registry)

    def registry_uri(self) -> str:
        if self.own is not None and self.own.registry:
            return self.own.environment()["MODELOPS_REGISTRY"]
        t = self._template()
        variables = (t._globals().get("Environment") or {}).get("Variables") or {}
        if "MODELOPS_REGISTRY" in variables:
            return str(t.resolve(variables["MODELOPS_REGISTRY"]))
        bucket = t.resolve({"Ref": "ModelBucket"})
        return f"s3://{bucket}/{t.parameters().get('RegistryPrefix', 'registry')}"

    # ---- functions -------------------------------------------------------------------
    def function(self, logical_id: str) -> FunctionSpec:
        return self._serving(self._template().function(logical_id))

    def _serving(self, spec: FunctionSpec) -> FunctionSpec:
        """A function as it runs here: with the user's model in place of the template's registry."""
        if self.own is not None and "MODELOPS_REGISTRY" in spec.environment:
            spec.environment.update(self.own.environment())
        return spec

    def emulator(self, logical_id: str) -> Emulator:
        """One started emulator for logical_id (caller stops it)."""
        return Emulator(
            self.function(logical_id), self.aws.env(), log=self.work_dir / f"{logical_id}-single.log"
        ).start()

    def start_api(self, api: str | None = None) -> Gateway:
        """Serve every API route of the template (or of one RestApi) on 127.0.0.1:port."""
        t = self._template()
        specs = [self._serving(spec) for spec in t.api_functions(api)]
        if not specs:
            raise TemplateError(
                f"{self.template_path.name} has no function with an Api event" + (f" on {api}" if api else "")
            )
        routes = [Route.build(r, s.logical_id) for s in specs for r in s.routes if api is None or r.api == api]
        stage = t.api_stage(routes[0].route.api)
        for spec in specs:
            self.log(f"starting {self.pool_size} emulator(s) for {spec.logical_id} ({spec.handler})")
            warm = build_event(
                method="GET",
                path=WARMUP_PATH,
                query="",
                headers=[],
                body=b"",
                route=Route.build(spec.routes[0], spec.logical_id),
                path_params={},
                stage=stage,
            )
            pool = EmulatorPool(spec, self.aws.env(), size=self.pool_size, log_dir=self.work_dir)
            self.pools[spec.logical_id] = pool
            pool.start(warmup=json.dumps(warm).encode())
        self.gateway = Gateway(routes, self.pools, stage=stage, port=self.port, log=self.request_log).start()
        return self.gateway

    def start(self, api: str | None = None) -> LocalStack:
        self.start_aws()
        self.seed()
        self.start_api(api)
        return self

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        for pool in self.pools.values():
            pool.stop()
        self.pools.clear()
        self.aws.stop()
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)  # emulator and moto logs

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _template(self) -> Template:
        if self.template is None:
            raise RuntimeError("start_aws() first: the template resolves against the local AWS")
        return self.template
