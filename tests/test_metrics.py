"""Every metric (pure function and accumulator) against an independent reference.

References are scikit-image / numpy computations written here from the metrics'
definitions, or values worked out by hand on tiny inputs.
"""

from __future__ import annotations

import time
from typing import List, Optional

import numpy as np
import pytest
import torch
from skimage import color as skcolor
from skimage import data as skdata
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity
from skimage.transform import resize

from colorbench.metrics import EvalBatch, MetricUnavailable, create_metric, list_metrics

ALL = {
    "auc": True, "auc_rebal": True, "psnr": True, "ssim": True, "mse": False, "lpips": False, "top1": True,
    "top1_agree": True, "colorfulness": True, "sat_diff": False, "acc_u": True, "acc_v": True,
}


# -- helpers ---------------------------------------------------------------------------------
def u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def small(img: np.ndarray, size=(96, 128)) -> np.ndarray:
    return u8(resize(img, size, anti_aliasing=True) * 255)


@pytest.fixture(scope="module")
def real_pairs():
    """Real photos (scikit-image) and plausible "colorizations" of them: noisy, desaturated, hue-shifted."""
    rng = np.random.default_rng(0)
    gts = [small(im) for im in (skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket())]
    preds = []
    for i, g in enumerate(gts):
        if i % 3 == 0:
            preds.append(u8(g.astype(float) + rng.normal(0, 12, g.shape)))
        elif i % 3 == 1:  # desaturate halfway in Lab
            lab = skcolor.rgb2lab(g)
            lab[..., 1:] *= 0.5
            preds.append(u8(skcolor.lab2rgb(lab) * 255))
        else:  # channel roll: wrong colours, same structure
            preds.append(g[..., [1, 2, 0]].copy())
    return np.stack(preds), np.stack(gts)


def batch_of(pred: np.ndarray, gt: np.ndarray, labels: Optional[List[Optional[int]]] = None, tag: str = "") -> EvalBatch:
    ids = [f"{tag}{i}" for i in range(len(pred))]
    return EvalBatch(ids=ids, pred_rgb=pred, gt_rgb=gt, labels=labels if labels is not None else [None] * len(pred))


def sk_ab(rgb: np.ndarray) -> np.ndarray:
    return skcolor.rgb2lab(rgb)[..., 1:]


def ref_curve(pred: np.ndarray, gt: np.ndarray, weights: Optional[np.ndarray] = None) -> np.ndarray:
    """F(t), t = 0..150, pooled over all pixels of all image pairs (lists allowed), with numpy/skimage."""
    num, den = np.zeros(151), 0.0
    for p, g in zip(pred, gt):
        d = np.sqrt(((sk_ab(p) - sk_ab(g)) ** 2).sum(-1)).ravel()
        w = np.ones_like(d) if weights is None else weights[ref_bins(sk_ab(g))].ravel()
        num += np.array([(w * (d <= t)).sum() for t in range(151)])
        den += w.sum()
    return num / den


def ref_bins(ab: np.ndarray) -> np.ndarray:
    """Nearest of the 313 centres, brute force in numpy."""
    from colorbench.color import ab_centers

    c = ab_centers()
    flat = ab.reshape(-1, 2)
    return (((flat[:, None, :] - c[None]) ** 2).sum(-1)).argmin(1).reshape(ab.shape[:-1])


