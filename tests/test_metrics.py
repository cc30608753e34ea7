import math

import pytest
import torch

from inpaintlib import HoleMetrics, l1_hole, mse_hole, psnr_hole


def test_metrics_against_a_hand_computed_case():
    # two 2x2 images; the hole is the left column of each (2 pixels per image, 4 in all)
    gt = torch.tensor([[[[0.0, 1.0], [0.5, 0.5]]], [[[1.0, 0.0], [0.0, 0.0]]]])
    pred = torch.tensor([[[[0.5, 0.0], [0.5, 0.5]]], [[[0.0, 0.0], [0.0, 1.0]]]])
    hole = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    # hole errors: image 1: 0.5, 0.0; image 2: 1.0, 0.0  (the right column's errors are outside)
    assert l1_hole(pred, gt, hole) == pytest.approx((0.5 + 0 + 1 + 0) / 4)
    assert mse_hole(pred, gt, hole) == pytest.approx((0.25 + 0 + 1 + 0) / 4)
    assert psnr_hole(pred, gt, hole) == pytest.approx(-10 * math.log10(1.25 / 4))
    m = HoleMetrics()
    m.update(pred[:1], gt[:1], hole)
    m.update(pred[1:], gt[1:], hole)
    s = m.summary()
    assert s["psnr_hole"] == pytest.approx(-10 * math.log10(1.25 / 4))  # pooled over both batches
    per_image = [-10 * math.log10(0.25 / 2), -10 * math.log10(1.0 / 2)]
    assert s["psnr_hole_per_image_mean"] == pytest.approx(sum(per_image) / 2)
    assert s["l1_hole"] == pytest.approx(1.5 / 4)


def test_formula_is_the_designs_mean_ratio():
    g = torch.Generator().manual_seed(0)
    gt, pred = torch.rand(4, 1, 9, 9, generator=g), torch.rand(4, 1, 9, 9, generator=g)
    hole = (torch.rand(4, 1, 9, 9, generator=g) > 0.6).float()
    assert l1_hole(pred, gt, hole) == pytest.approx(((pred - gt).abs() * hole).mean().item() / hole.mean().item(), rel=1e-5)
    assert mse_hole(pred, gt, hole) == pytest.approx((((pred - gt) ** 2) * hole).mean().item() / hole.mean().item(), rel=1e-5)


def test_exact_prediction_and_empty_hole():
    x = torch.rand(2, 1, 4, 4)
    hole = torch.ones(1, 1, 4, 4)
    assert psnr_hole(x, x, hole) == math.inf
    m = HoleMetrics()
    m.update(x, x, hole)
    assert m.summary()["psnr_hole_per_image_mean"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="empty"):
        empty = HoleMetrics()
        empty.update(x, x, torch.zeros(1, 1, 4, 4))
        empty.summary()


def test_bootstrap_interval_brackets_the_pooled_psnr_and_narrows_with_more_images():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(50, 1, 8, 8, generator=g)
    # errors that differ a lot between images, as real inpaintings do
    scale = torch.rand(50, 1, 1, 1, generator=g) * 0.5
    pred = gt + scale * torch.randn(50, 1, 8, 8, generator=g)
    hole = torch.zeros(1, 1, 8, 8)
    hole[..., 2:6, 2:6] = 1
    small, large = HoleMetrics(), HoleMetrics()
    small.update(pred, gt, hole)
    for _ in range(16):  # the same 50 images 16 times: the spread of a pooled mean shrinks by sqrt(16)
        large.update(pred, gt, hole)
    s = small.summary()
    low, high = s["psnr_hole_ci95"]
    assert low < s["psnr_hole"] < high
    assert small.psnr_interval(0.95) == s["psnr_hole_ci95"]  # a fixed seed: the same interval again
    assert small.psnr_interval(0.5)[1] - small.psnr_interval(0.5)[0] < high - low
    lo16, hi16 = large.summary()["psnr_hole_ci95"]
    assert 0.15 < (hi16 - lo16) / (high - low) < 0.4  # about 1/4
    assert large.summary()["psnr_hole"] == pytest.approx(s["psnr_hole"])
    with pytest.raises(ValueError, match="level"):
        small.psnr_interval(1.5)
