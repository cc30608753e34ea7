"""benchmarks/freeform_study.py: the paired per-image gap (benchlib's) and one small end-to-end run."""
import json

import pytest
import torch

import benchlib  # benchmarks/, on pytest's pythonpath as on a script's sys.path
from conftest import load_script
from inpaintlib.freeform import make_patterns, train_inpainting


@pytest.fixture(scope="module")
def study():
    return load_script("benchmarks/freeform_study.py", "freeform_study_bench")


def test_paired_gap_is_the_mean_difference_with_an_interval_around_it():
    g = torch.Generator().manual_seed(0)
    b = (torch.rand(200, generator=g) * 20 + 10).tolist()
    a = [v + 1.5 + float(torch.randn(1, generator=g)) for v in b]
    gap = benchlib.paired_mean_gap(a, b)
    assert abs(gap["mean_db"] - sum(x - y for x, y in zip(a, b)) / 200) < 1e-9
    low, high = gap["ci95"]
    assert low < gap["mean_db"] < high and 0.1 < high - low < 0.5  # about 2 x 1.96 / sqrt(200)
    assert benchlib.paired_mean_gap(b, b) == {"mean_db": 0.0, "ci95": [0.0, 0.0]}


def test_a_small_study_scores_every_variant_against_both_baselines(study, tmp_path):
    torch.set_num_threads(1)
    make_patterns(tmp_path / "data", 8, image_size=32, seed=0)
    result = train_inpainting(tmp_path / "data", tmp_path / "model", num_epochs=1, batch_size=4, max_steps=2,
                              image_size=32, preset="tiny", device="cpu", progress=False)
    out = study.main(["--ckpt", str(result.checkpoint), "--n", "5", "--kinds", "rectangle",
                      "--variants", "guide 10 steps,resampling x3 + mean of 2", "--out_dir", str(tmp_path / "s")])
    saved = json.loads((tmp_path / "s" / "study.json").read_text())
    assert saved["n_per_kind"] == out["n_per_kind"] == 5
    methods = [r["method"] for r in saved["rows"]]
    assert methods == ["OpenCV Telea", "harmonic fill", "truth", "guide 10 steps", "resampling x3 + mean of 2"]
    telea = saved["rows"][0]
    for r in saved["rows"][3:]:
        assert len(r["per_image_psnr"]) == 5 and r["seconds_per_image"] > 0
        diff = sum(x - y for x, y in zip(r["per_image_psnr"], telea["per_image_psnr"])) / 5
        assert abs(r["per_image_minus_telea"]["mean_db"] - diff) < 1e-9
    assert saved["variants"]["resampling x3 + mean of 2"]["mean_of"] == 2
