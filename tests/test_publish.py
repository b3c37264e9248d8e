"""Publishing the leaderboard: a parquet dataset folder with a card, loaded back with `datasets`."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import yaml

from colorbench.bench.runner import results_path
from colorbench.bench.schema import dumps, validate_results
from colorbench.leaderboard import publish as pub
from colorbench.leaderboard import publish_cli
from colorbench.leaderboard.publish_hub import HubUnavailable, ensure_hub_reachable

IDS = ["a", "b", "c"]


def make_doc(model, dataset, metrics, submitted=False):
    """A strict results document; ``metrics``: name -> (value, lo, hi, higher_is_better, per-image list) or None."""
    doc_metrics, per_image = {}, {}
    for name, spec in metrics.items():
        if spec is None:
            doc_metrics[name] = {"value": None, "ci": None, "higher_is_better": False, "missing": "weights offline",
                                 "version": "1", "definition": f"{name} definition"}
            continue
        value, lo, hi, hib, scores = spec
        doc_metrics[name] = {"value": value, "ci": [lo, hi], "higher_is_better": hib, "version": "2",
                             "definition": f"{name}: a test definition"}
        per_image[name] = dict(zip(IDS, scores))
    doc = {"schema_version": 1, "model": model, "dataset": dataset, "kind": "baseline", "weights_id": "w-" + model,
           "dataset_fingerprint": "fp-" + dataset, "n_images": len(IDS), "size": 32, "metrics": doc_metrics,
           "per_image": per_image, "versions": {"colorbench": "0.1.0", "torch": "2.14.1"},
           "git": {"commit": "0123456789abcdef", "dirty": False}, "date": "2026-01-02T03:04:05+00:00"}
    if submitted:
        doc["submitted"] = True
        doc["provenance"] = {"submitter": "alice", "file_sha256": "ab" * 32, "submitted_at": "2026-01-01T00:00:00Z",
                             "kind": "predictions"}
    validate_results(doc)
    return doc


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    docs = [
        make_doc("gray", "builtin", {"psnr": (22.5, 21.0, 24.0, True, [21.0, 22.5, 24.0]),
                                     "auc": (0.9, 0.85, 0.95, True, [0.85, 0.9, 0.95]), "lpips": None}),
        make_doc("ground_truth", "builtin", {"psnr": ("inf", "inf", "inf", True, ["inf", "inf", "inf"]),
                                             "auc": (1.0, 1.0, 1.0, True, [1.0, 1.0, 1.0]), "lpips": None}),
        make_doc("mine", "folder:/tmp/x y", {"psnr": (30.25, 29.0, 31.5, True, [29.0, 30.25, 31.5])},
                 submitted=True),
    ]
    for d in docs:
        p = results_path(root, d["dataset"], d["model"])
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(dumps(d))
    (root / "study").mkdir()
    fooled = {"gray": {"rate": 2.5, "se": 1.25, "n_participants": 4, "n_judgments": 40},
              "mine": {"rate": 31.0, "se": 3.0, "n_participants": 4, "n_judgments": 40}}
    (root / "study" / "fooled.json").write_text(json.dumps(fooled))
    return root, docs, fooled


def _num(v):
    return math.inf if v == "inf" else (math.nan if v is None else float(v))


def _same(a, b):
    a, b = _num(a), _num(b)
    return (math.isnan(a) and math.isnan(b)) or a == b


def _load(folder: Path, config: str, cache: Path):
    import datasets

    return datasets.load_dataset(str(folder), config, split="train", cache_dir=str(cache)).to_pandas()


def test_publish_folder_loads_back_with_datasets(tmp_path, results, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root, docs, fooled = results
    out = tmp_path / "published"
    assert pub.publish(str(out), root) == str(out)
    assert {p.name for p in (out / "data").iterdir()} == {"results.parquet", "metrics.parquet",
                                                          "per_image.parquet", "study.parquet"}
    cache = tmp_path / "hf_cache"

    # default config: the results table, one row per (dataset, model), equal to the JSONs
    import datasets

    default = datasets.load_dataset(str(out), split="train", cache_dir=str(cache)).to_pandas()
    res = _load(out, "results", cache)
    assert default.equals(res)
    assert len(res) == len(docs)
    for d in docs:
        row = res[(res["dataset"] == d["dataset"]) & (res["model"] == d["model"])]
        assert len(row) == 1
        row = row.iloc[0]
        assert bool(row["submitted"]) == bool(d.get("submitted"))
        for name, m in d["metrics"].items():
            assert _same(row[name], m["value"]), (d["model"], name)
            if m["value"] is not None:
                assert _same(row[f"{name}_lo"], m["ci"][0]) and _same(row[f"{name}_hi"], m["ci"][1])
    assert res.loc[res["model"] == "mine", "submitter"].item() == "alice"
    # a missing metric is null, never zero; infinity survives
    gray = res[res["model"] == "gray"].iloc[0]
    assert math.isnan(gray["lpips"])
    assert res.loc[res["model"] == "ground_truth", "psnr"].item() == math.inf

    # per-image scores, every one of them
    per = _load(out, "per_image", cache)
    expected = {(d["dataset"], d["model"], name, i): v for d in docs for name, s in d["per_image"].items()
                for i, v in s.items()}
    got = {(r.dataset, r.model, r.metric, r.item_id): r.value for r in per.itertuples(index=False)}
    assert got.keys() == expected.keys()
    assert all(_same(got[k], v) for k, v in expected.items())

    # long metrics table with definitions and the missing reason
    met = _load(out, "metrics", cache)
    lp = met[(met["model"] == "gray") & (met["metric"] == "lpips")].iloc[0]
    assert lp["missing"] == "weights offline" and math.isnan(lp["value"])
    assert met[met["metric"] == "psnr"]["definition"].iloc[0] == "psnr: a test definition"

    # human-study aggregates as written by the study
    study = _load(out, "study", cache).set_index("model")
    for model, v in fooled.items():
        for k, x in v.items():
            assert study.loc[model, k] == x

    # the plain parquet loader reads the same files
    plain = datasets.load_dataset("parquet", data_files={"train": str(out / "data" / "per_image.parquet")},
                                  split="train", cache_dir=str(cache))
    assert plain.num_rows == len(expected)


def test_dataset_card(tmp_path, results):
    root, docs, _ = results
    out = tmp_path / "pub"
    pub.build_dataset_folder(root, out)
    text = (out / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    configs = {c["config_name"]: c for c in front["configs"]}
    assert set(configs) == {"results", "metrics", "per_image", "study"}
    assert configs["results"].get("default") is True
    for name, c in configs.items():
        assert (out / c["data_files"][0]["path"]).is_file()
    assert "psnr: a test definition" in text  # metric definitions
    assert "fp-builtin" in text and "folder:/tmp/x y" in text  # datasets
    assert "2.14.1" in text and "0123456789ab" in text  # versions, git commit
    assert "alice" in text  # submitted models with provenance


def test_republish_drops_configs_that_disappeared(tmp_path, results):
    root, _, _ = results
    out = tmp_path / "pub"
    pub.build_dataset_folder(root, out)
    assert (out / "data" / "study.parquet").is_file()
    (root / "study" / "fooled.json").unlink()
    pub.build_dataset_folder(root, out)
    assert not (out / "data" / "study.parquet").exists()
    assert "config_name: study" not in (out / "README.md").read_text()
    assert not [p for p in out.iterdir() if p.name.startswith(".publish-")]


def test_nothing_to_publish(tmp_path, capsys):
    with pytest.raises(pub.PublishError, match="no valid results"):
        pub.publish(str(tmp_path / "out"), tmp_path / "empty")
    assert publish_cli.cli_main("publish", ["--to", str(tmp_path / "out"), "--results", str(tmp_path / "empty")]) == 2
    assert "no valid results" in capsys.readouterr().err


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}])
def test_publish_to_hub_offline_fails_at_once(tmp_path, results, monkeypatch, capsys, env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    import huggingface_hub

    def boom(*a, **k):
        raise AssertionError("no hub call may be attempted when the hub is unreachable")

    monkeypatch.setattr(huggingface_hub, "HfApi", boom)
    root, _, _ = results
    t0 = time.monotonic()
    with pytest.raises(HubUnavailable, match="not reachable"):
        pub.publish("someone/colorbench-results", root)
    rc = publish_cli.cli_main("publish", ["--to", "hf://datasets/someone/colorbench-results", "--results", str(root)])
    assert time.monotonic() - t0 < 10
    assert rc == 2
    assert "Hugging Face Hub is not reachable" in capsys.readouterr().err


def test_probe_honours_offline_env(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailable, match="HF_HUB_OFFLINE"):
        ensure_hub_reachable("test")


def test_parse_target(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert pub.parse_target("someone/board") == ("hub", "someone/board")
    assert pub.parse_target("hf://datasets/someone/board") == ("hub", "someone/board")
    assert pub.parse_target("./someone/board") == ("dir", "./someone/board")
    assert pub.parse_target(str(tmp_path / "out")) == ("dir", str(tmp_path / "out"))
    assert pub.parse_target("a/b/c") == ("dir", "a/b/c")
    (tmp_path / "someone").mkdir()
    assert pub.parse_target("someone/board") == ("dir", "someone/board")  # an existing local folder wins
    with pytest.raises(pub.PublishError):
        pub.parse_target("hf://datasets/../etc")
