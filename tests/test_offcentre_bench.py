"""benchmarks/offcentre.py: its holes, its paired gap, and one small end-to-end run on the shipped models."""
import json

import pytest
import torch

from conftest import load_script


@pytest.fixture(scope="module")
def offcentre():
    return load_script("benchmarks/offcentre.py", "offcentre_bench")


def test_each_hole_is_one_10x10_box_inside_the_image_and_off_the_centre(offcentre):
    holes = offcentre.offcentre_holes(300, seed=3)
    assert holes.shape == (300, 1, 28, 28)
    assert torch.equal(holes.flatten(1).sum(1), torch.full((300,), 100.0))
    corners = set()
    for h in holes[:, 0]:
        rows, cols = h.sum(1).nonzero().flatten(), h.sum(0).nonzero().flatten()
        r, c = int(rows[0]), int(cols[0])
        assert len(rows) == len(cols) == 10 and 2 <= r <= 16 and 2 <= c <= 16
        assert abs(r - 9) + abs(c - 9) >= 4  # never the centred box or one next to it
        corners.add((r, c))
    assert len(corners) > 50  # spread over the positions, not a few
    assert torch.equal(holes, offcentre.offcentre_holes(300, seed=3))
    assert not torch.equal(holes, offcentre.offcentre_holes(300, seed=4))


def test_paired_gap_is_the_difference_of_pooled_psnrs_and_its_interval_holds_it(offcentre):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(40, 1, 28, 28, generator=g)
    holes = offcentre.offcentre_holes(40, seed=0)
    good = images + 0.05 * torch.randn(images.shape, generator=g) * holes
    bad = images + 0.2 * torch.randn(images.shape, generator=g) * holes
    gap = offcentre.paired_gap(good, bad, images, holes)
    # 0.05 against 0.2 noise: about 20 log10(4) = 12 dB better
    assert 10.5 < gap["gap_db"] < 13.5
    assert gap["ci95"][0] <= gap["gap_db"] <= gap["ci95"][1]
    assert offcentre.paired_gap(bad, good, images, holes)["gap_db"] == pytest.approx(-gap["gap_db"])


def test_a_small_run_scores_telea_and_the_shipped_mask_model_on_the_same_holes(offcentre, tmp_path):
    out = tmp_path / "oc.json"
    result = offcentre.main(["--ckpt", "mnist-mask", "--n", "6", "--batch", "6", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["n_images"] == 6 and "benchmarks/offcentre.py" in saved["command"]
    methods = [r["method"] for r in result["rows"]]
    assert methods[:2] == ["OpenCV telea", "OpenCV ns"] and methods[2] == "mnist-mask: replace (steps=50, dc_repeats=2)"
    model_row, telea_row = result["rows"][2], result["rows"][0]
    assert model_row["settings"] == {"sampler": "replace", "steps": 50, "dc_repeats": 2}  # RECOMMENDED["mnist-mask"]
    assert model_row["known_pixels_exact"] and telea_row["known_pixels_exact"]
    assert model_row["gap_to_telea_db"] == pytest.approx(model_row["psnr_hole"] - telea_row["psnr_hole"], abs=1e-6)
    target = result["targets"]["mnist-mask"]
    assert target["met"] == (target["value_db"] >= 2.0)
