"""benchmarks/quality.py and benchlib: the baselines, the references, the sampler specs, the target check and one
small end-to-end run."""
import json
import math
from pathlib import Path

import cv2  # noqa: F401  a test requirement (opencv-python-headless): a missing one must fail CI, not skip
import pytest
import torch

import benchlib  # benchmarks/, on pytest's pythonpath as on a script's sys.path
from inpaintlib import DESIGN, RECOMMENDED, center_hole, inpaint

from conftest import load_script


@pytest.fixture(scope="module")
def quality():
    return load_script("benchmarks/quality.py", "quality_bench")


def strokes(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 28, 28, generator=g) > 0.7).float()


def test_baselines_keep_the_known_pixels_and_fill_only_the_hole():
    images, hole = strokes(6), center_hole(28, 12)
    train = strokes(40, seed=1)
    for out in (benchlib.zero_fill(images, hole), benchlib.mean_fill(images, hole, train.mean(0)),
                benchlib.opencv_fill(images, hole, "telea"), benchlib.opencv_fill(images, hole, "ns"),
                benchlib.knn_fill(images, hole, train, 1, "cpu"), benchlib.knn_fill(images, hole, train, 10, "cpu")):
        assert out.shape == images.shape
        assert torch.equal(out * (1 - hole), images * (1 - hole))
        assert 0 <= out.min() and out.max() <= 1
    assert torch.equal(benchlib.zero_fill(images, hole) * hole, torch.zeros_like(images))
    assert torch.allclose(benchlib.mean_fill(images, hole, train.mean(0)) * hole, train.mean(0) * hole)


def test_opencv_fills_a_flat_image_with_its_own_value():
    flat = torch.full((2, 1, 28, 28), 0.6)
    # Navier-Stokes reproduces the level; Telea's weighted average of its u8 estimates drifts by a few levels
    for method, levels in (("ns", 1), ("telea", 4)):
        out = benchlib.opencv_fill(flat, center_hole(28, 12), method)
        assert torch.allclose(out, torch.full_like(out, 153 / 255), atol=levels / 255 + 1e-6)


def test_nearest_neighbour_finds_an_image_that_is_in_the_training_set():
    train, hole = strokes(50, seed=2), center_hole(28, 12)
    queries = train[[3, 17, 41]] * (1 - hole)  # the known pixels of training images, the hole emptied
    assert torch.equal(benchlib.knn_fill(queries, hole, train, 1, "cpu", chunk=2), train[[3, 17, 41]])
    # k=10: the mean of the ten closest, which includes the image itself
    ten = benchlib.knn_fill(queries, hole, train, 10, "cpu")
    known = (hole.flatten() == 0)
    d = ((train.flatten(1)[:, known][None] - queries.flatten(1)[:, known][:, None]) ** 2).sum(-1)
    expect = train[d.topk(10, largest=False).indices].mean(1)
    assert torch.allclose(ten * hole, expect * hole, atol=1e-6)


def test_regression_net_learns_the_hole_and_keeps_the_rest():
    images, hole = strokes(64, seed=3), center_hole(28, 12)
    net = benchlib.regression_net("cpu", base_channels=8)
    before = benchlib.regression_predict(net.eval(), images[:16], hole)
    assert torch.equal(before * (1 - hole), images[:16] * (1 - hole))
    trained = benchlib.train_regression(images, hole, "cpu", steps=25, batch=16, base_channels=8)
    with torch.no_grad():
        after = benchlib.regression_predict(trained, images[:16], hole)
    err = lambda out: (((out - images[:16]) ** 2) * hole).sum()  # noqa: E731
    assert err(after) < 0.9 * err(before.detach())


