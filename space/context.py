"""One frozen settings object handed to every tab (no module-level globals)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class AppContext:
    """Paths and settings of one running app.

    Attributes:
        data_dir: where the app writes (study database, uploads cache); created on start.
        results_dir: committed benchmark results shown on the leaderboard.
        models: model names offered in the menus (default: every registered model).
        default_model: preselected model.
        max_upload_mb: upload size limit.
        max_pixels: image pixel limit passed to the loader.
    """

    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("COLORBENCH_DATA_DIR", REPO_ROOT / "space_data")))
    results_dir: Path = field(default_factory=lambda: Path(os.environ.get("COLORBENCH_RESULTS_DIR", REPO_ROOT / "results")))
    models: Tuple[str, ...] = ()
    default_model: str = "colorbench_lite0"
    max_upload_mb: int = 25
    max_pixels: int = 40_000_000

    @property
    def study_db(self) -> Path:
        return self.data_dir / "study.sqlite"

    @classmethod
    def from_env(cls) -> "AppContext":
        from colorbench.models import DEFAULT_MODEL, list_models

        ctx = cls(models=tuple(list_models()), default_model=DEFAULT_MODEL)
        ctx.data_dir.mkdir(parents=True, exist_ok=True)
        return ctx
