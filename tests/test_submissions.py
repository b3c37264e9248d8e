"""Submissions: validation before anything runs, the queue, and the worker end to end.

Every test uses a tiny dataset made in a tmp folder and a tiny architecture
registered for the duration of the test, so nothing downloads and runs stay fast.
"""
from __future__ import annotations

import json
import os
import pickle
import stat
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from colorbench.leaderboard import submissions as subs
from colorbench.leaderboard.submit_queue import FAILED, FINISHED, PENDING, RUNNING, SubmissionQueue
from colorbench.leaderboard.submit_validate import (
    Limits,
    SubmissionRefused,
    check_predictions_zip,
    parse_model_card,
    prediction_filename,
    read_safetensors_header,
)

TINY = "tiny_submission_test_arch"
SIZE = 32  # evaluation side used throughout (the benchmark default is larger; tests stay fast)


def card(name: str = "my-colorizer", **extra: str) -> str:
    fields = {"model_name": name, "license": "mit", **extra}
    front = "\n".join(f"{k}: {v}" for k, v in fields.items())
    return f"---\n{front}\n---\nA tiny test colorizer trained on nothing at all, for the test suite.\n"


# --------------------------------------------------------------------------- fixtures



@pytest.fixture
def tiny_arch():
    """A registered architecture small enough to run in milliseconds."""
    from colorbench.models import MODELS
    from colorbench.models.base import Colorizer

    class Tiny(Colorizer):
        input_size = SIZE

        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)

        def forward(self, L: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.conv(self.normalize_l(L))) * 60.0

    MODELS.names()  # load the real families first
    MODELS.register(lambda pretrained=False, **kw: Tiny(), name=TINY, kind="regression",
                    description="test-only tiny architecture")
    yield TINY
    MODELS._entries.pop(TINY, None)


@pytest.fixture
def store(tmp_path):
    return subs.SubmissionStore(tmp_path / "data")


@pytest.fixture
def tiny_dataset(tmp_path):
    """Three small colour images in a folder: ``folder:PATH``."""
    root = tmp_path / "ds"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate([(40, 48), (48, 40), (36, 36)]):
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([(xx * 255 / w), (yy * 255 / h), np.full((h, w), 60 * i + 40)], -1)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"img{i}.png")
    return f"folder:{root}"


def tiny_checkpoint(path: Path, seed: int = 0, metadata=None, **override) -> Path:
    g = torch.Generator().manual_seed(seed)
    sd = {"conv.weight": torch.randn(2, 1, 3, 3, generator=g) * 0.5, "conv.bias": torch.randn(2, generator=g)}
    sd.update(override)
    save_file(sd, str(path), metadata=metadata)
    return path