def test_reference_networks_are_reused_only_with_the_same_settings(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return torch.nn.Linear(3, 2)

    path = tmp_path / "net.pt"
    first, reused = benchlib.cached(path, {"steps": 5}, build, lambda: torch.nn.Linear(3, 2))
    assert not reused and len(calls) == 1
    again, reused = benchlib.cached(path, {"steps": 5}, build, lambda: torch.nn.Linear(3, 2))
    assert reused and len(calls) == 1 and torch.equal(again.weight, first.weight)
    _, reused = benchlib.cached(path, {"steps": 6}, build, lambda: torch.nn.Linear(3, 2))
    assert not reused and len(calls) == 2
    _, reused = benchlib.cached(path, {"steps": 6}, build, lambda: torch.nn.Linear(3, 2), retrain=True)  # --retrain
    assert not reused and len(calls) == 3


def _row(method, psnr, identity=0.99, exact=True, **kw):
    return {"method": method, "psnr_hole": psnr, "digit_identity": identity, "known_pixels_exact": exact, **kw}


def test_target_check_compares_against_the_right_rows(quality):
    rows = [_row("masked input (zero fill)", 5.5), _row("mean training image", 7.6), _row("OpenCV telea", 7.1),
            _row("OpenCV ns", 7.5), _row("nearest neighbours k=1", 9.5), _row("nearest neighbours k=10", 11.2),
            _row("regression U-Net (MMSE reference)", 13.0),
            _row("m: 50 steps, dc_repeats=1", 10.4, identity=0.96, psnr_hole_ci95=[10.1, 10.7]),
            _row("m: mean of 16 samples (50 steps, dc_repeats=1)", 12.6, gap_to_mmse_db=0.4,
                 knn10_psnr_same_images=11.0)]
    t = quality.check_targets(rows, "m", 50, 1, 16)
    assert t["single >= best non-learned + 2 dB"] == {"value": 10.4, "threshold": 9.6, "met": True,
                                                      "ci95": [10.1, 10.7]}  # the single row's interval
    assert not t["single >= kNN k=1 + 1 dB"]["met"]  # 10.4 < 10.5
    assert t["single >= MMSE - 3.5 dB"]["met"]
    # the mean of 16 is judged against the MMSE and kNN rows of its own images (gap 0.4, kNN 11.0 there)
    assert t["mean of 16 >= MMSE - 0.5 dB"]["threshold"] == pytest.approx(12.6 + 0.4 - 0.5)
    assert t["mean of 16 > kNN k=10 mean"]["threshold"] == 11.0
    assert t["mean of 16 >= MMSE - 0.5 dB"]["met"] and t["mean of 16 > kNN k=10 mean"]["met"]
    assert t["digit identity of single samples >= 0.95"]["met"]
    assert t["known pixels equal the input exactly"]["met"]
    # a run with K = 1 only (a sampler sweep) has no posterior-mean targets: a "mean" of one sample is no mean
    one = rows[:-1] + [_row("m: mean of 1 samples (50 steps, dc_repeats=1)", 10.4, gap_to_mmse_db=2.6)]
    assert not any("mean of" in k for k in quality.check_targets(one, "m", 50, 1, 1))
    # with the ideal posterior sample among the references, issue 16's targets replace the identity >= 0.95 one
    ideal = _row("ideal posterior sample (reference)", 13.0 - 3.0103, identity=0.9)
    t = quality.check_targets(rows + [ideal], "m", 50, 1, 16)
    assert "digit identity of single samples >= 0.95" not in t
    assert t["single within 0.2 dB of the ideal posterior sample"]["threshold"] == pytest.approx(13.0 - 3.0103 - 0.2)
    assert t["single within 0.2 dB of the ideal posterior sample"]["met"]  # 10.4 >= 9.79
    assert t["identity >= the ideal posterior sample's"] == {"value": 0.96, "threshold": 0.9, "met": True, "ci95": None}
    # the ideal mean of 16 on the means' own images: their MMSE (12.6 + 0.4) minus 10 log10(17/16)
    thr = t["mean of 16 within 0.2 dB of the ideal mean of 16"]["threshold"]
    assert thr == pytest.approx(13.0 - 10 * math.log10(17 / 16) - 0.2)
    assert t["mean of 16 within 0.2 dB of the ideal mean of 16"]["met"]  # 12.6 >= 12.54
    short = [dict(r, psnr_hole=12.5, gap_to_mmse_db=0.5) if "mean of 16" in r["method"] else r for r in rows] + [ideal]
    assert not quality.check_targets(short, "m", 50, 1, 16)["mean of 16 within 0.2 dB of the ideal mean of 16"]["met"]
    rows[-1]["known_pixels_exact"] = False  # a mean of samples is the script's, not the sampler's output
    assert quality.check_targets(rows, "m", 50, 1, 16)["known pixels equal the input exactly"]["met"]
    rows[-2]["known_pixels_exact"] = False
    assert not quality.check_targets(rows, "m", 50, 1, 16)["known pixels equal the input exactly"]["met"]


@pytest.mark.slow  # a subprocess or a script end to end: the full suite runs it
def test_quality_script_end_to_end_on_a_few_images(quality, tiny_run, mnist_root, tmp_path, capsys):
    args = ["--ckpt", f"tiny={tiny_run.checkpoint}", "--data_root", mnist_root, "--n_test", "24",
            "--n_diffusion", "10", "--n_posterior", "6", "--steps", "2,3", "--dc_repeats", "1",
            "--posterior_k", "1,2", "--posterior_steps", "3", "--regression_steps", "2", "--regression_batch", "8", "--regression_channels", "8",
            "--classifier", "train", "--classifier_epochs", "1", "--n_train", "300", "--batch", "8", "--out_dir", str(tmp_path)]
    result = quality.main(args)
    saved = json.loads((tmp_path / "quality.json").read_text())
    assert saved["n_test"] == 24 and saved["n_diffusion"] == 10 and saved["n_posterior"] == 6
    # ground truth, 6 baselines, MMSE, the ideal posterior sample
    assert [r["n_images"] for r in saved["rows_all_test_images"]] == [24] * 9
    methods = [r["method"] for r in saved["rows"]]
    assert methods[9:] == ["tiny: 2 steps, dc_repeats=1", "tiny: 3 steps, dc_repeats=1",
                           "tiny: mean of 1 samples (3 steps, dc_repeats=1)",
                           "tiny: mean of 2 samples (3 steps, dc_repeats=1)"]
    by = {r["method"]: r for r in saved["rows"]}
    assert by["tiny: 3 steps, dc_repeats=1"]["n_images"] == 10 and by["tiny: 3 steps, dc_repeats=1"]["nfe_per_image"] == 3
    assert by["tiny: mean of 2 samples (3 steps, dc_repeats=1)"]["n_images"] == 6
    assert by["tiny: mean of 2 samples (3 steps, dc_repeats=1)"]["nfe_per_image"] == 6
    assert all(r["known_pixels_exact"] for r in saved["rows"])
    for r in saved["rows"][1:]:  # every finite PSNR comes with a bootstrap interval around it
        low, high = r["psnr_hole_ci95"]
        assert low <= r["psnr_hole"] <= high and low < high, r["method"]
    assert saved["rows"][0]["psnr_hole_ci95"] is None  # the ground truth: no error, no interval
    two = by["tiny: mean of 2 samples (3 steps, dc_repeats=1)"]
    assert two["ideal_gap_db"] == pytest.approx(10 * math.log10(1.5))
    assert set(saved["targets"]["tiny"]) >= {"single >= kNN k=1 + 1 dB", "mean of 2 >= MMSE - 0.5 dB"}
    md = (tmp_path / "quality.md").read_text()
    assert "| tiny: 2 steps, dc_repeats=1 | 10 | 2 |" in md and "Targets for `tiny`" in md
    assert Path(result["figures"]["tiny"]).exists()
    # a second run reuses the classifier and the regression U-Net it saved
    capsys.readouterr()
    quality.main(args)
    printed = capsys.readouterr().out
    assert "(reused" in printed.split("classifier test accuracy")[1].split("\n")[0]
    assert "(reused" in printed.split("regression U-Net:")[1].split("\n")[0]
    # a second checkpoint, sampled with reconstruction guidance, in another process's folder, the
    # references shared, joined into one table
    other = [*args[:1], f"again={tiny_run.checkpoint}", *args[2:-1], str(tmp_path / "b"), "--cache_dir", str(tmp_path),
             "--guidance", "2"]
    quality.main(other)
    assert "(reused" in capsys.readouterr().out.split("regression U-Net:")[1].split("\n")[0]
    joined = quality.main(["--merge", str(tmp_path / "quality.json"), str(tmp_path / "b" / "quality.json"),
                           "--out_dir", str(tmp_path / "joined")])
    guided = [m.replace("tiny", "again").replace("dc_repeats=1", "dc_repeats=1, guidance=2") for m in methods[9:]]
    assert [r["method"] for r in joined["rows"]] == methods + guided
    assert set(joined["targets"]) == {"tiny", "again (guidance=2)"}
    joined_by = {r["method"]: r for r in joined["rows"]}
    assert joined_by[guided[1]]["guidance"] == 2.0
    assert joined_by[guided[1]]["psnr_hole"] != by["tiny: 3 steps, dc_repeats=1"]["psnr_hole"]  # another sampler
    md = (tmp_path / "joined" / "quality.md").read_text()
    assert "Targets for `again (guidance=2)`" in md and "| 3 (+3 backward) |" in md
    quality.main([*other[:-5], str(tmp_path / "c"), "--n_posterior", "5"])
    with pytest.raises(ValueError, match="same numbers of images"):
        quality.main(["--merge", str(tmp_path / "quality.json"), str(tmp_path / "c" / "quality.json")])


def test_quality_script_rejects_a_checkpoint_without_a_name(quality):
    with pytest.raises(ValueError, match="--ckpt expects name=path"):
        quality.main(["--ckpt", "just/a/path.pt"])


def test_merge_accepts_reference_rows_equal_up_to_rounding_only(quality):
    rows = [_row("nearest neighbours k=1", 9.5, l1_hole=0.2), _row("regression U-Net (MMSE reference)", 13.237073107,
                                                                psnr_hole_ci95=[12.9, 13.5])]
    nudged = [dict(r) for r in rows]
    nudged[1]["psnr_hole"] *= 1 + 1e-9  # a kernel's last bits
    assert quality.same_rows(rows, nudged)
    nudged[1]["psnr_hole_ci95"] = [12.9 * (1 + 1e-9), 13.5]
    assert quality.same_rows(rows, nudged)
    nudged[1]["psnr_hole_ci95"] = [12.8, 13.5]
    assert not quality.same_rows(rows, nudged)
    nudged[1]["psnr_hole"] = 13.24  # what the table would print differently
    assert not quality.same_rows(rows, nudged)
    assert not quality.same_rows(rows, rows[:1])
    assert not quality.same_rows(rows, [rows[0], {**rows[1], "digit_identity": 0.5}])


# ----------------------------------------------------------------------------------------------
# the ladder of samplers (--sampler)


def test_sampler_specs_parse_into_inpaint_arguments():
    assert benchlib.parse_sampler_spec("guidance:steps=10,dc_repeats=3,guidance=30") == (
        "guidance", {"steps": 10, "dc_repeats": 3, "guidance": 30})
    assert benchlib.parse_sampler_spec("smc:particles=4,eta=0.5") == ("smc", {"particles": 4, "eta": 0.5, "steps": 50})
    assert benchlib.spec_label("smc", {"steps": 25, "particles": 4, "eta": 0.5}) == "smc (steps=25, particles=4, eta=0.5)"
    with pytest.raises(ValueError, match="--sampler expects name"):
        benchlib.parse_sampler_spec("dps:steps=3")
    with pytest.raises(ValueError, match="expected key=value"):
        benchlib.parse_sampler_spec("ddnm:steps")
    with pytest.raises(ValueError, match="has no option 'particles'"):  # the sampler's own options, checked up front
        benchlib.parse_sampler_spec("replace:steps=3,particles=2")


def test_commands_and_settings_written_before_the_options_were_renamed_still_read():
    # the committed commands (docs/quality.md, the model cards) spell DDNM's and DiffPIR's rounds dc_repeats
    # and PiGDM's weight "weight"; replacement with a guidance weight was the guidance sampler
    assert benchlib.parse_sampler_spec("ddnm:steps=10,dc_repeats=10") == ("ddnm", {"steps": 10, "travel_rounds": 10})
    assert benchlib.parse_sampler_spec("pigdm:steps=12,dc_repeats=3,weight=2") == (
        "pigdm", {"steps": 12, "travel_rounds": 3, "guidance": 2})
    assert benchlib.parse_sampler_spec("replace:steps=5,guidance=20") == ("guidance", {"steps": 5, "guidance": 20})
    assert benchlib.parse_sampler_spec("replace:steps=5,dc_repeats=2") == ("replace", {"steps": 5, "dc_repeats": 2})
    assert benchlib.current_settings({"steps": 50, "dc_repeats": 2, "guidance": 0.0}) == DESIGN
    assert benchlib.current_settings({"steps": 10, "dc_repeats": 3, "guidance": 20.0}) == RECOMMENDED["mnist"]
    assert benchlib.current_settings(RECOMMENDED["mnist-mask"]) == RECOMMENDED["mnist-mask"]


def test_grid_samples_use_the_guidance_sampler_only_with_a_weight(tiny_net):
    net = tiny_net(base_channels=8, T=20, init_std=None)
    images, hole = strokes(2), center_hole(28, 12)
    plain = benchlib.grid_samples(net, images, hole, 2, 1, seed=0, batch=2, device="cpu")
    assert torch.equal(plain, inpaint(net, images, hole, "replace", steps=2, dc_repeats=1, seed=0))
    guided = benchlib.grid_samples(net, images, hole, 2, 1, seed=0, batch=2, device="cpu", guidance=3.0)
    assert torch.equal(guided, inpaint(net, images, hole, "guidance", steps=2, dc_repeats=1, guidance=3.0, seed=0))


class FixedReader(torch.nn.Module):
    """A 'classifier' that reads the label from the first pixel: label = round(9 * pixel)."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # where logits_of looks for the device

    def forward(self, x):
        return torch.nn.functional.one_hot((x[:, 0, 0, 0] * 9).round().long(), 10).float() * 50


def test_label_measures_against_an_exact_and_a_collapsed_sampler():
    N, K = 60, 16
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(N, 10, generator=g) * 1.5, 1)  # p(label | observed) per digit
    hole = torch.zeros(1, 1, 28, 28)
    hole[..., 10:20, 10:20] = 1
    labels = torch.multinomial(p, K, replacement=True, generator=g).T  # exact posterior draws, (K, N)
    exact = torch.rand(K, N, 1, 28, 28, generator=g)
    exact[:, :, 0, 0, 0] = labels / 9
    m = benchlib.label_measures(exact, exact[0], hole, FixedReader(), p, "cpu")
    # an exact sampler's TV is what K draws from p show, up to the noise of N digits
    assert m["label_tv"] == pytest.approx(m["label_tv_exact"], abs=0.06)
    assert m["label_k"] == K and m["label_n_images"] == N
    assert m["diversity"] == pytest.approx(torch.rand(10000, generator=g).std().item(), rel=0.1)  # U(0,1) pixels
    collapsed = exact[:1].repeat(K, 1, 1, 1, 1)
    collapsed[:, :, 0, 0, 0] = p.argmax(1) / 9  # always the likeliest label, the same fill every time
    c = benchlib.label_measures(collapsed, collapsed[0], hole, FixedReader(), p, "cpu")
    assert c["label_tv"] == pytest.approx((1 - p.max(1).values).mean().item(), abs=1e-5)
    assert c["label_tv"] > m["label_tv"] + 0.1 and c["diversity"] == 0


def _ladder_row(method, psnr, identity, fe, sampler, tv=None, **options):
    row = _row(method, psnr, identity=identity, forward_equivalents=fe, sampler=sampler, options=options)
    if tv is not None:
        row["label_tv"] = tv
    return row


def test_ladder_targets_pick_the_best_sampler_within_budget(quality):
    refs = [_row("regression U-Net (MMSE reference)", 13.0), _row("ideal posterior sample (reference)", 9.99,
                                                                   identity=0.88)]
    ladder = [_ladder_row("m: replace (steps=50)", 6.0, 0.5, 100, "replace", tv=0.40),
              _ladder_row("m: guidance (steps=10)", 9.9, 0.875, 66, "guidance", tv=0.20),
              _ladder_row("m: guidance (steps=50)", 10.5, 0.95, 330, "guidance"),  # over budget, no label set
              _ladder_row("m: smc (steps=25, particles=2)", 7.0, 0.6, 50, "smc", tv=0.15, particles=2),
              _ladder_row("m: smc (steps=25, particles=4)", 7.5, 0.7, 100, "smc", tv=0.12, particles=4),
              _ladder_row("other: replace (steps=50)", 12.0, 0.99, 10, "replace", tv=0.01)]  # another model
    t = quality.ladder_targets(refs + ladder, "m")
    best = t["best sampler at <= 100 forward-equivalents >= MMSE - 3.2 dB"]
    assert best["row"] == "m: guidance (steps=10)" and best["met"] and best["threshold"] == pytest.approx(9.8)
    assert t["its identity >= ideal-posterior identity - 0.01"]["met"]  # 0.875 >= 0.87
    assert t["every FPS-SMC row's label TV < replacement's and guidance's"]["met"]
    assert t["FPS-SMC's label TV falls as the particles grow"]["met"]
    ladder[4]["label_tv"] = 0.16  # more particles, further away
    t = quality.ladder_targets(refs + ladder, "m")
    assert not t["FPS-SMC's label TV falls as the particles grow"]["met"]
    ladder[3]["label_tv"] = 0.25  # farther than guidance
    assert not quality.ladder_targets(refs + ladder, "m")["every FPS-SMC row's label TV < replacement's and guidance's"]["met"]
    ladder[1]["digit_identity"] = 0.86
    assert not quality.ladder_targets(refs + ladder, "m")["its identity >= ideal-posterior identity - 0.01"]["met"]


@pytest.mark.slow  # a subprocess or a script end to end: the full suite runs it
def test_quality_script_runs_the_ladder_with_label_sets(quality, tiny_run, mnist_root, tmp_path):
    args = ["--ckpt", f"tiny={tiny_run.checkpoint}", "--data_root", mnist_root, "--n_test", "16",
            "--n_diffusion", "8", "--regression_steps", "2", "--regression_batch", "8", "--regression_channels", "8",
            "--n_train", "300", "--batch", "8", "--sampler", "replace:steps=3,dc_repeats=2",
            "--sampler", "guidance:steps=2,guidance=5", "--sampler", "smc:steps=2,particles=2",
            "--label_samples", "3", "--n_labels", "4", "--out_dir", str(tmp_path)]
    result = quality.main(args)
    ladder = [r for r in result["rows"] if r.get("sampler")]
    assert [r["method"] for r in ladder] == ["tiny: replace (steps=3, dc_repeats=2)", "tiny: guidance (steps=2, guidance=5)",
                                             "tiny: smc (steps=2, particles=2)"]
    assert not any("mean of" in r["method"] for r in result["rows"])  # no grid, no posterior means without --steps
    rep, guided, smc = ladder
    assert (rep["nfe_per_image"], rep["backward_per_image"], rep["forward_equivalents"]) == (6, 0, 6)
    assert (smc["nfe_per_image"], smc["backward_per_image"]) == (4, 0)
    ratio = result["backward_cost_in_forwards"]["tiny"]
    assert ratio >= 0 and guided["backward_per_image"] == 2  # a tiny net's timings are noise; the real ones are > 1
    assert guided["forward_equivalents"] == pytest.approx(2 + 2 * ratio)
    for r in ladder:
        assert r["known_pixels_exact"] and r["label_k"] == 3 and r["label_n_images"] == 4
        assert 0 <= r["label_tv"] <= 1 and 0 <= r["label_tv_exact"] <= 1 and r["diversity"] > 0
    ideal = next(r for r in result["rows"] if r["method"] == "ideal posterior sample (reference)")
    mmse = next(r for r in result["rows"] if r["method"] == "regression U-Net (MMSE reference)")
    assert ideal["n_images"] == 8 and ideal["psnr_hole"] == pytest.approx(mmse["psnr_hole"] - 10 * math.log10(2))
    assert 0 < ideal["digit_identity"] < 1
    assert set(result["targets"]["tiny ladder"]) >= {"every FPS-SMC row's label TV < replacement's and guidance's"}
    md = (tmp_path / "quality.md").read_text()
    assert "| tiny: smc (steps=2, particles=2) | 8 | 4 | 0 | 4 |" in md and "Targets for `tiny ladder`" in md
    joined = quality.main(["--merge", str(tmp_path / "quality.json"), "--out_dir", str(tmp_path / "joined")])
    assert joined["targets"]["tiny ladder"] == result["targets"]["tiny ladder"]
    # the same ladder without references (while a regression U-Net still trains elsewhere), merged with them
    alone = quality.main([*args[:-1], str(tmp_path / "alone"), "--no_references"])
    assert alone["no_references"] and all(r.get("sampler") for r in alone["rows"]) and not alone["targets"]
    assert all(r["gap_to_mmse_db"] is None for r in alone["rows"])
    refs_only = quality.main([*args[2:18], "--out_dir", str(tmp_path / "refs")])  # no --ckpt: baselines, references
    both = quality.main(["--merge", str(tmp_path / "refs" / "quality.json"), str(tmp_path / "alone" / "quality.json"),
                         "--out_dir", str(tmp_path / "both")])
    again = {r["method"]: r for r in both["rows"]}
    assert again["tiny: smc (steps=2, particles=2)"]["gap_to_mmse_db"] == pytest.approx(
        mmse["psnr_hole"] - again["tiny: smc (steps=2, particles=2)"]["psnr_hole"])
    assert set(both["targets"]) == {"tiny ladder"} and both["targets"]["tiny ladder"]
    assert not refs_only["no_references"]
    with pytest.raises(ValueError, match="none of"):
        quality.main(["--merge", str(tmp_path / "alone" / "quality.json")])
    # the grid's posterior means without references, merged with a run that has them on the same images: the
    # same network under another name, so that its rows must come out equal to the full run's
    grid = [*args[2:18], "--steps", "2", "--dc_repeats", "1", "--posterior_k", "1,2", "--posterior_steps", "2",
            "--posterior_dc_repeats", "1", "--n_posterior", "4"]
    full = quality.main(["--ckpt", f"tiny={tiny_run.checkpoint}", *grid, "--out_dir", str(tmp_path / "gfull")])
    bare = quality.main(["--ckpt", f"twin={tiny_run.checkpoint}", *grid, "--no_references",
                         "--out_dir", str(tmp_path / "gbare")])
    assert not bare["targets"] and all(r["gap_to_mmse_db"] is None for r in bare["rows"])
    assert [r["knn10_psnr_same_images"] for r in bare["rows"] if ": mean of " in r["method"]] == [None, None]
    joined = quality.main(["--merge", str(tmp_path / "gfull" / "quality.json"), str(tmp_path / "gbare" / "quality.json"),
                           "--out_dir", str(tmp_path / "gjoined")])
    by = {r["method"]: r for r in joined["rows"]}
    for r in full["rows"]:
        if r["method"].startswith("tiny: "):
            twin = by["twin: " + r["method"][len("tiny: "):]]
            assert twin["n_images"] == r["n_images"] and twin["psnr_hole"] == pytest.approx(r["psnr_hole"])
            assert twin["gap_to_mmse_db"] == pytest.approx(r["gap_to_mmse_db"])
            assert twin.get("knn10_psnr_same_images") == pytest.approx(r.get("knn10_psnr_same_images"))
    assert joined["targets"]["twin"].keys() == full["targets"]["tiny"].keys()
    assert all(joined["targets"]["twin"][t]["threshold"] == pytest.approx(c["threshold"])
               for t, c in full["targets"]["tiny"].items())
    fewer = quality.main(["--ckpt", f"twin={tiny_run.checkpoint}", *grid[:-1], "3", "--no_references",
                          "--out_dir", str(tmp_path / "gfewer")])
    assert fewer["n_posterior"] == 3
    with pytest.raises(ValueError, match="posterior means are on 3 images"):
        quality.main(["--merge", str(tmp_path / "gfull" / "quality.json"), str(tmp_path / "gfewer" / "quality.json"),
                      "--out_dir", str(tmp_path / "gx")])
    with pytest.raises(ValueError, match="none of .* with the references has any"):
        refs4 = quality.main([*args[2:18], "--n_posterior", "4", "--out_dir", str(tmp_path / "refs4")])  # no means
        assert refs4["n_posterior"] == 4 and not any(": mean of " in r["method"] for r in refs4["rows"])
        quality.main(["--merge", str(tmp_path / "refs4" / "quality.json"), str(tmp_path / "gbare" / "quality.json"),
                      "--out_dir", str(tmp_path / "gy")])
    with pytest.raises(ValueError, match="--label_samples must be 0"):
        quality.main([*args[:-4], "--label_samples", "1", "--out_dir", str(tmp_path)])
