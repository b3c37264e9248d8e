"""Publish the leaderboard as a dataset: parquet tables plus a dataset card.

``colorbench leaderboard publish --to DIR`` writes::

    DIR/README.md                 dataset card (YAML front matter: configs -> data_files)
    DIR/data/results.parquet      one row per (dataset, model): every metric with its 95% interval
    DIR/data/metrics.parquet      one row per (dataset, model, metric), with definitions and versions
    DIR/data/per_image.parquet    one row per (dataset, model, metric, item)
    DIR/data/study.parquet        human-study aggregates per model (only when results/study/fooled.json exists)

so that ``datasets.load_dataset(DIR)`` loads the results table and
``load_dataset(DIR, "per_image")`` (or ``load_dataset("parquet", data_files=...)``)
the other configs. ``--to owner/name`` (or ``hf://datasets/owner/name``) builds the
same folder in a temporary place and pushes it to that hub dataset repo with
``huggingface_hub``; when the hub cannot be reached it fails at once with a
clear message (:mod:`colorbench.leaderboard.publish_hub`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .publish_hub import HubUnavailable, ensure_hub_reachable, is_repo_id

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
SPLIT = "train"
CONFIGS = ("results", "metrics", "per_image", "study")

__all__ = ["PublishError", "HubUnavailable", "build_dataset_folder", "publish", "parse_target", 
           "collect_tables"]


class PublishError(RuntimeError):
    """Publishing could not be done; the message says why."""


# --------------------------------------------------------------------------- tables

def _num(v: Any) -> float:
    from ..bench.schema import decode_number

    x = decode_number(v)
    return math.nan if x is None else x


def _provenance_cols(doc: Dict[str, Any]) -> Dict[str, Any]:
    prov = doc.get("provenance") or {}
    return {
        "submitted": bool(doc.get("submitted", False)),
        "submitter": prov.get("submitter"),
        "submission_file_sha256": prov.get("file_sha256"),
        "submitted_at": prov.get("submitted_at"),
    }


def load_study(results_dir: PathLike) -> List[Dict[str, Any]]:
    """Rows ``{"model", <every scalar field>}`` from ``results/study/fooled.json`` (``{model: {...}}``)."""
    path = Path(results_dir) / "study" / "fooled.json"
    if not path.is_file():
        return []
    try:
        raw = json.loads(path.read_text())
    except ValueError as e:
        log.warning("ignoring unreadable %s (%s)", path, e)
        return []
    rows = []
    for model, v in sorted(raw.items() if isinstance(raw, dict) else []):
        if isinstance(v, dict):
            rows.append({"model": str(model), **{k: x for k, x in v.items()
                                                  if x is None or isinstance(x, (int, float, str, bool))}})
    return rows


def collect_tables(results_dir: PathLike) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The published tables (pandas frames by config name) and the documents they came from.

    Raises:
        PublishError: when there is no valid results JSON.
    """
    import pandas as pd

    from .table import documents_frame, load_documents, wide_frame

    docs = load_documents(results_dir)
    if not docs:
        raise PublishError(f"no valid results JSONs under {results_dir}/<dataset>/<model>.json; "
                           "run `colorbench bench` (or the submissions worker) first")
    long = documents_frame(docs)
    wide = wide_frame(long)
    info = {(d["dataset"], d["model"]): d for d in docs}
    extra = pd.DataFrame([{
        "kind": info[(r.dataset, r.model)].get("kind", ""),
        "n_images": info[(r.dataset, r.model)].get("n_images"),
        "size": info[(r.dataset, r.model)].get("size"),
        "weights_id": info[(r.dataset, r.model)].get("weights_id"),
        "classifier": info[(r.dataset, r.model)].get("classifier"),
        "date": info[(r.dataset, r.model)].get("date"),
        **_provenance_cols(info[(r.dataset, r.model)]),
    } for r in wide[["dataset", "model"]].itertuples(index=False)], index=wide.index)
    results = pd.concat([wide[["dataset", "model", "type"]], extra, wide.drop(columns=["dataset", "model", "type"])],
                        axis=1)

    metric_rows, image_rows = [], []
    for d in docs:
        for name, m in d["metrics"].items():
            ci = m.get("ci") or [None, None]
            metric_rows.append({
                "dataset": d["dataset"], "model": d["model"], "metric": name, "value": _num(m.get("value")),
                "ci_lo": _num(ci[0]), "ci_hi": _num(ci[1]), "higher_is_better": bool(m.get("higher_is_better", True)),
                "missing": m.get("missing"), "version": str(m.get("version", "")),
                "definition": str(m.get("definition", "")), "submitted": bool(d.get("submitted", False)),
            })
        for name, scores in (d.get("per_image") or {}).items():
            for item, v in scores.items():
                image_rows.append({"dataset": d["dataset"], "model": d["model"], "metric": name, "item_id": item,
                                   "value": _num(v)})
    tables: Dict[str, Any] = {
        "results": results.reset_index(drop=True),
        "metrics": pd.DataFrame(metric_rows, columns=["dataset", "model", "metric", "value", "ci_lo", "ci_hi",
                                                      "higher_is_better", "missing", "version", "definition",
                                                      "submitted"]),
        "per_image": pd.DataFrame(image_rows, columns=["dataset", "model", "metric", "item_id", "value"]),
    }
    study = load_study(results_dir)
    if study:
        tables["study"] = pd.DataFrame(study)
    for df in tables.values():  # text columns stay text even when every value is null
        for col in df.columns:
            if df[col].dtype == object and df[col].map(lambda x: isinstance(x, str) or x is None or (isinstance(x, float) and math.isnan(x))).all():
                df[col] = df[col].astype("string")
    return tables, docs


