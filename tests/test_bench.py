"""The benchmark runner: evaluation images, cache, resume, schema, ground truth, skips."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorbench.bench import runner
from colorbench.bench.cache import PredictionCache, safe_name
from colorbench.bench.runner import BenchConfig, eval_image, results_path, run_benchmark
from colorbench.bench.schema import (ResultsSchemaError, decode_number, dumps, load_results_file,
                                     validate_results)

SIZE = 32
FAST_METRICS = ["auc", "psnr", "mse"]


def make_folder(root: Path, n: int = 6, seed: int = 0) -> str:
    """``n`` smooth colour images of various sizes (and one nested) -> ``folder:PATH``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        h, w = int(rng.integers(32, 60)), int(rng.integers(32, 60))
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        c0, c1, c2 = rng.uniform(0, 255, size=(3, 3))
        img = np.clip(c0 + np.outer(yy.ravel(), c1).reshape(h, w, 3) + np.outer(xx.ravel(), c2).reshape(h, w, 3)
                      + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
        sub = root / ("nested" if i == n - 1 else "")
        sub.mkdir(exist_ok=True)
        Image.fromarray(img).save(sub / f"img{i}.png")
    return f"folder:{root}"


def cfg_for(ds: str, tmp: Path, out: str = "out", cache: str = "cache", **kw) -> BenchConfig:
    base = dict(models=["ground_truth", "gray", "random"], datasets=[ds], metrics=FAST_METRICS,
                out=str(tmp / out), cache=str(tmp / cache), size=SIZE, batch_size=2, n_boot=50, progress=False)
    base.update(kw)
    return BenchConfig(**base)


def read(cfg: BenchConfig, ds: str, model: str) -> dict:
    from colorbench.data import load_dataset

    return json.loads(results_path(Path(cfg.out), load_dataset(ds).name, model).read_text())


def scores(doc: dict) -> dict:
    """The parts of a results document that must not depend on how the run was done."""
    return {"metrics": doc["metrics"], "per_image": doc["per_image"], "curves": doc["curves"],
            "n_images": doc["n_images"], "weights_id": doc["weights_id"]}


@pytest.fixture(scope="module")
def folder_ds(tmp_path_factory) -> str:
    return make_folder(tmp_path_factory.mktemp("imgs"))


@pytest.fixture(scope="module")
def full_run(folder_ds, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full")
    cfg = cfg_for(folder_ds, tmp, metrics=FAST_METRICS + ["auc_rebal"])
    report = run_benchmark(cfg)
    return cfg, report


# -- evaluation images ----------------------------------------------------------
def test_eval_image_is_the_centre_crop_when_the_short_side_fits():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(SIZE, 50, 3), dtype=np.uint8)
    left = (50 - SIZE) // 2
    np.testing.assert_array_equal(eval_image(img, SIZE), img[:, left : left + SIZE])
    tall = rng.integers(0, 256, size=(47, SIZE, 3), dtype=np.uint8)
    top = (47 - SIZE) // 2
    np.testing.assert_array_equal(eval_image(tall, SIZE), tall[top : top + SIZE])


def test_eval_image_resizes_the_shorter_side_with_antialiasing():
    # a fine 1-pixel checkerboard averages to mid-gray when shrunk 4x with antialiasing
    board = ((np.indices((4 * SIZE, 6 * SIZE)).sum(0) % 2) * 255).astype(np.uint8)
    out = eval_image(np.repeat(board[..., None], 3, axis=2), SIZE)
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8
    assert abs(out.astype(float).mean() - 127.5) < 3 and out.std() < 6


# -- cache ------------------------------------------------------------------------
def test_cache_roundtrip_and_corrupt_files_are_never_used(tmp_path):
    cache = PredictionCache(tmp_path, "m", "w1", "fp", SIZE)
    rgb = np.random.default_rng(2).integers(0, 256, size=(SIZE, SIZE, 3), dtype=np.uint8)
    item = "sub/dir/a b.jpg"
    path = cache.put(item, rgb)
    assert path.parent == cache.dir and "/" not in path.name
    np.testing.assert_array_equal(cache.get(item), rgb)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a partial write
    assert cache.get(item) is None and not path.exists()
    path.write_bytes(data[:-12] + b"\0" * 12)  # right length, broken end chunk
    assert cache.get(item) is None
    cache.put(item, rgb[: SIZE // 2].repeat(2, axis=0))
    other = PredictionCache(tmp_path, "m", "w1", "fp", SIZE // 2)  # a different size never matches
    assert other.get(item) is None
    assert not list(cache.dir.glob("*.tmp"))  # atomic writes leave no temporary files


def test_safe_name_is_injective_on_awkward_ids():
    ids = ["a/b.png", "a_b.png", "a%2Fb.png", "..", ".", "x y", "x+y"]
    names = [safe_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert all("/" not in n and n not in (".", "..") for n in names)


# -- schema ----------------------------------------------------------------------
def test_runner_documents_validate_and_roundtrip(full_run):
    cfg, report = full_run
    assert len(report.written) == 3
    for path in report.written:
        doc = load_results_file(path)
        assert {"model", "dataset", "metrics", "per_image", "versions", "git", "date"} <= set(doc)
        assert doc["size"] == SIZE and doc["n_images"] == 6
        assert doc["versions"]["torch"] and doc["versions"]["colorbench"]
        for name, m in doc["metrics"].items():
            assert len(m["ci"]) == 2 and m["ci"][0] <= m["ci"][1]
            assert m["definition"] and m["version"]
            assert len(doc["per_image"][name]) == 6
        # the dataset value of a mean-type metric is the mean of its per-image scores
        psnr = [decode_number(v) for v in doc["per_image"]["psnr"].values()]
        assert doc["metrics"]["psnr"]["value"] == pytest.approx(np.mean(psnr))
        assert len(doc["curves"]["auc"]["y"]) == 151
        assert doc["metrics"]["auc"]["value"] == pytest.approx(np.mean(doc["curves"]["auc"]["y"]))


def _good_doc(full_run) -> dict:
    return json.loads(full_run[1].written[1].read_text())


@pytest.mark.parametrize("mutate, expect", [
    (lambda d: d.pop("metrics"), "missing top-level key 'metrics'"),
    (lambda d: d.update(model=""), "'model' must not be empty"),
    (lambda d: d["metrics"]["psnr"].update(ci=[30.0, 10.0]), "lower bound"),
    (lambda d: d["metrics"]["psnr"].update(ci=[1.0]), "list [lo, hi]"),
    (lambda d: d["metrics"]["psnr"].update(value="high"), "must be a number"),
    (lambda d: d["metrics"]["psnr"].update(value=None, ci=None), "no 'missing' reason"),
    (lambda d: d["metrics"]["mse"].pop("higher_is_better"), "lacks 'higher_is_better'"),
    (lambda d: d["per_image"]["auc"].popitem(), "5 scores for 6 images"),
    (lambda d: d.update(date="yesterday"), "ISO 8601"),
    (lambda d: d.update(n_images="6"), "'n_images' must be int"),
])
def test_schema_rejects_bad_documents_with_a_clear_reason(full_run, mutate, expect):
    doc = _good_doc(full_run)
    validate_results(copy.deepcopy(doc))
    mutate(doc)
    with pytest.raises(ResultsSchemaError) as e:
        validate_results(doc)
    assert expect in str(e.value)


def test_schema_lists_every_problem_and_accepts_minimal_submissions():
    with pytest.raises(ResultsSchemaError) as e:
        validate_results({"model": "x", "metrics": {"auc": {"value": 0.9}}}, strict=False)
    assert len(e.value.problems) == 3  # no dataset, no ci, no higher_is_better
    validate_results({"model": "x", "dataset": "builtin",
                      "metrics": {"auc": {"value": 0.9, "ci": [0.8, 0.95], "higher_is_better": True},
                                  "lpips": {"value": None, "ci": None, "higher_is_better": False,
                                            "missing": "no weights"}}}, strict=False)
    with pytest.raises(ResultsSchemaError):
        validate_results([], strict=False)


def test_nonfinite_numbers_are_strict_json():
    text = dumps({"model": "m", "x": [math.inf, -math.inf, 1.5], "y": np.float32(2.0), "z": float("nan")})
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert [decode_number(v) for v in doc["x"]] == [math.inf, -math.inf, 1.5]
    assert doc["y"] == 2.0 and math.isnan(decode_number(doc["z"]))


# -- reference rows ----------------------------------------------------------------
def test_ground_truth_row_is_the_ceiling(full_run):
    from colorbench.metrics.fidelity import PSNR_CAP_DB

    cfg, _ = full_run
    ds = cfg.datasets[0]
    gt = read(cfg, ds, "ground_truth")["metrics"]
    assert gt["auc"]["value"] == 1.0 and gt["auc"]["ci"] == [1.0, 1.0]
    assert gt["auc_rebal"]["value"] == 1.0
    assert gt["mse"]["value"] == 0.0
    # identical images: PSNR is infinite; the metric caps it (documented in metrics.fidelity)
    assert gt["psnr"]["value"] == PSNR_CAP_DB
    gray = read(cfg, ds, "gray")["metrics"]
    for m in ("auc", "auc_rebal", "psnr"):
        assert gray[m]["value"] < gt[m]["value"]


def test_gray_prediction_is_the_lightness_of_the_evaluation_image(full_run, folder_ds):
    """The cached gray prediction has a = b = 0 and the L of the evaluation image (one pipeline)."""
    from colorbench.color import rgb2lab
    from colorbench.data import load_dataset

    cfg, _ = full_run
    ds = load_dataset(folder_ds)
    cache = PredictionCache(cfg.cache, "gray", "none", ds.fingerprint, SIZE)
    item = ds[0]
    pred = cache.get(item.id)
    lab_pred = rgb2lab(pred)
    lab_gt = rgb2lab(eval_image(item.rgb, SIZE))
    assert np.abs(lab_pred[..., 1:]).max() < 1.5  # uint8 rounding of a neutral colour
    assert np.abs(lab_pred[..., 0] - lab_gt[..., 0]).mean() < 0.5


def test_random_baseline_draws_from_the_same_dataset(full_run, folder_ds):
    from colorbench.data import load_dataset
    from colorbench.models.baselines import RandomAB

    cfg, _ = full_run
    ds = load_dataset(folder_ds)
    expected = RandomAB(pool_rgb=[eval_image(it.rgb, SIZE) for it in ds]).weights_id
    assert read(cfg, folder_ds, "random")["weights_id"] == expected


# -- resume ----------------------------------------------------------------------
class Killed(Exception):
    pass


def test_resume_after_a_kill_predicts_only_the_rest_and_matches(folder_ds, tmp_path, full_run):
    ref_cfg, _ = full_run
    cfg = cfg_for(folder_ds, tmp_path, metrics=FAST_METRICS + ["auc_rebal"])
    done = []

    def die_after_5(model, item):
        done.append((model, item))
        if len(done) == 5:
            raise Killed

    with pytest.raises(Killed):
        run_benchmark(cfg, on_predicted=die_after_5)
    assert not (Path(cfg.out)).exists() or not list(Path(cfg.out).rglob("*.json"))
    stray = next(Path(cfg.cache).rglob("*.png")).parent / ".leftover.png.123.tmp"
    stray.write_bytes(b"\x89PNG half")  # a temporary file of a killed write is never read

    again = []
    report = run_benchmark(cfg, on_predicted=lambda m, i: again.append((m, i)))
    from colorbench.data import load_dataset

    ids = [it.id for it in load_dataset(folder_ds)]
    everything = {(m, i) for m in ("gray", "random") for i in ids}
    assert set(done).isdisjoint(again)
    assert set(done) | set(again) == everything
    assert report.cached == {"ground_truth": 0, "gray": sum(m == "gray" for m, _ in done),
                             "random": sum(m == "random" for m, _ in done)}
    for model in ("ground_truth", "gray", "random"):
        assert scores(read(cfg, folder_ds, model)) == scores(read(ref_cfg, folder_ds, model))


def test_truncated_cache_files_are_recomputed(folder_ds, tmp_path, full_run):
    ref_cfg, _ = full_run
    cfg = cfg_for(folder_ds, tmp_path, metrics=FAST_METRICS + ["auc_rebal"])
    run_benchmark(cfg)
    files = sorted((Path(cfg.cache) / "gray").rglob("*.png"))
    assert len(files) == 6
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 3])
    files[1].write_bytes(b"not a png at all")
    again = []
    report = run_benchmark(cfg, on_predicted=lambda m, i: again.append(m))
    assert again == ["gray", "gray"] and report.cached["gray"] == 4 and report.cached["random"] == 6
    assert scores(read(cfg, folder_ds, "gray")) == scores(read(ref_cfg, folder_ds, "gray"))


# -- skips and missing metrics ------------------------------------------------------
def test_unavailable_model_is_skipped_with_its_reason(folder_ds, tmp_path, monkeypatch):
    from colorbench.weights import WeightsUnavailable

    real = runner._load_model

    def load(name):
        if name == "random":
            raise WeightsUnavailable("weights for random are not on this machine")
        return real(name)

    monkeypatch.setattr(runner, "_load_model", load)
    cfg = cfg_for(folder_ds, tmp_path, metrics=["psnr"])
    report = run_benchmark(cfg)
    ds_name = next(iter(report.skipped))
    assert "not on this machine" in report.skipped[ds_name]["random"]
    out_dir = results_path(Path(cfg.out), ds_name, "x").parent
    assert sorted(p.name for p in out_dir.glob("*.json")) == ["gray.json", "ground_truth.json", "skipped.json"]
    assert "not on this machine" in json.loads((out_dir / "skipped.json").read_text())["random"]


def test_unavailable_metric_is_recorded_as_missing_never_zero(folder_ds, tmp_path, monkeypatch):
    import colorbench.metrics as metrics_mod

    real = metrics_mod.create_metric

    def create(name, **kw):
        if name == "mse":
            raise metrics_mod.MetricUnavailable("no trunk weights here")
        return real(name, **kw)

    monkeypatch.setattr(metrics_mod, "create_metric", create)
    cfg = cfg_for(folder_ds, tmp_path, models=["gray"], metrics=["psnr", "mse"])
    run_benchmark(cfg)
    doc = read(cfg, folder_ds, "gray")
    validate_results(doc)
    assert doc["metrics"]["mse"]["value"] is None and doc["metrics"]["mse"]["ci"] is None
    assert doc["metrics"]["mse"]["missing"] == "no trunk weights here"
    assert doc["metrics"]["mse"]["higher_is_better"] is False
    assert "mse" not in doc["per_image"] and doc["metrics"]["psnr"]["value"] > 0


def test_unknown_names_fail_early_with_a_hint(folder_ds, tmp_path):
    from colorbench.registry import UnknownNameError

    with pytest.raises(UnknownNameError, match="Did you mean 'gray'"):
        run_benchmark(cfg_for(folder_ds, tmp_path, models=["grey"]))
    assert not (tmp_path / "out").exists()


def test_cli_bench_writes_results_and_reports(folder_ds, tmp_path, capsys):
    from colorbench.cli import main

    rc = main(["bench", "--models", "gray,ground_truth", "--metrics", "psnr", "--datasets", folder_ds,
               "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c"), "--size", str(SIZE),
               "--n-boot", "20", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "gray: 6 predicted, 0 from cache" in out
    written = sorted(tmp_path.joinpath("o").rglob("*.json"))
    assert [p.name for p in written] == ["gray.json", "ground_truth.json"]
