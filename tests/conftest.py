"""Shared fixtures: launching the real app (``python app.py``) in a subprocess.

``app_server`` (session scope) is one app on a free port with a temporary data
directory, shared by the end-to-end and browser tests. ``app_factory`` starts
extra apps with their own environment (e.g. a study configuration) and stops
them after the test::

    def test_x(app_factory):
        app = app_factory(env={"COLORBENCH_SOMETHING": "1"})
        Client(app.url).predict(...)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = float(os.environ.get("COLORBENCH_TEST_START_TIMEOUT", 180))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningApp:
    """A ``python app.py`` subprocess serving on ``url``."""

    url: str
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen
    env: Dict[str, str] = field(repr=False, default_factory=dict)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _wait_ready(app: RunningApp, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not app.alive():
            raise RuntimeError(f"app exited with code {app.process.returncode} before answering:\n{app.log_tail()}")
        try:
            with urllib.request.urlopen(app.url + "/config", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.3)
    app.stop()
    raise RuntimeError(f"app did not answer within {timeout:.0f} s ({last}):\n{app.log_tail()}")


def start_app(base_dir: Path, env: Optional[Dict[str, str]] = None, timeout: float = START_TIMEOUT) -> RunningApp:
    """Start ``python app.py`` on a free port with a fresh data dir under ``base_dir``; wait until it answers.

    ``env`` entries override the defaults (``COLORBENCH_DATA_DIR``, ``GRADIO_TEMP_DIR``,
    ``COLORBENCH_OFFLINE=1``, one torch thread).
    """
    base_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    data_dir = base_dir / "data"
    gradio_tmp = base_dir / "gradio_tmp"
    full_env = dict(os.environ)
    full_env.update({
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(gradio_tmp),
        "COLORBENCH_DATA_DIR": str(data_dir),
        "COLORBENCH_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    })
    full_env.update(env or {})
    log_path = base_dir / "app.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO_ROOT, env=full_env, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    app = RunningApp(f"http://127.0.0.1:{port}", port, Path(full_env["COLORBENCH_DATA_DIR"]), log_path, proc,
                     full_env)
    _wait_ready(app, timeout)
    return app


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report as ``item.rep_<phase>`` (fixtures use it to save evidence on failure)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(scope="session")
def app_server(tmp_path_factory) -> Iterator[RunningApp]:
    """One real app for the session (small limits so the limit paths are cheap to test)."""
    env = {
        "COLORBENCH_MAX_UPLOAD_MB": "2",
        "COLORBENCH_MAX_VIDEO_SECONDS": "3",
        "COLORBENCH_MAX_VIDEO_SIDE": "640",
    }
    app = start_app(tmp_path_factory.mktemp("app"), env=env)
    yield app
    app.stop()


@pytest.fixture
def app_factory(tmp_path) -> Iterator[Callable[..., RunningApp]]:
    """``app_factory(env=None)`` starts another app for this test; all are stopped afterwards."""
    apps: List[RunningApp] = []

    def make(env: Optional[Dict[str, str]] = None, timeout: float = START_TIMEOUT) -> RunningApp:
        app = start_app(tmp_path / f"app{len(apps)}", env=env, timeout=timeout)
        apps.append(app)
        return app

    yield make
    for a in apps:
        a.stop()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory) -> Path:
    """Where browser tests save screenshots (a tmp dir; copied to ``$COLORBENCH_SCREENSHOTS`` if set)."""
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="session")
def save_shot(screenshot_dir) -> Callable[[bytes, str], Path]:
    """``save_shot(png_bytes, name)`` -> path in ``screenshot_dir`` (and ``$COLORBENCH_SCREENSHOTS``)."""
    return lambda png, name: save_screenshot(png, name, screenshot_dir)


def save_screenshot(png: bytes, name: str, folder: Path) -> Path:
    """Write a screenshot to ``folder`` and, when ``COLORBENCH_SCREENSHOTS`` is set, there too."""
    path = folder / f"{name}.png"
    path.write_bytes(png)
    extra = os.environ.get("COLORBENCH_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)
    return path
