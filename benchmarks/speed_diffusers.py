"""The diffusers side of ``benchmarks/speed.py``: a UNet2DModel matched to our network, its schedulers
driving inpainting loops, and the training step of its train_unconditional example.

    matched_unet_config, build_unet   a UNet2DModel config (built from a config: nothing is downloaded) with our
                                      network's resolution levels, ResBlocks per level and attention placement, its
                                      widths scaled until its parameter count is within a few percent of ours
    diffusers_scheduler               DDIM, RePaint or DDPM with our betas and our prediction type
    diffusers_ddim_inpaint            DDIMScheduler with inpainting by replacement (eta = 0)
    diffusers_repaint_inpaint         RePaintScheduler, the loop of its RePaintPipeline
    diffusers_train_step              DDPMScheduler.add_noise, UNet2DModel, MSE, backward, clip, AdamW, EMAModel

diffusers is imported on first use (``diffusers_modules``).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from inpaintlib import DenoiserUNet, NoiseSchedule, count_parameters
from inpaintlib.accel import amp_context
from inpaintlib.trainer import apply_gradients

PRED_TO_DIFFUSERS = {"eps": "epsilon", "v": "v_prediction", "x0": "sample"}

def diffusers_modules():
    import diffusers
    from diffusers import DDIMScheduler, DDPMScheduler, RePaintScheduler, UNet2DModel

    diffusers.utils.logging.set_verbosity_error()
    return UNet2DModel, DDIMScheduler, RePaintScheduler, DDPMScheduler


def unet_layout(model) -> dict:
    """Our network's resolution levels, as diffusers' UNet2DModel would describe them: widths
    per level, ResBlocks per level, and where ours has attention (encoder levels from the top,
    decoder levels from the bottom, and the middle)."""
    cfg = model.config
    if isinstance(model, DenoiserUNet):  # attention at the lowest level only
        n = len(cfg.channel_mults)
        return {"widths": [cfg.base_channels * m for m in cfg.channel_mults], "layers_per_block": cfg.num_res_blocks,
                "heads": cfg.num_heads, "in_channels": cfg.channels, "out_channels": cfg.channels,
                "size": cfg.image_size, "down_attention": [False] * (n - 1) + [True],
                "up_attention": [True] + [False] * (n - 1), "mid_attention": True}
    # free-form UNET: an encoder layer (2 ResBlocks) at each of num_down resolutions, the bottleneck
    # below them, a decoder layer at each but the top resolution, then the head at the top
    k = cfg.num_down
    return {"widths": list(cfg.widths[:k + 1]), "layers_per_block": 2, "heads": cfg.num_heads,
            "in_channels": cfg.channels + (1 if cfg.cond == "mask" else 0), "out_channels": cfg.channels,
            "size": cfg.image_size, "down_attention": list(cfg.attentions[:k]) + [False],
            "up_attention": list(cfg.attentions[k:]) + [False], "mid_attention": cfg.bottleneck_attention}


def unet2d_config(layout: dict, scale: float, unit: int = 8) -> dict:
    """A UNet2DModel config with the layout's levels, blocks per level and attention placement,
    widths = ours x ``scale`` rounded to multiples of ``unit`` (8 or more: GroupNorm of 8 groups).
    One head size for all attention layers (diffusers' rule): ours at the lowest level if it
    divides them all, else their common divisor."""
    ch = tuple(max(unit, int(round(w * scale / unit)) * unit) for w in layout["widths"])
    attended = [c for c, a in zip(ch, layout["down_attention"]) if a]
    attended += [c for c, a in zip(reversed(ch), layout["up_attention"]) if a]
    attended += [ch[-1]] if layout["mid_attention"] else []
    head_dim = ch[-1] // layout["heads"]
    if not attended or any(c % head_dim for c in attended):
        head_dim = math.gcd(*attended) if attended else 8
    return {"sample_size": layout["size"], "in_channels": layout["in_channels"],
            "out_channels": layout["out_channels"], "block_out_channels": ch,
            "layers_per_block": layout["layers_per_block"],
            "down_block_types": tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in layout["down_attention"]),
            "up_block_types": tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in layout["up_attention"]),
            "add_attention": layout["mid_attention"], "norm_num_groups": 8, "attention_head_dim": head_dim}


def matched_unet_config(model) -> dict:
    """The UNet2DModel config whose parameter count is nearest ours (bisection on the width scale;
    counted on the meta device, so nothing is allocated). Widths are rounded to multiples of 32,
    else 16, else 8: the coarsest rounding that stays within 5% of our count (larger heads)."""
    UNet2DModel = diffusers_modules()[0]
    layout, target = unet_layout(model), count_parameters(model)

    def params(scale: float, unit: int) -> int:
        with torch.device("meta"):
            return count_parameters(UNet2DModel(**unet2d_config(layout, scale, unit)))

    for unit in (32, 16, 8):
        lo, hi = 0.25, 4.0
        for _ in range(12):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if params(mid, unit) < target else (lo, mid)
        best = min((lo, hi, 1.0), key=lambda s: abs(params(s, unit) - target))
        if abs(params(best, unit) / target - 1) < 0.05 or unit == 8:
            return unet2d_config(layout, best, unit)


def build_unet(config: dict, device: torch.device):
    torch.manual_seed(0)
    return diffusers_modules()[0](**config).to(device)


def diffusers_scheduler(kind: str, schedule: NoiseSchedule, pred: str):
    """DDIM, RePaint or DDPM scheduler with our betas and our network's prediction type."""
    _, DDIMScheduler, RePaintScheduler, DDPMScheduler = diffusers_modules()
    betas = schedule.betas.cpu().numpy()
    if kind == "repaint":  # RePaint reads the model output as eps (we convert v and x0 to it)
        return RePaintScheduler(num_train_timesteps=schedule.T, trained_betas=betas, eta=0.0, clip_sample=True)
    cls = DDIMScheduler if kind == "ddim" else DDPMScheduler
    return cls(num_train_timesteps=schedule.T, trained_betas=betas, clip_sample=True,
               prediction_type=PRED_TO_DIFFUSERS[pred])


@torch.no_grad()
def diffusers_ddim_inpaint(predict, y, keep, scheduler, steps: int, generator) -> tuple:
    """Plain DDIM inpainting by replacement with diffusers' DDIMScheduler (eta = 0): before each
    step the known region is replaced by the observation noised to the current level
    (``scheduler.add_noise``); the start is pure noise. ``predict(x, t, x0_prev)`` gives the
    network output. Returns (x_0 in model space, NFE)."""
    scheduler.set_timesteps(steps, device=y.device)
    randn = lambda: torch.randn(y.shape, generator=generator, device=y.device)  # noqa: E731
    x, x0_prev, nfe = randn(), None, 0
    for t in scheduler.timesteps:
        x = keep * scheduler.add_noise(y, randn(), t.reshape(1)) + (1 - keep) * x
        out = predict(x, t.expand(len(x)), x0_prev)
        nfe += 1
        step = scheduler.step(out, t, x, eta=0.0)
        x, x0_prev = step.prev_sample, step.pred_original_sample
    return keep * y + (1 - keep) * x, nfe


@torch.no_grad()
def diffusers_repaint_inpaint(predict, to_eps, y, keep, scheduler, steps: int, generator,
                              jump_length: int = 1, jump_n_sample: int = 2) -> tuple:
    """RePaint with diffusers' RePaintScheduler, the loop of its RePaintPipeline: a step back in t
    calls the network and ``scheduler.step``; a step forward is ``scheduler.undo_step``.
    ``to_eps(out, x, t)`` turns the network output into eps. Returns (x_0, NFE)."""
    scheduler.set_timesteps(steps, jump_length, jump_n_sample, device=y.device)
    x = torch.randn(y.shape, generator=generator, device=y.device)
    x0_prev, nfe, t_last = None, 0, scheduler.timesteps[0] + 1
    for t in scheduler.timesteps:
        if t < t_last:
            t_batch = t.expand(len(x))
            eps = to_eps(predict(x, t_batch, x0_prev), x, t_batch)
            nfe += 1
            step = scheduler.step(eps, t, x, y, keep, generator=generator)
            x, x0_prev = step.prev_sample, step.pred_original_sample
        else:
            x = scheduler.undo_step(x, t_last, generator=generator)
        t_last = t
    return keep * y + (1 - keep) * x, nfe


def eps_converter(schedule: NoiseSchedule, pred: str):
    """(out, x_t, t) -> eps, with the schedule's own conversion (no clipping)."""
    if pred == "eps":
        return lambda out, x, t: out
    return lambda out, x, t: schedule.to_x0_eps(pred, x, t, out, clip=False)[1]


def diffusers_train_step(unet, schedule: NoiseSchedule, pred: str, batches, device, amp: bool):
    """The step of diffusers' train_unconditional example: x_t = DDPMScheduler.add_noise, MSE
    against eps or v (``get_velocity``), backward, clip 1.0, AdamW, EMAModel.step. ``batches``
    yields (x0, keep or None); keep is fed as a 4th input channel, as inpainting UNets take it."""
    from diffusers.training_utils import EMAModel

    ddpm = diffusers_scheduler("ddpm", schedule, pred)
    params = list(unet.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    ema = EMAModel(params, decay=0.999)
    ema.to(device)
    autocast, scaler = amp_context(device, amp)
    gen = torch.Generator(device=device).manual_seed(0)
    unet.train()

    def step():
        x0, keep = next(batches)
        noise = torch.randn(x0.shape, generator=gen, device=device)
        t = torch.randint(0, schedule.T, (len(x0),), generator=gen, device=device)
        x_t = ddpm.add_noise(x0, noise, t)
        with autocast():
            out = unet(x_t if keep is None else torch.cat([x_t, keep], 1), t).sample
        target = noise if pred == "eps" else ddpm.get_velocity(x0, noise, t)
        loss = F.mse_loss(out.float(), target)
        (loss if scaler is None else scaler.scale(loss)).backward()  # scaled for fp16
        apply_gradients(optimizer, params, 1.0, scaler)  # the package's: unscale, clip, step, zero
        ema.step(params)

    return step
