"""The results schema: one JSON document per (model, dataset).

A document looks like this (``strict`` documents, as the runner writes them)::

    {
      "schema_version": 1,
      "model": "gray", "dataset": "builtin", "kind": "baseline",
      "weights_id": "none", "dataset_fingerprint": "...", "n_images": 33, "size": 256,
      "metrics": {
        "psnr": {"value": 22.1, "ci": [21.0, 23.2], "higher_is_better": true,
                 "version": "1", "definition": "...", ...extra},
        "lpips": {"value": null, "ci": null, "higher_is_better": false,
                  "missing": "AlexNet weights unavailable offline"},
      },
      "per_image": {"psnr": {"<item id>": 21.7, ...}, ...},
      "classifier": "efficientnet_lite0" | null,
      "curves": {"auc": {"x": [0, 1, ..., 150], "y": [...]}},
      "versions": {"colorbench": "0.1.0", "torch": "...", ...},
      "git": {"commit": "...", "dirty": false},
      "date": "2025-01-01T00:00:00+00:00",
      "config": {...}
    }

JSON has no infinity: non-finite numbers are written as the strings ``"inf"``,
``"-inf"`` and ``"nan"`` (see :func:`to_jsonable` / :func:`decode_number`), so the
files stay strict JSON that any reader can parse. A missing metric has
``value: null`` and a ``missing`` reason, never a zero.

:func:`validate_results` checks a document and raises :class:`ResultsSchemaError`
listing every problem. ``strict=False`` only requires what an external submission
must carry (``model``, ``dataset``, well-formed ``metrics``).
"""

from __future__ import annotations

import json
import math
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

SCHEMA_VERSION = 1

_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
STRICT_KEYS = {
    "schema_version": int,
    "model": str,
    "dataset": str,
    "metrics": dict,
    "per_image": dict,
    "n_images": int,
    "size": int,
    "weights_id": str,
    "versions": dict,
    "git": dict,
    "date": str,
}
REQUIRED_KEYS = {"model": str, "dataset": str, "metrics": dict}


class ResultsSchemaError(ValueError):
    """A results document does not follow the schema; ``problems`` lists every reason."""

    def __init__(self, problems: List[str], source: Optional[str] = None) -> None:
        self.problems = list(problems)
        where = f" in {source}" if source else ""
        super().__init__(f"invalid results document{where}:\n  - " + "\n  - ".join(self.problems))


# -- numbers ------------------------------------------------------------------
def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats for strict JSON."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy array or scalar
        return to_jsonable(obj.tolist())
    if isinstance(obj, bool) or obj is None or isinstance(obj, (str, int)):
        return obj
    if isinstance(obj, float):
        if math.isnan(obj):
            return "nan"
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    return str(obj)


def decode_number(v: Any) -> Optional[float]:
    """A number of a results document as a float (``"inf"`` -> inf); None stays None."""
    if v is None:
        return None
    if isinstance(v, str):
        if v in _NONFINITE:
            return _NONFINITE[v]
        raise ValueError(f"not a number: {v!r}")
    if isinstance(v, bool):
        raise ValueError(f"not a number: {v!r}")
    return float(v)


def _is_number(v: Any, allow_nonfinite: bool = True) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return math.isfinite(v) or allow_nonfinite
    return allow_nonfinite and isinstance(v, str) and v in _NONFINITE


def dumps(doc: Dict[str, Any]) -> str:
    """Strict JSON text of a results document (non-finite numbers as strings)."""
    return json.dumps(to_jsonable(doc), indent=1, sort_keys=False, allow_nan=False) + "\n"


