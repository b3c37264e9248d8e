"""Model submissions: validate, store by content hash, queue, evaluate, write results.

A submission is one of

* ``checkpoint`` — a safetensors file for a registered architecture, plus a model card;
* ``hub`` — a model id on the Hugging Face Hub: its one ``*.safetensors`` file is
  fetched (nothing else is ever downloaded or loaded) and treated as a checkpoint;
* ``predictions`` — a zip with one PNG per item of a dataset's documented item
  list, at the evaluation size (see :func:`expected_predictions`).

``submit_*`` functions validate everything *before* anything runs (see
:mod:`colorbench.leaderboard.submit_validate`): size limits, safetensors only
(pickles are recognised by their bytes and never loaded), keys and shapes against
the architecture, zip entry names, types and sizes, images against the item
list, duplicates by content hash, a per-submitter rate limit and a model card.
Accepted files are copied to ``<data dir>/submissions/files/<hash>.<ext>`` and a
PENDING row is added to the queue (:mod:`colorbench.leaderboard.submit_queue`).

:func:`run_worker` claims PENDING rows one by one and evaluates them with the
benchmark's own code, then writes ``results/<dataset>/<model>.json`` with
``"submitted": true`` and a ``provenance`` block (submitter, file hash, times),
so the leaderboard shows them marked as submitted. Any error ends the row FAILED
with its reason.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .submit_queue import FAILED, FINISHED, PENDING, RUNNING, Submission, SubmissionQueue
from .submit_validate import (
    CARD_TEMPLATE,
    Limits,
    ModelCard,
    SubmissionRefused,
    check_file_size,
    check_predictions_zip,
    check_state_dict_shapes,
    check_submitter,
    parse_model_card,
    prediction_filename,
    read_safetensors_header,
    safetensors_content_hash,
)

log = logging.getLogger(__name__)

#: names a submission may never take (pseudo-models of the benchmark)
RESERVED_NAMES = {"ground_truth"}

__all__ = [
    "SubmissionRefused",
    "Limits",
    "SubmissionStore",
    "Submission",
    "PENDING",
    "RUNNING",
    "FINISHED",
    "FAILED",
    "CARD_TEMPLATE",
    "submit_checkpoint",
    "submit_hub",
    "submit_predictions",
    "expected_predictions",
    "run_worker",
    "evaluate_submission",
]


@dataclass
class SubmissionStore:
    """Where submissions live: ``<data_dir>/submissions/{queue.sqlite, files/}``.

    Args:
        data_dir: the writable data folder (the app's ``ctx.data_dir``, or the CLI's ``--data-dir``).
        limits: validation limits.
    """

    data_dir: Path
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        self.root = self.data_dir / "submissions"
        self.files = self.root / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        self.queue = SubmissionQueue(self.root / "queue.sqlite")

    def store_file(self, src: Path, content_hash: str, suffix: str) -> Tuple[Path, str]:
        """Copy ``src`` to ``files/<content_hash><suffix>`` atomically; returns (path, sha256 of its bytes)."""
        dest = self.files / f"{content_hash}{suffix}"
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.files, prefix=".incoming-", suffix=".tmp")
        try:
            with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
                for chunk in iter(lambda: fin.read(1 << 20), b""):
                    h.update(chunk)
                    fout.write(chunk)
                fout.flush()
                os.fsync(fout.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest, h.hexdigest()


# --------------------------------------------------------------------------- shared checks

def _admission_check(store: SubmissionStore, submitter: str, model_name: str, content_hash: str,
                     now: float) -> Callable[[sqlite3.Connection], None]:
    """Rate limit, duplicate content and model-name clash; runs inside the queue's write transaction."""
    limits = store.limits

    def check(con: sqlite3.Connection) -> None:
        _rate_check(con, limits, submitter, now)
        row = con.execute("SELECT id, status FROM submissions WHERE content_hash=? AND status!=? ORDER BY id LIMIT 1",
                          (content_hash, FAILED)).fetchone()
        if row is not None:
            raise SubmissionRefused(f"This exact content was already submitted (submission #{row[0]}, {row[1]}).")
        row = con.execute("SELECT id, submitter FROM submissions WHERE lower(model_name)=lower(?) AND status!=? "
                          "ORDER BY id LIMIT 1", (model_name, FAILED)).fetchone()
        if row is not None:
            raise SubmissionRefused(f"The model name {model_name!r} is already taken by submission #{row[0]}; "
                                    "choose another model_name in the card.")

    return check


