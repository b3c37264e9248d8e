"""Optional copy of the judgments to a Hugging Face dataset repo.

On when both a repo id and a token are configured (``COLORBENCH_STUDY_HUB_REPO``
and ``HF_TOKEN`` or ``COLORBENCH_STUDY_HUB_TOKEN``) and ``HF_HUB_OFFLINE`` is not
set; otherwise off, and it says so once in the log. When on, each judgment is
appended as one JSON line to a local file, and huggingface_hub's
``CommitScheduler`` pushes the folder every few minutes in its own thread. The
scheduler is created in a background thread too (it contacts the hub), so neither
starting nor voting ever waits on the network; the SQLite store stays the record.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Optional

__all__ = ["JudgmentSync", "sync_from_env"]

log = logging.getLogger(__name__)

#: fields copied to the hub (no IP hash, no user agent)
SYNCED_FIELDS = ("id", "trial_id", "participant_id", "choice", "correct", "response_ms", "created_at", "flags",
                 "phase", "kind", "model", "image_id", "idx")


class JudgmentSync:
    """Appends judgments to ``folder/judgments-<study>.jsonl`` for a CommitScheduler to push.

    Args:
        folder: local folder mirrored to the repo.
        repo_id: dataset repo (``user/name``); None turns syncing off.
        token: hub token; None turns syncing off.
        every_minutes: push interval.
        scheduler_factory: builds the scheduler (``huggingface_hub.CommitScheduler`` by default;
            tests pass a fake).
    """

    def __init__(self, folder: Path, repo_id: Optional[str], token: Optional[str], every_minutes: float = 5.0,
                 study: str = "study", scheduler_factory: Optional[Callable[..., Any]] = None) -> None:
        self.folder = Path(folder)
        self.repo_id = repo_id
        self.file = self.folder / f"judgments-{study}.jsonl"
        self._lock = threading.Lock()
        self._scheduler: Any = None
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
        if not repo_id or not token:
            self.enabled = False
            log.info("study sync to the hub is off (no repo id and token configured)")
            return
        if offline:
            self.enabled = False
            log.info("study sync to the hub is off (HF_HUB_OFFLINE is set)")
            return
        self.enabled = True
        self.folder.mkdir(parents=True, exist_ok=True)
        factory = scheduler_factory or _default_factory
        threading.Thread(target=self._start, args=(factory, repo_id, token, every_minutes), daemon=True,
                         name="study-hub-sync").start()

    def _start(self, factory: Callable[..., Any], repo_id: str, token: str, every: float) -> None:
        try:
            sched = factory(repo_id=repo_id, repo_type="dataset", folder_path=self.folder, path_in_repo="data",
                            every=every, token=token, allow_patterns=["*.jsonl"])
        except Exception as e:  # offline, bad token, no permission: the app goes on without the copy
            log.warning("study sync to %s could not start (%s: %s); judgments stay local", repo_id,
                        type(e).__name__, e)
            return
        with self._lock:
            self._scheduler = sched
        log.info("study sync to hub dataset %s is on", repo_id)

    @property
    def active(self) -> bool:
        """True once the scheduler is running."""
        return self._scheduler is not None

    def append(self, judgment: Dict[str, Any]) -> None:
        """Queue one judgment for the next push (never raises, never waits on the network)."""
        if not self.enabled:
            return
        line = json.dumps({k: judgment.get(k) for k in SYNCED_FIELDS}, sort_keys=True) + "\n"
        try:
            with self._lock:
                lock = getattr(self._scheduler, "lock", None) or threading.Lock()
            with lock:
                with open(self.file, "a", encoding="utf-8") as f:
                    f.write(line)
        except OSError as e:
            log.warning("study sync: could not append a judgment (%s)", e)


def _default_factory(**kwargs: Any) -> Any:
    from huggingface_hub import CommitScheduler

    return CommitScheduler(**kwargs)


def sync_from_env(folder: Path, study: str) -> JudgmentSync:
    """A :class:`JudgmentSync` configured from the environment (off when unconfigured)."""
    token = os.environ.get("COLORBENCH_STUDY_HUB_TOKEN") or os.environ.get("HF_TOKEN")
    return JudgmentSync(folder, os.environ.get("COLORBENCH_STUDY_HUB_REPO"), token,
                        float(os.environ.get("COLORBENCH_STUDY_HUB_EVERY_MIN", "5")), study=study)
