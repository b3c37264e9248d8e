#!/usr/bin/env python
"""Latency of the app's ``/colorize`` endpoint under 1, 4 and 8 concurrent clients.

Starts ``python app.py`` on a free loopback port (or uses ``--url``), warms the
model up with one request, then for each concurrency level runs a fixed number
of requests from that many ``gradio_client`` clients in threads and prints
p50 / p95 / mean latency (upload + queue + colorize + PNG download, as a client
sees it) and throughput. Bounded: ``--requests`` per level and ``--timeout``
overall; the app it started is stopped at the end.

    python scripts/bench_app_latency.py --model gray --requests 24
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO_ROOT / "colorbench" / "data" / "builtin" / "opencv_fruits.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(workdir: Path, timeout: float, extra_env: Optional[dict] = None) -> Tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1",
               GRADIO_ANALYTICS_ENABLED="False", GRADIO_TEMP_DIR=str(workdir / "gradio"),
               COLORBENCH_DATA_DIR=str(workdir / "data"), COLORBENCH_OFFLINE="1", COLORBENCH_LOG_LEVEL="WARNING")
    env.update(extra_env or {})
    log = open(workdir / "app.log", "wb")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"app exited early; see {workdir / 'app.log'}")
        try:
            with urllib.request.urlopen(url + "/config", timeout=5):
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"app did not start within {timeout:.0f} s")


def percentile(xs: List[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of a non-empty list."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def run_level(url: str, image: str, model: str, clients: int, requests: int, download_dir: str
              ) -> Tuple[List[float], int, float]:
    """``requests`` calls spread over ``clients`` threads -> (latencies s, errors, wall s)."""
    from gradio_client import Client, handle_file

    pool = [Client(url, verbose=False, download_files=download_dir) for _ in range(clients)]
    lat: List[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker(c) -> None:
        nonlocal errors
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            t0 = time.perf_counter()
            try:
                c.predict(handle_file(image), model, api_name="/colorize")
                ok = True
            except Exception as e:  # counted, reported
                ok = False
                print(f"  error: {type(e).__name__}: {e}", file=sys.stderr)
            dt = time.perf_counter() - t0
            with lock:
                if ok:
                    lat.append(dt)
                else:
                    errors += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as ex:
        list(ex.map(worker, pool))
    return lat, errors, time.perf_counter() - t0


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="an app already running (default: start one on a free port)")
    ap.add_argument("--model", default="gray")
    ap.add_argument("--image", default=str(DEFAULT_IMAGE))
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--requests", type=int, default=24, help="requests per concurrency level")
    ap.add_argument("--timeout", type=float, default=900, help="overall limit in seconds")
    ap.add_argument("--concurrency-limit", type=int, default=None,
                    help="COLORBENCH_CONCURRENCY for the app this script starts (default: the app's)")
    args = ap.parse_args(argv)

    def on_alarm(*_):
        raise SystemExit(f"stopped after the overall limit of {args.timeout:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.timeout))
    work = Path(tempfile.mkdtemp(prefix="colorbench_latency_"))
    proc = None
    try:
        url = args.url
        if url is None:
            extra = {"COLORBENCH_CONCURRENCY": str(args.concurrency_limit)} if args.concurrency_limit else {}
            t0 = time.perf_counter()
            proc, url = start_app(work, timeout=min(300.0, args.timeout), extra_env=extra)
            print(f"app started in {time.perf_counter() - t0:.1f} s at {url}")
        from PIL import Image

        w, h = Image.open(args.image).size
        lat, err, _ = run_level(url, args.image, args.model, 1, 1, str(work / "dl"))  # warm-up: model load
        if err:
            raise SystemExit("the warm-up request failed; see the error above")
        print(f"warm-up (first request, model load) {lat[0] * 1000:.0f} ms; image {w}x{h}, model {args.model}, "
              f"{os.cpu_count()} CPUs")
        rows = []
        for c in args.clients:
            lat, err, wall = run_level(url, args.image, args.model, c, args.requests, str(work / "dl"))
            rows.append((c, len(lat) + err, err, percentile(lat, 50) if lat else float("nan"),
                         percentile(lat, 95) if lat else float("nan"),
                         statistics.fmean(lat) if lat else float("nan"), len(lat) / wall if wall else 0.0))
        print()
        print(f"{'clients':>7} {'requests':>8} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'req/s':>6}")
        for c, n, e, p50, p95, mean, rps in rows:
            print(f"{c:>7} {n:>8} {e:>6} {p50 * 1000:>8.0f} {p95 * 1000:>8.0f} {mean * 1000:>8.0f} {rps:>6.2f}")
        return 0 if all(r[2] == 0 for r in rows) else 1
    finally:
        signal.alarm(0)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