def _rate_check(con: sqlite3.Connection, limits: Limits, submitter: str, now: float) -> None:
    """Refuse a submitter who reached the limit within the window (names compared case-insensitively)."""
    n = con.execute("SELECT COUNT(*) FROM submissions WHERE lower(submitter)=lower(?) AND created_at>?",
                    (submitter, now - limits.rate_window_s)).fetchone()[0]
    if n >= limits.rate_limit:
        hours = limits.rate_window_s / 3600
        raise SubmissionRefused(f"{submitter!r} has made {n} submissions in the last {hours:g} h; the limit is "
                                f"{limits.rate_limit}. Please try again later.")


def _check_name_free(model_name: str) -> None:
    from ..models import list_models

    if model_name.lower() in {m.lower() for m in list_models()} | RESERVED_NAMES:
        raise SubmissionRefused(f"The model name {model_name!r} is a built-in model; choose another model_name.")


def _precheck(store: SubmissionStore, submitter: Optional[str], card_text: Optional[str],
              card_defaults: Optional[Dict[str, str]] = None) -> Tuple[str, ModelCard]:
    """Cheap checks first (submitter, card, rate limit), before any file is read."""
    submitter = check_submitter(submitter)
    card = parse_model_card(_with_defaults(card_text, card_defaults or {}), store.limits)
    _check_name_free(card.model_name)
    # the authoritative check runs again inside the insert transaction
    _admission_check(store, submitter, card.model_name, "-", time.time())(store.queue._connect())  # noqa: SLF001
    return submitter, card


def _with_defaults(card_text: Optional[str], defaults: Dict[str, str]) -> Optional[str]:
    """Add missing front-matter fields (e.g. a hub repo's name as model_name)."""
    if not defaults or not card_text or not card_text.strip():
        return card_text
    lines = card_text.strip().splitlines()
    if lines[0].strip() != "---":
        lines = ["---", "---", *lines]
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        return card_text
    present = {ln.partition(":")[0].strip().lower() for ln in lines[1:end] if ":" in ln}
    extra = [f"{k}: {v}" for k, v in defaults.items() if k not in present]
    return "\n".join(lines[:end] + extra + lines[end:])


def _store_and_queue(store: SubmissionStore, src: Path, suffix: str, *, submitter: str, model_name: str,
                     content_hash: str, now: float, **row: Any) -> Submission:
    """Copy the validated file into the store and add its PENDING row; the admission checks run again
    inside the insert transaction. A file refused there is removed unless another row uses it."""
    stored, file_sha = store.store_file(src, content_hash, suffix)
    try:
        return store.queue.add(submitter=submitter, model_name=model_name, content_hash=content_hash,
                               file_sha256=file_sha, file_path=str(stored), now=now,
                               check=_admission_check(store, submitter, model_name, content_hash, now), **row)
    except BaseException:
        used = store.queue._connect().execute(  # noqa: SLF001
            "SELECT 1 FROM submissions WHERE file_path=? LIMIT 1", (str(stored),)).fetchone()
        if used is None:
            stored.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- checkpoints

