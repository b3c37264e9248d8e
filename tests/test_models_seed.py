"""The seed architectures: output shapes and ranges, architecture facts from the papers,
and that a few training steps reduce each model's own loss on a fixed batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from colorbench import color
from colorbench.models import create_model, list_models, model_info

#: narrow variants for speed (the shapes and the code paths are the same)
SMALL = {
    "pix2pix": dict(ngf=8, ndf=8),
    "vgg16_regression": dict(width=8),
    "vgg16_uv_classifier": dict(width=8),
}
#: models that need a spatial size other than 64
SIZE = {"pix2pix": 256}
SEED_MODELS = ["colorbench_lite0", "resnet18_regression", "resnet18_regression_blue", "biased_ensemble",
               "biased_ensemble_bgy", "vgg16_regression", "vgg16_uv_classifier", "pix2pix", "eccv16_small_l2",
               "eccv16_small_class", "eccv16_small_rebal"]


@pytest.fixture(autouse=True)
def _threads():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_seed_models_are_registered_with_paper_and_description():
    names = set(list_models())
    for name in SEED_MODELS:
        assert name in names
        info = model_info(name)
        assert info.get("paper") and len(info.get("description", "")) > 60, name
        assert info.get("kind") in {"baseline", "classification", "regression", "gan", "ensemble"}


@pytest.mark.parametrize("name", [n for n in list_models() if n != "random"])
def test_output_shape_and_range(name):
    torch.manual_seed(0)
    model = create_model(name, **SMALL.get(name, {}))
    s = SIZE.get(name, 64)
    L = torch.linspace(0, 100, 2 * s * s).reshape(2, 1, s, s)
    with torch.no_grad():
        ab = model(L)
    assert ab.shape == (2, 2, s, s)
    assert ab.dtype == torch.float32
    assert torch.isfinite(ab).all()
    assert ab.abs().max() <= color.AB_MAX + 1e-3


def test_gray_is_zero_and_lite_is_deterministic_in_eval():
    L = torch.rand(1, 1, 64, 64) * 100
    assert create_model("gray")(L).abs().max() == 0
    torch.manual_seed(0)
    m = create_model("colorbench_lite0")
    with torch.no_grad():
        assert torch.equal(m(L), m(L))


def test_biased_ensemble_is_the_mean_of_its_members():
    torch.manual_seed(0)
    members = [create_model("resnet18_regression") for _ in range(3)]
    ens = create_model("biased_ensemble", members=members)
    L = torch.rand(2, 1, 32, 32) * 100
    with torch.no_grad():
        expected = sum(m(L) for m in members) / 3
        assert torch.allclose(ens(L), expected, atol=1e-5)
    assert len(create_model("biased_ensemble_bgy").members) == 3
    assert len(create_model("biased_ensemble").members) == 2  # BY


def test_resnet18_stem_layout():
    m = create_model("resnet18_regression")
    conv1 = m.encoder[0]
    assert conv1.in_channels == 1 and conv1.kernel_size == (7, 7) and conv1.stride == (2, 2)
    feats = m.encoder(torch.zeros(1, 1, 64, 64))
    assert feats.shape == (1, 128, 8, 8)  # layer2: stride 8, 128 channels
    ups = [l for l in m.decoder if isinstance(l, torch.nn.Upsample)]
    assert len(ups) == 3 and all(u.mode == "nearest" for u in ups)
    assert isinstance(m.decoder[-1], torch.nn.Tanh)


def test_pix2pix_generator_and_patchgan_geometry():
    m = create_model("pix2pix", ngf=8, ndf=8)
    x = torch.zeros(1, 1, 256, 256)
    for d in m.generator.down:
        x = d(x)
    assert x.shape[-2:] == (1, 1)  # 8 stride-2 downsamplings: 256 -> 1
    assert len(m.generator.down) == 8
    out = m.discriminator(torch.zeros(1, 3, 256, 256))
    assert out.shape == (1, 1, 30, 30)  # the 70x70 PatchGAN's output grid at 256
    # receptive field of the discriminator: 70 pixels
    rf, jump = 1, 1
    convs = [l for l in m.discriminator.net if isinstance(l, torch.nn.Conv2d)]
    for c in convs:
        jump_prev = jump
        rf += (c.kernel_size[0] - 1) * jump_prev
        jump *= c.stride[0]
    assert rf == 70
    layers = list(m.discriminator.net)
    assert not isinstance(layers[1], torch.nn.BatchNorm2d)  # no norm in the first block
    assert isinstance(layers[-1], torch.nn.Conv2d)  # nor in the last


def test_luv_to_lab_matches_skimage():
    skcolor = pytest.importorskip("skimage.color")
    from colorbench.models.hwang import luv_to_lab

    rng = np.random.default_rng(0)
    rgb = rng.random((8, 8, 3))
    luv = torch.from_numpy(skcolor.rgb2luv(rgb)).permute(2, 0, 1)[None].float()
    lab = luv_to_lab(luv)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(lab, skcolor.rgb2lab(rgb), atol=0.05)


def test_uv_bins_cover_the_gamut_and_round_trip():
    from colorbench.models.hwang import N_UV_BINS, uv_bin_centers, uv_to_bins

    cu, cv = uv_bin_centers()
    assert cu.shape == cv.shape == (N_UV_BINS,) == (50,)
    bu, bv = uv_to_bins(torch.stack((cu, cv)).view(1, 2, 1, 50))
    assert torch.equal(bu[0, 0], torch.arange(50)) and torch.equal(bv[0, 0], torch.arange(50))


TRAINABLE = ["colorbench_lite0", "resnet18_regression", "vgg16_regression", "vgg16_uv_classifier",
             "eccv16_small_l2", "eccv16_small_class", "eccv16_small_rebal", "pix2pix"]


@pytest.mark.parametrize("name", TRAINABLE)
def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(name):
    from colorbench.train.loop import TrainConfig, default_optimizers, default_train_step

    torch.manual_seed(0)
    model = create_model(name, **SMALL.get(name, {})).train()
    s = SIZE.get(name, 64)
    g = torch.Generator().manual_seed(0)
    # a smooth, learnable batch: ab is a function of L
    L = torch.rand(2, 1, s // 8, s // 8, generator=g).repeat_interleave(8, 2).repeat_interleave(8, 3) * 100
    ab = torch.cat(((L - 50) * 0.8, (50 - L) * 0.5), dim=1)
    cfg = TrainConfig(model=name, lr=3e-3 if name != "pix2pix" else 1e-3)
    opts = default_optimizers(model, cfg)
    for g_ in (o for opt in opts for o in opt.param_groups):
        g_["lr"] = g_["base_lr"]

    def loss_now() -> float:
        # train mode (batch statistics), dropout with a fixed seed, no gradient
        torch.manual_seed(123)
        with torch.no_grad():
            if hasattr(model, "validation_loss"):
                return float(model.validation_loss(L, ab))
            return float(model.training_loss(L, ab)[0])

    before = loss_now()
    for _ in range(12):
        default_train_step(model, L, ab, opts)
    after = loss_now()
    assert after < before, (before, after)


def test_every_shipped_weights_file_is_listed_hashed_carded_and_loads_by_name():
    from colorbench.weights import read_manifest, sha256_file, weights_dir

    folder = weights_dir()
    manifest = read_manifest(folder)
    files = sorted(p.name for p in folder.glob("*.safetensors"))
    for fname in files:
        assert fname in manifest, f"{fname} is not in manifest.json"
        assert sha256_file(folder / fname) == manifest[fname]["sha256"], fname
        assert (folder / fname.replace(".safetensors", ".md")).is_file(), f"no model card for {fname}"
        assert (folder / fname).stat().st_size < 40e6
    loaded = []
    for name in list_models():
        spec = model_info(name).get("weights")
        if spec is not None and spec.filename in files:
            model = create_model(name, pretrained=True)
            assert model.weights_id == manifest[spec.filename]["sha256"][:16]
            loaded.append(name)
    assert "colorbench_lite0" in loaded or "colorbench_lite0.safetensors" not in files
