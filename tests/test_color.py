"""Colour science against scikit-image (the reference implementation) and known values."""

import numpy as np
import pytest
import torch
from skimage import color as skc

from colorbench import color


def _grid(step_count=256):
    v = np.linspace(0, 255, step_count).round().astype(np.uint8)
    r, g, b = np.meshgrid(v, v, v, indexing="ij")
    return np.stack([r, g, b], -1).reshape(-1, 1, 3)


@pytest.fixture(scope="module")
def random_colors():
    rng = np.random.default_rng(0)
    return rng.random((1000, 1000, 3))  # 10^6 float colours in [0, 1]


def test_rgb2lab_matches_skimage_random(random_colors):
    ours = color.rgb2lab(random_colors)
    ref = skc.rgb2lab(random_colors)
    assert np.abs(ours - ref).max() < 0.05


def test_rgb2lab_matches_skimage_full_uint8_grid():
    rgb = _grid(256)  # every 8-bit colour: 16.7M
    worst = 0.0
    for s in range(0, rgb.shape[0], 1 << 21):
        chunk = rgb[s : s + (1 << 21)]
        worst = max(worst, float(np.abs(color.rgb2lab(chunk) - skc.rgb2lab(chunk)).max()))
    assert worst < 0.05


def test_lab2rgb_roundtrip_and_skimage(random_colors):
    lab = skc.rgb2lab(random_colors)
    ours = color.lab2rgb(lab)
    ref = skc.lab2rgb(lab)
    assert np.abs(ours - ref).max() < 1e-3
    assert np.abs(ours - random_colors).max() < 1e-3


def test_lab2rgb_clips_out_of_gamut_like_skimage():
    rng = np.random.default_rng(1)
    lab = np.stack([rng.uniform(0, 100, 50000), rng.uniform(-110, 110, 50000), rng.uniform(-110, 110, 50000)], -1)
    lab = lab.reshape(-1, 1, 3)
    with np.errstate(all="ignore"):
        ref = skc.lab2rgb(lab)
    assert np.abs(color.lab2rgb(lab) - ref).max() < 1e-3


def test_keep_lightness_gamut_mapping_preserves_L():
    rng = np.random.default_rng(2)
    lab = np.stack([rng.uniform(1, 99, 20000), rng.uniform(-110, 110, 20000), rng.uniform(-110, 110, 20000)], -1)
    t = torch.from_numpy(lab.T.reshape(1, 3, -1, 1).copy())
    rgb = color.lab_to_rgb(t, keep_lightness=True)
    L_back = color.rgb_to_lab(rgb)[:, 0]
    assert (L_back - t[:, 0]).abs().max() < 0.05
    # in-gamut colours are left unchanged
    inside = skc.rgb2lab(rng.random((1000, 1, 3)))
    ti = torch.from_numpy(np.ascontiguousarray(inside.transpose(2, 0, 1)))[None]
    assert (color.lab_to_rgb(ti, keep_lightness=True) - color.lab_to_rgb(ti)).abs().max() < 1e-6


def test_luv_matches_skimage(random_colors):
    ours = color.rgb2luv(random_colors)
    ref = skc.rgb2luv(random_colors)
    assert np.abs(ours - ref).max() < 0.05
    back = color.luv2rgb(ref)
    assert np.abs(back - random_colors).max() < 1e-3


def test_luv_matches_skimage_full_uint8_grid():
    rgb = _grid(256)
    worst = 0.0
    for s in range(0, rgb.shape[0], 1 << 21):
        chunk = rgb[s : s + (1 << 21)]
        worst = max(worst, float(np.abs(color.rgb2luv(chunk) - skc.rgb2luv(chunk)).max()))
    assert worst < 0.05


def test_known_values():
    white = color.rgb2lab(np.array([[[1.0, 1.0, 1.0]]]))[0, 0]
    black = color.rgb2lab(np.array([[[0.0, 0.0, 0.0]]]))[0, 0]
    assert np.allclose(white, [100, 0, 0], atol=0.01)
    assert np.allclose(black, [0, 0, 0], atol=1e-6)
    red = color.rgb2lab(np.array([[[1.0, 0, 0]]]))[0, 0]  # CIE standard sRGB red
    assert np.allclose(red, [53.24, 80.09, 67.20], atol=0.05)