def reference_state_dict(arch: str) -> Dict[str, Any]:
    """``create_model(arch).state_dict()``, built on the meta device when possible (no memory, no init cost)."""
    import torch

    from ..models import create_model, list_models

    if arch not in list_models():
        raise SubmissionRefused(f"Unknown architecture {arch!r}; choose one of: {', '.join(list_models())}.")
    try:
        with torch.device("meta"):
            return create_model(arch, pretrained=False).state_dict()
    except Exception:  # a model that cannot be built on meta: build it for real
        return create_model(arch, pretrained=False).state_dict()


def _validate_checkpoint(store: SubmissionStore, path: Path, arch: str) -> Tuple[str, Dict[str, str]]:
    reference = reference_state_dict(arch)
    if not reference:
        raise SubmissionRefused(f"Architecture {arch!r} has no weights, so there is nothing to submit for it.")
    tensors, meta, offset = read_safetensors_header(Path(path), store.limits)
    check_state_dict_shapes(tensors, reference, arch)
    return safetensors_content_hash(Path(path), tensors, offset), meta


def submit_checkpoint(store: SubmissionStore, path: os.PathLike, arch: str, card: Optional[str],
                      submitter: Optional[str], *, kind: str = "checkpoint", hub_id: Optional[str] = None,
                      card_defaults: Optional[Dict[str, str]] = None) -> Submission:
    """Validate and queue a safetensors checkpoint for the registered architecture ``arch``.

    Raises:
        SubmissionRefused: with the reason, for any failed check. Nothing is stored then.
    """
    submitter, mc = _precheck(store, submitter, card, card_defaults)
    check_file_size(Path(path), store.limits.max_checkpoint_bytes, "checkpoint")
    content_hash, _ = _validate_checkpoint(store, Path(path), arch)
    now = time.time()
    sub = _store_and_queue(store, Path(path), ".safetensors", kind=kind, submitter=submitter,
                           model_name=mc.model_name, arch=arch, hub_id=hub_id, content_hash=content_hash,
                           card=mc.text, extra={"card": mc.fields}, now=now)
    log.info("queued submission #%d (%s %s by %s)", sub.id, kind, mc.model_name, submitter)
    return sub


def submit_hub(store: SubmissionStore, hub_id: str, arch: str, card: Optional[str], submitter: Optional[str], *,
               revision: Optional[str] = None, fetch: Optional[Callable[..., Tuple[Path, Optional[str]]]] = None
               ) -> Submission:
    """Fetch a hub model's single ``*.safetensors`` file and queue it like a checkpoint.

    The model card is ``card`` if given, else the repo's README.md; a missing
    ``model_name`` defaults to the repo's name. Offline this fails at once.

    Args:
        fetch: ``fetch(hub_id, revision, dest_dir, limits) -> (safetensors path, README text or None)``;
            default :func:`fetch_hub_safetensors` (tests substitute a local stand-in).
    """
    from .publish_hub import is_repo_id

    if not hub_id or not is_repo_id(hub_id.strip()):
        raise SubmissionRefused(f"{hub_id!r} is not a hub model id (owner/name).")
    hub_id = hub_id.strip()
    _rate_check(store.queue._connect(), store.limits, check_submitter(submitter), time.time())  # noqa: SLF001
    if card and card.strip():
        parse_model_card(_with_defaults(card, {"model_name": hub_id.split("/")[1]}), store.limits)
    with tempfile.TemporaryDirectory(prefix="colorbench-hub-") as tmp:
        path, readme = (fetch or fetch_hub_safetensors)(hub_id, revision, Path(tmp), store.limits)
        return submit_checkpoint(store, path, arch, card if card and card.strip() else readme, submitter,
                                 kind="hub", hub_id=hub_id if not revision else f"{hub_id}@{revision}",
                                 card_defaults={"model_name": hub_id.split("/")[1]})


