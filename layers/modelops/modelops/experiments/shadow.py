"""Shadow testing: score the requests the champion answered (online capture) with a candidate version, and
compare the two answers row by row. Nothing is served: the candidate runs offline, through the batch scorer.

The rows are read with the capture reader (modelops.capture.records.PredictionLog), keeping the champion's answers
(variant A, status 200). Each captured row's inputs go through the batch JSON Lines parser and
modelops.batch.scoring.Scorer, so a row gets exactly the conversions and rejections a batch run would give it.

Captured records are untrusted: a record of the wrong shape, a row without inputs, a row whose inputs do not
serialise or exceed the batch line bound is skipped and counted under its reason, never a crash.

Report (plain JSON types):
    agreement     classification: share of rows where both predict the same label; regression: share of rows
                  with |candidate - champion| <= tolerance (default: a tenth of the champion's prediction std)
    difference    p50/p90/p99/max of |delta| of the score: the positive-class probability of a binary model, the
                  regression output, or with three or more classes each row's largest per-class probability
                  change (and each class's own quantiles in difference_by_class). Batch output has six
                  decimals, so deltas below 1e-6 are rounding.
    confusion     champion label x candidate label counts (classification)
    features      per feature, the PSI between its distribution on agreeing and on disagreeing rows, over the
                  candidate's baseline bins (its deciles in the window when the manifest has none): a high value
                  means the rows where the two models disagree sit in a different part of that feature's range
    latency       the champion's captured latency (handler time up to its answer, per request, on Lambda) next
                  to the candidate's batch scoring time per row in this process: not the same measurement, an
                  order of magnitude only
Stored under <data prefix>/shadow/<model>/<candidate>/<UTC time>-<random>.png and then .json (written last,
naming its chart), neither ever overwritten. matplotlib is not in the Lambda layers (it would cost every
function's size budget), so a scheduled run stores the JSON alone and says so in it.
"""

from __future__ import annotations

import csv
import io
import math
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from ..batch.config import DEFAULT_MAX_LINE_BYTES
from ..capture.partitions import DEFAULT_MAX_RECORDS
from ..capture.records import PredictionLog, PredictionRecord
from ..core.clock import iso
from ..core.errors import ModelOpsError
from ..model.artifact import CLASSIFICATION, LoadedModel
from ..model.baseline import categorical_counts, numeric_baseline, numeric_counts
from ..monitoring import drift
from ..ports import ObjectStore

SHADOW_DIR = "shadow"
CHAMPION_VARIANT = "A"
CHUNK_ROWS = 1_000
TOP_FEATURES = 10
TOP_REASONS = 10
QUANTILES = (50, 90, 99)
SOURCE = "shadow"  # the id prefix of each row in the batch parser: "shadow,<row index>"
REGRESSION_TOLERANCE_SHARE = 0.1  # of the champion predictions' standard deviation
NO_CHART = "matplotlib is not in the Lambda layers: `modelops shadow run` draws the chart where it is installed"
EVENT_ACTION = "shadow"  # {"action": "shadow"} makes the monitor function run a shadow comparison
LATENCY_NOTE = (
    "champion: captured handler time up to its answer, per request, on Lambda; candidate: batch scoring time "
    "per row (parsing, checks, model call) in chunks of up to 1000 rows in the process that ran the shadow test. "
    "Not the same measurement: compare orders of magnitude only."
)


class NoShadowRows(ModelOpsError):
    """The window holds no champion request the candidate could be compared on."""


