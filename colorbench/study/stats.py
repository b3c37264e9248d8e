"""Statistics of a study: fooled rates with bootstrap standard errors over participants.

Definitions (all on test pairs; practice pairs never count):

- a judgment *fooled* the participant when the side they picked as fake was the
  real photo (``correct == 0``);
- a model's **fooled rate** is the percentage of its test pairs on which
  participants were fooled (pooled: fooled pairs / pairs); 50 % is chance, the
  ceiling of a perfect colorization (ECCV16 Table 1 reports 32.3 % for its full model);
- its **standard error** is the standard deviation of that rate over bootstrap
  resamples of participants (participants, not judgments, are the independent units);
- participants whose error rate on vigilance pairs exceeds
  ``vigilance_max_error_rate`` are excluded, as are judgments flagged ``fast``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

__all__ = ["judgments_frame", "participant_quality", "fooled_rates", "per_image", "vigilance_summary",
           "compare_models", "analyze", "export", "write_fooled"]

log = logging.getLogger(__name__)


def judgments_frame(store, study_id: Optional[str] = None):
    """All judgments of a study (or of every study) as a pandas DataFrame, one row per judgment."""
    import pandas as pd

    cols = ["judgment_id", "study_id", "participant_id", "trial_id", "session_model", "idx", "phase", "kind", "model", "image_id",
            "fake_side", "choice", "correct", "response_ms", "served_at", "created_at", "flags"]
    rows = store.judgment_rows(study_id)
    df = pd.DataFrame(rows, columns=cols)
    df["correct"] = df["correct"].astype(int)
    df["fooled"] = 1 - df["correct"]
    return df


def participant_quality(df, vigilance_max_error_rate: float):
    """Per participant: test pairs, vigilance pairs and errors, and whether they are excluded."""
    import pandas as pd

    test = df[df["phase"] == "test"]
    vig = test[test["kind"] == "vigilance"].groupby("participant_id")["correct"].agg(["size", "sum"])
    out = pd.DataFrame({"participant_id": sorted(df["participant_id"].unique())}).set_index("participant_id")
    out["n_test"] = test.groupby("participant_id").size()
    out["n_vigilance"] = vig["size"]
    out["vigilance_errors"] = vig["size"] - vig["sum"]
    out = out.fillna(0).astype(int)
    rate = out["vigilance_errors"] / out["n_vigilance"].where(out["n_vigilance"] > 0)
    out["vigilance_error_rate"] = rate
    out["excluded"] = (rate > vigilance_max_error_rate).fillna(False).astype(bool)
    return out.reset_index()


def _eligible(df, vigilance_max_error_rate: float):
    q = participant_quality(df, vigilance_max_error_rate)
    excluded = set(q.loc[q["excluded"], "participant_id"])
    fast = df["flags"].fillna("").str.contains("fast")
    return df[(df["phase"] == "test") & ~fast & ~df["participant_id"].isin(excluded)]


def _per_participant(sub) -> tuple:
    g = sub.groupby("participant_id")["fooled"].agg(["sum", "size"])
    return g["sum"].to_numpy(float), g["size"].to_numpy(float)


def _bootstrap_rates(fooled: np.ndarray, n: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Pooled rate (%) of ``n_boot`` resamples of participants (rows of ``fooled``/``n``)."""
    P = len(n)
    if P == 0:
        return np.full(n_boot, np.nan)
    idx = rng.integers(0, P, size=(n_boot, P))
    return 100.0 * fooled[idx].sum(1) / n[idx].sum(1)


def fooled_rates(df, vigilance_max_error_rate: float = 0.25, n_boot: int = 2000, seed: int = 0) -> Dict[str, Dict]:
    """``{model: {"rate", "se", "n_participants", "n_judgments"}}``; rate and se in percent."""
    sub = _eligible(df, vigilance_max_error_rate)
    sub = sub[sub["kind"] == "model"]
    rng = np.random.default_rng(seed)
    out: Dict[str, Dict] = {}
    for model in sorted(sub["model"].unique()):
        m = sub[sub["model"] == model]
        f, n = _per_participant(m)
        boots = _bootstrap_rates(f, n, n_boot, rng)
        out[model] = {"rate": round(100.0 * f.sum() / n.sum(), 3),
                      "se": round(float(np.std(boots, ddof=1)), 3) if len(n) > 1 else None,
                      "n_participants": int(len(n)), "n_judgments": int(n.sum())}
    return out


