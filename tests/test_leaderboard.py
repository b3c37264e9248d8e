"""Leaderboard build: tables match the results JSONs, plots are real PNGs, hooks, hosted datasets."""
from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorbench.bench.runner import BenchConfig, dataset_dirname, run_benchmark
from colorbench.bench.schema import decode_number

REPO = Path(__file__).resolve().parents[1]
SIZE = 32
MODELS = ["ground_truth", "gray", "random"]
METRICS = ["auc", "auc_rebal", "psnr", "mse"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lb")
    rng = np.random.default_rng(3)
    imgs = tmp / "imgs"
    imgs.mkdir()
    for i in range(5):
        base = rng.uniform(30, 220, 3)
        img = np.clip(base + rng.normal(0, 30, (40, 48, 3)).cumsum(0) / 5, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(imgs / f"x{i}.png")
    cfg = BenchConfig(models=MODELS, datasets=[f"folder:{imgs}"], metrics=METRICS, out=str(tmp / "results"),
                      cache=str(tmp / "cache"), size=SIZE, batch_size=4, n_boot=100, progress=False)
    report = run_benchmark(cfg)
    docs = {json.loads(p.read_text())["model"]: json.loads(p.read_text()) for p in report.written}
    return tmp / "results", docs


@pytest.fixture(scope="module")
def built(results, tmp_path_factory):
    from colorbench.leaderboard import build_leaderboard

    res_dir, docs = results
    out = tmp_path_factory.mktemp("lb_out")
    written = build_leaderboard(res_dir, out)
    return out, written, docs


def _dataset(docs) -> str:
    return next(iter(docs.values()))["dataset"]


def test_long_frame_matches_the_documents(results):
    from colorbench.leaderboard import load_results

    res_dir, docs = results
    long = load_results(res_dir)
    assert len(long) == len(MODELS) * len(METRICS)
    for r in long.itertuples(index=False):
        m = docs[r.model]["metrics"][r.metric]
        assert r.value == decode_number(m["value"])
        assert [r.ci_lo, r.ci_hi] == [decode_number(c) for c in m["ci"]]
        assert r.higher_is_better == m["higher_is_better"]


def test_csv_rows_match_the_jsons_and_are_sorted_by_auc_rebal(built):
    out, _, docs = built
    folder = out / dataset_dirname(_dataset(docs))
    with open(folder / "leaderboard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["model"] for r in rows) == sorted(MODELS)
    for r in rows:
        for metric in METRICS:
            m = docs[r["model"]]["metrics"][metric]
            assert float(r[metric]) == pytest.approx(decode_number(m["value"]), rel=1e-5, abs=1e-9)
            assert float(r[f"{metric}_lo"]) == pytest.approx(decode_number(m["ci"][0]), rel=1e-5, abs=1e-9)
            assert float(r[f"{metric}_hi"]) == pytest.approx(decode_number(m["ci"][1]), rel=1e-5, abs=1e-9)
    expected = sorted(MODELS, key=lambda k: -docs[k]["metrics"]["auc_rebal"]["value"])
    assert [r["model"] for r in rows] == expected
    assert rows[0]["model"] == "ground_truth" and rows[0]["type"] == "ground truth (ceiling)"
    assert {r["type"] for r in rows if r["model"] in ("gray", "random")} == {"baseline"}


def test_markdown_table_has_one_row_per_json_with_arrows_and_intervals(built):
    out, _, docs = built
    text = (out / dataset_dirname(_dataset(docs)) / "leaderboard.md").read_text()
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:2] == ["model", "type"]
    assert "psnr ↑" in header and "mse ↓" in header and "auc_rebal ↑" in header
    body = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    assert len(body) == len(docs)
    col = header.index("auc ↑")
    for row in body:
        m = docs[row[0]]["metrics"]["auc"]
        lo, hi = m["ci"]
        if hi > lo:
            v, half = row[col].split(" ± ")
            assert float(v) == pytest.approx(m["value"], abs=5e-4)
            assert float(half) == pytest.approx((hi - lo) / 2, abs=5e-4)
        else:
            assert float(row[col]) == pytest.approx(m["value"], abs=5e-4)
    # the combined table at the top covers the same rows, with the dataset column
    top = (out / "leaderboard.md").read_text()
    assert sum(ln.startswith("| folder") for ln in top.splitlines()) == len(docs)


def test_html_is_escaped_and_complete(built):
    out, _, docs = built
    page = (out / dataset_dirname(_dataset(docs)) / "leaderboard.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("<tr") == len(docs) + 1
    assert "ground truth (ceiling)" in page and "<script" not in page


def test_plots_are_valid_pngs(built):
    out, written, docs = built
    ds = _dataset(docs)
    folder = out / dataset_dirname(ds)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", ds).strip("._")  # folder:/a/b -> folder_a_b
    expected = [folder / f"auc_curves_{slug}.png"] + [folder / f"metric_{m}_{slug}.png" for m in METRICS]
    assert sorted(written["plots"]) == sorted(expected)
    for p in expected:
        assert p.stat().st_size > 1000
        with Image.open(p) as im:
            im.verify()
        with Image.open(p) as im:
            assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 200
            # not a blank canvas: a real chart has many distinct colours
            assert len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 10


def test_fooled_column_joins_the_study_file(results, tmp_path):
    import shutil

    from colorbench.leaderboard import leaderboard_frame

    res_dir, docs = results
    copy = tmp_path / "results"
    shutil.copytree(res_dir, copy)
    frame = leaderboard_frame(copy, dataset=_dataset(docs))
    assert list(frame["model"])[0] == "ground_truth" and "fooled ↑" not in frame.columns
    assert "dataset" not in frame.columns and len(frame) == len(MODELS)
    from colorbench.study.stats import write_fooled  # the study's own writer: percent, n_participants

    write_fooled({"gray": {"rate": 25.0, "se": 5.0, "n_participants": 40, "n_judgments": 1600}},
                 copy / "study" / "fooled.json")
    frame = leaderboard_frame(copy)
    row = frame.set_index("model").loc["gray"]
    assert row["fooled ↑"] == "25.0% ± 5.0 SE (n=40)"
    assert frame.set_index("model").loc["random"]["fooled ↑"] == "—"
    assert "dataset" in frame.columns


def test_invalid_and_missing_results_are_handled(results, tmp_path, caplog):
    import shutil

    from colorbench.leaderboard import leaderboard_frame, load_results

    res_dir, docs = results
    copy = tmp_path / "results"
    shutil.copytree(res_dir, copy)
    bad = copy / dataset_dirname(_dataset(docs)) / "broken.json"
    bad.write_text(json.dumps({"model": "broken", "dataset": "x", "metrics": {}}))
    with caplog.at_level("WARNING"):
        long = load_results(copy)
    assert "broken" not in set(long["model"]) and "broken.json" in caplog.text
    assert leaderboard_frame(tmp_path / "nowhere").empty


def test_missing_metric_shows_a_dash_and_a_note(results, tmp_path):
    from colorbench.leaderboard import build_leaderboard

    res_dir, docs = results
    doc = json.loads(json.dumps(docs["gray"]))
    doc["model"] = "gray_nolpips"
    doc["metrics"]["lpips"] = {"value": None, "ci": None, "higher_is_better": False, "missing": "AlexNet weights offline"}
    folder = tmp_path / "r" / "d"
    folder.mkdir(parents=True)
    (folder / "gray_nolpips.json").write_text(json.dumps(doc))
    build_leaderboard(tmp_path / "r", tmp_path / "o")
    md = (tmp_path / "o" / dataset_dirname(doc["dataset"]) / "leaderboard.md").read_text()
    assert "| — |" in md and "missing `lpips`: AlexNet weights offline" in md
    assert "lpips ↓" in md


def test_cli_build_is_the_default_and_hooks_report_unavailable(results, tmp_path, capsys, monkeypatch):
    from colorbench.cli import main
    from colorbench.leaderboard import cli as lb_cli

    res_dir, _ = results
    assert main(["leaderboard", "--results", str(res_dir), "--out", str(tmp_path / "a")]) == 0
    assert main(["leaderboard", "build", "--results", str(res_dir), "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / "leaderboard.md").read_text() == (tmp_path / "b" / "leaderboard.md").read_text()
    monkeypatch.setitem(lb_cli.HOOKS, "publish", ("colorbench.leaderboard.no_such_module", "x"))
    capsys.readouterr()
    assert main(["leaderboard", "publish", "--help"]) == 2
    assert "not available" in capsys.readouterr().err


# -- hosted datasets -------------------------------------------------------------------
def test_imagenette_labels_are_the_right_imagenet_classes():
    from colorbench.classifiers import imagenet_categories
    from colorbench.data.hub import IMAGENETTE_TO_IMAGENET, IMAGENETTE_VAL

    names = [imagenet_categories()[i] for i in IMAGENETTE_TO_IMAGENET]
    assert names == ["tench", "English springer", "cassette player", "chain saw", "church", "French horn",
                     "garbage truck", "gas pump", "golf ball", "parachute"]
    assert len(IMAGENETTE_VAL.indices) == 982 and max(IMAGENETTE_VAL.indices) < IMAGENETTE_VAL.n_rows


@pytest.mark.parametrize("env, dataset, hub_id", [
    ({"HF_ENDPOINT": "https://hub.invalid"}, "imagenette_val", "frgfm/imagenette"),
    ({"HF_HUB_OFFLINE": "1"}, "imagenet_val10k", "ILSVRC/imagenet-1k"),
])
def test_hosted_datasets_fail_fast_offline_naming_the_id(tmp_path, env, dataset, hub_id):
    code = ("from colorbench.data import load_dataset\n"
            "from colorbench.data.hub import DatasetUnavailable\n"
            f"try:\n    load_dataset({dataset!r})\nexcept DatasetUnavailable as e:\n    print('UNAVAILABLE', e)\n")
    full_env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(REPO), **env)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("UNAVAILABLE") and hub_id in proc.stdout and dataset in proc.stdout
    assert elapsed < 10


def test_probe_gives_up_within_its_budget(monkeypatch):
    import socket

    from colorbench.data import hub

    with socket.socket() as server:  # a listening local port is reachable
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert hub.probe_hub(f"http://127.0.0.1:{server.getsockname()[1]}", timeout=1.0) is None
        port = server.getsockname()[1]
    assert "cannot connect" in hub.probe_hub(f"http://127.0.0.1:{port}", timeout=1.0)  # closed now
    assert "cannot resolve" in hub.probe_hub("https://hub.invalid", timeout=1.0)

    def slow_dns(*a, **k):
        time.sleep(5)
        raise OSError("too late")

    monkeypatch.setattr(socket, "getaddrinfo", slow_dns)
    t0 = time.monotonic()
    reason = hub.probe_hub("https://huggingface.co", timeout=0.5)  # name resolution that hangs
    assert "longer than 0.5 s" in reason and time.monotonic() - t0 < 1.5