# --------------------------------------------------------------------------- card

def _yaml_front_matter(configs: Sequence[str]) -> str:
    import yaml

    meta = {
        "pretty_name": "ColorBench leaderboard",
        "license": "mit",
        "tags": ["image-colorization", "benchmark", "leaderboard"],
        "task_categories": ["image-to-image"],
        "configs": [{"config_name": c, "data_files": [{"split": SPLIT, "path": f"data/{c}.parquet"}],
                     **({"default": True} if c == "results" else {})} for c in configs],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _md_escape(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def dataset_card(tables: Dict[str, Any], docs: List[Dict[str, Any]], generated: str) -> str:
    """The README.md: front matter, what each config holds, metric definitions, datasets, versions."""
    lines = [_yaml_front_matter(list(tables)), "# ColorBench leaderboard", "",
             "Results of the ColorBench image-colorization benchmark: every model on every evaluation dataset, "
             "each metric with a bootstrap 95% confidence interval over images, per-image scores"
             + (", and the human colorization Turing test (fooled rates)" if "study" in tables else "") + ".",
             "Rows marked `submitted = true` come from leaderboard submissions, evaluated by the same code; "
             "their submitter and file hash are recorded.", "", f"Generated {generated}.", "", "## Configs", "",
             "| config | rows | one row per |", "|---|---|---|"]
    per = {"results": "dataset x model (metrics as columns `<m>`, `<m>_lo`, `<m>_hi`)",
           "metrics": "dataset x model x metric", "per_image": "dataset x model x metric x item",
           "study": "model (human-study aggregates from `results/study/fooled.json`)"}
    for name, df in tables.items():
        lines.append(f"| `{name}` | {len(df)} | {per[name]} |")
    lines += ["", "```python", "from datasets import load_dataset", "",
              f'results = load_dataset("<this repo or folder>", "results", split="{SPLIT}")',
              f'per_image = load_dataset("<this repo or folder>", "per_image", split="{SPLIT}")', "```", "",
              "## Metrics", "", "| metric | better | version | definition |", "|---|---|---|---|"]
    seen: Dict[str, Dict[str, Any]] = {}
    for d in docs:
        for name, m in d["metrics"].items():
            if name not in seen or (not seen[name].get("definition") and m.get("definition")):
                seen[name] = m
    for name in sorted(seen):
        m = seen[name]
        lines.append(f"| `{name}` | {'higher' if m.get('higher_is_better', True) else 'lower'} | "
                     f"{_md_escape(m.get('version', ''))} | {_md_escape(m.get('definition', '')) or '—'} |")
    lines += ["", "Missing values (a metric that could not run, e.g. weights unavailable offline) are null, "
              "with the reason in `metrics.missing`; they are never zero.", "", "## Datasets", "",
              "| dataset | images | evaluation size | fingerprint | models |", "|---|---|---|---|---|"]
    by_ds: Dict[str, List[Dict[str, Any]]] = {}
    for d in docs:
        by_ds.setdefault(d["dataset"], []).append(d)
    for ds, ds_docs in sorted(by_ds.items()):
        d0 = ds_docs[0]
        lines.append(f"| `{_md_escape(ds)}` | {d0.get('n_images', '')} | {d0.get('size', '')} | "
                     f"{d0.get('dataset_fingerprint', '')} | {len(ds_docs)} |")
    subs = [d for d in docs if d.get("submitted")]
    if subs:
        lines += ["", "## Submitted models", "", "| model | dataset | submitter | kind | file sha256 | submitted |",
                  "|---|---|---|---|---|---|"]
        for d in subs:
            p = d.get("provenance") or {}
            lines.append(f"| `{_md_escape(d['model'])}` | `{_md_escape(d['dataset'])}` | "
                         f"{_md_escape(p.get('submitter', ''))} | {_md_escape(p.get('kind', ''))} | "
                         f"{str(p.get('file_sha256', ''))[:16]}… | {p.get('submitted_at', '')} |")
    versions: Dict[str, set] = {}
    commits = set()
    for d in docs:
        for k, v in (d.get("versions") or {}).items():
            versions.setdefault(k, set()).add(str(v))
        if (d.get("git") or {}).get("commit"):
            commits.add(d["git"]["commit"][:12])
    lines += ["", "## Versions", "", "| package | version(s) |", "|---|---|"]
    for k in sorted(versions):
        lines.append(f"| {k} | {', '.join(sorted(versions[k]))} |")
    if commits:
        lines += ["", f"ColorBench git commit(s): {', '.join(sorted(commits))}."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- folder, hub

def build_dataset_folder(results_dir: PathLike, out_dir: PathLike) -> List[Path]:
    """Write the parquet files and the card into ``out_dir``; returns the written paths.

    Files are written to a temporary folder beside ``out_dir`` and moved into place,
    so a failure leaves the previous publication intact; parquet files of configs
    that no longer exist (e.g. no study yet) are removed.
    """
    tables, docs = collect_tables(results_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=out))
    try:
        (staging / "data").mkdir()
        for name, df in tables.items():
            df.to_parquet(staging / "data" / f"{name}.parquet", index=False)
        (staging / "README.md").write_text(dataset_card(tables, docs, generated), encoding="utf-8")
        (out / "data").mkdir(exist_ok=True)
        written = []
        for name in CONFIGS:
            src, dest = staging / "data" / f"{name}.parquet", out / "data" / f"{name}.parquet"
            if src.exists():
                os.replace(src, dest)
                written.append(dest)
            elif dest.exists():
                dest.unlink()
        os.replace(staging / "README.md", out / "README.md")
        written.append(out / "README.md")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("published %d tables to %s", len(tables), out)
    return written


def parse_target(to: str) -> Tuple[str, str]:
    """``("hub", repo_id)`` or ``("dir", path)``.

    ``hf://datasets/owner/name`` is always the hub. ``owner/name`` is the hub unless
    a local path of that name, or its first component, exists; anything else (an
    absolute or ``./`` path, more than two components) is a local folder.
    """
    to = to.strip()
    m = re.match(r"^hf://(?:datasets/)?(.+)$", to)
    if m:
        if not is_repo_id(m.group(1)):
            raise PublishError(f"{to!r} is not a hub dataset id (hf://datasets/owner/name)")
        return "hub", m.group(1)
    if is_repo_id(to) and not Path(to).exists() and not Path(to.split("/")[0]).exists():
        return "hub", to
    return "dir", to


def push_to_hub(folder: Path, repo_id: str, private: bool = False, message: Optional[str] = None) -> str:
    """Create (if needed) the dataset repo and upload ``folder``; returns the repo URL."""
    endpoint = ensure_hub_reachable(f"publish to {repo_id}")
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint)
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(folder),
                          commit_message=message or "Update ColorBench leaderboard",
                          delete_patterns=["data/*.parquet"])  # configs that disappeared go too
    except Exception as e:  # auth, permissions, network drop
        hint = " Log in first (`hf auth login` or HF_TOKEN)." if "401" in str(e) or "403" in str(e) else ""
        raise PublishError(f"pushing to the hub dataset {repo_id} failed: {type(e).__name__}: {e}.{hint}") from None
    return str(url)


def publish(to: str, results_dir: PathLike = "results", private: bool = False,
            message: Optional[str] = None) -> str:
    """Publish to a local folder or a hub dataset (see :func:`parse_target`); returns where.

    Raises:
        PublishError: no results, or the push failed.
        HubUnavailable: the hub cannot be reached (raised within a few seconds).
    """
    kind, target = parse_target(to)
    if kind == "dir":
        build_dataset_folder(results_dir, target)
        return str(Path(target))
    ensure_hub_reachable(f"publish to {target}")  # before any work
    with tempfile.TemporaryDirectory(prefix="colorbench-publish-") as tmp:
        build_dataset_folder(results_dir, tmp)
        return push_to_hub(Path(tmp), target, private=private, message=message)
