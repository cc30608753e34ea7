"""The timing harness of ``benchmarks/speed.py``: time, memory, FLOPs, the hardware's peak, and the rows.

    timed, interleaved_times    seconds of a call, the device drained; callables run in turn, repeat by repeat
    PeakMemory                  the peak memory what runs inside adds (CUDA allocator, or the CPU's resident set)
    count_flops, forward_flops, train_flops
                                FLOPs of convolutions, matmuls and attention (torch.utils.flop_counter), on a
                                meta-device copy of the network, so counting costs nothing
    hardware_peak, compute_kind the peak to compare with: datasheet dense peaks on CUDA, torch.mm measured on the CPU
    Row, Bench                  one measured line; the run's settings, rows and speedups, and the two ways of
                                timing a job (``train_job``: optimizer steps, ``sample_job``: whole inpainting runs)
    print_table, device_label, cpu_name, load_average
                                the console tables and what a result records about its machine

Nothing here knows inpaintlib or diffusers: a job hands it callables (``speed.py``, ``speed_diffusers.py``).
"""
from __future__ import annotations

import copy
import os
import platform
import statistics
import threading
import time
from dataclasses import dataclass

import torch

SAMPLE_STEPS = 50  # the sampling figure: images/s at 50 DDIM steps

# Datasheet dense peaks (no sparsity), TFLOP/s, by a substring of torch.cuda.get_device_name().
# First match wins, so the PCIe H100 comes before the SXM one.
GPU_PEAK_TFLOPS = (
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.0}),
    ("H100", {"bf16": 989.0, "fp16": 989.0, "tf32": 494.0, "fp32": 67.0}),
    ("H200", {"bf16": 989.0, "fp16": 989.0, "tf32": 494.0, "fp32": 67.0}),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5}),
    ("L4", {"bf16": 121.0, "fp16": 121.0, "tf32": 60.0, "fp32": 30.3}),
    ("T4", {"fp16": 65.0, "fp32": 8.1}),
)


