"""Registry, official architectures, weights handling and the pipeline."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import color as skc

from colorbench import color
from colorbench.models import create_model, list_models
from colorbench.pipeline import colorize, colorize_batch
from colorbench.registry import Registry, UnknownNameError
from colorbench.weights import WeightsCorrupted, WeightsSpec, WeightsUnavailable, load_state_dict, resolve


def _conv(cin, cout, k, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


def _bn(c):
    return 2 * c


def _siggraph17_param_count():
    n = 0
    n += _conv(4, 64, 3) + _conv(64, 64, 3) + _bn(64)
    n += _conv(64, 128, 3) + _conv(128, 128, 3) + _bn(128)
    n += _conv(128, 256, 3) + 2 * _conv(256, 256, 3) + _bn(256)
    n += _conv(256, 512, 3) + 2 * _conv(512, 512, 3) + _bn(512)
    n += 3 * (3 * _conv(512, 512, 3) + _bn(512))  # conv5, conv6, conv7
    n += _conv(512, 256, 4) + _conv(256, 256, 3) + 2 * _conv(256, 256, 3) + _bn(256)  # up8, short3-8, conv8
    n += _conv(256, 128, 4) + _conv(128, 128, 3) + _conv(128, 128, 3) + _bn(128)  # up9, short2-9, conv9
    n += _conv(128, 128, 4) + _conv(64, 128, 3) + _conv(128, 128, 3)  # up10, short1-10, conv10
    n += _conv(256, 529, 1) + _conv(128, 2, 1)  # classification and regression heads
    return n


# Official key sets: module prefixes and the indices of their parametrised layers
_ECCV16_LAYOUT = {
    "model1": ([0, 2], [4]), "model2": ([0, 2], [4]), "model3": ([0, 2, 4], [6]), "model4": ([0, 2, 4], [6]),
    "model5": ([0, 2, 4], [6]), "model6": ([0, 2, 4], [6]), "model7": ([0, 2, 4], [6]), "model8": ([0, 2, 4, 6], []),
}
_SIGGRAPH17_LAYOUT = {
    "model1": ([0, 2], [4]), "model2": ([0, 2], [4]), "model3": ([0, 2, 4], [6]), "model4": ([0, 2, 4], [6]),
    "model5": ([0, 2, 4], [6]), "model6": ([0, 2, 4], [6]), "model7": ([0, 2, 4], [6]), "model8up": ([0], []),
    "model8": ([1, 3], [5]), "model9up": ([0], []), "model9": ([1], [3]), "model10up": ([0], []), "model10": ([1], []),
    "model3short8": ([0], []), "model2short9": ([0], []), "model1short10": ([0], []), "model_class": ([0], []),
    "model_out": ([0], []),
}


def _keys(layout, extra=()):
    keys = set(extra)
    for prefix, (convs, bns) in layout.items():
        for i in convs:
            keys |= {f"{prefix}.{i}.weight", f"{prefix}.{i}.bias"}
        for i in bns:
            keys |= {f"{prefix}.{i}.{s}" for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    return keys


def test_eccv16_official_params_and_keys():
    m = create_model("eccv16")
    assert sum(p.numel() for p in m.parameters()) == _eccv16_param_count() == 32_236_011
    assert set(m.state_dict()) == _keys(_ECCV16_LAYOUT, {"model_out.weight"})


def _eccv16_param_count():
    """Worked out from the paper's layer table (conv1..conv8, 313 classes, ab-centre decoder)."""
    n = _conv(1, 64, 3) + _conv(64, 64, 3) + _bn(64)
    n += _conv(64, 128, 3) + _conv(128, 128, 3) + _bn(128)
    n += _conv(128, 256, 3) + 2 * _conv(256, 256, 3) + _bn(256)
    n += _conv(256, 512, 3) + 2 * _conv(512, 512, 3) + _bn(512)
    n += 3 * (3 * _conv(512, 512, 3) + _bn(512))
    n += _conv(512, 256, 4) + 2 * _conv(256, 256, 3) + _conv(256, 313, 1)
    return n + 313 * 2


def test_siggraph17_official_params_and_keys():
    m = create_model("siggraph17")
    assert sum(p.numel() for p in m.parameters()) == _siggraph17_param_count() == 34_187_027
    assert set(m.state_dict()) == _keys(_SIGGRAPH17_LAYOUT)


@pytest.mark.parametrize("name", ["eccv16", "siggraph17"])
def test_state_dict_reloads_strictly(name, tmp_path):
    a = create_model(name)
    path = tmp_path / "w.pth"
    torch.save(a.state_dict(), path)
    b = create_model(name, pretrained=str(path))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])
    L = torch.rand(1, 1, 64, 64) * 100
    assert torch.allclose(a(L), b(L))


def test_eccv16_decoding_layer_holds_centres_and_T1_is_mean():
    m = create_model("eccv16")
    L = torch.rand(1, 1, 64, 64) * 100
    with torch.no_grad():
        z = m.logits(L)
        ref = torch.nn.functional.interpolate(color.annealed_mean(z, T=1.0), scale_factor=4, mode="bilinear")
        assert torch.allclose(m(L, T=1.0), ref, atol=1e-3)
        ref38 = torch.nn.functional.interpolate(color.annealed_mean(z, T=0.38), scale_factor=4, mode="bilinear")
        assert torch.allclose(m(L), ref38, atol=1e-3)


