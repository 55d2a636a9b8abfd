"""`modelops ab start|stop|promote|report`: A/B experiments between the champion (A) and a challenger (B)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from modelops.core import env as settings
from modelops.core.errors import ModelOpsError
from modelops.registry import CHAMPION, require_registry

from .output import emit_json, key_values, table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ab",
        help="start, stop, promote and report A/B experiments",
        description="A/B experiments: a sticky share of entities goes to the challenger (variant B).",
    )
    s = p.add_subparsers(dest="ab_command", metavar="ACTION", required=True)

    def model_and_split_store(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--model", default=settings.text("MODELOPS_MODEL_NAME") or None, help="model name ($MODELOPS_MODEL_NAME)"
        )
        q.add_argument(
            "--appconfig",
            metavar="APP/ENV/PROFILE",
            default=_appconfig_from_env(),
            help="AppConfig application/environment/profile ids holding the split "
            "($MODELOPS_APPCONFIG_APPLICATION, _ENVIRONMENT, _PROFILE)",
        )
        q.add_argument(
            "--local",
            metavar="FILE",
            default=settings.text("MODELOPS_AB_CONFIG_FILE") or None,
            help="write the split to this file instead (local runs; $MODELOPS_AB_CONFIG_FILE)",
        )

    start = s.add_parser("start", help="send a share of entities to a challenger version")
    start.add_argument("challenger", help="challenger model version")
    start.add_argument("--split", type=float, default=10.0, help="percent of entities on B (default 10)")
    model_and_split_store(start)
    start.set_defaults(func=start_cmd)

    stop = s.add_parser("stop", help="send everyone back to A")
    stop.add_argument("--reason", default="")
    model_and_split_store(stop)
    stop.set_defaults(func=stop_cmd)

    promote = s.add_parser("promote", help="make the challenger the champion and end the experiment")
    promote.add_argument("--reason", default="")
    model_and_split_store(promote)
    promote.set_defaults(func=promote_cmd)

    report = s.add_parser("report", help="compare A and B: traffic, errors, latency, quality, verdict")
    report.add_argument("--model", default=settings.text("MODELOPS_MODEL_NAME") or None)
    report.add_argument(
        "--data",
        default=settings.text("MODELOPS_DATA_URI") or None,
        help="s3://bucket/prefix holding captures/ and feedback/ ($MODELOPS_DATA_URI)",
    )
    report.add_argument("--since", help="only predictions since then: ISO time or date, or an age like 24h or 7d")
    report.add_argument("--out", default="ab-report", help="directory for ab-report.json and ab-report.png")
    report.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    report.add_argument("--min-labelled", type=int, default=30, help="labelled rows per variant before a verdict")
    report.set_defaults(func=report_cmd)


def _appconfig_from_env() -> str | None:
    parts = [settings.text(f"MODELOPS_APPCONFIG_{k}") or None for k in ("APPLICATION", "ENVIRONMENT", "PROFILE")]
    return "/".join(parts) if all(parts) else None  # type: ignore[arg-type]


def publisher_from(args: argparse.Namespace) -> Any:
    from modelops.experiments.control import AppConfigPublisher, AppConfigTarget, FilePublisher

    if args.local:
        return FilePublisher(args.local)
    if args.appconfig:
        parts = args.appconfig.split("/")
        if len(parts) != 3 or not all(parts):
            raise ModelOpsError(f"--appconfig '{args.appconfig}' must be APPLICATION/ENVIRONMENT/PROFILE")
        return AppConfigPublisher(AppConfigTarget(*parts))
    raise ModelOpsError(
        "say where the split lives: --appconfig APP/ENV/PROFILE (or MODELOPS_APPCONFIG_*), or --local FILE"
    )


def _model(args: argparse.Namespace) -> str:
    if not args.model:
        raise ModelOpsError("no model given: pass --model NAME or set MODELOPS_MODEL_NAME")
    return args.model


def _show(args: argparse.Namespace, out: dict[str, Any]) -> int:
    emit_json(out) if args.json else key_values(out)
    return 0


def start_cmd(args: argparse.Namespace) -> int:
    from modelops.experiments import control as abcontrol

    if not 0 < args.split < 100:
        raise ModelOpsError(f"--split must be between 0 and 100 (exclusive), got {args.split:g}")
    out = abcontrol.start(
        require_registry(args.registry), publisher_from(args), _model(args), args.challenger, args.split
    )
    if not args.json:
        print(
            f"B gets {args.split:g}% of entities once the predict function has MODELOPS_CHALLENGER_VERSION="
            f"{out['challenger']} (deploy with --parameter-overrides ChallengerVersion={out['challenger']})"
        )
    return _show(args, out)


def stop_cmd(args: argparse.Namespace) -> int:
    from modelops.experiments import control as abcontrol

    return _show(args, abcontrol.stop(require_registry(args.registry), publisher_from(args), _model(args), args.reason))


def promote_cmd(args: argparse.Namespace) -> int:
    from modelops.experiments import control as abcontrol

    out = abcontrol.promote(require_registry(args.registry), publisher_from(args), _model(args), args.reason)
    if not args.json:
        print(
            f"champion is now {out['champion']} in the registry; roll it out through the canary "
            "(`modelops retrain` or a deploy pinned to it) to serve it"
        )
    return _show(args, out)


def report_cmd(args: argparse.Namespace) -> int:
    from modelops.adapters.objectstore import open_location
    from modelops.capture import feedback
    from modelops.capture.labelled import join
    from modelops.capture.records import PredictionLog
    from modelops.core.clock import parse_time
    from modelops.experiments import report as abreport

    if not args.data:
        raise ModelOpsError("no data location: pass --data s3://bucket/prefix or set MODELOPS_DATA_URI")
    store, prefix = open_location(args.data)
    since = parse_time(args.since) if args.since else None
    registry = require_registry(args.registry)
    manifest = registry.manifest(_model(args), CHAMPION)
    predictions = PredictionLog(store, prefix).read(since=since)
    if not predictions:
        raise ModelOpsError(
            f"no captured predictions under {args.data}/captures"
            + (f" since {args.since}" if args.since else "")
            + ": is capture on (MODELOPS_CAPTURE=on)?"
        )
    labelled = join(predictions, feedback.FeedbackStore(store, prefix).read(since=since))
    positive = manifest.classes[-1] if manifest.classes else None
    report = abreport.build_report(
        abreport.ReportInput(manifest.task, predictions, labelled, positive),
        alpha=args.alpha,
        min_labelled=args.min_labelled,
    )
    report["since"] = args.since
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import json

    (out / "ab-report.json").write_text(json.dumps(report, indent=2, default=str))
    abreport.write_chart(report, out / "ab-report.png")
    if args.json:
        emit_json(report)
        return 0
    print_report(report, out)
    return 0


def print_report(report: dict[str, Any], out: Path | None = None) -> None:
    quality = ["accuracy", "auc"] if report["task"] == "classification" else ["mae", "rmse"]
    rows = []
    for name, v in report["variants"].items():
        row = {
            "variant": name,
            "model": ", ".join(v["model_versions"]),
            "requests": v["requests"],
            "share": f"{100 * v['share']:.1f}%",
            "errors": f"{100 * v['error_rate']:.2f}%",
            "p50 ms": v["latency_p50_ms"],
            "p99 ms": v["latency_p99_ms"],
            "labelled": v["labelled"],
        }
        for q in quality:
            ci = v.get(f"{q}_ci")
            row[q] = "-" if v.get(q) is None else (f"{v[q]:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""))
        rows.append(row)
    table(rows, ["variant", "model", "requests", "share", "errors", "p50 ms", "p99 ms", "labelled", *quality])
    print(f"verdict: {report['verdict']} - {report['reason']}")
    if out is not None:
        print(f"wrote {out / 'ab-report.json'} and {out / 'ab-report.png'}")