# ----------------------------------------------------------------------------------------------
# measuring: time, memory, FLOPs, the hardware's peak


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    """Seconds for one call of ``fn``, the device drained before and after."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved_times(fns: dict, device: torch.device, repeats: int) -> dict:
    """{name: [seconds, ...]}: the callables run in turn, ``repeats`` rounds, so that a slow
    moment of a shared machine falls on both sides alike."""
    out = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            out[name].append(timed(fn, device))
    return out


class PeakMemory:
    """Peak memory that what runs inside adds, in MB: activations, gradients, workspaces (weights
    and optimizer state allocated before are not counted). CUDA: ``torch.cuda.max_memory_allocated``
    over the allocation on entry. CPU: the resident set's peak over its size on entry, sampled
    every 2 ms from /proc/self/statm (None where /proc is absent)."""

    def __init__(self, device: torch.device):
        self.device, self.mb = device, None
        self._stop, self._thread, self._peak, self._base = threading.Event(), None, 0, 0

    @staticmethod
    def _rss_bytes() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._rss_bytes())
            self._stop.wait(0.002)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        elif os.path.exists("/proc/self/statm"):
            self._base = self._peak = self._rss_bytes()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._rss_bytes())
            self.mb = (self._peak - self._base) / 2**20
        return False


def count_flops(fn) -> int:
    """FLOPs of the convolutions, matmuls and attention ``fn`` runs (torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def on_meta(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` on the meta device: shapes only, so counting FLOPs costs nothing."""
    return copy.deepcopy(model).to("meta")


def forward_flops(model, batch_inputs) -> float:
    """Counted FLOPs of one forward pass per image (meta device)."""
    meta = on_meta(model)
    inputs = [x.to("meta") if isinstance(x, torch.Tensor) else x for x in batch_inputs[0]]
    kwargs = {k: v.to("meta") for k, v in batch_inputs[1].items()}
    with torch.no_grad():
        return count_flops(lambda: meta(*inputs, **kwargs)) / inputs[0].shape[0]


def train_flops(model, batch_inputs, extra_forward_share: float = 0.0) -> float:
    """Counted FLOPs per image of forward + backward (meta device), plus ``extra_forward_share``
    of a forward (the self-conditioning pass, run without gradient on about half the batch)."""
    meta = on_meta(model).train()
    inputs = [x.to("meta") if isinstance(x, torch.Tensor) else x for x in batch_inputs[0]]
    kwargs = {k: v.to("meta") for k, v in batch_inputs[1].items()}

    def fwd_bwd():
        out = meta(*inputs, **kwargs)
        (out.sample if hasattr(out, "sample") else out).float().square().mean().backward()

    per_image = count_flops(fwd_bwd) / inputs[0].shape[0]
    return per_image + extra_forward_share * forward_flops(model, batch_inputs)


def matmul_tflops(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Measured throughput of torch.mm on two n x n matrices, TFLOP/s: the best of ``repeats``
    (a peak is what the hardware can do, so the fastest run, not the typical one)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    seconds = min(timed(lambda: torch.mm(a, b), device) for _ in range(repeats))
    return 2 * n ** 3 / seconds / 1e12


def hardware_peak(device: torch.device, compute: str) -> dict:
    """{"tflops", "source"}: the peak to compare achieved FLOP/s with, for ``compute`` in
    "fp32", "tf32", "bf16", "fp16"."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, peaks in GPU_PEAK_TFLOPS:
            if key in name and compute in peaks:
                return {"tflops": peaks[compute], "source": f"datasheet dense {compute} peak of the {key}"}
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(compute, torch.float32)
        return {"tflops": matmul_tflops(device, dtype, 4096),
                "source": f"measured: torch.mm 4096x4096 {compute}, best of 10 (GPU not in the table)"}
    return {"tflops": matmul_tflops(device, torch.float32),
            "source": f"measured: torch.mm 2048x2048 fp32 on {torch.get_num_threads()} thread(s), best of 10"}


def compute_kind(device: torch.device, amp: bool) -> str:
    """The arithmetic the convolutions run in: what the peak is read for."""
    if device.type != "cuda":
        return "fp32"
    if amp:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "tf32" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp32"


# ----------------------------------------------------------------------------------------------
# rows: one measurement of both sides


@dataclass
class Row:
    """One measured line of the table (and of the JSON's "jobs")."""

    job: str
    impl: str  # "inpaintlib", "diffusers", or a variant such as "inpaintlib+compile"
    kind: str  # "train" or "sample"
    model: str
    batch: int
    nfe_per_image: int | None  # sampling: network evaluations per image in one run
    steps_timed: int | None  # sampling: DDIM steps of the timed run (figures scaled to 50 steps)
    seconds: float  # median seconds per optimizer step (train) or per run at 50 steps (sample)
    seconds_all: list
    images_per_s: float
    steps_per_s: float | None  # optimizer steps per second (train)
    params: int
    flops_per_image: float  # per optimizer step per image (train) or per run at 50 steps per image
    achieved_tflops: float
    fraction_of_peak: float
    peak_mem_mb: float | None
    first_call_seconds: float | None = None  # the warm-up call (includes compilation for +compile rows)
    note: str = ""


class Bench:
    """Holds the run's settings and collects rows, speedups and tables. ``sizes``: ``speed.Sizes`` (this
    reads its ``repeats`` and ``train_steps_timed``)."""

    def __init__(self, device: torch.device, sizes, amp: bool, compile: bool):
        self.device, self.sizes, self.amp, self.compile = device, sizes, amp, compile
        self.peak = hardware_peak(device, compute_kind(device, amp))
        self.rows: list[Row] = []
        self.speedups: list[dict] = []

    def row(self, **kw) -> Row:
        flops_per_s = kw["flops_per_image"] * kw["images_per_s"]
        row = Row(**kw, achieved_tflops=flops_per_s / 1e12,
                  fraction_of_peak=flops_per_s / (self.peak["tflops"] * 1e12))
        self.rows.append(row)
        return row

    def speedup(self, job: str, ours: Row, theirs: Row, note: str = "") -> float:
        """Their time over ours, per NFE when the two runs' NFEs differ."""
        ratio = theirs.seconds / ours.seconds
        if ours.nfe_per_image and theirs.nfe_per_image and ours.nfe_per_image != theirs.nfe_per_image:
            ratio *= ours.nfe_per_image / theirs.nfe_per_image
            note = (note + "; " if note else "") + f"per NFE ({ours.nfe_per_image} vs {theirs.nfe_per_image})"
        self.speedups.append({"job": job, "speedup": ratio, "batch": ours.batch, "nfe_ours": ours.nfe_per_image,
                              "nfe_diffusers": theirs.nfe_per_image, "seconds_ours": ours.seconds,
                              "seconds_diffusers": theirs.seconds, "note": note})
        print(f"speedup vs diffusers ({job}): {ratio:.2f}" + (f"   [{note}]" if note else ""), flush=True)
        return ratio

    # -- training ---------------------------------------------------------------------------

    def train_job(self, job: str, model_name: str, steps: dict, batch: int, flops: dict, params: dict) -> dict:
        """Time optimizer steps: ``steps`` maps impl -> a step callable. Warm-up: 2 steps each
        (memory measured on the second); then ``repeats`` interleaved rounds of k steps."""
        k = self.sizes.train_steps_timed
        mem, first = {}, {}
        for impl, step in steps.items():
            first[impl] = timed(step, self.device)
            with PeakMemory(self.device) as pm:
                step()
            mem[impl] = pm.mb
        many = {impl: (lambda s=step: [s() for _ in range(k)]) for impl, step in steps.items()}
        times = interleaved_times(many, self.device, self.sizes.repeats)
        rows = {}
        for impl, ts in times.items():
            per_step = [s / k for s in ts]
            sec = statistics.median(per_step)
            rows[impl] = self.row(job=job, impl=impl, kind="train", model=model_name, batch=batch,
                                  nfe_per_image=None, steps_timed=None, seconds=sec, seconds_all=per_step,
                                  images_per_s=batch / sec, steps_per_s=1 / sec, params=params[impl],
                                  flops_per_image=flops[impl], peak_mem_mb=mem[impl], first_call_seconds=first[impl])
        return rows

    # -- sampling -----------------------------------------------------------------------------

    def sample_job(self, job: str, model_name: str, runs: dict, batch: int, steps: int, nfe: dict,
                   flops_per_nfe: dict, params: dict, note: str = "") -> dict:
        """Time sampling runs: ``runs`` maps impl -> fn(steps) running a whole inpainting of the
        batch, ``nfe`` impl -> fn(steps) giving its NFE per image. Warm-up: a 2-step run each
        (memory measured on it); then ``repeats`` interleaved runs of ``steps`` steps. Seconds,
        images/s and FLOPs are given for 50 steps (scaled by the NFE ratio when fewer were timed;
        noted)."""
        mem, first = {}, {}
        for impl, run in runs.items():
            with PeakMemory(self.device) as pm:
                first[impl] = timed(lambda: run(min(2, steps)), self.device)
            mem[impl] = pm.mb
        times = interleaved_times({impl: (lambda r=run: r(steps)) for impl, run in runs.items()}, self.device,
                                  self.sizes.repeats)
        if steps != SAMPLE_STEPS:
            note = (note + "; " if note else "") + f"timed at {steps} steps, scaled to {SAMPLE_STEPS}"
        rows = {}
        for impl, ts in times.items():
            nfe_50 = nfe[impl](SAMPLE_STEPS)
            per_run = [s * nfe_50 / nfe[impl](steps) for s in ts]
            sec = statistics.median(per_run)
            rows[impl] = self.row(job=job, impl=impl, kind="sample", model=model_name, batch=batch,
                                  nfe_per_image=nfe_50, steps_timed=steps, seconds=sec, seconds_all=per_run,
                                  images_per_s=batch / sec, steps_per_s=None, params=params[impl],
                                  flops_per_image=flops_per_nfe[impl] * nfe_50, peak_mem_mb=mem[impl],
                                  first_call_seconds=first[impl], note=note)
        return rows


# ----------------------------------------------------------------------------------------------
# output: console tables, and the machine


def fmt(value, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def print_table(headers: list, rows: list) -> None:
    """Columns aligned: text left, numbers right."""
    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) for i in range(len(headers))]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print(line(r))
    print(flush=True)


def device_label(device: torch.device) -> str:
    if device.type != "cuda":
        return device.type
    name = torch.cuda.get_device_name(device).lower()
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
