"""One training loop for both systems: ``train`` (MNIST) and ``train_inpainting`` (free-form).

A recipe supplies its network, its loss on one micro-batch and its batches; this module does the rest:

    per optimizer step s:  lr_s = lr * min(1, (s + 1) / warmup_steps)           (linear warmup)
                           g = sum over grad_accum micro-batches of grad(loss / grad_accum)
                           clip ||g|| at clip_grad, Adam step
                           ema <- d_s ema + (1 - d_s) w,  d_s = min(ema_decay, (1 + s) / (10 + s))
    losses buffered on the device, moved to the host every 25 steps (one sync), checked finite
    a checkpoint when the recipe's ``save_due(step)`` says so, and at the end

The batch order of an epoch depends only on (seed, epoch) (``EpochBatches``), so a run resumed
mid-epoch replays exactly the batches it had not yet seen, and no data-generator state is saved.

One checkpoint schema serves both recipes (version 2):
    format, version, kind, model_config, train_config, world_size, step, train_seconds,
    model, ema, optimizer, [scaler], rng = {"ranks": [{"torch", "noise"} per rank]},
    history = float64 tensor (steps, 3): optimizer step, loss (mean over ranks), learning rate
Version-1 checkpoints (written before this module) load too: ``read_state`` fills in what they
lack (their history from ``legacy_history``; a learning rate that was not recorded is recomputed).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

from . import distributed as dist
from .accel import amp_context
from .checkpoint import FORMAT, atomic_save, load_checkpoint

SCHEMA_VERSION = 2
LOG_EVERY = 25  # optimizer steps between host syncs of the loss


# ----------------------------------------------------------------------------------------------
# the pieces of a step


def lr_at(step: int, cfg) -> float:
    """Linear warmup from lr/warmup_steps to lr over ``cfg.warmup_steps`` optimizer steps, then flat."""
    if cfg.warmup_steps <= 0:
        return cfg.lr
    return cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps)


def ema_decay_at(step: int, ema_decay: float) -> float:
    """EMA warmup: average over roughly the steps seen so far until ``ema_decay`` takes over."""
    return min(ema_decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema_params: list, params: list, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * param, for every parameter at once."""
    torch._foreach_lerp_(ema_params, params, 1.0 - decay)


def apply_gradients(optimizer, params: list, clip_grad: float, scaler=None) -> None:
    """The end of an optimizer step: unscale (fp16 GradScaler), clip the gradient norm at
    ``clip_grad`` (0 = off), step, zero the gradients."""
    if scaler is not None:
        scaler.unscale_(optimizer)  # clip the true gradients
    if clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(params, clip_grad)
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)  # skips the step if fp16 gradients overflowed
        scaler.update()
    optimizer.zero_grad(set_to_none=True)


def optimizer_step(net, optimizer, params: list, ema_params: list, cfg, step: int, micro_batches, loss_fn: Callable,
                   scaler=None) -> tuple:
    """One optimizer step: set the warmed-up LR, take ``cfg.grad_accum`` micro-batches from
    ``micro_batches`` (loss and backward each; DDP all-reduces on the last only), clip, Adam, EMA.
    ``loss_fn(net, batch)`` is the recipe's loss. Returns (lr, the step's loss as a device tensor)."""
    lr_now = lr_at(step, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr_now
    grad_accum = getattr(cfg, "grad_accum", 1)
    total = torch.zeros((), device=params[0].device)
    for micro in range(grad_accum):
        batch = next(micro_batches)
        with dist.no_sync(net, skip=micro + 1 < grad_accum):
            loss = loss_fn(net, batch) / grad_accum
            (loss if scaler is None else scaler.scale(loss)).backward()
        total += loss.detach()
    apply_gradients(optimizer, params, cfg.clip_grad, scaler)
    update_ema(ema_params, params, ema_decay_at(step, cfg.ema_decay))
    return lr_now, total


def progress_bar(total: int, initial: int, enabled: bool, desc: str = "train"):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=not enabled, dynamic_ncols=True)