# -- validation ---------------------------------------------------------------
def _check_metric(name: str, m: Any, problems: List[str]) -> None:
    where = f"metrics[{name!r}]"
    if not isinstance(m, dict):
        problems.append(f"{where} must be an object, got {type(m).__name__}")
        return
    for key in ("value", "ci", "higher_is_better"):
        if key not in m:
            problems.append(f"{where} lacks {key!r}")
    if not isinstance(m.get("higher_is_better", True), bool):
        problems.append(f"{where}.higher_is_better must be true or false")
    value, ci = m.get("value"), m.get("ci")
    if value is None:
        if not (isinstance(m.get("missing"), str) and m["missing"].strip()):
            problems.append(f"{where}.value is null but no 'missing' reason is given")
        if ci is not None:
            problems.append(f"{where}.ci must be null when the value is missing")
        return
    if not _is_number(value):
        problems.append(f"{where}.value must be a number, null or 'inf'/'-inf'/'nan', got {value!r}")
        return
    if "ci" not in m:
        return  # already reported
    if not (isinstance(ci, list) and len(ci) == 2 and all(_is_number(c) for c in ci)):
        problems.append(f"{where}.ci must be a list [lo, hi] of two numbers, got {ci!r}")
        return
    lo, hi = decode_number(ci[0]), decode_number(ci[1])
    if lo > hi:  # NaN compares False and passes: an all-NaN interval is allowed
        problems.append(f"{where}.ci lower bound {lo} exceeds upper bound {hi}")


def validate_results(doc: Any, strict: bool = True, source: Optional[str] = None) -> None:
    """Check a results document; raise :class:`ResultsSchemaError` listing every problem.

    Args:
        doc: the parsed JSON document.
        strict: also require the provenance the runner writes (per-image scores,
            versions, git hash, date, sizes); False for external submissions.
        source: file name used in the error message.
    """
    problems: List[str] = []
    if not isinstance(doc, dict):
        raise ResultsSchemaError([f"the document must be a JSON object, got {type(doc).__name__}"], source)
    for key, typ in (STRICT_KEYS if strict else REQUIRED_KEYS).items():
        if key not in doc:
            problems.append(f"missing top-level key {key!r}")
        elif not isinstance(doc[key], typ) or (typ is int and isinstance(doc[key], bool)):
            problems.append(f"{key!r} must be {typ.__name__}, got {type(doc[key]).__name__}")
    for key in ("model", "dataset"):
        if isinstance(doc.get(key), str) and not doc[key].strip():
            problems.append(f"{key!r} must not be empty")
    metrics = doc.get("metrics")
    if isinstance(metrics, dict):
        if not metrics:
            problems.append("'metrics' is empty")
        for name, m in metrics.items():
            _check_metric(name, m, problems)
    if strict:
        if doc.get("schema_version") not in (None, SCHEMA_VERSION) and isinstance(doc.get("schema_version"), int):
            problems.append(f"schema_version {doc['schema_version']} is not {SCHEMA_VERSION}")
        n = doc.get("n_images")
        if isinstance(n, int) and n <= 0:
            problems.append("'n_images' must be positive")
        if isinstance(doc.get("size"), int) and doc["size"] <= 0:
            problems.append("'size' must be positive")
        per_image = doc.get("per_image")
        if isinstance(per_image, dict) and isinstance(metrics, dict):
            for name, m in metrics.items():
                if not isinstance(m, dict) or m.get("value") is None:
                    continue
                scores = per_image.get(name)
                if not isinstance(scores, dict):
                    problems.append(f"per_image lacks the scores of metric {name!r}")
                    continue
                if isinstance(n, int) and len(scores) != n:
                    problems.append(f"per_image[{name!r}] has {len(scores)} scores for {n} images")
                bad = [k for k, v in scores.items() if v is not None and not _is_number(v)]
                if bad:
                    problems.append(f"per_image[{name!r}] has non-numeric scores for {bad[:3]}")
            for name in per_image:
                if isinstance(metrics, dict) and name not in metrics:
                    problems.append(f"per_image has scores for unknown metric {name!r}")
        if isinstance(doc.get("git"), dict) and "commit" not in doc["git"]:
            problems.append("'git' lacks 'commit' (may be null)")
        if isinstance(doc.get("date"), str):
            try:
                datetime.fromisoformat(doc["date"])
            except ValueError:
                problems.append(f"'date' is not an ISO 8601 date: {doc['date']!r}")
    if problems:
        raise ResultsSchemaError(problems, source)


def load_results_file(path: Union[str, os.PathLike], strict: bool = True) -> Dict[str, Any]:
    """Read and validate one results JSON (non-finite numbers stay encoded as strings)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ResultsSchemaError([f"not valid JSON: {e}"], str(p)) from None
    validate_results(doc, strict=strict, source=str(p))
    return doc


__all__ = ["SCHEMA_VERSION", "ResultsSchemaError", "validate_results", "load_results_file", "to_jsonable",
           "decode_number", "dumps"]
