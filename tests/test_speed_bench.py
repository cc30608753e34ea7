"""benchmarks/speed.py (the jobs), speed_harness.py (timing, FLOPs) and speed_diffusers.py (the diffusers side), and
the speed settings of inpaintlib.accel as far as a CPU can check them."""
import json

import diffusers  # noqa: F401  a test requirement (requirements.txt): a missing one must fail CI, not skip
import pytest
import torch

from inpaintlib import DenoiserUNet, InpaintingUNET, ModelConfig, NoiseSchedule, center_hole, count_parameters
from inpaintlib.accel import channels_last, resolve_amp
from inpaintlib.reverse import Denoiser
from inpaintlib.samplers import ddim_inpaint, inpaint
from inpaintlib.trainer import optimizer_step as speed_optimizer_step

import speed_diffusers  # benchmarks/, on pytest's pythonpath as on a script's sys.path
import speed_harness

from conftest import load_script


@pytest.fixture(scope="module")
def speed():
    return load_script("benchmarks/speed.py", "speed_bench")


def mnist_net(**kw):
    torch.manual_seed(0)
    cfg = dict(pred="v", self_cond=True, coord_conv=True, T=400)  # the shipped model's configuration
    return DenoiserUNet(ModelConfig(**{**cfg, **kw})).eval()


@pytest.mark.parametrize("which", ["mnist", "tiny", "small", "default"])
def test_matched_unet_has_our_parameter_count_and_levels(which):
    with torch.device("meta"):  # the default preset's 48M parameters cost nothing on the meta device
        ours = mnist_net() if which == "mnist" else InpaintingUNET(preset=which)
        config = speed_diffusers.matched_unet_config(ours)
        theirs = speed_diffusers.diffusers_modules()[0](**config)
    assert abs(count_parameters(theirs) / count_parameters(ours) - 1) < 0.10
    layout = speed_diffusers.unet_layout(ours)
    assert len(config["block_out_channels"]) == len(layout["widths"])
    assert config["layers_per_block"] == layout["layers_per_block"]
    # attention at the levels where ours has it; the MNIST network: the lowest resolution only
    assert [t.startswith("Attn") for t in config["down_block_types"]] == layout["down_attention"]
    assert [t.startswith("Attn") for t in config["up_block_types"]] == layout["up_attention"]
    if which == "mnist":
        assert layout["down_attention"] == [False, False, True] and layout["up_attention"] == [True, False, False]
    if which == "default":  # the guide's attention at the 128-channel (64x64) and 512-channel layers
        assert layout["down_attention"] == [False, True, False, False]
        assert layout["up_attention"] == [True, True, False, False]


def test_flop_counts_are_positive_and_per_image():
    net = mnist_net()

    def inputs(B):
        x = torch.zeros(B, 1, 28, 28)
        return (x, torch.zeros(B, dtype=torch.long), x), {}

    one, three = speed_harness.forward_flops(net, inputs(1)), speed_harness.forward_flops(net, inputs(3))
    assert one > 1e8 and one == three  # ~0.38 GFLOP per image, whatever the batch
    train = speed_harness.train_flops(net, inputs(2))
    assert 2.5 * one < train < 3.5 * one  # backward ~ twice the forward
    assert speed_harness.train_flops(net, inputs(2), 0.5) == pytest.approx(train + 0.5 * one)
    assert next(net.parameters()).device.type == "cpu"  # counted on a meta copy