def ref_inverse_prior_weights(prior: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """ECCV16 Eq. 4 with lambda = 0, written out: w ∝ 1 / (Gaussian-smoothed prior)."""
    from colorbench.color import ab_centers

    c = ab_centers()
    k = np.exp(-((c[:, None, :] - c[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))
    p = prior / prior.sum()
    smooth = k @ p
    smooth /= smooth.sum()
    return 1.0 / smooth


# -- registry ----------------------------------------------------------------------------------
def test_every_metric_is_registered_with_direction_definition_and_version():
    from colorbench.metrics import METRICS

    assert set(ALL) <= set(list_metrics())
    for name, hib in ALL.items():
        cls = METRICS.get(name).fn
        assert METRICS.meta(name)["higher_is_better"] is hib, name
        assert cls.higher_is_better is hib and cls.name == name
        assert len(cls.definition) > 40 and cls.version, name


# -- AuC -------------------------------------------------------------------------------------
def test_auc_identical_images_is_one(real_pairs):
    from colorbench.metrics.ab_auc import auc, auc_rebal

    _, gt = real_pairs
    assert np.all(auc(gt, gt) == 1.0) and np.all(auc_rebal(gt, gt) == 1.0)
    for name in ("auc", "auc_rebal"):
        m = create_metric(name)
        m.update(batch_of(gt, gt))
        res = m.compute(n_boot=50)
        assert res.value == 1.0 and res.ci == [1.0, 1.0]
        assert res.extra["curve"] == [1.0] * 151 and res.extra["thresholds"] == list(map(float, range(151)))


@pytest.mark.parametrize("offset, dist", [((6.0, 8.0), 10), ((0.0, -37.0), 37), ((90.0, 120.0), 150), ((0.0, 151.0), 151)])
def test_auc_of_a_constant_ab_offset_is_known_in_closed_form(offset, dist):
    """Off by exactly k ab units everywhere: F(t) = [t >= k], so AuC = (151 - k) / 151 (0 beyond 150)."""
    from colorbench.metrics.ab_auc import ab_distance, auc_from_counts, cumulative_counts, curve_from_counts

    gen = torch.Generator().manual_seed(0)
    gt = torch.randint(-60, 60, (3, 2, 9, 11), generator=gen).float()
    pred = gt + torch.tensor(offset).view(1, 2, 1, 1)
    rows = cumulative_counts(ab_distance(pred, gt))
    curve = curve_from_counts(rows)
    np.testing.assert_array_equal(curve, (np.arange(151) >= dist).astype(float))
    assert auc_from_counts(rows) == pytest.approx(max(0, 151 - dist) / 151, abs=1e-15)


def test_auc_half_close_half_far_by_hand():
    """Half the pixels off by 3, half by 200: F(t) = 0.5 [t >= 3] -> AuC = 0.5 * 148 / 151."""
    from colorbench.metrics.ab_auc import ab_distance, auc_from_counts, cumulative_counts

    gt = torch.zeros(1, 2, 4, 4)
    pred = gt.clone()
    pred[:, 0, :2] = 3.0
    pred[:, 0, 2:] = 200.0
    assert auc_from_counts(cumulative_counts(ab_distance(pred, gt))) == pytest.approx(0.5 * 148 / 151, abs=1e-15)


def test_auc_matches_skimage_reference_on_real_images(real_pairs):
    from colorbench.metrics.ab_auc import auc

    pred, gt = real_pairs
    got = auc(pred, gt)
    want = np.array([ref_curve(p[None], g[None]).mean() for p, g in zip(pred, gt)])
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert np.all(np.diff(want) != 0)  # the cases really differ


def test_auc_accumulator_pools_pixels_over_batches_of_different_sizes(real_pairs):
    """Dataset value = ratio of pooled counts (not the mean of per-image AuCs) = numpy over all pixels."""
    pred, gt = real_pairs
    small_pred = np.stack([small(p, (40, 50)) for p in pred[:2]])
    small_gt = np.stack([small(g, (40, 50)) for g in gt[:2]])
    m = create_metric("auc")
    m.update(batch_of(pred, gt, tag="a"))
    m.update(batch_of(small_pred, small_gt, tag="b"))
    res = m.compute(n_boot=100)
    want_curve = ref_curve(list(pred) + list(small_pred), list(gt) + list(small_gt))
    np.testing.assert_allclose(res.extra["curve"], want_curve, atol=2e-4)
    assert res.value == pytest.approx(want_curve.mean(), abs=2e-4)
    # per-image values are each image's own AuC
    assert res.per_image["b1"] == pytest.approx(ref_curve(small_pred[1:], small_gt[1:]).mean(), abs=2e-4)
    assert res.ci[0] <= res.value <= res.ci[1]


def test_ab_bins_equal_the_brute_force_nearest_centre(real_pairs):
    from colorbench.metrics.ab_auc import ab_bins

    _, gt = real_pairs
    ab = sk_ab(gt[:2])
    got = ab_bins(torch.from_numpy(ab).permute(0, 3, 1, 2).float()).numpy()
    np.testing.assert_array_equal(got, ref_bins(ab))
    # also far outside the gamut, where the nearest grid point is no bin (the full-search fallback)
    from colorbench.color import ab_centers

    wild = np.random.default_rng(5).uniform(-190, 190, (1, 40, 50, 2)).astype(np.float32)
    got = ab_bins(torch.from_numpy(wild).permute(0, 3, 1, 2)).numpy().ravel()
    want = ref_bins(wild.astype(np.float64)).ravel()
    d = ((wild.reshape(-1, 1, 2).astype(np.float64) - ab_centers()[None]) ** 2).sum(-1)
    rows = np.arange(d.shape[0])
    assert np.all(np.abs(d[rows, got] - d[rows, want]) < 1e-2)  # equal up to exact ties
    assert np.mean(got == want) > 0.999


def test_rebalanced_weights_are_inverse_smoothed_prior():
    from colorbench.color import imagenet_prior
    from colorbench.metrics.ab_auc import class_weights

    w = class_weights()
    ref = ref_inverse_prior_weights(imagenet_prior())
    np.testing.assert_allclose(w / w[0], ref / ref[0], rtol=1e-10)
    assert (imagenet_prior() * w).sum() == pytest.approx(1.0)  # normalised so E_p[w] = 1


def two_class_toy():
    """Ground truth: 12 pixels of a rare colour (blue) and 36 of a common one (sand); the prediction
    gets the common colour exactly and the rare one wrong by more than 150 ab units."""
    blue, sand, wrong = (20, 40, 230), (200, 180, 140), (40, 230, 40)
    gt = np.zeros((1, 6, 8, 3), np.uint8)
    gt[0, :] = sand
    gt[0, :, :2] = blue
    pred = gt.copy()
    pred[0, :, :2] = wrong
    d = np.sqrt(((sk_ab(pred[0, 0, 0]) - sk_ab(gt[0, 0, 0])) ** 2).sum())
    assert d > 150
    return pred, gt, np.array(blue, np.uint8), np.array(sand, np.uint8)


def test_rebalanced_auc_on_a_two_class_toy_by_hand():
    """Only the common colour is right: plain AuC = 36/48; rebalanced = 36 w_s / (36 w_s + 12 w_b)."""
    from colorbench.color import imagenet_prior
    from colorbench.metrics.ab_auc import auc, auc_rebal

    pred, gt, blue, sand = two_class_toy()
    w = ref_inverse_prior_weights(imagenet_prior())
    qb, qs = ref_bins(sk_ab(blue[None, None]))[0, 0], ref_bins(sk_ab(sand[None, None]))[0, 0]
    assert qb != qs and w[qb] > w[qs]  # blue is the rarer class in ImageNet
    assert auc(pred, gt)[0] == pytest.approx(36 / 48, abs=1e-12)
    want = 36 * w[qs] / (36 * w[qs] + 12 * w[qb])
    assert auc_rebal(pred, gt)[0] == pytest.approx(want, rel=1e-9)
    m = create_metric("auc_rebal")
    m.update(batch_of(pred, gt))
    res = m.compute(n_boot=10)
    assert res.value == pytest.approx(want, rel=1e-9)
    assert res.extra["prior"].startswith("imagenet")
    # a custom prior in which blue is common and sand rare flips the weighting
    prior = np.full(313, 1e-4)
    prior[qb] = 1.0
    m2 = create_metric("auc_rebal", prior=prior, prior_name="toy")
    m2.update(batch_of(pred, gt))
    w2 = ref_inverse_prior_weights(prior)
    assert m2.compute(n_boot=10).value == pytest.approx(36 * w2[qs] / (36 * w2[qs] + 12 * w2[qb]), rel=1e-9)
    assert m2.extra(m2.stats())["prior"] == "toy"


def test_rebalanced_auc_with_a_prior_computed_on_a_named_dataset(tmp_path):
    from PIL import Image

    from colorbench.metrics.ab_auc import dataset_prior

    _, gt, blue, sand = two_class_toy()
    Image.fromarray(gt[0]).save(tmp_path / "a.png")
    Image.fromarray(np.full((4, 4, 3), sand, np.uint8)).save(tmp_path / "b.png")
    name = f"folder:{tmp_path}"
    p = dataset_prior(name)
    qb, qs = ref_bins(sk_ab(blue[None, None]))[0, 0], ref_bins(sk_ab(sand[None, None]))[0, 0]
    want = np.zeros(313)
    want[qb], want[qs] = 12, 36 + 16
    np.testing.assert_allclose(p, want / want.sum())
    m = create_metric("auc_rebal", prior=name)
    assert m.extra(np.zeros((1, 152)) + 1)["prior"] == f"dataset:{name}"
    np.testing.assert_allclose(m.weights / m.weights[qs], ref_inverse_prior_weights(p) / ref_inverse_prior_weights(p)[qs])


# -- PSNR / MSE / SSIM ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 7, 7, 3), (4, 37, 53, 3), (2, 64, 48, 3)])
def test_ssim_psnr_mse_match_skimage_on_random_images(shape):
    from colorbench.metrics.fidelity import mse, psnr, ssim

    rng = np.random.default_rng(shape[1])
    gt = rng.integers(0, 256, shape, dtype=np.uint8)
    pred = u8(gt.astype(float) * 0.7 + rng.integers(0, 256, shape) * 0.3)  # correlated, so SSIM is not ~0
    ref_ssim = [structural_similarity(g, p, channel_axis=-1, data_range=255) for p, g in zip(pred, gt)]
    np.testing.assert_allclose(ssim(pred, gt), ref_ssim, atol=1e-4)
    np.testing.assert_allclose(psnr(pred, gt), [peak_signal_noise_ratio(g, p, data_range=255) for p, g in zip(pred, gt)],
                               rtol=1e-12)
    np.testing.assert_allclose(mse(pred, gt), [mean_squared_error(g, p) for p, g in zip(pred, gt)], rtol=1e-12)


def test_ssim_psnr_mse_match_skimage_on_real_images(real_pairs):
    from colorbench.metrics.fidelity import mse, psnr, ssim

    pred, gt = real_pairs
    ref = np.array([structural_similarity(g, p, channel_axis=-1, data_range=255) for p, g in zip(pred, gt)])
    np.testing.assert_allclose(ssim(pred, gt), ref, atol=1e-4)
    assert ref.std() > 0.05  # the four cases really differ
    np.testing.assert_allclose(psnr(pred, gt), [peak_signal_noise_ratio(g, p, data_range=255) for p, g in zip(pred, gt)],
                               rtol=1e-12)
    np.testing.assert_allclose(mse(pred, gt), [mean_squared_error(g, p) for p, g in zip(pred, gt)], rtol=1e-12)
    # a full-size photo too (512 x 512: window sums at their largest)
    a = skdata.astronaut()
    b = u8(a.astype(float) + np.random.default_rng(1).normal(0, 20, a.shape))
    assert ssim(b, a)[0] == pytest.approx(structural_similarity(a, b, channel_axis=-1, data_range=255), abs=1e-4)


def test_psnr_of_identical_images_is_capped_and_ssim_is_one(real_pairs):
    from colorbench.metrics.fidelity import PSNR_CAP_DB, psnr, ssim

    _, gt = real_pairs
    assert np.all(psnr(gt, gt) == PSNR_CAP_DB)
    np.testing.assert_allclose(ssim(gt, gt), 1.0, atol=1e-12)
    one_off = gt[:1].copy()
    one_off[0, 0, 0, 0] ^= 1  # MSE = 1 / (H W 3)
    assert psnr(one_off, gt[:1])[0] == pytest.approx(10 * np.log10(255**2 * gt[0].size), rel=1e-12)


def test_fidelity_accumulators_are_means_of_skimage_values_over_batches(real_pairs):
    pred, gt = real_pairs
    refs = {
        "ssim": [structural_similarity(g, p, channel_axis=-1, data_range=255) for p, g in zip(pred, gt)],
        "psnr": [peak_signal_noise_ratio(g, p, data_range=255) for p, g in zip(pred, gt)],
        "mse": [mean_squared_error(g, p) for p, g in zip(pred, gt)],
    }
    for name, ref in refs.items():
        m = create_metric(name)
        m.update(batch_of(pred[:3], gt[:3], tag="a"))
        m.update(batch_of(pred[3:], gt[3:], tag="b"))
        res = m.compute(n_boot=200)
        assert res.value == pytest.approx(np.mean(ref), rel=1e-5, abs=1e-6), name
        assert res.per_image["b0"] == pytest.approx(ref[3], rel=1e-5, abs=1e-6), name
        assert res.ci[0] <= res.value <= res.ci[1]


# -- bootstrap -----------------------------------------------------------------------------------
def test_bootstrap_ci_contains_the_value_and_shrinks_with_more_images():
    rng = np.random.default_rng(3)

    def width(n: int) -> float:
        gt = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
        noise = rng.uniform(2, 40, n)[:, None, None, None]  # per-image error level varies
        pred = u8(gt + rng.normal(0, 1, gt.shape) * noise)
        m = create_metric("mse")
        m.update(batch_of(pred, gt))
        res = m.compute(n_boot=400)
        assert res.ci[0] <= res.value <= res.ci[1]
        assert res.ci[0] < res.ci[1]
        return res.ci[1] - res.ci[0]

    assert width(200) < 0.6 * width(12)


# -- LPIPS ---------------------------------------------------------------------------------------
@pytest.fixture
def no_trunk_weights(tmp_path, monkeypatch):
    """No local AlexNet anywhere and an unreachable URL (connection refused at once)."""
    import dataclasses

    from colorbench.metrics import lpips_metric

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("COLORBENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.delenv("COLORBENCH_ALEXNET_WEIGHTS", raising=False)
    spec = dataclasses.replace(lpips_metric.TRUNK_WEIGHTS["alex"], url="http://127.0.0.1:9/alexnet-owt-7be5be79.pth")
    monkeypatch.setitem(lpips_metric.TRUNK_WEIGHTS, "alex", spec)
    lpips_metric.load_lpips.cache_clear()
    yield
    lpips_metric.load_lpips.cache_clear()


def test_lpips_without_trunk_weights_is_unavailable_with_the_reason(no_trunk_weights):
    t0 = time.monotonic()
    with pytest.raises(MetricUnavailable) as err:
        create_metric("lpips")
    assert time.monotonic() - t0 < 20
    msg = str(err.value)
    assert "alexnet-owt-7be5be79.pth" in msg and "could not download" in msg and "COLORBENCH_ALEXNET_WEIGHTS" in msg


def test_lpips_here_either_loads_or_is_unavailable_quickly():
    """In this environment: a real LPIPS (identical images score 0) or MetricUnavailable, within seconds."""
    t0 = time.monotonic()
    try:
        m = create_metric("lpips")
    except MetricUnavailable as e:
        assert "alexnet" in str(e)
    else:
        img = small(skdata.astronaut(), (64, 64))[None]
        m.update(batch_of(img, img))
        assert m.compute(n_boot=10).value == pytest.approx(0.0, abs=1e-6)
    assert time.monotonic() - t0 < 60


@pytest.fixture
def random_trunk_file(tmp_path, monkeypatch):
    """A torchvision-format AlexNet checkpoint with random weights, as the (unpinned) trunk file.
    Only to test loading and the distance path; the metric never builds a random trunk by itself."""
    import dataclasses

    import torchvision

    from colorbench.metrics import lpips_metric

    torch.manual_seed(0)
    net = torchvision.models.alexnet(weights=None)
    path = tmp_path / "alexnet-random.pth"
    torch.save(net.state_dict(), path)
    monkeypatch.setenv("COLORBENCH_ALEXNET_WEIGHTS", str(path))
    monkeypatch.setitem(lpips_metric.TRUNK_WEIGHTS, "alex",
                        dataclasses.replace(lpips_metric.TRUNK_WEIGHTS["alex"], sha256=None))
    lpips_metric.load_lpips.cache_clear()
    yield net.eval()
    lpips_metric.load_lpips.cache_clear()


def test_lpips_loads_the_trunk_file_into_every_slice_and_matches_the_package(random_trunk_file, real_pairs):
    import lpips

    from colorbench.metrics.lpips_metric import load_lpips, lpips_distance

    model = load_lpips("alex")
    x = torch.randn(2, 3, 64, 64)
    feats = model.net(x)
    ends = [2, 5, 8, 10, 12]  # torchvision feature indices where lpips' five slices end (relu1..relu5)
    with torch.no_grad():
        for got, end in zip(feats, ends):
            torch.testing.assert_close(got, random_trunk_file.features[:end](x))
    # the distance: batched, uint8 -> [-1, 1] here vs the package's own im2tensor, one image at a time
    pred, gt = real_pairs
    with torch.no_grad():
        want = [model(lpips.im2tensor(p), lpips.im2tensor(g)).item() for p, g in zip(pred, gt)]
    np.testing.assert_allclose(lpips_distance(pred, gt, model, batch_size=3), want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(lpips_distance(gt, gt, model), 0.0, atol=1e-7)
    m = create_metric("lpips")
    m.update(batch_of(pred, gt))
    res = m.compute(n_boot=10)
    assert res.value == pytest.approx(np.mean(want), rel=1e-4)
    assert res.extra["lpips_trunk"] == "alexnet-owt-7be5be79.pth" and res.extra["lpips_net"] == "alex"


# -- classifier ----------------------------------------------------------------------------------
class DominantChannel(torch.nn.Module):
    """A fake 1000-way classifier: class 0/1/2 = the channel with the largest mean (R/G/B)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.full((x.shape[0], 1000), -1e9)
        out[:, :3] = x.mean((2, 3))
        return out


def fake_classifier():
    from colorbench.classifiers import Classifier

    return Classifier("dominant_channel", DominantChannel(), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), size=8)


def solid(rgb) -> np.ndarray:
    return np.full((12, 16, 3), rgb, np.uint8)


def test_top1_and_agreement_by_hand_with_a_fake_classifier():
    R, G, B = (200, 10, 10), (10, 200, 10), (10, 10, 200)
    gt = np.stack([solid(R), solid(G), solid(B), solid(R)])
    pred = np.stack([solid(R), solid(B), solid(B), solid(G)])  # classes 0, 2, 2, 1
    labels = [0, 1, None, 1]  # correct, wrong, unlabelled, correct
    clf = fake_classifier()
    top1 = create_metric("top1", classifier=clf, batch_size=3)
    agree = create_metric("top1_agree", classifier=clf, batch_size=3)
    b = batch_of(pred, gt, labels)
    top1.update(b)
    agree.update(b)
    r1, r2 = top1.compute(n_boot=200), agree.compute(n_boot=200)
    assert r1.value == pytest.approx(2 / 3) and r1.extra["n_labelled"] == 3
    assert r1.per_image == {"0": 1.0, "1": 0.0, "2": None, "3": 1.0}
    assert r2.value == pytest.approx(2 / 4)  # gt classes 0, 1, 2, 0
    assert r1.extra["classifier"] == r2.extra["classifier"] == "dominant_channel"
    assert r1.ci[0] <= r1.value <= r1.ci[1] and r2.ci[0] <= r2.value <= r2.ci[1]


def test_top1_agree_classifies_each_original_once_across_models():
    """The runner evaluates every model on the same ground truth: its top-1 is computed once."""
    R, G, B = (200, 10, 10), (10, 200, 10), (10, 10, 200)
    clf = fake_classifier()
    seen = []
    clf.net.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[0]))
    m = create_metric("top1_agree", classifier=clf)
    gt = np.stack([solid(R), solid(G), solid(B)])
    m.update(batch_of(np.stack([solid(R), solid(R), solid(R)]), gt))  # model 1: classes 0, 0, 0
    assert sum(seen) == 6  # 3 predictions + 3 originals
    m.reset()
    m.update(batch_of(gt[:, :, ::-1].copy(), gt))  # model 2: mirrored originals: classes 0, 1, 2
    assert sum(seen) == 9  # only its 3 predictions
    assert m.compute(n_boot=10).value == 1.0
    m.reset()
    m.update(batch_of(np.stack([solid(B), solid(G), solid(R)]), gt[::-1].copy()))  # new order
    assert sum(seen) == 12 and m.compute(n_boot=10).value == 1.0


def test_top1_without_any_label_is_missing_not_zero():
    clf = fake_classifier()
    m = create_metric("top1", classifier=clf)
    img = np.stack([solid((200, 10, 10))] * 2)
    m.update(batch_of(img, img, [None, None]))
    res = m.compute()
    assert res.value is None and res.ci is None and "label" in res.missing
    assert res.to_json()["missing"] == res.missing


def test_top1_agree_with_the_real_offline_classifier():
    """Identical images agree on every image; batched top-1 equals one-at-a-time top-1."""
    from colorbench.classifiers import load_classifier
    from colorbench.metrics.classifier import top1_classes

    clf = load_classifier("efficientnet_lite0")
    imgs = np.stack([small(im, (120, 160)) for im in (skdata.astronaut(), skdata.coffee(), skdata.chelsea())])
    batched = top1_classes(imgs, clf, batch_size=3)
    single = np.concatenate([top1_classes(im, clf, batch_size=1) for im in imgs])
    np.testing.assert_array_equal(batched, single)
    assert len(set(batched.tolist())) == 3  # three different photos, three different classes
    m = create_metric("top1_agree", classifier="efficientnet_lite0")
    m.update(batch_of(imgs, imgs))
    res = m.compute(n_boot=10)
    assert res.value == 1.0 and res.extra["classifier"] == "efficientnet_lite0"


# -- colorfulness, saturation, Acc(U/V) ----------------------------------------------------------
def ref_colorfulness(img: np.ndarray) -> float:
    r, g, b = (img[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def test_colorfulness_known_values_and_numpy_reference(real_pairs):
    from colorbench.metrics.colorfulness import colorfulness

    assert colorfulness(solid((90, 90, 90)))[0] == 0.0
    # pure red: rg = 255, yb = 127.5 everywhere -> M = 0.3 * sqrt(255^2 + 127.5^2)
    assert colorfulness(solid((255, 0, 0)))[0] == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-12)
    pred, gt = real_pairs
    np.testing.assert_allclose(colorfulness(pred), [ref_colorfulness(p) for p in pred], rtol=1e-10)
    m = create_metric("colorfulness")
    m.update(batch_of(pred, gt))
    res = m.compute(n_boot=50)
    assert res.value == pytest.approx(np.mean([ref_colorfulness(p) for p in pred]), rel=1e-10)
    assert res.extra["gt_colorfulness"] == pytest.approx(np.mean([ref_colorfulness(g) for g in gt]), rel=1e-10)


def test_sat_diff_matches_skimage_hsv(real_pairs):
    from colorbench.metrics.colorfulness import sat_diff

    pred, gt = real_pairs
    want = [np.abs(skcolor.rgb2hsv(p)[..., 1] - skcolor.rgb2hsv(g)[..., 1]).mean() for p, g in zip(pred, gt)]
    np.testing.assert_allclose(sat_diff(pred, gt), want, atol=1e-6)
    assert sat_diff(gt, gt).max() == 0.0
    # black has saturation 0; pure red 1
    assert sat_diff(solid((255, 0, 0)), solid((0, 0, 0)))[0] == pytest.approx(1.0)
    m = create_metric("sat_diff")
    m.update(batch_of(pred, gt))
    assert m.compute(n_boot=10).value == pytest.approx(np.mean(want), abs=1e-6)


def test_uv_ranges_are_the_srgb_gamut_of_cieluv():
    from colorbench.metrics.colorfulness import U_RANGE, V_RANGE

    g = np.arange(256)
    a, b = np.meshgrid(g, g, indexing="ij")
    faces = []
    for axis in range(3):  # every colour on the surface of the RGB cube
        for val in (0, 255):
            f = np.empty((256, 256, 3), np.uint8)
            rest = [i for i in range(3) if i != axis]
            f[..., axis], f[..., rest[0]], f[..., rest[1]] = val, a, b
            faces.append(f)
    luv = skcolor.rgb2luv(np.concatenate(faces))
    for ch, (lo, hi) in ((1, U_RANGE), (2, V_RANGE)):
        assert lo <= luv[..., ch].min() < lo + 0.01 and hi - 0.01 < luv[..., ch].max() <= hi


def test_acc_u_acc_v_match_skimage_luv_binning(real_pairs):
    from colorbench.metrics.colorfulness import U_RANGE, V_RANGE, acc_u, acc_v

    pred, gt = real_pairs

    def ref(p, g, ch, rng):
        lo, hi = rng
        bins = lambda x: np.clip(np.floor((skcolor.rgb2luv(x)[..., ch] - lo) / (hi - lo) * 50), 0, 49)
        return np.mean(bins(p) == bins(g))

    want_u = [ref(p, g, 1, U_RANGE) for p, g in zip(pred, gt)]
    want_v = [ref(p, g, 2, V_RANGE) for p, g in zip(pred, gt)]
    np.testing.assert_allclose(acc_u(pred, gt), want_u, atol=2e-3)  # float32 vs float64 at bin edges
    np.testing.assert_allclose(acc_v(pred, gt), want_v, atol=2e-3)
    assert np.all(acc_u(gt[:1], gt[:1]) == 1.0) and np.all(acc_v(gt[:1], gt[:1]) == 1.0)
    b = batch_of(pred, gt)  # the two accumulators share one LUV conversion
    for name, want in (("acc_u", want_u), ("acc_v", want_v)):
        m = create_metric(name)
        m.update(b)
        assert m.compute(n_boot=10).value == pytest.approx(np.mean(want), abs=2e-3)


def test_acc_u_by_hand_on_two_pixels():
    """Same colour -> same bin; a red prediction of a green pixel is many u bins away."""
    from colorbench.metrics.colorfulness import acc_u

    gt = np.array([[[0, 200, 0], [0, 200, 0]]], np.uint8)[None]
    pred = np.array([[[0, 200, 0], [200, 0, 0]]], np.uint8)[None]
    assert acc_u(pred, gt)[0] == 0.5


# -- the batch cache -----------------------------------------------------------------------------
def test_eval_batch_lab_and_luv_are_computed_once_and_match_skimage(real_pairs):
    pred, gt = real_pairs
    b = batch_of(pred, gt)
    lab = b.lab("gt")
    assert b.lab("gt") is lab  # cached
    np.testing.assert_allclose(lab.permute(0, 2, 3, 1).numpy(), skcolor.rgb2lab(gt), atol=2e-3)
    np.testing.assert_allclose(b.luv("pred").permute(0, 2, 3, 1).numpy(), skcolor.rgb2luv(pred), atol=2e-3)
