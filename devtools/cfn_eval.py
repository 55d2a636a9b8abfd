"""Resolve CloudFormation intrinsics in a (translated) template the way CloudFormation would for one stack.

Used by the deploy checks to compute what a deployed resource should look like: parameters (defaults plus
overrides, SSM-typed ones resolved to their value), pseudo parameters, conditions, Ref / Fn::GetAtt / Fn::Sub /
Fn::If / Fn::Join / Fn::Select / Fn::Split / Fn::Equals / Fn::Not / Fn::And / Fn::Or. Resource references are
answered by two callables the caller supplies (physical id of a logical id; an attribute of a logical id), so
the evaluator itself needs no AWS and is tested on a translated template alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class Unresolvable(Exception):
    """A value that cannot be computed (unknown reference, unsupported intrinsic)."""


NO_VALUE = object()  # AWS::NoValue: the enclosing key or list item disappears


def _no_ref(logical_id: str) -> str:
    raise Unresolvable(f"no physical id for {logical_id}")


def _no_att(logical_id: str, attribute: str) -> Any:
    raise Unresolvable(f"no attribute {logical_id}.{attribute}")


@dataclass
class Evaluator:
    template: Mapping[str, Any]
    parameters: Mapping[str, Any]  # every template parameter's value (defaults included), as strings
    pseudo: Mapping[str, str]  # AWS::StackName, AWS::Region, AWS::AccountId, AWS::Partition, AWS::URLSuffix
    ref: Callable[[str], str] = _no_ref
    getatt: Callable[[str, str], Any] = _no_att
    _conditions: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def parameter_values(cls, template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
        """Template defaults overlaid with overrides (what CloudFormation uses when those are passed)."""
        values = {k: str(v["Default"]) for k, v in template.get("Parameters", {}).items() if "Default" in v}
        values.update({k: str(v) for k, v in overrides.items()})
        missing = [k for k in template.get("Parameters", {}) if k not in values]
        if missing:
            raise Unresolvable(f"parameters without a value: {', '.join(missing)}")
        return values

    # ---- conditions --------------------------------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            try:
                expr = self.template["Conditions"][name]
            except KeyError:
                raise Unresolvable(f"no condition {name}") from None
            self._conditions[name] = bool(self.resolve(expr))
        return self._conditions[name]

    def resource_exists(self, logical_id: str) -> bool:
        cond = self.template["Resources"][logical_id].get("Condition")
        return True if cond is None else self.condition(cond)

    def output_exists(self, key: str) -> bool:
        cond = self.template.get("Outputs", {})[key].get("Condition")
        return True if cond is None else self.condition(cond)

    # ---- values ------------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            out = [self.resolve(v) for v in value]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, arg)
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template.get("Resources", {}):
            return self.ref(name)
        raise Unresolvable(f"Ref to unknown name {name}")

    def _getatt(self, arg: Any) -> Any:
        if isinstance(arg, str):
            logical_id, attribute = arg.split(".", 1)
        else:
            logical_id, attribute = arg[0], self.resolve(arg[1])
        return self.getatt(logical_id, attribute)

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        local = {k: self.resolve(v) for k, v in variables.items()}

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"  # ${!Literal}
            if name in local:
                return str(local[name])
            if "." in name and name.split(".", 1)[0] in self.template.get("Resources", {}):
                return str(self._getatt(name))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def _if(self, arg: Any) -> Any:
        name, yes, no = arg
        return self.resolve(yes if self.condition(name) else no)

    def _join(self, arg: Any) -> str:
        sep, items = arg
        return str(sep).join(str(v) for v in self.resolve(items))

    def _select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _split(self, arg: Any) -> list[str]:
        sep, text = arg
        return str(self.resolve(text)).split(sep)

    def _equals(self, arg: Any) -> bool:
        a, b = (self.resolve(v) for v in arg)
        return str(a) == str(b)

    def _not(self, arg: Any) -> bool:
        return not self._truth(arg[0])

    def _and(self, arg: Any) -> bool:
        return all(self._truth(v) for v in arg)

    def _or(self, arg: Any) -> bool:
        return any(self._truth(v) for v in arg)

    def _truth(self, value: Any) -> bool:
        if isinstance(value, dict) and set(value) == {"Condition"}:
            return self.condition(value["Condition"])
        return bool(self.resolve(value))

    def _condition_ref(self, name: str) -> bool:
        return self.condition(name)


_INTRINSICS: dict[str, Callable[[Evaluator, Any], Any]] = {
    "Ref": Evaluator._ref,
    "Fn::GetAtt": Evaluator._getatt,
    "Fn::Sub": Evaluator._sub,
    "Fn::If": Evaluator._if,
    "Fn::Join": Evaluator._join,
    "Fn::Select": Evaluator._select,
    "Fn::Split": Evaluator._split,
    "Fn::Equals": Evaluator._equals,
    "Fn::Not": Evaluator._not,
    "Fn::And": Evaluator._and,
    "Fn::Or": Evaluator._or,
    "Condition": Evaluator._condition_ref,
}
