"""The one place settings are read from the environment, with one meaning for every word.

    flag(name, default)         true: 1 true yes on enabled; false: 0 false no off disabled, or set but empty
    integer(name, default, minimum=None, maximum=None)    a whole number ("12", "-3"; not "1.5", "1e3", "1_000")
    number(name, default, minimum=None, maximum=None)     a finite decimal number
    required(name)              set and not blank
    text(name, default)         the value without surrounding blanks; default only when unset
    choice(name, allowed, default)   one of the allowed words (case-insensitive)
    raw(name), mapping(), snapshot()  as set: variables other software defines (AWS_*, POWERTOOLS_*), the live
                                      environment handed down, a copy for a child environment

Unset means default (except `required`). A value that cannot be read is a ConfigError naming the variable and
the value, never a silent fallback: a typo in a deployed setting shows up at init, not as a different behaviour.
Every function reads os.environ unless given `env` (a mapping: tests, the challenger's overrides).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping

from .errors import ModelOpsError

TRUE_WORDS = ("1", "true", "yes", "on", "enabled")
FALSE_WORDS = ("0", "false", "no", "off", "disabled", "")
_WHOLE = re.compile(r"[+-]?[0-9]+")
_MAX_SHOWN = 80  # a value quoted in a message is cut here: messages go to logs


class ConfigError(ModelOpsError):
    """A setting is missing or cannot be read; the message names the variable."""

    def __init__(self, message: str, name: str):
        super().__init__(message)
        self.name = name


def mapping(env: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """`env`, or the live process environment: for code that hands one mapping down to several readers."""
    return os.environ if env is None else env


def _shown(value: str) -> str:
    return repr(value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "...")


def raw(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The value exactly as set, or None when unset (for settings other libraries define, e.g. POWERTOOLS_*)."""
    return mapping(env).get(name)


def snapshot(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the whole environment, for building a child environment with overrides."""
    return dict(mapping(env))


def text(name: str, default: str = "", env: Mapping[str, str] | None = None) -> str:
    value = mapping(env).get(name)
    return default if value is None else value.strip()


def required(name: str, env: Mapping[str, str] | None = None) -> str:
    value = text(name, "", env)
    if not value:
        raise ConfigError(f"{name} is not set", name)
    return value


def flag(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    value = mapping(env).get(name)
    if value is None:
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConfigError(
        f"{name}={_shown(value)} is not a flag: use one of {', '.join(TRUE_WORDS)} (true) "
        f"or {', '.join(w for w in FALSE_WORDS if w)} (false)",
        name,
    )


def _in_range(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value!r} is below the minimum {minimum!r}", name)
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value!r} is above the maximum {maximum!r}", name)


def integer(
    name: str,
    default: int,
    minimum: int | None = None,
    maximum: int | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    value = mapping(env).get(name)
    if value is None or not value.strip():
        return default
    if not _WHOLE.fullmatch(value.strip()):
        raise ConfigError(f"{name}={_shown(value)} is not a whole number", name)
    result = int(value.strip())
    _in_range(name, result, minimum, maximum)
    return result


def number(
    name: str,
    default: float,
    minimum: float | None = None,
    maximum: float | None = None,
    env: Mapping[str, str] | None = None,
) -> float:
    value = mapping(env).get(name)
    if value is None or not value.strip():
        return default
    try:
        if "_" in value:  # float() takes 1_000; a setting does not
            raise ValueError(value)
        result = float(value.strip())
    except ValueError:
        raise ConfigError(f"{name}={_shown(value)} is not a number", name) from None
    if not math.isfinite(result):
        raise ConfigError(f"{name}={_shown(value)} is not a finite number", name)
    _in_range(name, result, minimum, maximum)
    return result


def choice(name: str, allowed: Iterable[str], default: str, env: Mapping[str, str] | None = None) -> str:
    """One of `allowed` (compared in lower case; the allowed words are lower case), default when unset or blank."""
    words = tuple(allowed)
    value = mapping(env).get(name)
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word not in words:
        raise ConfigError(f"{name}={_shown(value)} is not one of {', '.join(words)}", name)
    return word