@pytest.mark.parametrize("loop", ["ddim", "repaint"])
def test_diffusers_loops_keep_known_pixels_and_count_nfe(speed, loop, binary_digits):
    net, schedule = mnist_net(), NoiseSchedule(400)
    for p in net.parameters():  # a random, non-trivial network
        torch.nn.init.normal_(p, std=0.02)
    images, hole = binary_digits(), center_hole(28, 12)
    y, keep = (images * 2 - 1) * (1 - hole), (1 - hole).expand(2, 1, 28, 28)
    scheduler = speed_diffusers.diffusers_scheduler(loop, schedule, "v")
    predict = lambda x, t, x0_prev: net(x, t, x0_prev)  # noqa: E731
    gen = torch.Generator().manual_seed(0)
    if loop == "ddim":
        out, nfe = speed_diffusers.diffusers_ddim_inpaint(predict, y, keep, scheduler, 6, gen)
        assert nfe == 6
    else:
        out, nfe = speed_diffusers.diffusers_repaint_inpaint(predict, speed_diffusers.eps_converter(schedule, "v"), y, keep, scheduler,
                                                   6, gen)
        assert nfe == 11 == speed.nfe_counts(2, ["inpaintlib"])["diffusers"](6)
    known = keep.bool()
    assert torch.equal(out[known], y[known])
    assert not torch.equal(out[~known], y[~known])
    result, _ = speed.unit_result((out, nfe), images, hole)
    assert torch.equal(result[known], images[known]) and result.min() >= 0 and result.max() <= 1


def test_sampling_loop_never_waits_for_the_device(monkeypatch, binary_digits):
    """No .item(), bool(tensor), .tolist(), int()/float() of a tensor inside ddim_inpaint: each is a
    host-device synchronisation on CUDA. Checked on the CPU by making them all raise."""
    net, schedule = mnist_net(), NoiseSchedule(400)
    y, hole = binary_digits() * 2 - 1, center_hole(28, 12)
    denoise = Denoiser(net, schedule)

    def refuse(*args, **kwargs):
        raise AssertionError("host-device synchronisation inside the sampling loop")

    def watched(*args):  # from the loop's first network call on, every sync raises
        for name in ("item", "tolist", "__bool__", "__int__", "__float__", "__index__"):
            monkeypatch.setattr(torch.Tensor, name, refuse)
        return denoise(*args)

    nfes = []
    with torch.no_grad():
        ddim_inpaint(watched, y, hole, schedule, 4, eta=1.0, dc_repeats=2, dc_fixed_z=False,
                     generator=torch.Generator().manual_seed(0), callback=lambda d: nfes.append(d["nfe"]))
    monkeypatch.undo()
    assert nfes == list(range(1, 9)) and denoise.nfe == 8


def test_channels_last_context_restores_every_weight_untouched():
    net = mnist_net()
    before = {k: (v, v.data_ptr(), v.stride()) for k, v in net.state_dict(keep_vars=True).items()}
    with channels_last(net):
        assert net.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
        assert not net.conv_in.weight.is_contiguous()
    for k, v in net.state_dict(keep_vars=True).items():
        tensor, ptr, stride = before[k]
        assert v is tensor and v.data_ptr() == ptr and v.stride() == stride, k


def test_speed_settings_leave_cpu_results_alone(binary_digits):
    net, images, hole = mnist_net(), binary_digits(), center_hole(28, 12)
    a = inpaint(net, images, hole, steps=3, seed=0)
    b = inpaint(net, images, hole, steps=3, seed=0, amp=True)  # autocast is CUDA only: a no-op here
    assert torch.equal(a, b) and a.is_contiguous()
    assert resolve_amp(None, "cpu") is False and resolve_amp(True, "cpu") is False
    with pytest.raises(ValueError, match="amp"):
        inpaint(net, images, hole, steps=2, amp="yes")


def test_mixed_precision_paths_run_with_cpu_autocast_standing_in_for_cuda(monkeypatch, binary_digits):
    """The CUDA-only branches (autocast, GradScaler, channels_last weights), driven on the CPU with
    CPU bf16 autocast: the training step updates the weights, sampling keeps known pixels exact."""
    import itertools

    from inpaintlib import samplers
    from inpaintlib.mnist.recipe import TrainConfig, train_step

    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    cfg = TrainConfig(batch_size=4, base_channels=8, timesteps=50)
    torch.manual_seed(0)
    model = DenoiserUNet(cfg.model_config()).to(memory_format=torch.channels_last)
    ema = DenoiserUNet(cfg.model_config())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    batches = itertools.cycle([binary_digits(4) * 2 - 1])
    for step in range(2):
        loss = train_step(model, model, optimizer, NoiseSchedule(50), cfg, batches, torch.Generator().manual_seed(0),
                          step, list(model.parameters()), list(ema.parameters()), autocast,
                          torch.amp.GradScaler("cpu", init_scale=256.0))
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert sum(not torch.equal(a, b) for a, b in zip(before, model.parameters())) > 10

    monkeypatch.setattr(samplers, "resolve_amp", lambda amp, device: True)
    monkeypatch.setattr(samplers, "amp_context", lambda device, amp: (autocast, None))
    net, images, hole = mnist_net(), binary_digits(), center_hole(28, 12)
    out = inpaint(net, images, hole, steps=3, seed=0)
    keep = hole.expand_as(images) == 0
    assert out.dtype == torch.float32 and torch.equal(out[keep], images[keep])
    assert net.conv_in.weight.is_contiguous()  # weights back in their own format after the call