@dataclass
class ChampionRows:
    """Flattened champion rows of a window: inputs as JSON lines, the champion's answer per row."""

    lines: list[bytes] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    probabilities: list[dict[str, float] | None] = field(default_factory=list)  # by class, models with 3+ classes
    versions: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # per request
    request_rows: list[int] = field(default_factory=list)  # rows per request that has a latency
    requests: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> rows (or records, for whole records)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def champion_rows(
    records: Iterable[PredictionRecord], max_line_bytes: int | None = None, numeric: bool = False
) -> ChampionRows:
    """The rows the champion answered, each a JSON line of its inputs; anything else counted in `skipped`.
    numeric: a regression model's rows, whose answer must be a finite number."""
    out = ChampionRows()
    for r in records:
        if r.variant != CHAMPION_VARIANT:
            out.skipped["other variant (records)"] += 1
            continue
        if r.status != 200:
            out.skipped["failed request (records)"] += 1
            continue
        predictions, instances, scores = r.predictions, r.instances, r.scores
        if not isinstance(predictions, list) or not isinstance(instances, list) or len(instances) != len(predictions):
            out.skipped["malformed record (records)"] += 1
            continue
        if scores is not None and (not isinstance(scores, list) or len(scores) != len(predictions)):
            scores = None  # the labels still compare
        probabilities = r.probabilities
        if probabilities is not None and (
            not isinstance(probabilities, list) or len(probabilities) != len(predictions)
        ):
            probabilities = None
        classes = [str(c) for c in r.classes] if isinstance(r.classes, list) else None
        out.requests += 1
        kept = 0
        for i, (label, instance) in enumerate(zip(predictions, instances, strict=True)):
            if instance is None:
                out.skipped["row captured without inputs"] += 1
                continue
            if not isinstance(instance, dict) or label is None or isinstance(label, (dict, list)):
                out.skipped["malformed row"] += 1
                continue
            if numeric and _finite(label) is None:
                out.skipped["malformed row"] += 1
                continue
            try:
                line = orjson.dumps(instance)
            except (orjson.JSONEncodeError, TypeError):  # e.g. an integer beyond 64 bits
                out.skipped["row inputs not serialisable"] += 1
                continue
            if max_line_bytes is not None and len(line) > max_line_bytes:
                out.skipped["row inputs over the batch line bound"] += 1
                continue
            out.lines.append(line)
            out.labels.append(label)
            out.scores.append(_finite(scores[i]) if scores is not None else None)
            out.probabilities.append(_by_class(probabilities[i], classes) if probabilities is not None else None)
            out.versions[r.model_version] += 1
            kept += 1
        latency = _finite(r.latency_ms)
        if latency is not None and kept:
            out.latencies.append(latency)
            out.request_rows.append(len(predictions))
    return out


def _by_class(row: Any, classes: list[str] | None) -> dict[str, float] | None:
    """One row's class probabilities as {class: p}, or None unless every one is a finite number."""
    if isinstance(row, dict):
        pairs = [(str(k), _finite(v)) for k, v in row.items()]
    elif isinstance(row, list) and classes is not None and len(row) == len(classes):
        pairs = [(c, _finite(v)) for c, v in zip(classes, row, strict=True)]
    else:
        return None
    return {c: p for c, p in pairs if p is not None} if all(p is not None for _, p in pairs) else None


@dataclass
class CandidateRows:
    """The candidate's answers, by row index into ChampionRows.lines."""

    index: list[int] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    probabilities: list[list[float]] = field(default_factory=list)  # per class, in the candidate's class order
    matrices: list[np.ndarray] = field(default_factory=list)  # the scored rows' features, in schema order
    rejected: Counter = field(default_factory=Counter)  # reason -> rows
    seconds: float = 0.0


def score_candidate(model: LoadedModel, lines: list[bytes], chunk_rows: int = CHUNK_ROWS) -> CandidateRows:
    """Score the rows with the batch JSON Lines parser and Scorer; read the answers back from its output lines."""
    from ..batch.readers import JsonLinesParser
    from ..batch.scoring import Scorer

    scorer = Scorer(model)
    classification = bool(scorer.classes)
    out = CandidateRows()
    for start in range(0, len(lines), chunk_rows):
        block = b"\n".join(lines[start : start + chunk_rows]) + b"\n"
        began = time.perf_counter()
        parser = JsonLinesParser(scorer.schema, (), source=SOURCE)
        chunk = parser.parse(block, start)
        scored = scorer.score_rows(chunk.ids, chunk.matrix) if len(chunk.matrix) else None
        out.seconds += time.perf_counter() - began
        out.rejected.update(reason for _, reason in chunk.rejected)
        if scored is None:
            continue
        out.rejected.update(reason for _, reason in scored.rejected)
        matrix = chunk.matrix if scored.kept is None else chunk.matrix[scored.kept]
        out.matrices.append(matrix)
        # each line: shadow,<row>,<prediction>[,<proba per class>],<model_version>,<warnings>
        for fields in csv.reader(io.StringIO(scored.body.decode(), newline="")):  # a quoted label may hold a newline
            out.index.append(int(fields[1]))
            out.labels.append(fields[2])
            probabilities = [float(v) for v in fields[3 : 3 + len(scorer.classes)]]
            out.probabilities.append(probabilities)
            out.scores.append(probabilities[-1] if classification else float(fields[2]))
    return out


