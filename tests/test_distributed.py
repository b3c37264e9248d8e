"""Data-parallel benchmark: 2 CPU processes under torchrun give exactly the 1-process results."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SIZE = 32
MODELS = ["ground_truth", "gray", "random"]
METRICS = ["psnr", "auc"]


def make_folder(root: Path, n: int = 7) -> str:
    """An odd number of images so the two shards differ in size."""
    rng = np.random.default_rng(5)
    root.mkdir(parents=True)
    for i in range(n):
        h, w = int(rng.integers(32, 50)), int(rng.integers(32, 50))
        base = rng.uniform(0, 255, 3)
        img = np.clip(base + rng.normal(0, 40, (h, w, 3)).cumsum(1) / 6, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"p{i}.png")
    return f"folder:{root}"


def bench_args(ds: str, out: Path, cache: Path) -> list:
    return ["bench", "--models", *MODELS, "--metrics", *METRICS, "--datasets", ds, "--out", str(out),
            "--cache", str(cache), "--size", str(SIZE), "--batch-size", "2", "--n-boot", "200", "--no-progress"]


@pytest.mark.slow
def test_two_processes_equal_one_process(tmp_path):
    from colorbench.cli import main

    ds = make_folder(tmp_path / "imgs")
    assert main(bench_args(ds, tmp_path / "one", tmp_path / "cache1")) == 0

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "colorbench.cli", *bench_args(ds, tmp_path / "two", tmp_path / "cache2")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]

    one = sorted((tmp_path / "one").rglob("*.json"))
    two = sorted((tmp_path / "two").rglob("*.json"))
    assert [p.relative_to(tmp_path / "one") for p in one] == [p.relative_to(tmp_path / "two") for p in two]
    assert len(one) == len(MODELS)
    for a, b in zip(one, two):
        da, db = json.loads(a.read_text()), json.loads(b.read_text())
        assert db["config"]["world_size"] == 2 and da["config"]["world_size"] == 1
        assert list(db["per_image"]["psnr"]) == list(da["per_image"]["psnr"])  # dataset order
        assert db["per_image"] == da["per_image"]
        assert db["metrics"] == da["metrics"]  # values and bootstrap intervals, exactly
        assert db["curves"] == da["curves"]
        assert db["n_images"] == da["n_images"] == 7
    # each rank predicted its own shard into the shared layout: 7 files per cached model
    for model in ("gray", "random"):
        assert len(list((tmp_path / "cache2" / model).rglob("*.png"))) == 7
