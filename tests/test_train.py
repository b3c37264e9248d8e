"""Training: seeded sampling, exact resume, curves, cards, and weights safety
(hash-checked safetensors; pickle checkpoints never executed)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from colorbench import color
from colorbench.models import create_model
from colorbench.train.data import Augment, ImagePool, split_holdout
from colorbench.train.loop import TrainConfig, hue_class, lr_factor, train, write_curves
from colorbench.weights import WeightsCorrupted, add_to_manifest, load_state_dict, save_safetensors


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _images(n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = 48 + 8 * i, 64
        yy, xx = np.mgrid[0:h, 0:w]
        img = np.stack([(xx * 4 + 40 * i) % 256, (yy * 5) % 256, np.full_like(xx, 30 * i % 256)], -1)
        img = (img + rng.integers(0, 20, img.shape)).clip(0, 255).astype(np.uint8)
        out.append(img)
    return out, [f"img{i}.png" for i in range(n)]


def _pools(size: int = 32, seed: int = 0):
    ims, ids = _images()
    return ImagePool(ims[:5], ids[:5], size, seed=seed), ImagePool(ims[5:], ids[5:], size, seed=seed)


# -- data ---------------------------------------------------------------------------
def test_batches_are_a_pure_function_of_seed_and_step():
    a, _ = _pools()
    b, _ = _pools()
    L1, ab1 = a.sample(7, 4)
    L2, ab2 = b.sample(7, 4)
    assert torch.equal(L1, L2) and torch.equal(ab1, ab2)
    L3, _ = a.sample(8, 4)
    assert not torch.equal(L1, L3)
    assert L1.shape == (4, 1, 32, 32) and ab1.shape == (4, 2, 32, 32)
    assert L1.min() >= 0 and L1.max() <= 100


def test_unaugmented_crop_is_the_image_in_lab():
    img = np.zeros((32, 32, 3), dtype=np.uint8)
    img[..., 0] = 200
    img[..., 2] = 40
    pool = ImagePool([img], ["a"], 32, augment=Augment.none(), max_short=32)
    L, ab = pool.sample(0, 1)
    ref = color.rgb_to_lab(torch.from_numpy(img).permute(2, 0, 1)[None])
    assert torch.allclose(L, ref[:, :1], atol=1e-3) and torch.allclose(ab, ref[:, 1:], atol=1e-3)


def test_flip_only_augmentation_mirrors_the_image():
    img = np.zeros((16, 16, 3), dtype=np.uint8)
    img[:, :8, 1] = 255  # green on the left
    aug = Augment(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=True, rotate_deg=0.0, l_gamma=0.0, l_contrast=0.0)
    pool = ImagePool([img], ["a"], 16, augment=aug, max_short=16)
    ref = color.rgb_to_lab(torch.from_numpy(img).permute(2, 0, 1)[None])[:, 1:]
    seen = set()
    for step in range(12):
        _, ab = pool.sample(step, 1)
        if torch.allclose(ab, ref, atol=1e-3):
            seen.add("same")
        elif torch.allclose(ab, ref.flip(-1), atol=1e-3):
            seen.add("flipped")
    assert seen == {"same", "flipped"}


def test_holdout_split_is_deterministic_and_disjoint():
    ids = [f"x{i}" for i in range(200)]
    tr, va = split_holdout(ids, 0.1)
    assert (tr, va) == split_holdout(ids, 0.1)
    assert not set(tr) & set(va) and len(tr) + len(va) == 200 and 5 < len(va) < 40


def test_hue_classes():
    assert hue_class(None) is None
    assert hue_class(250.0) == "blue" and hue_class(80.0) == "yellow" and hue_class(150.0) == "green"
    assert hue_class(20.0) is None  # red/orange belongs to no subset


def test_lr_schedule_warms_up_and_decays():
    cfg = TrainConfig(model="x", steps=100, warmup=10, min_lr_frac=0.1)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(10, cfg) == pytest.approx(1.0)
    assert lr_factor(100, cfg) == pytest.approx(0.1)


# -- loop -----------------------------------------------------------------------------
def _cfg(tmp_path: Path, name: str, steps: int = 6) -> TrainConfig:
    return TrainConfig(model="eccv16_small_rebal", data="unused", out=str(tmp_path / name / "m.safetensors"),
                       size=32, steps=steps, batch_size=2, lr=1e-3, warmup=2, seed=3, ckpt_every=100, val_every=3,
                       threads=1, model_kwargs={"width_div": 16}, run_dir=str(tmp_path / name / "run"))


def _model():
    torch.manual_seed(0)
    return create_model("eccv16_small_rebal", width_div=16)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    full = train(_cfg(tmp_path, "a"), pools=_pools(), model=_model())
    cfg_b = _cfg(tmp_path, "b")
    part = train(cfg_b, pools=_pools(), model=_model(), stop_after=3)
    assert part.steps_done == 3 and cfg_b.checkpoint_path.is_file() and part.out is None
    resumed = train(cfg_b, resume=True, pools=_pools(), model=_model())  # a fresh model: all state from disk
    assert resumed.steps_done == 6
    sa, sb = full.model.state_dict(), resumed.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.allclose(sa[k].float(), sb[k].float(), atol=1e-6, rtol=0), k
    assert [r["loss"] for r in full.history] == pytest.approx([r["loss"] for r in resumed.history], abs=1e-6)


def test_training_writes_weights_manifest_config_and_curves(tmp_path):
    cfg = _cfg(tmp_path, "c", steps=3)
    res = train(cfg, pools=_pools(), model=_model())
    out = Path(cfg.out)
    manifest = json.loads((out.parent / "manifest.json").read_text())
    assert manifest[out.name]["steps"] == 3 and len(manifest[out.name]["sha256"]) == 64
    conf = json.loads(out.with_suffix("").with_suffix(".json").read_text())
    assert conf["model"] == "eccv16_small_rebal" and conf["steps_done"] == 3 and conf["seed"] == 3
    rows = (out.parent / "m_loss.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 4
    assert (out.parent / "m_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the shipped file loads strictly into a fresh model and reproduces its outputs
    fresh = create_model("eccv16_small_rebal", pretrained=str(out), width_div=16)
    L = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        assert torch.allclose(fresh(L), res.model(L), atol=1e-5)


def test_write_curves_csv_round_trip(tmp_path):
    hist = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5, "val_loss": 1.7}]
    write_curves(hist, tmp_path / "c.csv", tmp_path / "c.png")
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert lines[0] == "step,loss,val_loss" and lines[2] == "2,1.5,1.7"


def test_model_card_has_command_data_and_metrics(tmp_path):
    from colorbench.train.card import write_card

    cfg = _cfg(tmp_path, "d", steps=2)
    train(cfg, pools=_pools(), model=_model())
    conf = json.loads(Path(cfg.out).with_suffix("").with_suffix(".json").read_text())
    card = write_card(tmp_path / "card.md", name="m", model="eccv16_small_rebal", description="desc",
                      paper="paper", command="colorbench train eccv16_small_rebal --steps 2", config=conf,
                      metrics={"gray": {"auc": 0.9, "auc_rebal": 0.6, "agreement": 0.8}}, failures="everything")
    text = card.read_text()
    for needle in ("colorbench train eccv16_small_rebal --steps 2", "| gray | 0.6000 | 0.9000 | 0.8000 |",
                   "Where it fails", "5 training images"):
        assert needle in text


def test_train_verb_is_registered():
    from colorbench.cli import build_parser

    args = build_parser().parse_args(["train", "resnet18_regression", "--data", "folder:/x", "--size", "64",
                                      "--steps", "5", "--batch-size", "2", "--out", "weights/x.safetensors",
                                      "--seed", "1", "--resume"])
    assert args.model == "resnet18_regression" and args.steps == 5 and args.resume and args.seed == 1


# -- weights safety ---------------------------------------------------------------------
def _ship(tmp_path: Path, monkeypatch) -> Path:
    torch.manual_seed(0)
    m = create_model("eccv16_small_l2")
    path = tmp_path / "eccv16_small_l2.safetensors"
    save_safetensors(m.state_dict(), path)
    add_to_manifest(path, model="eccv16_small_l2")
    monkeypatch.setenv("COLORBENCH_WEIGHTS_DIR", str(tmp_path))
    return path


def test_shipped_weights_load_by_name(tmp_path, monkeypatch):
    path = _ship(tmp_path, monkeypatch)
    m = create_model("eccv16_small_l2", pretrained=True)
    ref = load_state_dict(path)
    assert all(torch.equal(v, ref[k]) for k, v in m.state_dict().items() if k in ref)


def test_corrupted_shipped_weights_are_refused(tmp_path, monkeypatch):
    path = _ship(tmp_path, monkeypatch)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsCorrupted, match="sha256"):
        create_model("eccv16_small_l2", pretrained=True)


def test_hash_mismatch_in_manifest_is_refused(tmp_path, monkeypatch):
    path = _ship(tmp_path, monkeypatch)
    man = json.loads((tmp_path / "manifest.json").read_text())
    man[path.name]["sha256"] = "0" * 64
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(WeightsCorrupted, match="corrupted or not the pinned release"):
        create_model("eccv16_small_l2", pretrained=True)


def test_unlisted_shipped_weights_are_refused(tmp_path, monkeypatch):
    path = _ship(tmp_path, monkeypatch)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(WeightsCorrupted, match="not listed"):
        create_model("eccv16_small_l2", pretrained=True)


def test_truncated_safetensors_file_is_refused(tmp_path, monkeypatch):
    path = _ship(tmp_path, monkeypatch)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WeightsCorrupted, match="cannot read"):
        create_model("eccv16_small_l2", pretrained=str(bad))


class _Exploit:
    """Unpickling this creates a file (what a malicious checkpoint would do)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_checkpoints_are_never_executed(tmp_path, writer):
    target = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pth"
    payload = {"state_dict": {"w": _Exploit(str(target))}}
    if writer == "pickle":
        with open(evil, "wb") as f:
            pickle.dump(payload, f)
    else:
        torch.save(payload, evil)
    assert not target.exists()
    with pytest.raises(WeightsCorrupted):
        load_state_dict(evil)
    with pytest.raises(WeightsCorrupted):
        create_model("eccv16_small_l2", pretrained=str(evil))
    assert not target.exists()


def test_the_crafted_pickle_would_create_the_file(tmp_path):
    """Control for the test above: full unpickling of the same payload does create the file."""
    target = tmp_path / "pwned.txt"
    payload = pickle.dumps(_Exploit(str(target)))
    fh = pickle.loads(payload)
    fh.close()
    assert target.exists()