def test_siggraph17_hints_change_the_output_locally():
    from colorbench.models.zhang import hints_to_maps

    ab, mask = hints_to_maps([(10, 20, (255, 0, 0))], image_hw=(100, 100), size=(64, 64))
    assert mask.sum() == 9 and mask[0, 0, 12, 6] == 1
    red_ab = color.rgb2lab(np.array([[[1.0, 0, 0]]]))[0, 0, 1:]
    assert np.allclose(ab[0, :, 12, 6].numpy(), red_ab, atol=1e-3)
    with pytest.raises(ValueError, match="outside"):
        hints_to_maps([(200, 5, (0, 0, 0))], image_hw=(100, 100), size=(64, 64))


def test_every_model_contract():
    for name in list_models():
        m = create_model(name)
        L = torch.rand(2, 1, m.input_size, m.input_size) * 100
        with torch.no_grad():
            ab = m(L)
        assert ab.shape == (2, 2, m.input_size, m.input_size), name
        assert torch.isfinite(ab).all(), name


def test_registry_did_you_mean():
    with pytest.raises(UnknownNameError, match="Did you mean 'eccv16'"):
        create_model("ecv16")
    reg = Registry("thing")
    reg.register(lambda: 1, name="one")
    with pytest.raises(ValueError, match="twice"):
        reg.register(lambda: 2, name="one")


# -- weights --------------------------------------------------------------------
def test_offline_download_fails_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = WeightsSpec(filename="x-1234abcd.pth", sha256="1234abcd", url="http://127.0.0.1:9/x-1234abcd.pth", env="CB_TEST_W")
    with pytest.raises(WeightsUnavailable) as e:
        resolve(spec)
    msg = str(e.value)
    assert "http://127.0.0.1:9/x-1234abcd.pth" in msg and "CB_TEST_W" in msg and str(tmp_path) in msg


def test_hash_mismatch_refused(tmp_path, monkeypatch):
    p = tmp_path / "w.pth"
    torch.save({"a": torch.zeros(2)}, p)
    spec = WeightsSpec(filename="w.pth", sha256="00000000")
    with pytest.raises(WeightsCorrupted, match="sha256"):
        resolve(spec, p)


class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["CB_BOOM"]),))


def test_pickle_payload_never_executed(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("CB_BOOM", str(marker))
    p = tmp_path / "evil.pth"
    with open(p, "wb") as f:
        pickle.dump({"w": _Boom()}, f)
    with pytest.raises(WeightsCorrupted):
        load_state_dict(p)
    assert not marker.exists()


# -- pipeline -----------------------------------------------------------------------
def _photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], -1)
    return (img + rng.normal(0, 8, img.shape)).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("model", ["gray", "eccv16", "siggraph17"])
@pytest.mark.parametrize("hw", [(37, 53), (300, 451), (512, 200)])
def test_pipeline_keeps_size_and_lightness(model, hw):
    torch.manual_seed(0)
    net = create_model(model)
    if model != "gray":  # make a random net colourful so gamut handling is exercised
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(3.0)
    img = _photo(*hw)
    out = colorize(img, net)
    assert out.shape == img.shape and out.dtype == np.uint8
    L_in = skc.rgb2lab(img)[..., 0]
    L_out = skc.rgb2lab(out)[..., 0]
    assert np.abs(L_out - L_in).max() < 0.5


def test_pipeline_gray_model_gives_neutral_colours():
    out = colorize(_photo(64, 80), "gray")
    lab = skc.rgb2lab(out)
    assert np.abs(lab[..., 1:]).max() < 1.0


def test_pipeline_recovers_the_ab_a_model_predicts():
    """A model that returns the ground-truth ab (at low res) reproduces the photo closely."""

    from colorbench.models.base import Colorizer

    img = _photo(128, 128)
    lab = torch.from_numpy(skc.rgb2lab(img).transpose(2, 0, 1)).float()[None]

    class Oracle(Colorizer):
        input_size = 128

        def forward(self, L):
            return lab[:, 1:]

    out = colorize(img, Oracle())
    assert np.abs(out.astype(int) - img.astype(int)).mean() < 1.0


def test_colorize_batch_equals_single():
    imgs = [_photo(40, 60, s) for s in range(3)]
    net = create_model("siggraph17")
    batch = colorize_batch(imgs, net, batch_size=2)
    for img, b in zip(imgs, batch):
        assert np.array_equal(b, colorize(img, net))


def test_hints_only_for_hint_models():
    with pytest.raises(ValueError, match="hints"):
        colorize(_photo(32, 32), create_model("eccv16"), hints=[(1, 1, (255, 0, 0))])


def test_random_baseline_draws_another_image():
    imgs = [_photo(64, 64, s) for s in range(4)]
    imgs[1] = 255 - imgs[1]
    m = create_model("random", pool_rgb=imgs)
    for i, img in enumerate(imgs):
        L = torch.from_numpy(skc.rgb2lab(img)[..., 0]).float()[None, None]
        ab = m(L)
        own = torch.from_numpy(skc.rgb2lab(img)[..., 1:].transpose(2, 0, 1)).float()
        assert (ab[0] - own).abs().mean() > 1.0  # never its own colours
        assert torch.equal(ab, m(L))  # deterministic
