"""Load on loopback against the local API (`make serve` in a child process: local API Gateway ->
Runtime Interface Emulator pool -> the real predict handler): N requests of POST /predict (1 row) at
concurrency C over keep-alive connections. Bounded in count and in time. Writes bench/results/load.json.

    python bench/bench_load.py [--requests 20000] [--concurrency 32] [--time-limit 600] [--pool 4]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from devtools.processes import free_port  # noqa: E402


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def start_server(port: int, pool: int, template: Path) -> tuple[subprocess.Popen[str], str]:
    """The running local API and its base path (the stage prefix, /v1), read from its banner."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.serve",
            "--port",
            str(port),
            "--pool",
            str(pool),
            "--quiet",
            "--template",
            str(template),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    lines = []
    base_path = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the local API exited before it was ready:\n" + "".join(lines))
        lines.append(line)
        if line.startswith("API:"):
            base_path = urlsplit(line.split(None, 1)[1].strip()).path.rstrip("/")
        if line.startswith("Ctrl-C"):
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep draining
            return proc, base_path
    raise RuntimeError("the local API was not ready within 300 s")


def load(port: int, path: str, body: bytes, requests: int, concurrency: int, time_limit: float) -> dict[str, object]:
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(requests))
    deadline = time.monotonic() + time_limit
    headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < deadline:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            latencies[i].append((time.perf_counter() - t0) * 1000)
            if status != 200:
                errors[i] += 1
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    all_ms = sorted(x for per in latencies for x in per)
    return {
        "requests": len(all_ms),
        "errors": sum(errors),
        "seconds": elapsed,
        "statuses": statuses,
        "p50_ms": percentile(all_ms, 50),
        "p99_ms": percentile(all_ms, 99),
        "rps": len(all_ms) / elapsed if elapsed else 0.0,
        "timed_out": len(all_ms) < requests,
    }


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--time-limit", type=float, default=600.0, help="stop sending after this many seconds")
    p.add_argument("--pool", type=int, default=max(2, os.cpu_count() or 2), help="emulators behind the API")
    p.add_argument("--template", type=Path, default=REPO / "template.yaml")
    p.add_argument("--out", type=Path, default=HERE / "results" / "load.json")
    args = p.parse_args(argv)

    from modelops.model.artifact import load_from_dir

    from devtools.local_stack import MODEL_CACHE

    port = free_port()
    server, base_path = start_server(port, args.pool, args.template)
    try:
        example = load_from_dir(MODEL_CACHE / "breast-cancer").manifest.schema.example_instance()
        body = json.dumps({"instances": [example]}).encode()
        path = base_path + "/predict"
        load(port, path, body, min(200, args.requests), min(8, args.concurrency), 60)  # warm every emulator
        result = load(port, path, body, args.requests, args.concurrency, args.time_limit)
    finally:
        os.killpg(server.pid, signal.SIGINT)  # make serve's own shutdown stops its emulators and moto
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
    case = f"POST /predict 1 row, {args.concurrency} connections, {args.pool} emulators"
    complete = not result["timed_out"]
    rows = [
        {
            "case": case,
            "metric": "requests",
            "value": float(result["requests"]),
            "target": f"= {args.requests}",
            "ok": complete,
        },
        {
            "case": case,
            "metric": "errors",
            "value": float(result["errors"]),
            "target": "= 0",
            "ok": result["errors"] == 0,
        },
        {"case": case, "metric": "p50_ms", "value": result["p50_ms"], "target": "report", "ok": True},
        {"case": case, "metric": "p99_ms", "value": result["p99_ms"], "target": "report", "ok": True},
        {"case": case, "metric": "req_per_s", "value": result["rps"], "target": "report", "ok": True},
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "title": "load (local API, loopback)",
                "rows": rows,
                "detail": {**result, "concurrency": args.concurrency, "pool": args.pool, "cpus": os.cpu_count()},
            },
            indent=1,
        )
    )
    print(json.dumps({k: v for k, v in result.items()}, indent=1))
    return 0 if complete and result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
