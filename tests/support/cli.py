"""Running the modelops CLI in-process, the way the CLI tests read its answers."""

from __future__ import annotations

from modelops_cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("modelops:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
