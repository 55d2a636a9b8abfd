"""The GitHub Actions pipeline parses, runs its jobs in the right order, and only calls things that exist:
Makefile targets, samconfig.toml environments, and OIDC (never stored keys) for AWS access."""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest
import yaml
from support.paths import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "pipeline.yml"
MAKEFILE = ROOT / "Makefile"
SAMCONFIG = ROOT / "samconfig.toml"
STAGES = ["lint", "test", "build", "deploy-dev", "deploy-prod"]
DEPLOY_JOBS = ["deploy-dev", "deploy-prod"]


@pytest.fixture(scope="module")
def workflow() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict), f"{WORKFLOW} is not a YAML mapping"
    return data


def _jobs(workflow: dict) -> dict:
    return workflow["jobs"]


def _needs(job: dict) -> set[str]:
    needs = job.get("needs", [])
    return {needs} if isinstance(needs, str) else set(needs)


def _run_lines(job: dict) -> list[str]:
    lines = []
    for step in job.get("steps", []):
        for line in str(step.get("run", "")).splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def _all_run_lines(workflow: dict) -> list[str]:
    return [line for job in _jobs(workflow).values() for line in _run_lines(job)]


def _make_targets_called(lines: list[str]) -> set[str]:
    targets = set()
    for line in lines:
        for command in re.split(r"&&|\|\||;", line):
            words = shlex.split(command)
            if words[:1] != ["make"]:
                continue
            targets |= {w for w in words[1:] if not w.startswith("-") and "=" not in w}
    return targets


def makefile_targets(text: str) -> set[str]:
    """Rule names of a Makefile: `name:` and `a b:` lines, not variable assignments (`X := 1`, `X ?= 1`)."""
    targets = set()
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.%/$()-][A-Za-z0-9_.%/$() -]*?)\s*::?(?![=])", line)
        if match and not line.startswith("\t"):
            targets |= set(match.group(1).split())
    return {t for t in targets if not t.startswith(".") and "$" not in t}


def _config_envs_called(lines: list[str]) -> list[str]:
    envs = []
    for line in lines:
        words = shlex.split(line)
        for i, word in enumerate(words):
            if word == "--config-env":
                envs.append(words[i + 1])
            elif word.startswith("--config-env="):
                envs.append(word.split("=", 1)[1])
    return envs


def test_makefile_target_parser_reads_rules_not_assignments():
    text = "PYTHON ?= python3\nSTAMP := x\n.PHONY: a b\nvenv: $(STAMP)  ## c\nlint test: venv\n\techo x: y\n"
    assert makefile_targets(text) == {"venv", "lint", "test"}


def test_workflow_has_every_stage(workflow):
    assert set(STAGES) <= set(_jobs(workflow)), f"missing jobs: {set(STAGES) - set(_jobs(workflow))}"
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert "push" in triggers and "pull_request" in triggers


def test_jobs_run_in_order_lint_test_build_dev_prod(workflow):
    jobs = _jobs(workflow)
    assert _needs(jobs["build"]) == {"lint", "test"}
    assert _needs(jobs["deploy-dev"]) == {"build"}
    assert _needs(jobs["deploy-prod"]) == {"deploy-dev"}

    def upstream(name: str) -> set[str]:
        found = set()
        for parent in _needs(jobs[name]):
            found |= {parent} | upstream(parent)
        return found

    assert upstream("deploy-prod") == {"lint", "test", "build", "deploy-dev"}
    for name in ("lint", "test"):
        assert not _needs(jobs[name]), f"{name} should start straight away"


def test_every_make_target_exists_in_the_makefile(workflow):
    called = _make_targets_called(_all_run_lines(workflow))
    assert {"lint", "test", "build"} <= called
    defined = makefile_targets(MAKEFILE.read_text())
    missing = called - defined
    assert not missing, f"pipeline calls make targets that the Makefile lacks: {sorted(missing)}"