def _quantiles(values: np.ndarray) -> dict[str, Any]:
    if values.size == 0:
        return {"rows": 0, **{f"p{q}": None for q in QUANTILES}, "max": None}
    return {
        "rows": int(values.size),
        **{f"p{q}": float(np.percentile(values, q)) for q in QUANTILES},
        "max": float(values.max()),
    }


def _numbers(column: np.ndarray) -> np.ndarray:
    if column.dtype.kind == "f":
        return column.astype(np.float64)
    out = np.full(len(column), np.nan)
    for i, v in enumerate(column.tolist()):
        number = _finite(v)
        if number is not None:
            out[i] = number
    return out


def feature_contrast(
    model: LoadedModel, matrix: np.ndarray, disagree: np.ndarray, top: int = TOP_FEATURES
) -> list[dict[str, Any]]:
    """Features ranked by the PSI between their agreeing and disagreeing rows (see the module docstring)."""
    if not disagree.any() or disagree.all():
        return []
    out = []
    for j, f in enumerate(model.manifest.schema.features):
        column = matrix[:, j]
        base = model.manifest.baseline.get(f.name)
        entry: dict[str, Any] = {"feature": f.name}
        if f.dtype == "number":
            values = _numbers(column)
            edges = base["edges"] if base and base.get("kind") == "numeric" else numeric_baseline(values)["edges"]
            agree_counts = numeric_counts(values[~disagree], edges)
            disagree_counts = numeric_counts(values[disagree], edges)
            a, d = values[~disagree], values[disagree]
            entry["agree_mean"] = float(np.nanmean(a)) if np.isfinite(a).any() else None
            entry["disagree_mean"] = float(np.nanmean(d)) if np.isfinite(d).any() else None
        else:
            categories = (
                base["categories"]
                if base and base.get("kind") == "categorical"
                else sorted({str(v) for v in column.tolist() if v is not None and v == v})
            )
            agree_counts = categorical_counts(column[~disagree], categories)
            disagree_counts = categorical_counts(column[disagree], categories)
        if agree_counts.sum() == 0 or disagree_counts.sum() == 0:
            continue  # every value missing on one side: nothing to contrast
        entry["psi"] = drift.psi(agree_counts, disagree_counts)
        out.append(entry)
    out.sort(key=lambda e: (-e["psi"], e["feature"]))
    return out[:top]


def compare(
    model: LoadedModel,
    champion: ChampionRows,
    candidate: CandidateRows,
    tolerance: float | None = None,
) -> dict[str, Any]:
    """The comparison of the rows both models answered, as plain JSON types."""
    manifest = model.manifest
    classification = manifest.task == CLASSIFICATION
    idx = np.asarray(candidate.index, dtype=np.int64)
    n = int(idx.size)
    report: dict[str, Any] = {"task": manifest.task}
    if classification:
        champ_labels = [str(champion.labels[i]) for i in candidate.index]
        agree = np.array([a == b for a, b in zip(champ_labels, candidate.labels, strict=True)], dtype=bool)
        champ_scores = np.array([np.nan if champion.scores[i] is None else champion.scores[i] for i in candidate.index])
        cand_scores = np.asarray(candidate.scores, dtype=np.float64)
        has = np.isfinite(champ_scores)
        delta = cand_scores[has] - champ_scores[has]
        order = [str(c) for c in manifest.classes or []]
        seen = order + sorted(set(champ_labels) - set(order))
        counts = Counter(zip(champ_labels, candidate.labels, strict=True))
        report["confusion"] = {
            "rows": "champion label",
            "columns": "candidate label",
            "labels": seen,
            "counts": {a: {b: counts.get((a, b), 0) for b in order} for a in seen},
        }
        score_of = f"P({order[-1]})" if order else "score"
        if len(order) > 2:
            score_of, delta, by_class = _class_differences(order, champion, candidate)
            report["difference_by_class"] = by_class
        report["agreement"] = {"rate": float(agree.mean()) if n else None, "agree": int(agree.sum()), "rows": n}
    else:
        champ = np.array([float(champion.labels[i]) for i in candidate.index], dtype=np.float64)
        delta = np.asarray(candidate.scores, dtype=np.float64) - champ
        if tolerance is None:
            tolerance = REGRESSION_TOLERANCE_SHARE * (float(np.std(champ)) if n else 0.0)
        agree = np.abs(delta) <= tolerance
        score_of = "prediction"
        report["agreement"] = {
            "rate": float(agree.mean()) if n else None,
            "agree": int(agree.sum()),
            "rows": n,
            "tolerance": tolerance,
        }
    report["difference"] = {
        "of": score_of,
        "abs": _quantiles(np.abs(delta)),
        "mean_signed": float(delta.mean()) if delta.size and "difference_by_class" not in report else None,
    }
    matrix = np.concatenate(candidate.matrices) if candidate.matrices else np.zeros((0, len(manifest.features)))
    report["features"] = {
        "measure": "PSI between the feature's distribution on agreeing and on disagreeing rows (higher: the "
        "disagreements concentrate in part of its range)",
        "top": feature_contrast(model, matrix, ~agree) if n else [],
    }
    report["latency"] = latency(champion, candidate)
    return report


