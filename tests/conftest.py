"""Shared fixtures: fake AWS credentials, a moto S3 registry, and models trained once per session."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from modelops.model.artifact import write_artifact
from modelops.model.dataset import load_builtin
from modelops.model.training import train
from modelops.registry import Registry
from moto import mock_aws
from support.aws import BUCKET, REGION

# Session fixtures of the local stack (moto server, Runtime Interface Emulator, local API); `lam`, moto Lambda with a
# stand-in predict function; `template` and `translated`, template.yaml decoded and translated.
pytest_plugins = ["support.local_fixtures", "support.predict_function", "support.template"]


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    """No test may reach real AWS: fake credentials, fixed region, no profile or endpoint override."""
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "MODELOPS_REGISTRY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "modelops-test")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")


@pytest.fixture
def moto_aws(aws_env):
    with mock_aws():
        yield


@pytest.fixture
def s3(moto_aws):
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def registry(s3):
    return Registry(f"s3://{BUCKET}/registry", s3=s3)


def _train_to(tmp: Path, dataset: str, name: str, estimator: str | None = None) -> Path:
    trained = train(load_builtin(dataset), name, estimator_kind=estimator)
    write_artifact(tmp, trained.estimator, trained.manifest, trained.golden, trained.evaluation)
    return tmp


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory) -> Path:
    return _train_to(tmp_path_factory.mktemp("clf"), "breast_cancer", "breast-cancer")


@pytest.fixture(scope="session")
def regressor_dir(tmp_path_factory) -> Path:
    return _train_to(tmp_path_factory.mktemp("reg"), "diabetes", "diabetes")


@pytest.fixture(scope="session")
def classifier_v2_dir(tmp_path_factory) -> Path:
    return _train_to(tmp_path_factory.mktemp("clf2"), "breast_cancer", "breast-cancer", estimator="hgb")


@pytest.fixture
def copy_dir(tmp_path):
    """Copy an artifact directory so a test can tamper with it."""
    import shutil

    def _copy(src: Path) -> Path:
        dst = tmp_path / f"copy-{src.name}"
        shutil.copytree(src, dst)
        return dst

    return _copy


os.environ.setdefault("MPLBACKEND", "Agg")
