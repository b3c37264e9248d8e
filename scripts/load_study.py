"""Load test of the Turing test through the real app, on loopback.

Starts ``python app.py`` on a free port with a fresh data directory and a study
config of its own, then N participants in parallel (threads, one
``gradio_client.Client`` each) each play J judgments through the public
``/study_start`` and ``/study_answer`` endpoints. Afterwards the database is
checked: ``PRAGMA integrity_check``, the number of rows, and that every judgment
the server acknowledged is stored with the choice that was sent.

With ``--kill-after K`` the server is killed with SIGKILL once K judgments have
been acknowledged; the same checks then run on what is left on disk.

Everything is bounded: loopback only, a deadline for the whole run, the server
is stopped at the end whatever happens.

    python scripts/load_study.py                 # 20 participants x 50 judgments
    python scripts/load_study.py --kill-after 300
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppProcess:
    """A running ``python app.py`` (see :func:`launch_app`)."""

    proc: subprocess.Popen
    url: str
    data_dir: Path
    log_path: Path

    @property
    def db(self) -> Path:
        return self.data_dir / "study.sqlite"

    def kill9(self) -> None:
        """SIGKILL the server process: no shutdown code of it runs."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@contextlib.contextmanager
def launch_app(data_dir: Path, study_config: Optional[Path] = None, port: Optional[int] = None,
               timeout: float = 120.0, extra_env: Optional[Dict[str, str]] = None) -> Iterator[AppProcess]:
    """Start the real app (``python app.py``) on loopback; yields once it answers HTTP.

    Env: ``GRADIO_SERVER_PORT``, ``COLORBENCH_DATA_DIR``, ``COLORBENCH_STUDY_CONFIG``,
    ``COLORBENCH_OFFLINE=1`` and ``HF_HUB_OFFLINE=1`` (no network), one torch thread. The
    server is stopped on exit. (The same launch as ``tests/conftest.py``'s ``start_app``;
    kept here so this script runs without pytest.)
    """
    port = port or free_port()
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "COLORBENCH_DATA_DIR": str(data_dir), "COLORBENCH_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(data_dir / "gradio_tmp"),
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    if study_config is not None:
        env["COLORBENCH_STUDY_CONFIG"] = str(study_config)
    env.update(extra_env or {})
    log_path = data_dir / "app.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    app = AppProcess(proc, f"http://127.0.0.1:{port}/", data_dir, log_path)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with {proc.returncode}:\n{app.log_tail()}")
            try:
                with urllib.request.urlopen(app.url + "gradio_api/info", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start within {timeout:.0f} s:\n{app.log_tail()}")
            time.sleep(0.3)
        yield app
    finally:
        app.stop()
        log.close()


def write_config(path: Path, **overrides) -> Path:
    """A study config for load tests: the ``gray`` model, rate limits off, fast-answer flag kept."""
    cfg = {"name": "load", "dataset": "builtin", "models": ["gray"], "vigilance_model": "random", "n_images": 8,
           "image_size": 256, "n_practice": 10, "n_test": 40, "min_response_ms": 300,
           "max_answers_per_minute": 0, "max_sessions_per_ip_per_hour": 0, "max_answers_per_ip_per_minute": 0}
    cfg.update(overrides)
    path.write_text(json.dumps(cfg))
    return path


@dataclass
class LoadResult:
    acknowledged: List[Tuple[str, str, str]] = field(default_factory=list)  # (participant, trial, choice)
    latencies_ms: List[float] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    seconds: float = 0.0
    first_answer: Optional[float] = None
    last_answer: Optional[float] = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def summary(self) -> Dict:
        lat = sorted(self.latencies_ms)
        pct = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1)) if lat else (lambda q: None)
        span = (self.last_answer - self.first_answer) if self.first_answer and self.last_answer else 0.0
        return {"acknowledged": len(self.acknowledged), "errors": len(self.errors), "seconds": round(self.seconds, 2),
                "answer_phase_s": round(span, 2),
                "answers_per_s": round(len(self.acknowledged) / span, 1) if span else None,
                "p50_ms": pct(0.5), "p95_ms": pct(0.95), "max_ms": round(lat[-1], 1) if lat else None,
                "mean_ms": round(statistics.fmean(lat), 1) if lat else None}