def test_train_refuses_bad_speed_flags(tmp_path):
    from inpaintlib import train

    with pytest.raises(ValueError, match="compile"):
        train(max_steps=1, compile="yes", out_dir=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="amp"):
        train(max_steps=1, amp="on", out_dir=str(tmp_path), progress=False)


@pytest.mark.parametrize("system", ["mnist", "freeform"])
def test_our_training_steps_are_the_packages_own(speed, monkeypatch, system, binary_digits):
    """speed.py times the recipes' own losses through trainer.optimizer_step, not a copy of them."""
    import itertools

    from inpaintlib.mnist.recipe import TrainConfig

    calls = []
    name = "diffusion_loss" if system == "mnist" else "hole_loss"
    loss = getattr(speed, name)
    monkeypatch.setattr(speed, name, lambda *a, **k: calls.append(1) or loss(*a, **k))
    monkeypatch.setattr(speed, "optimizer_step", lambda *a, **k: calls.append(2) or speed_optimizer_step(*a, **k))
    if system == "mnist":
        step, model = speed.mnist_train_step(TrainConfig(batch_size=2, base_channels=8, timesteps=50),
                                             itertools.cycle([binary_digits(2) * 2 - 1]), torch.device("cpu"), False)
    else:
        torch.manual_seed(0)
        model = InpaintingUNET(preset="tiny", image_size=32)
        x0 = torch.rand(2, 3, 32, 32) * 2 - 1
        keep = torch.ones(2, 1, 32, 32)
        keep[..., 8:20, 8:20] = 0
        step = speed.freeform_train_step(model, itertools.cycle([(x0, keep)]), torch.device("cpu"), False)
    before = [p.detach().clone() for p in model.parameters()]
    step()
    step()
    assert calls == [2, 1, 2, 1]
    assert sum(not torch.equal(a, b) for a, b in zip(before, model.parameters())) > 5


@pytest.mark.slow  # a subprocess or a script end to end: the full suite runs it
def test_smoke_run_writes_the_documented_json(speed, tmp_path, capsys, mnist_root):
    out = tmp_path / "speed.json"
    speed.main(["--smoke", "--threads", "1", "--data_root", mnist_root, "--out", str(out)])
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert tuple(result) == speed.JSON_KEYS
    meta = result["meta"]
    for key in ("device", "compute", "torch", "diffusers", "threads", "peak_tflops", "peak_source", "mode"):
        assert key in meta
    assert meta["threads"] == 1 and meta["mode"] == "smoke"
    jobs = {(r["job"], r["impl"]) for r in result["jobs"]}
    for job in ("mnist train, equal work: self_cond=False", "mnist sample ddim", "tiny train", "tiny sample ddim"):
        assert (job, "inpaintlib") in jobs and (job, "diffusers") in jobs
    for row in result["jobs"]:
        assert row["seconds"] > 0 and row["images_per_s"] > 0 and row["flops_per_image"] > 0
        assert 0 < row["fraction_of_peak"] < 10
    assert len(result["speedups"]) >= 6
    for s in result["speedups"]:
        assert f"speedup vs diffusers ({s['job']}): {s['speedup']:.2f}" in printed
    assert {r["method"].split()[0] for r in result["quality"]["rows"]} == {"inpaintlib", "diffusers"}
    assert set(result["scaling"]) == {"image_size", "batch", "steps"}
    assert result["data_loading"][0]["share_of_step"] is not None