def per_image(df, vigilance_max_error_rate: float = 0.25):
    """Fooled rate (%) per model and image."""
    sub = _eligible(df, vigilance_max_error_rate)
    sub = sub[sub["kind"] == "model"]
    g = sub.groupby(["model", "image_id"])["fooled"].agg(["mean", "size"]).reset_index()
    g = g.rename(columns={"mean": "rate", "size": "n_judgments"})
    g["rate"] = 100.0 * g["rate"]
    return g.sort_values(["model", "rate"], ascending=[True, False]).reset_index(drop=True)


def vigilance_summary(df, vigilance_max_error_rate: float = 0.25) -> Dict[str, Any]:
    """Vigilance pairs: how often the obvious fake was spotted and who is excluded."""
    q = participant_quality(df, vigilance_max_error_rate)
    test = df[df["phase"] == "test"]
    vig = test[test["kind"] == "vigilance"]
    return {"n_participants": int(len(q)), "n_with_vigilance": int((q["n_vigilance"] > 0).sum()),
            "n_excluded": int(q["excluded"].sum()), "excluded": sorted(q.loc[q["excluded"], "participant_id"]),
            "n_pairs": int(len(vig)),
            "accuracy": round(100.0 * float(vig["correct"].mean()), 3) if len(vig) else None,
            "threshold_error_rate": vigilance_max_error_rate,
            "n_fast_flagged": int(df["flags"].fillna("").str.contains("fast").sum())}


def compare_models(df, model_a: str, model_b: str, vigilance_max_error_rate: float = 0.25, n_boot: int = 2000,
                   seed: int = 0) -> Dict[str, Any]:
    """Bootstrap test of ``rate(a) - rate(b)`` (percentage points).

    Participants who judged either model are resampled together (paired when a
    participant saw both, as in mixed mode), ``rate(a)`` and ``rate(b)`` recomputed
    on each resample; the p-value is two-sided, from the resampled differences
    recentred on the null (``mean(|d* - d| >= |d|)``).
    """
    sub = _eligible(df, vigilance_max_error_rate)
    sub = sub[(sub["kind"] == "model") & sub["model"].isin([model_a, model_b])]
    for m in (model_a, model_b):
        if not (sub["model"] == m).any():
            raise ValueError(f"no eligible judgments for model {m!r}")
    pids = sorted(sub["participant_id"].unique())
    pos = {p: i for i, p in enumerate(pids)}
    mats = {}
    for m in (model_a, model_b):
        s = sub[sub["model"] == m].groupby("participant_id")["fooled"].agg(["sum", "size"])
        f = np.zeros(len(pids))
        n = np.zeros(len(pids))
        for pid, row in s.iterrows():
            f[pos[pid]], n[pos[pid]] = row["sum"], row["size"]
        mats[m] = (f, n)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(pids), size=(n_boot, len(pids)))

    def rate(m, ix=None):
        f, n = mats[m]
        if ix is None:
            return 100.0 * f.sum() / n.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * f[ix].sum(1) / n[ix].sum(1)

    d = rate(model_a) - rate(model_b)
    boots = rate(model_a, idx) - rate(model_b, idx)
    boots = boots[np.isfinite(boots)]
    p = float(np.mean(np.abs(boots - d) >= abs(d))) if len(boots) else float("nan")
    lo, hi = np.percentile(boots, [2.5, 97.5]) if len(boots) else (np.nan, np.nan)
    return {"a": model_a, "b": model_b, "diff": round(float(d), 3), "se": round(float(np.std(boots, ddof=1)), 3),
            "ci95": [round(float(lo), 3), round(float(hi), 3)], "p_value": round(p, 4), "n_boot": int(len(boots))}


def analyze(df, vigilance_max_error_rate: float = 0.25, n_boot: int = 2000, seed: int = 0,
            compare: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Everything ``colorbench study stats`` reports, as one JSON-able dict."""
    rates = fooled_rates(df, vigilance_max_error_rate, n_boot, seed)
    out: Dict[str, Any] = {"fooled": rates, "vigilance": vigilance_summary(df, vigilance_max_error_rate),
                           "n_judgments_total": int(len(df)), "comparisons": []}
    models: List[str] = list(compare) if compare else sorted(rates)
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            out["comparisons"].append(compare_models(df, a, b, vigilance_max_error_rate, n_boot, seed))
    return out


def export(df, out_dir: Path, stem: str = "judgments") -> List[Path]:
    """Write the judgments as CSV and parquet; returns the two paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, pq_path = out_dir / f"{stem}.csv", out_dir / f"{stem}.parquet"
    df.to_csv(csv_path, index=False)
    df.to_parquet(pq_path, index=False)
    return [csv_path, pq_path]


def write_fooled(rates: Dict[str, Dict], path: Path) -> Path:
    """``results/study/fooled.json``: ``{model: {"rate", "se", "n_participants", "n_judgments"}}``
    (rate and se in percent), for the leaderboard to join on the model name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rates, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path