def run_load(url: str, participants: int = 20, judgments: int = 50, deadline_s: float = 600.0,
             kill: Optional[Tuple[int, "AppProcess"]] = None) -> LoadResult:
    """``participants`` threads, each starting a session and answering ``judgments`` pairs.

    ``kill=(k, app)``: SIGKILL the app once ``k`` answers have been acknowledged; the
    failures that follow are expected and counted as errors.
    """
    from gradio_client import Client

    res = LoadResult()
    stop = threading.Event()
    end = time.monotonic() + deadline_s
    killed = threading.Event()

    def player(i: int) -> None:
        try:
            client = Client(url, verbose=False)
            r = client.predict(True, api_name="/study_start")
            pid, trial = r["participant_id"], r["trial"]
            for k in range(judgments):
                if stop.is_set() or time.monotonic() > end or trial is None:
                    break
                choice = "left" if (i + k) % 3 else "right"
                t0 = time.perf_counter()
                a = client.predict(pid, trial["trial_id"], choice, api_name="/study_answer")
                t1 = time.perf_counter()
                dt = (t1 - t0) * 1000.0
                with res.lock:
                    res.first_answer = min(res.first_answer or t0, t0)
                    res.last_answer = max(res.last_answer or t1, t1)
                    res.acknowledged.append((pid, trial["trial_id"], choice))
                    res.latencies_ms.append(dt)
                    n = len(res.acknowledged)
                if kill is not None and n >= kill[0] and not killed.is_set():
                    killed.set()
                    kill[1].kill9()
                    stop.set()
                trial = a["next"]
        except Exception as e:  # noqa: BLE001 - every failure is counted, none stops the others
            with res.lock:
                res.errors.append(f"participant {i}: {type(e).__name__}: {str(e)[:200]}")

    t0 = time.perf_counter()
    threads = [threading.Thread(target=player, args=(i,), daemon=True) for i in range(participants)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, end - time.monotonic() + 30))
    res.seconds = time.perf_counter() - t0
    return res


def check_db(db: Path, acknowledged: List[Tuple[str, str, str]]) -> Dict:
    """Open the database as the app would (recovering a WAL left by a crash) after the run:
    integrity, row count, acknowledged rows present."""
    con = sqlite3.connect(db, timeout=30)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
        rows = {(p, t): c for p, t, c in con.execute("SELECT participant_id, trial_id, choice FROM judgments")}
        n_participants = con.execute("SELECT COUNT(*) FROM participants").fetchone()[0]
        dup = con.execute("SELECT COUNT(*) - COUNT(DISTINCT trial_id) FROM judgments").fetchone()[0]
    finally:
        con.close()
    missing = [a for a in acknowledged if rows.get((a[0], a[1])) != a[2]]
    return {"integrity": integrity, "rows": len(rows), "participants": n_participants, "duplicates": dup,
            "acknowledged_missing": len(missing)}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=20)
    ap.add_argument("--judgments", type=int, default=50)
    ap.add_argument("--kill-after", type=int, default=None, help="SIGKILL the server after this many acknowledged")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--deadline", type=float, default=600.0, help="seconds for the whole load phase")
    ap.add_argument("--data-dir", default=None, help="default: a temporary folder")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="colorbench-load-") as tmp:
        data = Path(args.data_dir or tmp)
        n_test = max(1, args.judgments - 10)
        cfg = write_config(Path(tmp) / "load.json", image_size=args.image_size,
                           n_practice=min(10, args.judgments - 1), n_test=n_test)
        with launch_app(data, cfg) as app:
            res = run_load(app.url, args.participants, args.judgments, args.deadline,
                           kill=(args.kill_after, app) if args.kill_after else None)
        report = {"participants": args.participants, "judgments_each": args.judgments, **res.summary(),
                  **check_db(app.db, res.acknowledged)}
        if res.errors and not args.kill_after:
            report["first_errors"] = res.errors[:5]
        print(json.dumps(report, indent=2))
        expected = args.participants * args.judgments
        ok = report["integrity"] == "ok" and report["acknowledged_missing"] == 0 and report["duplicates"] == 0
        if not args.kill_after:
            ok = ok and report["errors"] == 0 and report["rows"] == expected
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
