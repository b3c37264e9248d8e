"""A study definition: what is shown, to whom, for how long, and the quality rules.

A study is a small config file (JSON, TOML or YAML) whose keys are the fields of
:class:`StudyConfig`; unknown keys are refused so a typo does not silently fall
back to a default. ``studies/default.json`` replicates the protocol of Zhang et
al., ECCV 2016 (section 3.1, "AMT"): 256x256 pairs shown for 1 s, 10 practice
pairs with feedback, 40 test pairs without, one algorithm per participant.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

__all__ = ["StudyConfig", "load_config", "REPO_DEFAULT_CONFIG"]

#: the config the app uses when ``COLORBENCH_STUDY_CONFIG`` is not set
REPO_DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "studies" / "default.json"


@dataclass(frozen=True)
class StudyConfig:
    """One study.

    Attributes:
        name: a short identifier (letters, digits, ``-_``); names the built stimuli folder.
        dataset: a :func:`colorbench.data.load_dataset` name (``builtin``, ``folder:PATH``...).
        models: the colorization models under test (registry names). Models whose
            weights are unavailable when the study is built are left out, with a warning.
        vigilance_model: the obviously-fake model of the vigilance pairs (ECCV16: ``random``).
        n_images: use the first ``n_images`` items of the dataset (None: all).
        image_size: side of the square both images of a pair are resized to, pixels.
        n_practice: practice pairs per session (feedback shown; excluded from statistics).
        n_test: test pairs per session (no feedback), vigilance pairs included.
        vigilance_fraction: share of the test pairs that are vigilance pairs.
        mixed: False: one model per session (assigned to balance participants);
            True: each test pair draws its model from ``models`` in turn.
        exposure_ms: how long the pair is visible, milliseconds.
        min_response_ms: answers faster than this (measured on the server from the
            moment the trial was served) are flagged ``fast`` and left out of statistics.
        vigilance_max_error_rate: participants who miss more than this share of their
            vigilance pairs are excluded from statistics (their rows are kept).
        max_answers_per_minute: per-session rate limit.
        max_sessions_per_ip_per_hour: new sessions one IP may start per hour.
        max_answers_per_ip_per_minute: answers from one IP per minute, all sessions together.
        bootstrap_samples: resamples for standard errors and tests.
        seed: seeds the dataset order and bootstrap (not the left/right draw, which is
            cryptographically random per trial).
    """

    name: str = "default"
    dataset: str = "builtin"
    models: Tuple[str, ...] = ("colorbench_lite0",)
    vigilance_model: str = "random"
    n_images: Optional[int] = None
    image_size: int = 256
    n_practice: int = 10
    n_test: int = 40
    vigilance_fraction: float = 0.1
    mixed: bool = False
    exposure_ms: int = 1000
    min_response_ms: int = 300
    vigilance_max_error_rate: float = 0.25
    max_answers_per_minute: int = 60
    max_sessions_per_ip_per_hour: int = 30
    max_answers_per_ip_per_minute: int = 600
    bootstrap_samples: int = 2000
    seed: int = 0
    description: str = ""
    consent_text: str = (
        "This is a short perception study. We store your answers, how long each took, "
        "your browser's user-agent string and a salted one-way hash of your IP address "
        "(used only to limit abuse), and nothing else. Taking part is voluntary; you can "
        "stop at any time."
    )
    extra: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise ValueError(f"study name must be letters, digits, '-' or '_': {self.name!r}")
        if not self.models:
            raise ValueError("a study needs at least one model")
        if self.vigilance_model in self.models:
            raise ValueError(f"the vigilance model {self.vigilance_model!r} cannot also be a model under test")
        for key in ("image_size", "exposure_ms", "bootstrap_samples"):
            if int(getattr(self, key)) <= 0:
                raise ValueError(f"{key} must be positive")
        for key in ("n_practice", "n_test", "min_response_ms", "max_answers_per_minute",
                    "max_sessions_per_ip_per_hour", "max_answers_per_ip_per_minute"):
            if int(getattr(self, key)) < 0:
                raise ValueError(f"{key} must be >= 0")
        if self.n_practice + self.n_test == 0:
            raise ValueError("a session needs at least one pair")
        if not 0.0 <= self.vigilance_fraction < 1.0:
            raise ValueError("vigilance_fraction must be in [0, 1)")
        if not 0.0 <= self.vigilance_max_error_rate <= 1.0:
            raise ValueError("vigilance_max_error_rate must be in [0, 1]")
        if self.n_images is not None and self.n_images < 2:
            raise ValueError("n_images must be at least 2")

    @property
    def n_vigilance(self) -> int:
        """Vigilance pairs among the test pairs (rounded, at least 1 when the fraction is > 0)."""
        if self.vigilance_fraction <= 0 or self.n_test == 0:
            return 0
        return max(1, min(self.n_test, round(self.n_test * self.vigilance_fraction)))

    @property
    def n_pairs(self) -> int:
        return self.n_practice + self.n_test

    def stimulus_key(self) -> str:
        """A hash of the fields that determine the stimuli (not the protocol timings)."""
        keys = ("dataset", "models", "vigilance_model", "n_images", "image_size")
        blob = json.dumps({k: getattr(self, k) for k in keys}, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["models"] = list(self.models)
        return d

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "StudyConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown study config keys: {', '.join(unknown)} (known: {', '.join(sorted(names))})")
        return cls(**data)


def load_config(path: Union[str, Path]) -> StudyConfig:
    """Read a study config from ``.json``, ``.toml`` or ``.yaml``/``.yml``."""
    p = Path(path)
    text = p.read_text()
    suffix = p.suffix.lower()
    if suffix == ".json":
        data = json.loads(text)
    elif suffix == ".toml":
        import tomllib

        data = tomllib.loads(text)
    elif suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    else:
        raise ValueError(f"study config must be .json, .toml or .yaml: {p}")
    if not isinstance(data, dict):
        raise ValueError(f"study config {p} must hold a mapping")
    data.pop("$comment", None)
    return StudyConfig.from_dict(data)