class EpochBatches(torch.utils.data.Sampler):
    """Batches of a seeded permutation per epoch: epoch e's order depends only on (seed, e), so a
    run resumed mid-epoch replays the same order from batch ``skip`` on. The last partial batch is
    dropped.

    Under torchrun (``world_size`` > 1) every rank draws the same permutation, cuts it into global
    batches of ``batch_size x world_size`` and takes every ``world_size``-th index of each, from
    ``rank`` on: the rule of torch's ``DistributedSampler``, kept here because it must also skip
    the batches a resumed run has already seen."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.skip = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return self.n // (self.batch_size * self.world_size)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.skip

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        span = self.batch_size * self.world_size
        for k in range(self.skip, self.batches_per_epoch):
            yield order[k * span:(k + 1) * span][self.rank::self.world_size].tolist()


# ----------------------------------------------------------------------------------------------
# resuming


def _plain(value):
    return list(value) if isinstance(value, (tuple, list)) else value


def check_resume(saved: dict, now: dict, may_change: set, path, what: str = "config") -> None:
    """A resumed run must have the saved run's settings, except the keys in ``may_change`` (those
    that extend or reschedule it). ``world_size`` is not a setting of the run."""
    diffs = {k: (saved.get(k), v) for k, v in now.items()
             if k not in may_change and k != "world_size" and _plain(saved.get(k)) != _plain(v)}
    if diffs:
        text = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in sorted(diffs.items()))
        raise ValueError(f"cannot resume from {str(path)!r}: its {what} differs ({text}). Use the same arguments, "
                         f"another output path, or overwrite=True to start afresh.")


def history_tensor(history: list) -> torch.Tensor:
    return torch.tensor([[r["step"], r["loss"], r["lr"]] for r in history], dtype=torch.float64).reshape(-1, 3)


def history_rows(table: torch.Tensor) -> list:
    return [{"step": int(s), "loss": float(l), "lr": float(r)} for s, l, r in table.tolist()]


def read_state(path, kind: str, map_location="cpu", legacy_history: Callable[[], list] | None = None,
               lr_of: Callable[[int], float] | None = None) -> dict:
    """A training checkpoint of either schema, as version 2 reads it: ``world_size``, ``rng["ranks"]``
    and ``history`` (a list of {step, loss, lr}) are always there."""
    ckpt = load_checkpoint(path, kind=kind, map_location=map_location)
    for key in ("model", "ema", "optimizer", "step", "rng"):
        if key not in ckpt:
            raise ValueError(f"checkpoint {str(path)!r} cannot be resumed: it has no {key!r} entry (a shipped, "
                             f"weights-only file? scripts/resume_from_shipped.py makes one resumable)")
    ckpt["world_size"] = ckpt.get("world_size", ckpt["train_config"].get("world_size", 1))
    rng = ckpt["rng"]
    ckpt["rng"] = {"ranks": rng.get("ranks") or [{"torch": rng["torch"], "noise": rng["noise"]}]}
    if "history" in ckpt:
        ckpt["history"] = history_rows(ckpt["history"])
    elif "loss_history" in ckpt:  # version 1, free-form: the losses alone
        lr_of = lr_of or (lambda s: float("nan"))
        ckpt["history"] = [{"step": s + 1, "loss": float(v), "lr": lr_of(s)}
                           for s, v in enumerate(ckpt.pop("loss_history").tolist())]
    else:  # version 1, MNIST: the history lived in history.csv beside the checkpoint
        ckpt["history"] = legacy_history() if legacy_history is not None else []
    ckpt["history"] = ckpt["history"][:ckpt["step"]]
    return ckpt


def warm_restart_state(ckpt: dict, src, *, kind: str, train_config: dict, model_config: dict | None = None,
                       world_size: int = 1) -> dict:
    """A resumable training state that starts from the EMA weights of ``ckpt`` (a shipped, weights-only
    checkpoint read from ``src``), with ``train_config`` (needs ``lr`` and ``seed``) as its settings.

    A warm restart, not a resume: raw and EMA weights both start from the EMA (cast to fp32), Adam
    starts with empty moments (its bias correction scales the first steps), the noise generator is
    reseeded from (seed, step); the step count goes on from ckpt's, and the batch order depends only on
    (seed, epoch). ``model_config`` defaults to ckpt's."""
    if "ema" not in ckpt:
        raise ValueError(f"{str(src)!r} holds no EMA weights to start from")
    step = int(ckpt["step"])
    seed = int(train_config["seed"])
    weights = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["ema"].items()}
    optimizer = torch.optim.Adam([torch.nn.Parameter(v.clone()) for v in weights.values() if v.is_floating_point()],
                                 lr=train_config["lr"], foreach=True)
    noise_gen = torch.Generator().manual_seed(seed + 1 + 7919 * step)
    torch.manual_seed(seed + step)
    return {"format": FORMAT, "version": SCHEMA_VERSION, "kind": kind,
            "model_config": ckpt["model_config"] if model_config is None else model_config,
            "train_config": train_config, "world_size": world_size, "step": step,
            "model": weights, "ema": {k: v.clone() for k, v in weights.items()},
            "optimizer": optimizer.state_dict(), "train_seconds": ckpt.get("train_seconds"),
            "warm_restart": {"from": str(src), "step": step},
            "rng": {"ranks": [{"torch": torch.get_rng_state(), "noise": noise_gen.get_state()}]},
            "history": history_tensor([])}


