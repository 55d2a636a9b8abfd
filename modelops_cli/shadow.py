"""`modelops shadow run`: score the captured champion requests of a window with a candidate version and compare."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from modelops.core import env as settings
from modelops.core.errors import ModelOpsError, NotFoundError
from modelops.registry import require_registry

from .output import emit_json, key_values, table


class UnknownVersion(ModelOpsError):
    """The candidate named on the command line is not in the registry: a usage error."""

    exit_code = 2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "shadow",
        help="compare a candidate version with the champion on captured requests",
        description="Shadow testing: the candidate scores the requests the champion answered (online capture), "
        "offline through the batch scorer; nothing is served.",
    )
    s = p.add_subparsers(dest="shadow_command", metavar="ACTION", required=True)
    run = s.add_parser("run", help="score the window's captured requests with a candidate and compare")
    run.add_argument("--version", required=True, help="candidate model version (or alias, e.g. challenger)")
    run.add_argument(
        "--model", default=settings.text("MODELOPS_MODEL_NAME") or None, help="model name ($MODELOPS_MODEL_NAME)"
    )
    run.add_argument(
        "--data",
        default=settings.text("MODELOPS_DATA_URI") or None,
        help="s3://bucket/prefix holding captures/; the report goes under its shadow/ ($MODELOPS_DATA_URI)",
    )
    run.add_argument("--since", default="24h", help="start of the window: ISO time or date, or an age (default 24h)")
    run.add_argument("--until", help="end of the window (default now)")
    run.add_argument(
        "--tolerance", type=float, help="regression: largest |difference| that counts as agreeing (target units)"
    )
    run.add_argument("--out", help="also write shadow-report.json and shadow-report.png into this directory")
    run.add_argument("--dry-run", action="store_true", help="compare and print, write nothing")
    run.set_defaults(func=run_cmd)


def run_cmd(args: argparse.Namespace) -> int:
    from modelops.adapters.objectstore import open_location
    from modelops.capture.records import PredictionLog
    from modelops.core.clock import parse_time
    from modelops.experiments import shadow

    if not args.model:
        raise ModelOpsError("no model given: pass --model NAME or set MODELOPS_MODEL_NAME")
    if not args.data:
        raise ModelOpsError("no data location: pass --data s3://bucket/prefix or set MODELOPS_DATA_URI")
    if args.tolerance is not None and not args.tolerance >= 0:
        raise ModelOpsError(f"--tolerance must be 0 or more, got {args.tolerance}")
    registry = require_registry(args.registry)
    try:
        model = registry.load(args.model, args.version)
    except NotFoundError as exc:
        raise UnknownVersion(str(exc)) from None
    since = parse_time(args.since, "since")
    until = parse_time(args.until, "until") if args.until else time.time()
    if until < since:
        raise ModelOpsError(f"--until ({args.until}) is before --since ({args.since})")
    store, prefix = open_location(args.data, registry.s3)
    report = shadow.run(model, PredictionLog(store, prefix), since=since, until=until, tolerance=args.tolerance)
    png = shadow.chart_png(report) if shadow.can_chart() else None
    if not args.dry_run:
        report["stored"] = shadow.store_report(store, prefix, report, png)
        if args.out:
            import json

            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            if png is not None:
                (out / "shadow-report.png").write_bytes(png)
            (out / "shadow-report.json").write_text(json.dumps(report, indent=2, default=str))
    if args.json:
        emit_json(report)
    else:
        print_report(report)
    return 0


def print_report(report: dict[str, Any]) -> None:
    from modelops.experiments import shadow

    rows = report["rows"]
    agreement = report["agreement"]
    diff = report["difference"]["abs"]
    lat = report["latency"]
    key_values(
        {
            "candidate": f"{report['model']} {report['candidate']}",
            "champion versions": ", ".join(f"{v} ({n} rows)" for v, n in report["champion_versions"].items()),
            "window": f"{report['window']['since']} - {report['window']['until']}",
            "rows compared": f"{rows['compared']} of {rows['captured']} captured in {report['requests']} requests",
            "skipped": ", ".join(f"{k}: {v}" for k, v in rows["skipped"].items()) or None,
            "rejected by candidate": rows["rejected_by_candidate"],
            "agreement": None if agreement["rate"] is None else f"{100 * agreement['rate']:.2f}%",
            f"|delta| {report['difference']['of']}": f"p50 {_num(diff['p50'])}  p90 {_num(diff['p90'])}  "
            f"p99 {_num(diff['p99'])}  max {_num(diff['max'])}",
            "latency ms/row": f"champion p50 {_num(lat['champion_ms_per_row_p50'])} (captured per request), "
            f"candidate {_num(lat['candidate_ms_per_row'])} (batch scoring here)",
        }
    )
    confusion = report.get("confusion")
    if confusion:
        columns = confusion["labels"][: len(next(iter(confusion["counts"].values()), {}))]
        table(
            [{"champion \\ candidate": a, **confusion["counts"][a]} for a in confusion["labels"]],
            ["champion \\ candidate", *columns],
        )
    table(
        report["features"]["top"][:5],
        ["feature", "psi", "agree_mean", "disagree_mean"],
        title="features where they disagree most (PSI of agreeing vs disagreeing rows)",
    )
    stored = report.get("stored")
    if not stored:
        print("dry run: nothing written")
    else:
        print(f"wrote {stored['json']}" + (f" and {stored['png']}" if "png" in stored else f" ({shadow.NO_CHART})"))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
