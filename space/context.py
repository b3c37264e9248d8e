"""One frozen settings object handed to every tab (no module-level globals).

Besides paths and limits it carries a :class:`ModelCatalog`: which registered
models can run here and, for those that cannot, why. Availability is decided
cheaply (weights resolved on disk without downloading; a HEAD request with a short
timeout for weights that would be downloaded) and cached for the process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILTIN_DIR = REPO_ROOT / "colorbench" / "data" / "builtin"
PROBE_TIMEOUT = 3.0  # seconds for a reachability check of a weights URL


@dataclass(frozen=True)
class ModelStatus:
    """Whether one model can run in this app.

    Attributes:
        name: registry name.
        available: True when the model can be created here.
        reason: why it is unavailable, or a note when it is available (e.g.
            "weights are downloaded on first use"); empty otherwise.
        info: the registry meta (``kind``, ``paper``, ``description``, ``hints``,
            ``temperature``, ``weights``).
        verified: False when the cheap check could not decide (a model with no
            weights of its own that is not a baseline, e.g. an ensemble whose members
            carry the weights); :meth:`ModelCatalog.verify_pending` builds it to find out.
    """

    name: str
    available: bool
    reason: str = ""
    info: Dict[str, Any] = field(default_factory=dict, compare=False)
    verified: bool = True

    @property
    def kind(self) -> str:
        return str(self.info.get("kind", ""))

    @property
    def hints(self) -> bool:
        return bool(self.info.get("hints", False))

    @property
    def temperature(self) -> bool:
        return bool(self.info.get("temperature", False))


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes")
               for v in ("COLORBENCH_OFFLINE", "HF_HUB_OFFLINE"))


def _reachable(url: str, timeout: float = PROBE_TIMEOUT) -> Tuple[bool, str]:
    """A HEAD request: (True, "") when the server answers below 400, else (False, why)."""
    try:
        req = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return (r.status < 400, f"HTTP {r.status}")
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return False, f"{type(reason).__name__}: {reason}"


class ModelCatalog:
    """Availability of the registered models, computed once per name and cached.

    Args:
        names: models offered (default: every registered model).
        probe_network: allow a HEAD request for weights that are not on disk;
            False (or ``COLORBENCH_OFFLINE=1``) treats them as unavailable.
    """

    def __init__(self, names: Tuple[str, ...] = (), probe_network: bool = True) -> None:
        self._names = tuple(names)
        self._probe = probe_network
        self._cache: Dict[str, ModelStatus] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> Tuple[str, ...]:
        if not self._names:
            from colorbench.models import list_models

            self._names = tuple(list_models())
        return self._names

    def _check(self, name: str) -> ModelStatus:
        from colorbench.models import model_info
        from colorbench.registry import UnknownNameError
        from colorbench.weights import WeightsCorrupted, WeightsUnavailable, resolve

        try:
            info = model_info(name)
        except UnknownNameError as e:
            return ModelStatus(name, False, str(e))
        spec = info.get("weights")
        if spec is None:
            return ModelStatus(name, True, "", info, verified=info.get("kind") == "baseline")
        try:
            resolve(spec, download=False)
            return ModelStatus(name, True, "", info)
        except WeightsCorrupted as e:
            return ModelStatus(name, False, f"weights file is corrupted: {e}", info)
        except WeightsUnavailable as e:
            local = str(e)
        url = spec.url or (f"https://huggingface.co/{spec.hub_id}" if spec.hub_id else None)
        if url is None:
            return ModelStatus(name, False, f"weights are not shipped with this copy ({local})", info)
        if not self._probe or _offline():
            return ModelStatus(name, False, f"published weights are not cached and the app is offline; {local}", info)
        ok, why = _reachable(url)
        if ok:
            return ModelStatus(name, True, "published weights are downloaded on first use", info)
        host = urllib.parse.urlsplit(url).netloc
        return ModelStatus(name, False, f"published weights cannot be downloaded here ({host}: {why}); {local}", info)

    def status(self, name: str) -> ModelStatus:
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None:
            return cached
        st = self._check(name)
        with self._lock:
            return self._cache.setdefault(name, st)

    def statuses(self) -> List[ModelStatus]:
        """Every offered model's status (checks run in parallel the first time)."""
        todo = [n for n in self.names if n not in self._cache]
        if todo:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
                list(pool.map(self.status, todo))
            log.info("checked availability of %d models in %.2f s", len(todo), time.perf_counter() - t0)
        return [self.status(n) for n in self.names]

    def available(self) -> List[str]:
        return [s.name for s in self.statuses() if s.available]

    def verify(self, name: str) -> ModelStatus:
        """Decide an unverified model by building it (through the pipeline's cache, so the
        work is not wasted); a failure marks it unavailable with the error as reason."""
        st = self.status(name)
        if st.verified or not st.available:
            return st
        from colorbench.pipeline import get_model

        try:
            get_model(name)
        except Exception as e:  # missing member weights, corrupted files, ...
            self.mark_unavailable(name, f"{type(e).__name__}: {e}")
        else:
            with self._lock:
                self._cache[name] = ModelStatus(name, True, st.reason, st.info, verified=True)
        return self.status(name)

    def verify_pending(self, background: bool = True) -> Optional[threading.Thread]:
        """Verify every unverified model, in a daemon thread by default (the app keeps starting)."""
        pending = [s.name for s in self.statuses() if s.available and not s.verified]
        if not pending:
            return None

        def run() -> None:
            for n in pending:
                self.verify(n)
            log.info("verified %d model(s): %s", len(pending),
                     ", ".join(f"{n}={'ok' if self.status(n).available else 'unavailable'}" for n in pending))

        if not background:
            run()
            return None
        t = threading.Thread(target=run, name="colorbench-verify-models", daemon=True)
        t.start()
        return t

    def mark_unavailable(self, name: str, reason: str) -> None:
        """Record a failure seen at run time (e.g. a download that failed)."""
        old = self.status(name)
        with self._lock:
            self._cache[name] = ModelStatus(name, False, reason, old.info, verified=True)
        log.warning("model %s marked unavailable: %s", name, reason)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class AppContext:
    """Paths and settings of one running app.

    Attributes:
        data_dir: where the app writes (study database, outputs); created on start.
        results_dir: committed benchmark results shown on the leaderboard.
        models: model names offered in the menus (default: every registered model).
        default_model: preselected model (falls back to the first available one).
        max_upload_mb: upload size limit (Gradio ``max_file_size``).
        max_pixels: image pixel limit passed to the loader.
        concurrency_limit: events of one kind running at once (queue default).
        queue_max_size: requests waiting in the queue before new ones are refused.
        max_video_seconds: longest clip the video tab accepts.
        max_video_side: largest width or height of a clip, in pixels.
        max_video_frames: most frames a clip may have.
        examples_dir: folder of example photos (the builtin evaluation set).
        catalog: model availability, cached.
    """

    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("COLORBENCH_DATA_DIR", REPO_ROOT / "space_data")))
    results_dir: Path = field(default_factory=lambda: Path(os.environ.get("COLORBENCH_RESULTS_DIR", REPO_ROOT / "results")))
    models: Tuple[str, ...] = ()
    default_model: str = "colorbench_lite0"
    max_upload_mb: int = 25
    max_pixels: int = 40_000_000
    concurrency_limit: int = 2
    queue_max_size: int = 64
    max_video_seconds: float = 20.0
    max_video_side: int = 1280
    max_video_frames: int = 600
    examples_dir: Path = BUILTIN_DIR
    catalog: Optional[ModelCatalog] = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.catalog is None:
            object.__setattr__(self, "catalog", ModelCatalog(self.models))

    @property
    def study_db(self) -> Path:
        return self.data_dir / "study.sqlite"

    @property
    def outputs_dir(self) -> Path:
        """Where result files offered for download are written (pruned after an hour)."""
        return self.data_dir / "outputs"

    def pick_default_model(self) -> Optional[str]:
        """``default_model`` when it can run here; else a verified trained model; else a
        baseline (``gray`` first); None when nothing can run."""
        statuses = [s for s in self.catalog.statuses() if s.available]
        names = [s.name for s in statuses]
        if self.default_model in names:
            return self.default_model
        trained = [s.name for s in statuses if s.verified and s.kind != "baseline"]
        if trained:
            return trained[0]
        if "gray" in names:
            return "gray"
        return names[0] if names else None

    def example_images(self, limit: int = 0) -> List[Path]:
        """Example photos, sorted by name (all when ``limit`` is 0)."""
        if not self.examples_dir.is_dir():
            return []
        files = sorted(p for p in self.examples_dir.iterdir()
                       if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
        return files[:limit] if limit else files

    @classmethod
    def from_env(cls) -> "AppContext":
        """Settings from the environment (``COLORBENCH_*``); creates ``data_dir``.

        ``COLORBENCH_MODELS`` (comma-separated) restricts the offered models;
        ``COLORBENCH_OFFLINE=1`` skips the reachability check of weight URLs.
        """
        from colorbench.models import DEFAULT_MODEL, list_models

        names = tuple(n.strip() for n in os.environ.get("COLORBENCH_MODELS", "").split(",") if n.strip())
        models = names or tuple(list_models())
        ctx = cls(
            models=models,
            default_model=os.environ.get("COLORBENCH_DEFAULT_MODEL", DEFAULT_MODEL),
            max_upload_mb=_env_int("COLORBENCH_MAX_UPLOAD_MB", 25),
            max_pixels=_env_int("COLORBENCH_MAX_PIXELS", 40_000_000),
            concurrency_limit=_env_int("COLORBENCH_CONCURRENCY", 2),
            queue_max_size=_env_int("COLORBENCH_QUEUE_SIZE", 64),
            max_video_seconds=_env_float("COLORBENCH_MAX_VIDEO_SECONDS", 20.0),
            max_video_side=_env_int("COLORBENCH_MAX_VIDEO_SIDE", 1280),
            max_video_frames=_env_int("COLORBENCH_MAX_VIDEO_FRAMES", 600),
        )
        ctx.data_dir.mkdir(parents=True, exist_ok=True)
        ctx.outputs_dir.mkdir(parents=True, exist_ok=True)
        return ctx
