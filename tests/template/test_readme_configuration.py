"""The README's configuration table names every template parameter, with the template's default."""

from __future__ import annotations

import re

import yaml
from support.paths import ROOT


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # intrinsic functions do not matter here


def test_every_parameter_is_in_the_readme_table_with_its_default():
    parameters = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Loader)["Parameters"]
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| parameter | default | allowed | what it does |") :].split("\n\n", 1)[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| ([^|]*) \|", table, re.M)}
    assert set(parameters) - set(rows) == set(), "parameters missing from the README's configuration table"
    for name, spec in parameters.items():
        default = spec.get("Default")
        shown = {"(none)", "(empty)"} if default in (None, "") else {f"`{default}`"}
        assert rows[name].strip() in shown, f"{name}: README says {rows[name].strip()}, template.yaml {shown}"