def _class_differences(
    order: list[str], champion: ChampionRows, candidate: CandidateRows
) -> tuple[str, np.ndarray, dict[str, Any]]:
    """Models with three or more classes: per row the largest change of any class's probability, and each
    class's own |delta| quantiles, over the rows whose capture holds every class's probability."""
    rows = []
    for j, i in enumerate(candidate.index):
        captured = champion.probabilities[i]
        if captured is not None and set(captured) == set(order):
            rows.append([candidate.probabilities[j][c] - captured[name] for c, name in enumerate(order)])
    deltas = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(order))
    by_class = {name: _quantiles(np.abs(deltas[:, c])) for c, name in enumerate(order)}
    largest = np.abs(deltas).max(axis=1) if len(rows) else np.zeros(0)
    # signed mean of a maximum means nothing: mean_signed stays None (largest is already absolute)
    return "largest per-class probability change", largest, by_class


def latency(champion: ChampionRows, candidate: CandidateRows) -> dict[str, Any]:
    per_request = np.asarray(champion.latencies, dtype=np.float64)
    per_row = per_request / np.maximum(np.asarray(champion.request_rows, dtype=np.float64), 1.0)
    scored = len(candidate.index)
    return {
        "champion_requests_with_latency": int(per_request.size),
        "champion_request_ms_p50": float(np.percentile(per_request, 50)) if per_request.size else None,
        "champion_request_ms_p99": float(np.percentile(per_request, 99)) if per_request.size else None,
        "champion_ms_per_row_p50": float(np.percentile(per_row, 50)) if per_row.size else None,
        "candidate_ms_per_row": 1000 * candidate.seconds / scored if scored else None,
        "candidate_rows_per_second": scored / candidate.seconds if scored and candidate.seconds > 0 else None,
        "note": LATENCY_NOTE,
    }


