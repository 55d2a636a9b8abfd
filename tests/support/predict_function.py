"""moto Lambda holding a stand-in of the predict function, as the rollout tests deploy it."""

from __future__ import annotations

import boto3
import pytest

from devtools.stand_in_function import create_stand_in_function

FN = "modelops-PredictFunction"
MODEL = "m"


@pytest.fixture
def lam(moto_aws):
    client = boto3.client("lambda")
    create_stand_in_function(client, FN, {"MODELOPS_MODEL_VERSION": "v1", "MODELOPS_MODEL_NAME": MODEL})
    return client
