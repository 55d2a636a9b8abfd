"""sam local parity: every event in events/ is invoked, through the Lambda Runtime Interface Emulator,
on the function events/functions.toml names for it, with that function's handler, code, layers and
environment read from template.yaml, against the local AWS (moto server, seeded with the champion
model). This is `sam local invoke <function> -e events/<file>` without Docker."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator

import pytest
from support.local_fixtures import REPO

from devtools.emulator import Emulator

pytestmark = pytest.mark.slow

EVENTS = REPO / "events"
MAPPING_FILE = EVENTS / "functions.toml"
MAPPING = tomllib.loads(MAPPING_FILE.read_text())
EVENT_FILES = sorted(p.name for p in EVENTS.glob("*.json"))


def test_every_event_file_names_its_function():
    missing = [name for name in EVENT_FILES if name not in MAPPING]
    assert not missing, f"add these event files to {MAPPING_FILE.relative_to(REPO)}: {missing}"
    stale = [name for name in MAPPING if name not in EVENT_FILES]
    assert not stale, f"{MAPPING_FILE.relative_to(REPO)} lists event files that do not exist: {stale}"
    assert all(isinstance(entry.get("function"), str) for entry in MAPPING.values())


@pytest.fixture(scope="module")
def emulators(predict_stack) -> Iterator[dict[str, Emulator]]:
    """One emulator per function that has events, started on first use and stopped after the module."""
    started: dict[str, Emulator] = {}
    yield started
    for emulator in started.values():
        emulator.stop()


def _invoke(stack, emulators: dict[str, Emulator], function: str, payload: bytes):
    if function in stack.pools:  # a function behind the local API: use its warm pool
        return stack.pools[function].invoke(payload)
    if function not in emulators:
        emulators[function] = stack.emulator(function)
    return emulators[function].invoke(payload)


@pytest.mark.parametrize("event_file", [name for name in EVENT_FILES if name in MAPPING])
def test_event_succeeds_on_its_function_under_the_emulator(event_file, predict_stack, emulators):
    entry = MAPPING[event_file]
    function = entry["function"]
    if function not in predict_stack._template().function_ids():
        # reported in the summary (-ra): the event exists before its function is added to the template
        pytest.skip(f"events/{event_file} is for {function}, which template.yaml does not define yet")
    result = _invoke(predict_stack, emulators, function, (EVENTS / event_file).read_bytes())
    if "error" in entry:
        assert result.function_error and entry["error"].encode() in result.payload, result.payload[:1000]
        return
    assert not result.function_error, f"{function} raised on events/{event_file}: {result.payload[:1000]!r}"
    answer = json.loads(result.payload)
    if "status" in entry:
        assert answer["statusCode"] == entry["status"], answer
        if entry["status"] >= 400:
            assert json.loads(answer["body"])["error"]["field"], "an error answer must name the field"