def run(
    model: LoadedModel,
    log: PredictionLog,
    *,
    since: float,
    until: float,
    max_records: int | None = DEFAULT_MAX_RECORDS,
    tolerance: float | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> dict[str, Any]:
    """Read the window's champion rows, score them with the candidate and compare; NoShadowRows when none."""
    captured, dropped = log.read_newest(since, until, max_records)
    champion = champion_rows(captured, max_line_bytes, numeric=model.manifest.task != CLASSIFICATION)
    if log.malformed:
        champion.skipped["malformed capture line (records)"] += log.malformed
    window = {"since": iso(since), "until": iso(until)}
    if not champion.lines:
        skipped = "; ".join(f"{k}: {v}" for k, v in sorted(champion.skipped.items()))
        raise NoShadowRows(
            f"no captured champion rows to compare between {window['since']} and {window['until']}"
            + (f" ({skipped})" if skipped else " (is capture on? MODELOPS_CAPTURE=on, OnlineCapture=on)")
        )
    candidate = score_candidate(model, champion.lines)
    report = {
        "model": model.manifest.name,
        "candidate": model.manifest.version,
        "champion_versions": dict(champion.versions),
        "window": window,
        "generated_at": iso(time.time()),
        "requests": champion.requests,
        "rows": {
            "captured": len(champion.lines) + sum(v for k, v in champion.skipped.items() if "(records)" not in k),
            "compared": len(candidate.index),
            "skipped": dict(champion.skipped),
            "rejected_by_candidate": sum(candidate.rejected.values()),
            "rejection_reasons": dict(candidate.rejected.most_common(TOP_REASONS)),
            "dropped_oldest_records": dropped,
        },
    }
    report.update(compare(model, champion, candidate, tolerance))
    return report


# ---- chart and storage ----------------------------------------------------------------------------------
def chart_png(report: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    confusion = report.get("confusion")
    ax = axes[0]
    if confusion:
        labels = confusion["labels"]
        columns = list(next(iter(confusion["counts"].values()), {}).keys())
        grid = np.array([[confusion["counts"][a].get(b, 0) for b in columns] for a in labels])
        ax.imshow(grid, cmap="Blues")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(
                j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v > grid.max() / 2 else "black"
            )
        ax.set_xticks(range(len(columns)), columns, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("candidate")
        ax.set_ylabel("champion")
    ax.set_title(f"agreement {100 * (report['agreement']['rate'] or 0):.1f}%")
    diff = report["difference"]["abs"]
    keys = [f"p{q}" for q in QUANTILES] + ["max"]
    axes[1].bar(keys, [diff[k] or 0 for k in keys], color="#4c72b0")
    axes[1].set_title(f"|delta| of {report['difference']['of']}")
    top = report["features"]["top"][:6]
    axes[2].barh([t["feature"][:24] for t in top][::-1], [t["psi"] for t in top][::-1], color="#dd8452")
    axes[2].set_title("disagreement contrast (PSI)")
    lat = report["latency"]
    axes[3].bar(
        ["champion\nms/row p50", "candidate\nms/row"],
        [lat["champion_ms_per_row_p50"] or 0, lat["candidate_ms_per_row"] or 0],
        color=["#4c72b0", "#dd8452"],
    )
    axes[3].set_title("latency (not the same measurement)", fontsize=9)
    fig.suptitle(
        f"shadow {report['model']} {report['candidate']}: {report['rows']['compared']} rows, "
        f"{report['window']['since']} - {report['window']['until']}"[:150],
        fontsize=9,
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def report_stem(prefix: str, model: str, version: str, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    name = f"{stamp}-{secrets.token_hex(4)}"
    return "/".join(p for p in (prefix.strip("/"), SHADOW_DIR, model, version, name) if p)


def store_report(store: ObjectStore, prefix: str, report: dict[str, Any], png: bytes | None) -> dict[str, str]:
    """The chart, then the JSON naming it (written last: a listed JSON always has its chart); never overwrites.
    png None: the JSON alone, saying why there is no chart."""
    stem = report_stem(prefix, report["model"], report["candidate"])
    keys = {"json": f"{stem}.json"}
    stored = dict(report)
    if png is not None:
        keys["png"] = f"{stem}.png"
        store.put(keys["png"], png, content_type="image/png", if_none_match=True)
        stored["chart"] = store.uri(keys["png"])
    else:
        stored["chart"] = None
        stored["chart_note"] = NO_CHART
    body = orjson.dumps(stored, option=orjson.OPT_INDENT_2)
    store.put(keys["json"], body, content_type="application/json", if_none_match=True)
    return {k: store.uri(v) for k, v in keys.items()}


def can_chart() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def scheduled(
    registry: Any,
    name: str,
    store: ObjectStore,
    prefix: str,
    version: str,
    *,
    since: float,
    until: float,
    max_records: int | None = DEFAULT_MAX_RECORDS,
) -> dict[str, Any]:
    """One scheduled shadow test (the monitor function on {"action": "shadow"}): a summary of the stored report,
    or why there is none. No candidate, or no captured rows, is a skip; an unknown candidate raises."""
    if not version:
        return {"outcome": "skipped", "reason": "no candidate: set ShadowVersion or ChallengerVersion"}
    model = registry.load(name, version)
    try:
        report = run(model, PredictionLog(store, prefix), since=since, until=until, max_records=max_records)
    except NoShadowRows as exc:
        return {"outcome": "skipped", "candidate": model.manifest.version, "reason": str(exc)}
    stored = store_report(store, prefix, report, chart_png(report) if can_chart() else None)
    return {
        "outcome": "stored",
        "candidate": model.manifest.version,
        "rows": report["rows"]["compared"],
        "agreement": report["agreement"]["rate"],
        "abs_difference_p99": report["difference"]["abs"]["p99"],
        "top_feature": (report["features"]["top"] or [{}])[0].get("feature"),
        **stored,
    }