def test_stages_call_the_makefile_and_sam(workflow):
    jobs = _jobs(workflow)
    assert _make_targets_called(_run_lines(jobs["lint"])) == {"lint"}
    assert _make_targets_called(_run_lines(jobs["test"])) == {"test"}
    assert _make_targets_called(_run_lines(jobs["build"])) == {"build"}
    for name, env in (("deploy-dev", "default"), ("deploy-prod", "prod")):
        deploys = [line for line in _run_lines(jobs[name]) if line.startswith("sam deploy")]
        assert len(deploys) == 1, f"{name} should run exactly one sam deploy"
        assert _config_envs_called(deploys) == [env]
        # Without these flags sam waits for a keypress, or fails when nothing changed.
        assert "--no-confirm-changeset" in deploys[0] and "--no-fail-on-empty-changeset" in deploys[0]


def test_every_config_env_exists_in_samconfig(workflow):
    envs = _config_envs_called(_all_run_lines(workflow))
    assert sorted(envs) == ["default", "prod"]
    assert SAMCONFIG.exists(), "samconfig.toml is missing: the pipeline deploys with --config-env default and prod"
    config = tomllib.loads(SAMCONFIG.read_text())
    for env in envs:
        section = config.get(env, {})
        deploy = section.get("deploy", {}).get("parameters")
        assert deploy, f"samconfig.toml has no [{env}.deploy.parameters] for `sam deploy --config-env {env}`"
        # sam applies [env.global.parameters] to every command, then the command's own table.
        params = {**section.get("global", {}).get("parameters", {}), **deploy}
        assert params.get("stack_name"), f"samconfig.toml [{env}] needs a stack_name"
        assert "CAPABILITY_IAM" in str(params.get("capabilities")), f"[{env}] deploys IAM roles: CAPABILITY_IAM"


def test_build_output_is_what_gets_deployed(workflow):
    jobs = _jobs(workflow)
    uploads = [s["with"]["name"] for s in jobs["build"]["steps"] if "upload-artifact" in s.get("uses", "")]
    assert uploads, "build must upload the sam build output"
    for name in DEPLOY_JOBS:
        downloads = [s["with"]["name"] for s in jobs[name]["steps"] if "download-artifact" in s.get("uses", "")]
        assert downloads == uploads, f"{name} must deploy the artifact that build produced"
        for step in jobs[name]["steps"]:
            assert "sam build" not in str(step.get("run", "")), f"{name} must not rebuild"


def test_aws_access_is_oidc_only(workflow):
    for name, job in _jobs(workflow).items():
        aws_steps = [s for s in job.get("steps", []) if "configure-aws-credentials" in s.get("uses", "")]
        if name in DEPLOY_JOBS:
            assert len(aws_steps) == 1, f"{name} must assume the deploy role"
        if not aws_steps:
            continue
        perms = job.get("permissions", workflow.get("permissions", {}))
        assert perms.get("id-token") == "write", f"{name} needs `id-token: write` for OIDC"
        settings = aws_steps[0].get("with", {})
        assert settings.get("role-to-assume"), f"{name} must use role-to-assume"
        assert settings.get("aws-region")
        assert not {"aws-access-key-id", "aws-secret-access-key"} & set(settings), f"{name} must not use stored keys"
    # Jobs that never talk to AWS get no token.
    assert workflow["permissions"].get("id-token") is None
    assert "secrets.AWS" not in WORKFLOW.read_text()


def test_deploys_only_from_main_and_prod_waits_for_approval(workflow):
    jobs = _jobs(workflow)
    for name in DEPLOY_JOBS:
        condition = jobs[name].get("if", "")
        assert "refs/heads/main" in condition and "push" in condition, f"{name} must only run for pushes to main"
    environment = jobs["deploy-prod"].get("environment")
    environment = environment.get("name") if isinstance(environment, dict) else environment
    assert environment == "prod", "deploy-prod must run in the `prod` environment, which holds the required reviewers"
    dev_environment = jobs["deploy-dev"].get("environment")
    assert dev_environment and dev_environment != environment


def test_actions_are_pinned(workflow):
    for name, job in _jobs(workflow).items():
        for step in job.get("steps", []):
            if "uses" in step:
                assert re.search(r"@v?\d", step["uses"]), f"{name}: pin {step['uses']} to a version"