def test_rgb_to_l_equals_full_conversion():
    rgb = torch.randint(0, 256, (2, 3, 31, 17), dtype=torch.uint8)
    assert torch.allclose(color.rgb_to_l(rgb), color.rgb_to_lab(rgb)[:, :1], atol=1e-4)


def test_normalisation_constants():
    assert (color.L_CENT, color.L_NORM, color.AB_NORM) == (50.0, 100.0, 110.0)


# -- quantization -----------------------------------------------------------------
def test_bins_are_the_release():
    c = color.ab_centers()
    p = color.imagenet_prior()
    assert c.shape == (313, 2) and p.shape == (313,)
    assert np.all(c % 10 == 0)
    assert abs(p.sum() - 1) < 1e-6
    assert np.all(c[p.argmax()] == [0, 0])  # the neutral class is the most frequent


def test_encode_ab_nearest():
    c = torch.as_tensor(color.ab_centers(), dtype=torch.float32)
    ab = (c + torch.rand_like(c) * 8 - 4).t().reshape(1, 2, 313, 1)  # jitter < half grid step
    assert torch.equal(color.encode_ab(ab).flatten(), torch.arange(313))


def test_soft_encode_sums_to_one_and_peaks_at_nearest():
    ab = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(0)) * 60  # includes far out-of-gamut ab
    enc = color.soft_encode(ab, k=5, sigma=5)
    assert enc.shape == (2, 313, 8, 8)
    assert torch.allclose(enc.sum(1), torch.ones(2, 8, 8), atol=1e-5)
    assert ((enc > 0).sum(1) == 5).all()
    assert torch.equal(enc.argmax(1), color.encode_ab(ab))
    # Gaussian weights: for a point exactly on a centre, weight ratio to a neighbour 10 away is exp(-100/50)
    c0 = torch.as_tensor(color.ab_centers()[150], dtype=torch.float32).view(1, 2, 1, 1)
    e = color.soft_encode(c0, k=5, sigma=5).flatten()
    top = e.topk(2).values
    assert torch.isclose(top[1] / top[0], torch.tensor(np.exp(-2.0), dtype=torch.float32), rtol=1e-4)


def test_annealed_mean_limits():
    logits = torch.randn(3, 313, 4, 4) * 3
    probs = logits.softmax(1)
    centers = torch.as_tensor(color.ab_centers(), dtype=torch.float32)
    mean = torch.einsum("nqhw,qc->nchw", probs, centers)
    assert torch.allclose(color.annealed_mean(logits, T=1.0), mean, atol=1e-3)
    mode = centers[logits.argmax(1)].permute(0, 3, 1, 2)
    assert torch.allclose(color.annealed_mean(logits, T=1e-4), mode, atol=1e-2)
    assert torch.equal(color.annealed_mean(logits, T=0), mode)
    assert torch.allclose(color.annealed_mean_from_probs(probs, T=1.0), mean, atol=1e-3)
    assert (color.T_RELEASED, color.T_PAPER) == (0.38, 0.45)


def test_rebalance_weights():
    p = color.imagenet_prior()
    w = color.rebalance_weights(p, lam=0.5, sigma=5)
    assert abs((p * w).sum() - 1) < 1e-9  # expectation 1 under the prior
    assert w.argmin() == p.argmax() or w[p.argmax()] < np.median(w)  # common colours down-weighted
    # lambda = 1 is uniform mixing only: all weights equal
    w1 = color.rebalance_weights(p, lam=1.0)
    assert np.allclose(w1, w1[0])
    # hand-computed for a smoothing-free check: with sigma -> 0 the smoothed prior is the prior
    w0 = color.rebalance_weights(p, lam=0.5, sigma=1e-3)
    ref = 1 / (0.5 * p + 0.5 / 313)
    assert np.allclose(w0, ref / (p * ref).sum())


def test_uint8_fast_paths_match_formulas():
    rgb = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    assert torch.allclose(color.rgb_to_l(rgb), color.rgb_to_lab(rgb.float() / 255)[:, :1], atol=1e-3)
    lin = torch.rand(1, 3, 256, 256) ** 3  # dense near black, where sRGB is steepest
    exact = color.to_uint8(color.linear_to_srgb(lin)).int()
    assert (color.linear_to_uint8(lin).int() - exact).abs().max() <= 1