def fetch_hub_safetensors(hub_id: str, revision: Optional[str], dest: Path, limits: Limits
                          ) -> Tuple[Path, Optional[str]]:
    """Download the one ``*.safetensors`` file (and README.md) of a hub model repo.

    Refuses repos without exactly one safetensors file (``model.safetensors`` wins
    if there are several) and files over the checkpoint size limit (from the
    file's metadata, before downloading). Raises ``SubmissionRefused`` when the hub
    cannot be reached, within a few seconds.
    """
    from .publish_hub import HubUnavailable, ensure_hub_reachable

    try:
        endpoint = ensure_hub_reachable(f"fetch {hub_id}",
                                        alternative="upload the .safetensors file itself as a checkpoint")
    except HubUnavailable as e:
        raise SubmissionRefused(str(e)) from None
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi(endpoint=endpoint)
    try:
        info = api.model_info(hub_id, revision=revision, files_metadata=True, timeout=30)
    except Exception as e:
        raise SubmissionRefused(f"Cannot read hub model {hub_id}: {type(e).__name__}: {e}") from None
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    st = sorted(n for n in siblings if n.endswith(".safetensors"))
    if not st:
        others = [n for n in siblings if n.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl"))]
        raise SubmissionRefused(f"Hub model {hub_id} has no .safetensors file"
                                + (f" (only pickle-based {', '.join(others[:3])}, which are refused)" if others else "")
                                + ".")
    name = "model.safetensors" if "model.safetensors" in st else st[0] if len(st) == 1 else None
    if name is None:
        raise SubmissionRefused(f"Hub model {hub_id} has several safetensors files ({', '.join(st[:4])}); "
                                "sharded checkpoints are not accepted, name the file model.safetensors.")
    size = getattr(siblings[name], "size", None)
    if size is not None and size > limits.max_checkpoint_bytes:
        raise SubmissionRefused(f"{hub_id}/{name} is {size / 2**20:.0f} MB; the limit is "
                                f"{limits.max_checkpoint_bytes / 2**20:.0f} MB.")
    try:
        path = Path(hf_hub_download(hub_id, name, revision=revision, local_dir=dest, endpoint=endpoint,
                                    etag_timeout=10))
        readme = None
        if "README.md" in siblings:
            readme = Path(hf_hub_download(hub_id, "README.md", revision=revision, local_dir=dest,
                                          endpoint=endpoint)).read_text(errors="replace")
    except Exception as e:
        raise SubmissionRefused(f"Downloading {hub_id}/{name} failed: {type(e).__name__}: {e}") from None
    return path, readme


# --------------------------------------------------------------------------- predictions

def evaluation_size() -> int:
    """The side (pixels) of the square the benchmark evaluates at."""
    from ..bench.runner import BenchConfig

    return int(BenchConfig().size)


def expected_predictions(dataset: str, size: Optional[int] = None) -> Dict[str, Tuple[int, int]]:
    """Zip entry name -> (width, height) for each item of ``dataset`` (its documented item list)."""
    return _expectations(dataset, size)[0]


def _expectations(dataset: str, size: Optional[int] = None) -> Tuple[Dict[str, Tuple[int, int]], str]:
    from ..data import load_dataset

    size = int(size or evaluation_size())
    ds = load_dataset(dataset)
    out: Dict[str, Tuple[int, int]] = {}
    for it in ds:
        name = prediction_filename(it.id)
        if name in out:
            raise SubmissionRefused(f"Dataset {dataset} has two items that map to {name}; it cannot take predictions.")
        out[name] = (size, size)
    return out, ds.fingerprint


def _zip_content_hash(path: Path, entries: Dict[str, str]) -> str:
    """sha256 over the item names and the decompressed bytes of each expected entry (zip metadata ignored)."""
    import zipfile

    h = hashlib.sha256(b"colorbench-predictions-v1\0")
    with zipfile.ZipFile(path) as zf:
        for name in sorted(entries):
            h.update(name.encode() + b"\0")
            with zf.open(entries[name]) as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def submit_predictions(store: SubmissionStore, path: os.PathLike, dataset: str, card: Optional[str],
                       submitter: Optional[str], size: Optional[int] = None) -> Submission:
    """Validate and queue a zip of predictions for ``dataset``.

    The zip holds, for every item of the dataset, ``<item id>.png`` (an image suffix
    of the id replaced by ``.png``) as an 8-bit RGB PNG of the evaluation size, at
    its root or inside one folder. Nothing else.
    """
    submitter, mc = _precheck(store, submitter, card)
    path = Path(path)
    check_file_size(path, store.limits.max_zip_bytes, "predictions zip")
    try:
        expected, fingerprint = _expectations(dataset, size)
    except SubmissionRefused:
        raise
    except (KeyError, FileNotFoundError, ValueError) as e:
        raise SubmissionRefused(f"Unknown or unavailable dataset {dataset!r}: {e}") from None
    entries = check_predictions_zip(path, expected, store.limits)
    content_hash = _zip_content_hash(path, entries)
    now = time.time()
    sub = _store_and_queue(store, path, ".zip", kind="predictions", submitter=submitter, model_name=mc.model_name,
                           dataset=dataset, content_hash=content_hash, card=mc.text,
                           extra={"card": mc.fields, "size": next(iter(expected.values()))[0], "entries": entries,
                                  "dataset_fingerprint": fingerprint}, now=now)
    log.info("queued submission #%d (predictions %s on %s by %s)", sub.id, mc.model_name, dataset, submitter)
    return sub


# --------------------------------------------------------------------------- evaluation

@dataclass
class WorkerConfig:
    """How the worker evaluates.

    Attributes:
        results_dir: where results JSONs go (``<results_dir>/<dataset>/<model>.json``).
        datasets: datasets a checkpoint submission is evaluated on (a predictions
            submission is evaluated on its own dataset).
        metrics: metric names; None: every registered metric.
        size: evaluation side; None: the benchmark's default.
        batch_size, n_boot, seed: as in the benchmark.
    """

    results_dir: Path = Path("results")
    datasets: Sequence[str] = ("builtin",)
    metrics: Optional[Sequence[str]] = None
    size: Optional[int] = None
    batch_size: int = 8
    n_boot: int = 1000
    seed: int = 0

    def bench_config(self, datasets: Sequence[str]):
        from ..bench.runner import BenchConfig

        kw = {} if self.size is None else {"size": int(self.size)}
        return BenchConfig(models=[], datasets=list(datasets), metrics=list(self.metrics) if self.metrics else None,
                           out=str(self.results_dir), cache=None, batch_size=self.batch_size, n_boot=self.n_boot,
                           seed=self.seed, progress=False, **kw)


class EvaluationFailed(RuntimeError):
    """A submission could not be evaluated; the message is stored as the FAILED reason."""


def _bench_run(name: str, kind: str, weights_id: str, net: Any = None, predict: Optional[Callable] = None):
    """A model run of the benchmark runner; ``predict(gt, ids) -> uint8 (N, S, S, 3)`` replaces the network."""
    from ..bench import runner

    class _SubmittedRun(runner._ModelRun):  # noqa: SLF001 - see evaluate_run
        def predict(self, gt, ids, batch_size, hook):  # type: ignore[override]
            if predict is None:
                return super().predict(gt, ids, batch_size, hook)
            out = predict(gt, ids)
            self.predicted += len(ids)
            return out

    return _SubmittedRun(name, kind, weights_id, net=net)


def evaluate_run(cfg, dataset, run) -> Dict[str, Any]:
    """One results document for one model run on one dataset, computed by the benchmark's own code
    (the same evaluation images, pipeline, metric accumulators, bootstrap and document layout)."""
    from ..bench import runner
    from ..metrics import MetricUnavailable, create_metric, list_metrics

    metric_names = list(cfg.metrics) if cfg.metrics else list_metrics()
    metrics: Dict[str, Any] = {}
    unavailable: Dict[str, str] = {}
    for m in metric_names:
        try:
            metrics[m] = create_metric(m)
        except MetricUnavailable as e:
            unavailable[m] = str(e) or type(e).__name__
    missing = {run.name: dict(unavailable)}
    rows = runner._evaluate_shard(cfg, dataset, [run], metrics, missing, None, False)  # noqa: SLF001
    placeholders = {m: runner._Placeholder(m) for m in unavailable}  # noqa: SLF001
    return runner._result_doc(cfg, dataset, run, {**metrics, **placeholders}, rows[run.name],  # noqa: SLF001
                              missing[run.name], 1)


def _load_checkpoint_model(sub: Submission):
    """Re-check the stored file, then load it (safetensors, never pickle) into its architecture."""
    import torch
    from safetensors.torch import load_file

    from ..models import create_model

    path = Path(sub.file_path)
    try:
        tensors, _, offset = read_safetensors_header(path, Limits(max_checkpoint_bytes=1 << 62))
    except SubmissionRefused as e:
        raise EvaluationFailed(f"stored checkpoint unreadable: {e}") from None
    if safetensors_content_hash(path, tensors, offset) != sub.content_hash:
        raise EvaluationFailed("stored checkpoint does not match its content hash (modified after submission)")
    model = create_model(sub.arch, pretrained=False)
    check_state_dict_shapes(tensors, model.state_dict(), sub.arch)
    state = load_file(str(path))
    ref = model.state_dict()
    state = {k: v.to(ref[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    for p in model.parameters():
        if not torch.isfinite(p).all():
            raise EvaluationFailed("the checkpoint holds NaN or infinite weights")
    model.weights_id = "sub-" + sub.content_hash[:16]
    model.registry_name = sub.model_name
    return model.eval()


def _zip_predictor(sub: Submission, size: int):
    import zipfile

    import numpy as np

    entries: Dict[str, str] = sub.extra["entries"]
    zf = zipfile.ZipFile(sub.file_path)
    infos = {n: zf.getinfo(e) for n, e in entries.items()}
    from .submit_validate import read_zip_png

    def predict(gt, ids):
        out = []
        for item_id in ids:
            info = infos[prediction_filename(item_id)]
            rgb = read_zip_png(zf, info.filename, info.file_size)
            if rgb.shape != (size, size, 3):
                raise EvaluationFailed(f"{info.filename} decodes to {rgb.shape}, expected {(size, size, 3)}")
            out.append(rgb)
        return np.stack(out)

    return predict, zf


def _provenance(sub: Submission, evaluated_at: float) -> Dict[str, Any]:
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else None  # noqa: E731
    return {
        "submission_id": sub.id,
        "kind": sub.kind,
        "submitter": sub.submitter,
        "file_sha256": sub.file_sha256,
        "content_hash": sub.content_hash,
        "arch": sub.arch,
        "hub_id": sub.hub_id,
        "submitted_at": iso(sub.created_at),
        "evaluated_at": iso(evaluated_at),
        "card": sub.extra.get("card", {}),
        "card_text": sub.card,
    }


def _write_result(cfg: WorkerConfig, doc: Dict[str, Any], sub: Submission) -> Path:
    import json

    from ..bench.cache import atomic_write_text
    from ..bench.runner import results_path
    from ..bench.schema import dumps, validate_results

    doc["model_kind"] = doc.get("kind", "")  # e.g. the architecture's kind
    doc["kind"] = "submitted"  # the leaderboard's "type" column
    doc["submitted"] = True
    doc["provenance"] = _provenance(sub, time.time())
    validate_results(doc)
    path = results_path(Path(cfg.results_dir), doc["dataset"], doc["model"])
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
        if not old.get("submitted") or (old.get("provenance") or {}).get("submission_id") != sub.id:
            raise EvaluationFailed(f"results for {doc['model']!r} on {doc['dataset']} already exist and belong to "
                                   "another model; not overwriting them")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, dumps(doc))
    return path


def evaluate_submission(sub: Submission, cfg: WorkerConfig) -> List[Path]:
    """Evaluate one submission and write its results JSON(s); raises on any failure."""
    from ..data import load_dataset
    from ..models import list_models, model_info

    if sub.model_name.lower() in {m.lower() for m in list_models()} | RESERVED_NAMES:
        raise EvaluationFailed(f"the name {sub.model_name!r} now belongs to a built-in model")
    written: List[Path] = []
    if sub.kind in ("checkpoint", "hub"):
        model = _load_checkpoint_model(sub)
        kind = str(model_info(sub.arch).get("kind", "")) or "submitted"
        bc = cfg.bench_config(cfg.datasets)
        docs = []
        for ds_name in bc.datasets:
            dataset = load_dataset(ds_name)
            run = _bench_run(sub.model_name, kind, model.weights_id, net=model)
            docs.append(evaluate_run(bc, dataset, run))
        for doc in docs:
            doc["arch"] = sub.arch
            written.append(_write_result(cfg, doc, sub))
        return written
    if sub.kind == "predictions":
        size = int(sub.extra.get("size") or 0)
        bc = cfg.bench_config([sub.dataset])
        if size != bc.size:
            raise EvaluationFailed(f"the predictions are {size} px but the benchmark evaluates at {bc.size} px")
        dataset = load_dataset(sub.dataset)
        fp = sub.extra.get("dataset_fingerprint")
        if fp and fp != dataset.fingerprint:
            raise EvaluationFailed(f"dataset {sub.dataset} changed since the submission (fingerprint {fp} -> "
                                   f"{dataset.fingerprint})")
        if _zip_content_hash(Path(sub.file_path), sub.extra["entries"]) != sub.content_hash:
            raise EvaluationFailed("stored predictions do not match their content hash (modified after submission)")
        predict, zf = _zip_predictor(sub, size)
        with zf:
            run = _bench_run(sub.model_name, "predictions", "sub-" + sub.content_hash[:16], predict=predict)
            doc = evaluate_run(bc, dataset, run)
        return [_write_result(cfg, doc, sub)]
    raise EvaluationFailed(f"unknown submission kind {sub.kind!r}")


def _reason(e: BaseException) -> str:
    if isinstance(e, (EvaluationFailed, SubmissionRefused)):
        return str(e)
    return f"{type(e).__name__}: {e}"


def run_worker(store: SubmissionStore, cfg: WorkerConfig, max_jobs: Optional[int] = None,
               requeue_after_s: Optional[float] = None) -> List[Submission]:
    """Evaluate PENDING submissions one by one until none is left (or ``max_jobs`` are done).

    Each ends FINISHED (results written) or FAILED with its reason; the worker itself
    keeps going. Returns the processed submissions in their final state.
    """
    if requeue_after_s is not None:
        n = store.queue.requeue_stale(requeue_after_s)
        if n:
            log.warning("requeued %d submission(s) left RUNNING by a dead worker", n)
    done: List[Submission] = []
    while max_jobs is None or len(done) < max_jobs:
        sub = store.queue.claim()
        if sub is None:
            break
        log.info("evaluating submission #%d (%s %s)", sub.id, sub.kind, sub.model_name)
        try:
            paths = evaluate_submission(sub, cfg)
        except Exception as e:  # every failure is recorded, the worker goes on
            log.warning("submission #%d failed: %s", sub.id, _reason(e))
            store.queue.fail(sub.id, _reason(e))
        else:
            store.queue.finish(sub.id, [str(p) for p in paths])
        done.append(store.queue.get(sub.id))
    return done


# --------------------------------------------------------------------------- CLI

def default_data_dir() -> Path:
    """``$COLORBENCH_DATA_DIR``, else the app's default ``<repo>/space_data`` (so the CLI and the app share a queue)."""
    from ..weights import REPO_ROOT

    return Path(os.environ.get("COLORBENCH_DATA_DIR", REPO_ROOT / "space_data"))