def png_bytes(rgb: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def predictions_zip(path: Path, dataset: str, size: int = SIZE, folder: str = "", fn=None) -> Path:
    """A valid predictions zip: the evaluation images themselves with their colours muted."""
    from colorbench.bench.runner import eval_image
    from colorbench.data import load_dataset

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for it in load_dataset(dataset):
            gt = eval_image(it.rgb, size)
            pred = fn(gt) if fn else ((gt.astype(np.float32) + gt.mean(-1, keepdims=True)) / 2).astype(np.uint8)
            zf.writestr(folder + prediction_filename(it.id), png_bytes(pred))
    return path


# --------------------------------------------------------------------------- checkpoints: never pickle

class _TouchOnUnpickle:
    """Unpickling this object creates a file: the attack a pickle checkpoint can carry."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.target),))


@pytest.mark.parametrize("fmt", ["pickle", "torch_save", "pickle_protocol2"])
def test_pickle_checkpoint_is_refused_and_never_unpickled(tmp_path, store, tiny_arch, monkeypatch, fmt):
    target = tmp_path / "pwned"
    payload = {"conv.weight": _TouchOnUnpickle(target), "conv.bias": torch.zeros(2)}
    ckpt = tmp_path / "model.safetensors"  # the name lies; the bytes do not
    if fmt == "torch_save":
        torch.save(payload, ckpt)
    else:
        ckpt.write_bytes(pickle.dumps(payload, protocol=2 if fmt == "pickle_protocol2" else 4))
    # the payload is live: unpickling it really would create the file
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_TouchOnUnpickle(probe)))
    assert probe.exists()

    def no_load(*a, **k):
        raise AssertionError("torch.load must never be called on a submission")

    monkeypatch.setattr(torch, "load", no_load)
    monkeypatch.setattr(pickle, "load", no_load)
    monkeypatch.setattr(pickle, "loads", no_load)
    with pytest.raises(SubmissionRefused, match="pickle|zip archive"):
        subs.submit_checkpoint(store, ckpt, tiny_arch, card(), "alice")
    assert not target.exists()
    assert store.queue.list() == []
    assert not any(store.files.iterdir())


def test_valid_checkpoint_is_queued_and_stored_by_content_hash(tmp_path, store, tiny_arch):
    ckpt = tiny_checkpoint(tmp_path / "m.safetensors")
    sub = subs.submit_checkpoint(store, ckpt, tiny_arch, card(), "alice")
    assert sub.status == PENDING and sub.kind == "checkpoint" and sub.arch == tiny_arch
    stored = Path(sub.file_path)
    assert stored.parent == store.files and stored.name == sub.content_hash + ".safetensors"
    assert stored.read_bytes() == ckpt.read_bytes()
    import hashlib

    assert sub.file_sha256 == hashlib.sha256(ckpt.read_bytes()).hexdigest()


def test_checkpoint_keys_and_shapes_must_match(tmp_path, store, tiny_arch):
    wrong_shape = tiny_checkpoint(tmp_path / "a.safetensors", **{"conv.weight": torch.zeros(2, 1, 5, 5)})
    with pytest.raises(SubmissionRefused, match=r"shape \[2, 1, 5, 5\].*expects \[2, 1, 3, 3\]"):
        subs.submit_checkpoint(store, wrong_shape, tiny_arch, card(), "alice")
    extra_key = tiny_checkpoint(tmp_path / "b.safetensors", **{"head.weight": torch.zeros(3)})
    with pytest.raises(SubmissionRefused, match="unexpected.*head.weight"):
        subs.submit_checkpoint(store, extra_key, tiny_arch, card(), "alice")
    save_file({"conv.weight": torch.zeros(2, 1, 3, 3)}, str(tmp_path / "c.safetensors"))
    with pytest.raises(SubmissionRefused, match="missing.*conv.bias"):
        subs.submit_checkpoint(store, tmp_path / "c.safetensors", tiny_arch, card(), "alice")
    int_weights = tiny_checkpoint(tmp_path / "d.safetensors", **{"conv.bias": torch.zeros(2, dtype=torch.int32)})
    with pytest.raises(SubmissionRefused, match="dtype I32"):
        subs.submit_checkpoint(store, int_weights, tiny_arch, card(), "alice")
    with pytest.raises(SubmissionRefused, match="Unknown architecture"):
        subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / "e.safetensors"), "no_such_arch", card(), "alice")
    assert store.queue.list() == []


def test_forged_safetensors_headers_are_refused(tmp_path):
    good = tiny_checkpoint(tmp_path / "good.safetensors")
    tensors, _, offset = read_safetensors_header(good)
    assert {n: t.shape for n, t in tensors.items()} == {"conv.weight": (2, 1, 3, 3), "conv.bias": (2,)}
    raw = good.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    cases = {
        "truncated": raw[:-4],
        "trailing": raw + b"\0" * 8,
        "huge_length": (10**12).to_bytes(8, "little") + raw[8:],
        "not_json": raw[:8] + b"x" * n + raw[8 + n :],
    }
    h2 = dict(header)
    h2["conv.bias"] = {**header["conv.bias"], "shape": [3]}  # shape no longer matches its byte range
    body = json.dumps(h2).encode()
    cases["offsets"] = len(body).to_bytes(8, "little") + body + raw[8 + n :]
    for name, data in cases.items():
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(data)
        with pytest.raises(SubmissionRefused):
            read_safetensors_header(p)


def test_oversize_uploads_are_refused(tmp_path, tiny_arch, tiny_dataset):
    store = subs.SubmissionStore(tmp_path / "data", Limits(max_checkpoint_bytes=100, max_zip_bytes=100))
    ckpt = tiny_checkpoint(tmp_path / "m.safetensors")
    assert ckpt.stat().st_size > 100
    with pytest.raises(SubmissionRefused, match="limit is"):
        subs.submit_checkpoint(store, ckpt, tiny_arch, card(), "alice")
    z = predictions_zip(tmp_path / "p.zip", tiny_dataset)
    with pytest.raises(SubmissionRefused, match="limit is"):
        subs.submit_predictions(store, z, tiny_dataset, card("p"), "alice", size=SIZE)
    assert store.queue.list() == [] and not any(store.files.iterdir())


def test_duplicate_content_is_refused_even_with_other_metadata(tmp_path, store, tiny_arch):
    a = tiny_checkpoint(tmp_path / "a.safetensors", seed=1)
    b = tiny_checkpoint(tmp_path / "b.safetensors", seed=1, metadata={"note": "same tensors, other bytes"})
    assert a.read_bytes() != b.read_bytes()
    first = subs.submit_checkpoint(store, a, tiny_arch, card("one"), "alice")
    with pytest.raises(SubmissionRefused, match=f"already submitted \\(submission #{first.id}"):
        subs.submit_checkpoint(store, b, tiny_arch, card("two"), "bob")
    # a model name is taken once
    with pytest.raises(SubmissionRefused, match="already taken"):
        subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / "c.safetensors", seed=2), tiny_arch,
                               card("ONE"), "carol")


def test_rate_limit_per_submitter(tmp_path, tiny_arch):
    store = subs.SubmissionStore(tmp_path / "data", Limits(rate_limit=2, rate_window_s=3600))
    for i in range(2):
        subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / f"{i}.safetensors", seed=i), tiny_arch,
                               card(f"m{i}"), "alice")
    with pytest.raises(SubmissionRefused, match="limit is 2"):
        subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / "x.safetensors", seed=9), tiny_arch,
                               card("m9"), "Alice ")
    # another submitter is not affected
    subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / "y.safetensors", seed=9), tiny_arch, card("m9"), "bob")
    # outside the window the limit resets
    with store.queue._tx() as con:
        con.execute("UPDATE submissions SET created_at = created_at - 7200 WHERE submitter='alice'")
    subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / "z.safetensors", seed=10), tiny_arch,
                           card("m10"), "alice")


@pytest.mark.parametrize("text, match", [
    (None, "model card is required"),
    ("   ", "model card is required"),
    ("just some words that are long enough", "missing required field"),
    ("---\nmodel_name: x\n---\nlong enough description here.", "license"),
    ("---\nmodel_name: x\nlicense: mit\n---\nshort", "description"),
    ("---\nmodel_name: ../evil\nlicense: mit\n---\nA long enough description.", "model_name must be"),
    ("---\nmodel_name: x\nlicense: mit\nA long enough description.", "not closed"),
])
def test_model_card_is_required(text, match):
    with pytest.raises(SubmissionRefused, match=match):
        parse_model_card(text)


def test_model_card_fields_are_parsed():
    mc = parse_model_card(card("abc", paper="https://example.org/p"))
    assert mc.model_name == "abc" and mc.fields["license"] == "mit" and mc.fields["paper"] == "https://example.org/p"
    assert mc.description.startswith("A tiny test colorizer")


def test_builtin_names_cannot_be_taken(tmp_path, store, tiny_arch):
    with pytest.raises(SubmissionRefused, match="built-in"):
        subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / "m.safetensors"), tiny_arch, card("eccv16"), "a")
    with pytest.raises(SubmissionRefused, match="built-in"):
        subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / "m.safetensors"), tiny_arch,
                               card("ground_truth"), "a")


def test_architecture_without_weights_is_refused(tmp_path, store):
    save_file({}, str(tmp_path / "empty.safetensors"))
    with pytest.raises(SubmissionRefused, match="no weights"):
        subs.submit_checkpoint(store, tmp_path / "empty.safetensors", "gray", card(), "alice")


# --------------------------------------------------------------------------- zips

def _zip_with(path: Path, entries) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return path


def _expected(n: int = 2):
    return {f"img{i}.png": (SIZE, SIZE) for i in range(n)}


def _png(size: int = SIZE) -> bytes:
    return png_bytes(np.full((size, size, 3), 128, np.uint8))


@pytest.mark.parametrize("bad_name", ["../img0.png", "preds/../../img0.png", "/tmp/img0.png", "C:/img0.png",
                                      "preds\\..\\img0.png", "./img0.png"])
def test_zip_entries_leaving_their_folder_are_refused(tmp_path, bad_name):
    z = _zip_with(tmp_path / "p.zip", [(bad_name, _png()), ("img1.png", _png())])
    with pytest.raises(SubmissionRefused, match="leaves its folder|absolute|backslash"):
        check_predictions_zip(z, _expected())


def test_zip_with_symlink_is_refused(tmp_path):
    link = zipfile.ZipInfo("img0.png")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    z = _zip_with(tmp_path / "p.zip", [(link, "/etc/passwd"), ("img1.png", _png())])
    with pytest.raises(SubmissionRefused, match="symbolic link"):
        check_predictions_zip(z, _expected())
    fifo = zipfile.ZipInfo("img0.png")
    fifo.external_attr = (stat.S_IFIFO | 0o644) << 16
    z = _zip_with(tmp_path / "q.zip", [(fifo, _png()), ("img1.png", _png())])
    with pytest.raises(SubmissionRefused, match="not a regular file"):
        check_predictions_zip(z, _expected())


def test_zip_symlink_submission_leaves_nothing_behind(tmp_path, store, tiny_dataset):
    link = zipfile.ZipInfo(prediction_filename("img0.png"))
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    good = predictions_zip(tmp_path / "good.zip", tiny_dataset)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(tmp_path / "bad.zip", "w") as dst:
        for info in src.infolist():
            dst.writestr(link if info.filename == "img0.png" else info, "/etc/passwd" if
                         info.filename == "img0.png" else src.read(info))
    with pytest.raises(SubmissionRefused, match="symbolic link"):
        subs.submit_predictions(store, tmp_path / "bad.zip", tiny_dataset, card(), "alice", size=SIZE)
    assert store.queue.list() == [] and not any(store.files.iterdir())


def test_zip_bombs_are_refused(tmp_path):
    zeros = b"\0" * (20 << 20)  # 20 MB of zeros deflate ~1000x
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("img0.png", zeros)
        zf.writestr("img1.png", _png())
    assert z.stat().st_size < 1 << 20
    with pytest.raises(SubmissionRefused, match="ratio"):
        check_predictions_zip(z, _expected())
    with pytest.raises(SubmissionRefused, match="uncompressed"):
        check_predictions_zip(z, _expected(), Limits(max_uncompressed_bytes=1 << 20, max_ratio=1e9))
    many = _zip_with(tmp_path / "many.zip", [(f"d{i}/", "") for i in range(50)])
    with pytest.raises(SubmissionRefused, match="entries"):
        check_predictions_zip(many, _expected(), Limits(max_entries=20))


def test_zip_names_and_sizes_must_match_the_item_list(tmp_path):
    ok = _zip_with(tmp_path / "ok.zip", [("preds/img0.png", _png()), ("preds/img1.png", _png())])
    assert check_predictions_zip(ok, _expected()) == {"img0.png": "preds/img0.png", "img1.png": "preds/img1.png"}
    missing = _zip_with(tmp_path / "m.zip", [("img0.png", _png())])
    with pytest.raises(SubmissionRefused, match="1 missing.*img1.png"):
        check_predictions_zip(missing, _expected())
    extra = _zip_with(tmp_path / "e.zip", [("img0.png", _png()), ("img1.png", _png()), ("img2.png", _png())])
    with pytest.raises(SubmissionRefused, match="1 unexpected.*img2.png"):
        check_predictions_zip(extra, _expected())
    wrong = _zip_with(tmp_path / "w.zip", [("img0.png", _png(SIZE + 1)), ("img1.png", _png())])
    with pytest.raises(SubmissionRefused, match=f"{SIZE + 1}x{SIZE + 1}.*{SIZE}x{SIZE}"):
        check_predictions_zip(wrong, _expected())
    jpeg = _zip_with(tmp_path / "j.zip", [("img0.png", b"\xff\xd8\xff\xe0" + b"\0" * 40), ("img1.png", _png())])
    with pytest.raises(SubmissionRefused, match="not a PNG"):
        check_predictions_zip(jpeg, _expected())
    gray = _zip_with(tmp_path / "g.zip", [("img0.png", png_bytes(np.zeros((SIZE, SIZE), np.uint8))),
                                          ("img1.png", _png())])
    with pytest.raises(SubmissionRefused, match="RGB"):
        check_predictions_zip(gray, _expected())
    dup = tmp_path / "dup.zip"
    with pytest.warns(UserWarning), zipfile.ZipFile(dup, "w") as zf:
        zf.writestr("img0.png", _png())
        zf.writestr("img0.png", _png())
        zf.writestr("img1.png", _png())
    with pytest.raises(SubmissionRefused, match="twice"):
        check_predictions_zip(dup, _expected())
    (tmp_path / "notzip.zip").write_bytes(b"hello world")
    with pytest.raises(SubmissionRefused, match="not a valid zip"):
        check_predictions_zip(tmp_path / "notzip.zip", _expected())


def test_prediction_filenames():
    assert prediction_filename("opencv_dog") == "opencv_dog.png"
    assert prediction_filename("sub/cat.JPG") == "sub/cat.png"
    assert prediction_filename("a.png") == "a.png"


# --------------------------------------------------------------------------- queue

def test_queue_claims_each_pending_row_once(tmp_path):
    q = SubmissionQueue(tmp_path / "q.sqlite")
    assert q._connect().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ids = [q.add(kind="checkpoint", submitter="a", model_name=f"m{i}", content_hash=f"h{i}", file_sha256="s",
                 file_path="/x", card="c").id for i in range(20)]
    claimed, lock = [], threading.Lock()

    def worker():
        own = SubmissionQueue(tmp_path / "q.sqlite")
        while (s := own.claim()) is not None:
            with lock:
                claimed.append(s.id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == ids  # every row exactly once
    assert q.counts() == {PENDING: 0, RUNNING: 20, FINISHED: 0, FAILED: 0}
    q.finish(ids[0], ["r.json"])
    q.fail(ids[1], "boom")
    assert q.get(ids[0]).status == FINISHED and q.get(ids[0]).results == ["r.json"]
    assert q.get(ids[1]).status == FAILED and q.get(ids[1]).reason == "boom"
    with pytest.raises(RuntimeError, match="not RUNNING"):
        q.finish(ids[1], [])
    # a worker that died: its RUNNING rows go back to PENDING after the timeout
    assert q.requeue_stale(60, now=time.time() + 3600) == 18
    assert q.counts()[PENDING] == 18


# --------------------------------------------------------------------------- end to end: submit -> worker -> leaderboard

METRICS = ("mse", "auc")


def worker_cfg(tmp_path, dataset):
    return subs.WorkerConfig(results_dir=tmp_path / "results", datasets=(dataset,), metrics=METRICS, size=SIZE,
                             n_boot=20)


def eval_images(dataset):
    from colorbench.bench.runner import eval_image
    from colorbench.data import load_dataset

    return {it.id: eval_image(it.rgb, SIZE) for it in load_dataset(dataset)}


def mse_reference(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean((pred.astype(np.float64) - gt.astype(np.float64)) ** 2))


def assert_on_leaderboard(results_dir: Path, model: str, dataset: str) -> None:
    from colorbench.leaderboard import leaderboard_frame

    frame = leaderboard_frame(results_dir)
    row = frame[(frame["model"] == model) & (frame["dataset"] == dataset)]
    assert len(row) == 1, frame
    assert row["type"].item() == "submitted"


def test_checkpoint_submission_end_to_end(tmp_path, store, tiny_arch, tiny_dataset):
    import hashlib

    from safetensors.torch import load_file

    from colorbench.bench.schema import validate_results
    from colorbench.pipeline import colorize_batch

    ckpt = tiny_checkpoint(tmp_path / "m.safetensors", seed=3)
    sub = subs.submit_checkpoint(store, ckpt, tiny_arch, card("tiny-one"), "alice")
    cfg = worker_cfg(tmp_path, tiny_dataset)
    done = subs.run_worker(store, cfg)
    assert [(s.id, s.status, s.reason) for s in done] == [(sub.id, FINISHED, None)]
    assert store.queue.get(sub.id).status == FINISHED
    (path,) = map(Path, done[0].results)
    assert path.parent.parent == cfg.results_dir
    doc = json.loads(path.read_text())
    validate_results(doc)  # strict: the same schema as the benchmark's own results
    assert doc["model"] == "tiny-one" and doc["submitted"] is True and doc["arch"] == tiny_arch
    prov = doc["provenance"]
    assert prov["submitter"] == "alice" and prov["kind"] == "checkpoint"
    assert prov["file_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert prov["submitted_at"] and prov["evaluated_at"]

    # independent reference: the submitted weights loaded by hand, run through the pipeline, MSE in numpy
    from colorbench.models import create_model

    ref_model = create_model(tiny_arch)
    ref_model.load_state_dict(load_file(str(ckpt)))
    gts = eval_images(tiny_dataset)
    preds = colorize_batch(list(gts.values()), ref_model)
    for (item, gt), pred in zip(gts.items(), preds):
        assert doc["per_image"]["mse"][item] == pytest.approx(mse_reference(pred, gt), rel=1e-6)
    # and those weights matter: a randomly initialised network would score differently
    other = colorize_batch(list(gts.values()), create_model(tiny_arch))
    assert any(abs(mse_reference(o, g) - doc["per_image"]["mse"][i]) > 1e-3
               for (i, g), o in zip(gts.items(), other))
    assert_on_leaderboard(cfg.results_dir, "tiny-one", doc["dataset"])


def test_predictions_submission_end_to_end(tmp_path, store, tiny_dataset):
    from colorbench.bench.schema import validate_results

    rng = np.random.default_rng(5)
    made = {}

    def perturb(gt):
        out = np.clip(gt.astype(np.int16) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
        made[gt.tobytes()] = out
        return out

    z = predictions_zip(tmp_path / "preds.zip", tiny_dataset, folder="preds/", fn=perturb)
    sub = subs.submit_predictions(store, z, tiny_dataset, card("my-preds"), "bob", size=SIZE)
    assert sub.kind == "predictions" and sub.dataset == tiny_dataset
    cfg = worker_cfg(tmp_path, "builtin")  # the dataset comes from the submission, not the worker's list
    done = subs.run_worker(store, cfg)
    assert [(s.status, s.reason) for s in done] == [(FINISHED, None)]
    doc = json.loads(Path(done[0].results[0]).read_text())
    validate_results(doc)
    assert doc["submitted"] is True and doc["provenance"]["submitter"] == "bob"
    assert doc["n_images"] == 3 and set(doc["metrics"]) == set(METRICS)
    gts = eval_images(tiny_dataset)
    for item, gt in gts.items():
        assert doc["per_image"]["mse"][item] == pytest.approx(mse_reference(made[gt.tobytes()], gt), rel=1e-6)
    assert doc["metrics"]["mse"]["value"] == pytest.approx(
        np.mean([mse_reference(made[g.tobytes()], g) for g in gts.values()]), rel=1e-6)
    assert_on_leaderboard(cfg.results_dir, "my-preds", doc["dataset"])


def test_failing_evaluation_ends_failed_with_reason_and_worker_goes_on(tmp_path, store, tiny_arch, tiny_dataset):
    nan_ckpt = tiny_checkpoint(tmp_path / "nan.safetensors", **{"conv.bias": torch.tensor([float("nan"), 0.0])})
    bad = subs.submit_checkpoint(store, nan_ckpt, tiny_arch, card("nan-model"), "alice")  # valid file, bad weights
    z = predictions_zip(tmp_path / "p.zip", tiny_dataset)
    preds = subs.submit_predictions(store, z, tiny_dataset, card("changed-data"), "alice", size=SIZE)
    good = subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / "ok.safetensors"), tiny_arch, card("ok"), "bob")
    # the dataset changes after the predictions were submitted: they no longer match its item list
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(Path(tiny_dataset[len("folder:"):]) / "img9.png")
    cfg = worker_cfg(tmp_path, "builtin")
    cfg.datasets = (tiny_dataset,)
    done = {s.id: s for s in subs.run_worker(store, cfg)}
    assert done[bad.id].status == FAILED and "NaN" in done[bad.id].reason
    assert done[preds.id].status == FAILED and "changed since the submission" in done[preds.id].reason
    assert done[good.id].status == FINISHED
    assert store.queue.counts() == {PENDING: 0, RUNNING: 0, FINISHED: 1, FAILED: 2}
    names = {json.loads(p.read_text())["model"] for p in cfg.results_dir.rglob("*.json")}
    assert names == {"ok"}  # failed submissions write no results


def test_tampered_stored_file_fails(tmp_path, store, tiny_arch, tiny_dataset):
    sub = subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / "m.safetensors"), tiny_arch, card(), "alice")
    stored = Path(sub.file_path)
    os.chmod(stored, 0o644)
    tiny_checkpoint(stored, seed=99)  # same shapes, other weights
    (done,) = subs.run_worker(store, worker_cfg(tmp_path, tiny_dataset))
    assert done.status == FAILED and "content hash" in done.reason


def test_hub_submission_offline_is_refused_at_once(store, tiny_arch, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    t0 = time.monotonic()
    with pytest.raises(SubmissionRefused, match="not reachable"):
        subs.submit_hub(store, "someone/colorizer", tiny_arch, card(), "alice")
    assert time.monotonic() - t0 < 10
    with pytest.raises(SubmissionRefused, match="not a hub model id"):
        subs.submit_hub(store, "../../etc/passwd", tiny_arch, card(), "alice")
    assert store.queue.list() == []


def test_hub_submission_uses_the_repo_card(tmp_path, store, tiny_arch):
    """The fetch step is replaced by a local stand-in; everything after it is the real path."""
    def fake_fetch(hub_id, revision, dest, limits):
        return tiny_checkpoint(dest / "model.safetensors", seed=7), (
            "---\nlicense: apache-2.0\n---\nA colorizer published on the hub, with its README as the card.")

    sub = subs.submit_hub(store, "someone/hub-colorizer", tiny_arch, None, "carol", fetch=fake_fetch)
    assert sub.kind == "hub" and sub.hub_id == "someone/hub-colorizer" and sub.model_name == "hub-colorizer"
    assert Path(sub.file_path).is_file()


def test_cli_submit_worker_and_list(tmp_path, tiny_dataset, capsys):
    from colorbench.cli import main

    data, results = tmp_path / "data", tmp_path / "results"
    z = predictions_zip(tmp_path / "p.zip", tiny_dataset)
    (tmp_path / "card.md").write_text(card("cli-preds"))
    base = ["leaderboard", "submit", "--data-dir", str(data)]
    # the CLI uses the benchmark's evaluation size, so a 32 px zip is refused with the reason
    assert main([*base, "--predictions", str(z), "--dataset", tiny_dataset, "--card", str(tmp_path / "card.md"),
                 "--submitter", "dana"]) == 2
    assert "evaluation size of this item is 256x256" in capsys.readouterr().err
    z256 = predictions_zip(tmp_path / "p256.zip", tiny_dataset, size=256)
    assert main([*base, "--predictions", str(z256), "--dataset", tiny_dataset, "--card",
                 str(tmp_path / "card.md"), "--submitter", "dana"]) == 0
    assert "queued as submission #1" in capsys.readouterr().out
    assert main(["leaderboard", "worker", "--data-dir", str(data), "--results", str(results),
                 "--metrics", "mse", "--n-boot", "10"]) == 0
    assert "#1 cli-preds: FINISHED" in capsys.readouterr().out
    assert main([*base, "--list"]) == 0
    assert "FINISHED" in capsys.readouterr().out
    assert_on_leaderboard(results, "cli-preds", json.loads(next(results.rglob("cli-preds.json")).read_text())["dataset"])


# --------------------------------------------------------------------------- the Submit form of the app

def test_submit_form_handlers(tmp_path, store, tiny_arch, tiny_dataset):
    pytest.importorskip("gradio")
    from space.tabs import submit as tab

    ok = tab.submit(store, "Checkpoint (.safetensors)", str(tiny_checkpoint(tmp_path / "m.safetensors")),
                    "", tiny_arch, None, card("form-ckpt"), "erin")
    assert ok.startswith("**Queued** as submission #1")
    pkl = tmp_path / "evil.pt"
    pkl.write_bytes(pickle.dumps({"x": 1}))
    assert "must be .safetensors" in tab.submit(store, "Checkpoint (.safetensors)", str(pkl), "", tiny_arch, None,
                                                card("x"), "erin")
    assert "Choose a file" in tab.submit(store, "Predictions (.zip)", None, "", None, tiny_dataset, card("y"), "erin")
    refused = tab.submit(store, "Hub model id", None, "not an id", tiny_arch, None, card("z"), "erin")
    assert refused.startswith("**Refused:**") and "not a hub model id" in refused
    frame = tab.queue_frame(store)
    assert list(frame.columns) == tab.QUEUE_COLUMNS
    assert frame.to_dict("records") == [{
        "id": 1, "status": "PENDING", "kind": "checkpoint", "model": "form-ckpt", "architecture / dataset": tiny_arch,
        "submitter": "erin", "submitted (UTC)": frame["submitted (UTC)"][0], "reason": ""}]
    assert not any("/" in str(v) and str(store.files) in str(v) for v in frame.to_numpy().ravel())  # no paths


@pytest.mark.e2e
def test_submit_through_the_running_app(app_server, tmp_path):
    """The real app: the form's API queues a predictions zip, the worker evaluates it, the queue shows FINISHED."""
    gradio_client = pytest.importorskip("gradio_client")
    from colorbench.bench.runner import eval_image
    from colorbench.data import load_dataset

    z = tmp_path / "builtin_preds.zip"
    with zipfile.ZipFile(z, "w") as zf:  # flat colour predictions at the evaluation size compress to ~1 KB each
        for it in load_dataset("builtin"):
            mean = eval_image(it.rgb, 256).reshape(-1, 3).mean(0).astype(np.uint8)
            zf.writestr(prediction_filename(it.id), png_bytes(np.broadcast_to(mean, (256, 256, 3)).copy()))
    assert z.stat().st_size < 1 << 20
    client = gradio_client.Client(app_server.url, verbose=False)
    msg, _ = client.predict("Predictions (.zip)", gradio_client.handle_file(str(z)), "", None, "builtin",
                            card("app-flat-colour"), "frank", api_name="/submit")
    assert "**Queued**" in msg, msg
    store = subs.SubmissionStore(app_server.data_dir)
    (sub,) = [s for s in store.queue.list() if s.model_name == "app-flat-colour"]
    cfg = subs.WorkerConfig(results_dir=tmp_path / "results", metrics=("mse",), n_boot=10)
    done = subs.run_worker(store, cfg)
    assert [(s.id, s.status) for s in done if s.id == sub.id] == [(sub.id, FINISHED)]
    frame = client.predict(api_name="/submission_queue")
    rows = {r[3]: r for r in frame["data"]}
    assert rows["app-flat-colour"][1] == "FINISHED"
    assert_on_leaderboard(cfg.results_dir, "app-flat-colour", "builtin")


def test_refusal_in_the_queue_leaves_no_orphan_file(tmp_path, store, tiny_arch, monkeypatch):
    """The admission checks run again inside the insert transaction (a concurrent submitter may pass the
    early check and lose the race); a file refused there is not kept."""
    from colorbench.leaderboard.submit_validate import check_submitter

    monkeypatch.setattr(subs, "_precheck", lambda st, who, text, defaults=None: (check_submitter(who),
                                                                                 parse_model_card(text)))
    first = subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / "a.safetensors", seed=1), tiny_arch,
                                   card("same-name"), "alice")
    with pytest.raises(SubmissionRefused, match="already taken"):
        subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / "b.safetensors", seed=2), tiny_arch,
                               card("same-name"), "bob")
    assert sorted(p.name for p in store.files.iterdir()) == [Path(first.file_path).name]


