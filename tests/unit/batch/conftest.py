"""The batch tests' champion: the session's classifier registered under the champion alias (support.batch)."""

import pytest
from support.batch import register_champion


@pytest.fixture
def champion(registry, classifier_dir):
    return register_champion(registry, classifier_dir)
