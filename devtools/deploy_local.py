"""`make deploy-local`: deploy the built template as two stacks (samconfig.toml's [default] and [prod]) into one
LocalStack account, read every stack back and compare it with what the template and its parameters mean.

    python -m devtools.deploy_local [--localstack-python .venv-localstack/bin/python] [--smoke]

Steps, each timed: start LocalStack (devtools.localstack_launch: loopback only, patched, no network);
`sam package` the build output into an artifact bucket; for each environment create its SSM champion pin and
run `modelops preflight` (README "Deploy to AWS" step 2), run the SAM transform with the environment's parameters (samtranslator,
the version sam and CloudFormation use), apply the LocalStack changes of devtools.localstack_patches, and
create the stack; then the checks of devtools.stack_checks on each stack and across the two; with --smoke,
tests/integration against each stack, and a rollout of a new model version to the dev stack as the retrain loop
makes one (a change set on the stack's own template). LocalStack is stopped on every path. Exit status 1 if a stack failed,
a check failed, the smoke tests failed, or LocalStack tried to reach the network.

With --lambda-python (make deploy-local-exec) LocalStack runs the function code under the Runtime Interface
Emulator (devtools.localstack_rie_executor; the build must be for this host's architecture): a model version is
rolled into every stack before the smoke tests, which then also run the tests that reach the functions.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import stack_checks
from .cfn_eval import Evaluator
from .localstack_launch import REGION, LocalStack, rie_executor_env
from .localstack_patches import LOCALSTACK_ROLLOUT_CHANGES, Dropped, adapt_template

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "000000000000"  # LocalStack's default account
ARTIFACT_BUCKET = "modelops-deploy-artifacts"
ENVIRONMENTS = ("default", "prod")
TIMINGS: list[tuple[str, float]] = []
# Settings that would point boto3 or sam at a real account or profile instead of LocalStack.
AMBIENT_AWS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


@contextmanager
def timed(what: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        seconds = time.monotonic() - start
        TIMINGS.append((what, seconds))
        print(f"[{seconds:6.1f} s] {what}", flush=True)


def environment(name: str, samconfig: Path = ROOT / "samconfig.toml") -> dict[str, Any]:
    """Stack name, parameter overrides, tags and capabilities of one samconfig.toml environment."""
    cfg = tomllib.loads(samconfig.read_text())[name]
    deploy = cfg["deploy"]["parameters"]

    def pairs(text: str) -> dict[str, str]:
        return dict(item.split("=", 1) for item in shlex.split(text or ""))

    return {
        "env": name,
        "stack": cfg["global"]["parameters"]["stack_name"],
        "overrides": pairs(deploy.get("parameter_overrides", "")),
        "tags": pairs(deploy.get("tags", "")),
        "capabilities": deploy.get("capabilities", "CAPABILITY_IAM").split(),
    }


def translate(packaged: dict[str, Any], stack: str, overrides: dict[str, str]) -> dict[str, Any]:
    """The SAM transform as CloudFormation runs it for one stack (parameter values as the stack passes them)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    session = boto3.session.Session(region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    values = {
        **overrides,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::StackName": stack,
    }
    return dict(Translator({}, Parser(), boto_session=session).translate(json.loads(json.dumps(packaged)), values))


def ssm_parameter_names(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    """Parameter -> SSM parameter name, for every AWS::SSM::Parameter::Value<...> parameter."""
    out = {}
    for name, spec in template.get("Parameters", {}).items():
        if str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
            out[name] = overrides.get(name, spec.get("Default", ""))
    return out


def deploy(ls: LocalStack, env: dict[str, Any], template: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    cfn, s3 = ls.client("cloudformation"), ls.client("s3")
    key = f"templates/{env['stack']}.json"
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=json.dumps(template).encode())
    cfn.create_stack(
        StackName=env["stack"],
        TemplateURL=f"{ls.endpoint}/{ARTIFACT_BUCKET}/{key}",
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in env["overrides"].items()],
        Capabilities=env["capabilities"],
        Tags=[{"Key": k, "Value": v} for k, v in env["tags"].items()],
    )
    deadline = time.monotonic() + timeout
    while True:
        stack = cfn.describe_stacks(StackName=env["stack"])["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return dict(stack)
        time.sleep(1)


def failure_events(ls: LocalStack, stack: str) -> list[str]:
    events = ls.client("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return sorted(
        {
            f"{e['LogicalResourceId']} ({e.get('ResourceType')}): {e.get('ResourceStatusReason')}"
            for e in events
            if e["ResourceStatus"].endswith("FAILED") and e["LogicalResourceId"] != stack
        }
    )


def deployed_stack(
    ls: LocalStack, env: dict[str, Any], template: dict[str, Any], original: dict[str, Any], dropped: list[Dropped]
) -> stack_checks.DeployedStack:
    cfn = ls.client("cloudformation")
    resources = cfn.describe_stack_resources(StackName=env["stack"])["StackResources"]
    parameters = Evaluator.parameter_values(template, env["overrides"])
    ssm_names = ssm_parameter_names(template, env["overrides"])
    for name, ssm_name in ssm_names.items():
        parameters[name] = ls.client("ssm").get_parameter(Name=ssm_name)["Parameter"]["Value"]
    return stack_checks.DeployedStack(
        name=env["stack"],
        template=template,
        parameters=parameters,
        pin_name=ssm_names[stack_checks.PIN_PARAMETER],
        physical={r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if r.get("PhysicalResourceId")},
        statuses={r["LogicalResourceId"]: r["ResourceStatus"] for r in resources},
        region=REGION,
        account=ACCOUNT,
        dropped=dropped,
        original=original,
        stack_id=cfn.describe_stacks(StackName=env["stack"])["Stacks"][0]["StackId"],
    )


def rollout(ls: LocalStack, client_env: dict[str, str], stack: str, timeout: float = 300) -> list[str]:
    """A rollout as the retrain loop makes one, against LocalStack's CloudFormation: a model is trained into the
    stack's registry, and modelops.rollout.deploy's StackRolloutDeployer creates a change set on the stack's own template
    that points ModelVersion at the version's immutable pin, checks its changes and executes it. Returns what went
    wrong."""
    cfn = ls.client("cloudformation")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    cli = [str(Path(sys.executable).parent / "modelops")]
    trained = subprocess.run(
        [*cli, "--json", "--registry", outputs["RegistryUri"], "train", "--alias", "champion"],
        cwd=ROOT, env=client_env, capture_output=True, text=True,
    )  # fmt: skip
    if trained.returncode != 0:
        return [f"rollout {stack}: modelops train: {trained.stderr.strip()[-300:]}"]
    version = json.loads(trained.stdout)["version"]
    from modelops.core.errors import ModelOpsError
    from modelops.rollout.deploy import LambdaVersions, PinNames, SsmPins, StackRolloutDeployer

    model = {
        p["ParameterKey"]: p["ParameterValue"] for p in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Parameters"]
    }
    deployer = StackRolloutDeployer(
        cfn,
        SsmPins(ls.client("ssm"), PinNames(stack, model["ModelName"])),
        stack,
        LambdaVersions(ls.client("lambda"), outputs["PredictFunctionName"]),
        sleep=time.sleep,
        allowed_changes=LOCALSTACK_ROLLOUT_CHANGES,
    )
    try:
        started = deployer.start(version, f"deploy-local rollout of {version}")
    except ModelOpsError as exc:
        return [f"rollout {stack}: {exc}"]
    print(
        f"rollout {stack}: change set {started.deployment_id} executed (from Lambda version {started.previous_version})"
    )
    deadline = time.monotonic() + timeout
    while (described := cfn.describe_stacks(StackName=stack)["Stacks"][0])["StackStatus"].endswith("_IN_PROGRESS"):
        if time.monotonic() > deadline:
            return [f"rollout {stack}: the stack update did not finish within {timeout:.0f} s"]
        time.sleep(1)
    problems = []
    if described["StackStatus"] != "UPDATE_COMPLETE":
        problems.append(f"rollout {stack}: stack {described['StackStatus']} {described.get('StackStatusReason', '')}")
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in described["Parameters"]}
    pin = f"/modelops/{stack}/{parameters.get('ModelName')}/versions/{version}"
    if parameters.get(stack_checks.PIN_PARAMETER) != pin:
        problems.append(f"rollout {stack}: ModelVersion is {parameters.get(stack_checks.PIN_PARAMETER)}, not {pin}")
    lam = ls.client("lambda")
    live = lam.get_alias(FunctionName=outputs["PredictFunctionName"], Name="live")["FunctionVersion"]
    env = lam.get_function_configuration(FunctionName=outputs["PredictFunctionName"], Qualifier=live)["Environment"]
    served = env["Variables"].get("MODELOPS_MODEL_VERSION")
    if served != version:
        problems.append(f"rollout {stack}: live (version {live}) serves {served}, not {version}")
    print(f"rollout {stack}: {described['StackStatus']}; live -> Lambda version {live} serving {served}")
    return problems


def blocked_outbound(log: Path) -> list[str]:
    if not log.is_file():
        return []
    return [line.strip() for line in log.read_text(errors="replace").splitlines() if "blocked outbound network" in line]


def run(args: argparse.Namespace) -> int:
    from samtranslator.yaml_helper import yaml_parse

    work = Path(args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log = work / "localstack.log"
    log.write_text("")
    built = Path(args.build_dir) / "template.yaml"
    if not built.is_file():
        print(f"deploy-local: {built} not found; run `make build` first", file=sys.stderr)
        return 2
    failed: list[str] = []
    executor_env = None
    if args.lambda_python:  # run Lambda code under the Runtime Interface Emulator (needs a host-arch build)
        from .emulator import rie_binary

        executor_env = rie_executor_env(Path(args.lambda_python).absolute(), rie_binary(), work / "lambda-logs")
    ls = LocalStack(Path(args.localstack_python), work / "state", log=log, extra_env=executor_env)
    try:
        with timed("start LocalStack"):
            ls.start()
        info = ls.info()
        print(f"LocalStack {info.get('version')} on {ls.endpoint} (log: {log})")
        client_env = {k: v for k, v in os.environ.items() if k not in AMBIENT_AWS}
        client_env.update(ls.client_env(), SAM_CLI_TELEMETRY="0")
        ls.client("s3").create_bucket(Bucket=ARTIFACT_BUCKET)
        packaged_path = work / "packaged.yaml"
        with timed("sam package (upload code and layers)"), open(work / "package.log", "w") as out:
            subprocess.run(
                [str(Path(sys.executable).parent / "sam"), "package", "--template-file", str(built), "--s3-bucket",
                 ARTIFACT_BUCKET, "--output-template-file", str(packaged_path)],
                check=True, env=client_env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        packaged = yaml_parse(packaged_path.read_text())

        stacks: list[stack_checks.DeployedStack] = []
        for name in ENVIRONMENTS:
            env = environment(name)
            ssm = ls.client("ssm")
            for ssm_name in ssm_parameter_names(packaged, env["overrides"]).values():
                # README step 2: the pin exists before the first deploy; "none" until a model is registered.
                ssm.put_parameter(Name=ssm_name, Type="String", Value="none", Overwrite=True)
            with timed(f"modelops preflight --config-env {name}"):
                # README step 2's check of the pin and the account's concurrency, against this account.
                pre = subprocess.run(
                    [str(Path(sys.executable).parent / "modelops"), "preflight", "--config-env", name],
                    cwd=ROOT, env=client_env, capture_output=True, text=True,
                )  # fmt: skip
            print((pre.stdout + pre.stderr).strip())
            if pre.returncode != 0:
                failed.append(f"modelops preflight --config-env {name}: exit {pre.returncode}")
            original = translate(packaged, env["stack"], env["overrides"])
            template, dropped = adapt_template(original, env["stack"])
            (work / f"{env['stack']}.template.json").write_text(json.dumps(template, indent=1))
            with timed(f"deploy {env['stack']} ({name})"):
                status = deploy(ls, env, template)
            print(f"{env['stack']}: {status['StackStatus']} {status.get('StackStatusReason') or ''}".rstrip())
            if status["StackStatus"] != "CREATE_COMPLETE":
                failed.append(f"stack {env['stack']}: {status['StackStatus']}")
                for line in failure_events(ls, env["stack"]):
                    print(f"  failed: {line}")
            stacks.append(deployed_stack(ls, env, template, original, dropped))

        with timed("checks"):
            results: list[stack_checks.Result] = []
            for st in stacks:
                results += stack_checks.check_stack(st, ls.client, localstack=True)
            results += stack_checks.collisions(stacks[0], stacks[1])
        print()
        for r in results:
            print(r)
        failed += [f"{r.stack}: {r.check}" for r in results if r.ok is False]

        if args.smoke and executor_env:
            # Functions run: pin a model in every stack first, so the smoke tests' predictions have one to serve.
            client_env["MODELOPS_LOCALSTACK_EXECUTES_LAMBDA"] = "1"
            for st in stacks:
                with timed(f"rollout {st.name} (modelops rollout start)"):
                    failed += rollout(ls, client_env, st.name)
            for st in stacks:
                with timed(f"smoke tests {st.name}"):
                    code = subprocess.run(  # `make smoke`'s recipe
                        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/integration"],
                        cwd=ROOT, env={**client_env, "AWS_SAM_STACK_NAME": st.name},
                    ).returncode  # fmt: skip
                if code != 0:
                    failed.append(f"smoke tests {st.name}: pytest exit {code}")
        elif args.smoke:
            for st in stacks:
                with timed(f"smoke tests {st.name}"):
                    code = subprocess.run(
                        ["make", "--no-print-directory", "smoke", f"STACK={st.name}"], cwd=ROOT, env=client_env
                    ).returncode
                if code != 0:
                    failed.append(f"smoke tests {st.name}: pytest exit {code}")
            with timed(f"rollout {stacks[0].name} (modelops rollout start)"):
                failed += rollout(ls, client_env, stacks[0].name)
    finally:
        with timed("stop LocalStack"):
            ls.stop()
    if blocked := blocked_outbound(log):
        failed.append(f"LocalStack tried to reach the network {len(blocked)} time(s): {blocked[0]}")
    print()
    print("timings: " + ", ".join(f"{what} {seconds:.1f} s" for what, seconds in TIMINGS))
    if failed:
        print("deploy-local FAILED:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    print("deploy-local: both stacks deployed and every check passed")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--localstack-python", default=str(ROOT / ".venv-localstack" / "bin" / "python"))
    p.add_argument("--build-dir", default=str(ROOT / ".aws-sam" / "build"))
    p.add_argument("--work-dir", default=str(ROOT / ".aws-sam" / "localstack"))
    p.add_argument("--smoke", action="store_true", help="also run tests/integration against each stack")
    p.add_argument(
        "--lambda-python",
        help="run Lambda code under the Runtime Interface Emulator with this interpreter (awslambdaric + boto3); "
        "the build must be for this host's architecture (make deploy-local-exec)",
    )
    args = p.parse_args(argv)

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through `finally`, which stops LocalStack

    for name in AMBIENT_AWS:  # this process's own boto3 clients talk to LocalStack only
        os.environ.pop(name, None)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