def test_hub_rate_limit_is_checked_before_fetching(tmp_path, tiny_arch):
    store = subs.SubmissionStore(tmp_path / "data", Limits(rate_limit=1))
    subs.submit_checkpoint(store, tiny_checkpoint(tmp_path / "a.safetensors"), tiny_arch, card("a"), "alice")

    def fetch(*a):
        raise AssertionError("nothing may be downloaded for a submitter over the limit")

    with pytest.raises(SubmissionRefused, match="limit is 1"):
        subs.submit_hub(store, "someone/model", tiny_arch, card("b"), "alice", fetch=fetch)


def test_app_background_worker_drains_the_queue(tmp_path, store, tiny_dataset, monkeypatch):
    pytest.importorskip("gradio")
    from space.context import AppContext
    from space.tabs import submit as tab

    z = predictions_zip(tmp_path / "p.zip", tiny_dataset, size=256)
    sub = subs.submit_predictions(store, z, tiny_dataset, card("bg-worker"), "gina")
    ctx = AppContext(data_dir=store.data_dir, results_dir=tmp_path / "results")
    monkeypatch.setenv("COLORBENCH_SUBMIT_METRICS", "mse")
    stop = threading.Event()
    try:
        thread = tab.start_worker(ctx, store, interval=0.2, stop=stop)
        deadline = time.monotonic() + 120
        while store.queue.get(sub.id).status in (PENDING, RUNNING) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert store.queue.get(sub.id).status == FINISHED
    (result,) = ctx.results_dir.rglob("bg-worker.json")
    assert_on_leaderboard(ctx.results_dir, "bg-worker", json.loads(result.read_text())["dataset"])