# ----------------------------------------------------------------------------------------------
# the loop


@dataclass
class LoopResult:
    step: int
    history: list  # one dict per optimizer step: step, loss, lr
    seconds: float  # this call's training wall time


class Trainer:
    """The state of a run (network, EMA, Adam, the per-rank noise generator) and its loop.

    ``model`` is the plain network; ``net`` what the loss runs through (DDP-wrapped or compiled,
    else ``model``). The recipe seeds torch before building ``model`` (weight init) and passes
    ``dropout_seed`` and ``noise_seed`` for this rank."""

    def __init__(self, model, *, kind: str, cfg, model_config: dict, train_config: dict, info, device,
                 noise_seed: int, dropout_seed: int | None = None, net=None, amp: bool = False):
        self.kind, self.cfg, self.info, self.device = kind, cfg, info, device
        self.model_config, self.train_config = model_config, train_config
        self.model = model
        self.ema_model = copy.deepcopy(model).eval().requires_grad_(False)
        if dropout_seed is not None:
            torch.manual_seed(dropout_seed)
        self.noise_gen = torch.Generator(device=device)  # t, eps, holes, self-conditioning: per rank
        self.noise_gen.manual_seed(noise_seed)
        self.net = net if net is not None else dist.wrap_model(model, info, device)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=True)
        self.autocast, self.scaler = amp_context(device, amp)
        self.step, self.history, self.seconds_before = 0, [], 0.0

    # -- checkpoints
    def resume(self, path, may_change: set, legacy_history=None, extra_check=None, upgrade_config=None) -> None:
        """Continue from ``path``: weights, EMA, Adam, step, history, and every random stream when the
        number of processes is the same (else fresh per-rank streams). ``upgrade_config`` maps a saved
        train config to today's names before the comparison (a renamed field)."""
        ckpt = read_state(path, self.kind, self.device, legacy_history, lambda s: lr_at(s, self.cfg))
        saved = ckpt["train_config"] if upgrade_config is None else upgrade_config(ckpt["train_config"])
        check_resume(saved, self.train_config, may_change, path)
        if extra_check is not None:
            extra_check(ckpt)
        self.model.load_state_dict(ckpt["model"])
        self.ema_model.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scaler is not None and "scaler" in ckpt:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.step = int(ckpt["step"])
        self.seconds_before = ckpt.get("train_seconds")
        ranks = ckpt["rng"]["ranks"]
        if len(ranks) == self.info.world_size:
            torch.set_rng_state(ranks[self.info.rank]["torch"].cpu())
            self.noise_gen.set_state(ranks[self.info.rank]["noise"].cpu())
        self.history = ckpt["history"]

    def _gather(self, state: torch.Tensor) -> list:
        if not self.info.enabled:
            return [state]
        states = [None] * self.info.world_size
        torch.distributed.all_gather_object(states, state)
        return states

    def state_dict(self, seconds_now: float) -> dict | None:
        """The checkpoint (collective under torchrun: every rank's RNG state goes in); None off rank 0."""
        torch_states = self._gather(torch.get_rng_state())
        noise_states = self._gather(self.noise_gen.get_state().cpu())
        if not self.info.is_main:
            return None
        state = {"format": FORMAT, "version": SCHEMA_VERSION, "kind": self.kind,
                 "model_config": self.model_config, "train_config": self.train_config,
                 "world_size": self.info.world_size, "step": self.step,
                 # wall time of every run that led here (for a model card); None once a run did not record it
                 "train_seconds": None if self.seconds_before is None else self.seconds_before + seconds_now,
                 "model": self.model.state_dict(), "ema": self.ema_model.state_dict(),
                 "optimizer": self.optimizer.state_dict(),
                 "rng": {"ranks": [{"torch": a, "noise": b} for a, b in zip(torch_states, noise_states)]},
                 "history": history_tensor(self.history)}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def save(self, path, seconds_now: float, before_write: Callable[[], None] | None = None) -> None:
        state = self.state_dict(seconds_now)
        if state is None:
            return
        if before_write is not None:
            before_write()
        atomic_save(state, path)

    # -- the loop
    def fit(self, loss_fn: Callable, batches: Callable[[int, int], Iterable], steps_per_epoch: int, total_steps: int,
            checkpoint: Callable[[int, bool, float], None], save_due: Callable[[int], bool], path,
            progress: bool = True, desc: str = "train") -> LoopResult:
        """Train until ``total_steps``. ``batches(epoch, skip)`` yields the micro-batches of an epoch from
        optimizer step ``skip`` on; ``loss_fn(net, batch)`` returns a micro-batch's loss (a scalar
        tensor); ``checkpoint(step, final, seconds)`` is called (on every rank) when ``save_due(step)``
        and at the end."""
        cfg, info = self.cfg, self.info
        params, ema_params = list(self.model.parameters()), list(self.ema_model.parameters())
        bar = progress_bar(total_steps, self.step, progress and info.is_main, desc)
        t_start, pending = time.perf_counter(), []  # pending: (step, lr, loss tensor) not yet on the host
        last_saved = self.step

        def flush() -> None:
            if not pending:
                return
            values = dist.all_mean(torch.stack([p[2] for p in pending]), info).tolist()
            for (s, lr_s, _), value in zip(pending, values):
                if not math.isfinite(value):
                    raise FloatingPointError(f"training stopped: the loss became {value} at optimizer step {s}; "
                                             f"{str(path)!r} keeps the last good state (step {last_saved})")
                self.history.append({"step": s, "loss": value, "lr": lr_s})
            pending.clear()
            bar.set_postfix(loss=f"{self.history[-1]['loss']:.4f}")

        self.model.train()
        while self.step < total_steps:
            epoch, skip = divmod(self.step, steps_per_epoch)
            batch_iter = iter(batches(epoch, skip))
            for _ in range(steps_per_epoch - skip):
                if self.step >= total_steps:
                    break
                lr_now, total = optimizer_step(self.net, self.optimizer, params, ema_params, cfg, self.step, batch_iter,
                                               loss_fn, self.scaler)
                self.step += 1
                pending.append((self.step, lr_now, total))
                bar.update(1)
                due = self.step < total_steps and save_due(self.step)
                if len(pending) >= LOG_EVERY or due or self.step == total_steps:
                    flush()
                if due:
                    checkpoint(self.step, False, time.perf_counter() - t_start)
                    last_saved = self.step
        flush()
        bar.close()
        checkpoint(self.step, True, time.perf_counter() - t_start)
        dist.barrier(info)
        return LoopResult(step=self.step, history=self.history, seconds=time.perf_counter() - t_start)
