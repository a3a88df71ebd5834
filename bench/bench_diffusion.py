"""Reverse diffusion speed: our sampling loop against the bare U-Net and against diffusers.

Cases (16 digits, the shipped model, or its architecture with random weights when
the weights are absent):

- the bare U-Net call on a batch of 16 (and 32: both guidance branches), the same call
  batch-parallel (:mod:`models.parallel`, what ``sample()`` uses) and one step of our
  ``sample()`` loop (U-Net + scheduler + frame arrays): the loop's overhead;
- 16 digits by DDIM-50 and by DDPM-1000, unconditional and guided (goals on 2 cores:
  2 s and 40 s);
- our loop against diffusers' DDIMScheduler/DDPMScheduler stepping the same U-Net in
  the plain diffusers loop (skipped with a note when diffusers is not installed).

Prints the median wall time and the median process CPU time of each case (the CPU
time leaves out waiting for a core, so it stays meaningful on a busy machine; divided
by the thread count it estimates the wall time of an idle machine) and their ratios.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_diffusion.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.device import set_torch_threads  # noqa: E402
from models.parallel import batch_parallel  # noqa: E402
from models.diffusion import (  # noqa: E402
    DEFAULT_GUIDANCE,
    SHIPPED_RECIPE,
    DiffusionModel,
    load_ddpm,
    sample,
    shipped_path,
)

BATCH = 16
GOALS_S = {"ddim-50": 2.0, "ddpm-1000": 40.0}


def timed(function: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, float]:
    """Median wall and process-CPU seconds of ``function()``."""
    for _ in range(warmup):
        function()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return float(np.median(wall)), float(np.median(cpu))


def alternated(first: Callable[[], object], second: Callable[[], object],
               repeats: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """``timed`` for two functions run in turn, so a change in the machine's load hits both alike."""
    runs: tuple[list, list] = ([], [])
    first(), second()
    for _ in range(repeats):
        for function, times in zip((first, second), runs):
            times.append(timed(function, 1, warmup=0))
    return tuple((float(np.median([w for w, _ in t])), float(np.median([c for _, c in t]))) for t in runs)


def load_model() -> tuple[DiffusionModel, str]:
    if shipped_path().is_file():
        model, _ = load_ddpm("ddpm-digits")
        return model, "shipped ddpm-digits"
    torch.manual_seed(0)
    return DiffusionModel(SHIPPED_RECIPE.config).eval(), "random weights (no shipped ddpm-digits yet)"


def run_ours(model: DiffusionModel, sampler: str, steps: int, guided: bool) -> None:
    labels = list(range(10)) + list(range(6)) if guided else None
    for _ in sample(model, sampler, steps, BATCH, seed=0, class_labels=labels,
                    guidance=DEFAULT_GUIDANCE if guided else 1.0):
        pass


def run_diffusers(model: DiffusionModel, sampler: str, steps: int) -> None:
    """The plain diffusers loop, calling the U-Net as ``sample()`` does (batch-parallel)."""
    import diffusers

    scheduler = (diffusers.DDPMScheduler if sampler == "ddpm" else diffusers.DDIMScheduler)()
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(0)
    model.eval()
    with batch_parallel(model.unet) as unet, torch.inference_mode():
        x = torch.randn((BATCH, 1, 28, 28), generator=generator)
        for t in scheduler.timesteps:
            eps = unet(x, torch.full((BATCH,), int(t)), None, None)
            x = scheduler.step(eps, t, x, generator=generator).prev_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per short case (default 5)")
    parser.add_argument("--quick", action="store_true", help="DDPM-1000 once, and unguided only")
    args = parser.parse_args()
    threads = set_torch_threads()
    model, which = load_model()
    print(f"torch {torch.__version__}, {threads} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
          f"model: {which}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, batch {BATCH}")
    rows: list[tuple[str, float, float, str]] = []

    # Per step: the bare U-Net, the same call batch-parallel (what sample() uses), one step of our loop
    for guided in (False, True):
        n = 2 * BATCH if guided else BATCH
        cfg = model.config.unet
        x = torch.randn(n, cfg.in_channels, cfg.image_size, cfg.image_size)
        t = torch.full((n,), 500)
        tag = f"batch {n}" + (" (guided)" if guided else "")

        def bare() -> None:
            with torch.inference_mode():
                model(x, t)

        with batch_parallel(model.unet) as fast_unet:
            def parallel() -> None:
                with torch.inference_mode():
                    fast_unet(x, t, None, None)

            (bare_wall, bare_cpu), (par_wall, par_cpu) = alternated(bare, parallel, 5 * args.repeats)
        steps = 5 * args.repeats
        loop_wall, loop_cpu = timed(lambda: run_ours(model, "ddim", steps, guided), 1)
        loop_wall, loop_cpu = loop_wall / steps, loop_cpu / steps
        rows.append((f"bare U-Net call, {tag}", bare_wall, bare_cpu, ""))
        rows.append((f"batch-parallel U-Net call, {tag}", par_wall, par_cpu,
                     f"{bare_wall / par_wall:.2f}× faster than the bare call"))
        rows.append((f"one sample() step, {tag}", loop_wall, loop_cpu,
                     f"overhead {100 * (loop_wall / par_wall - 1):+.0f}% wall over the batch-parallel call "
                     f"(goal ≤ 10%)"))

    # Whole runs
    for sampler, steps in (("ddim", 50), ("ddpm", 1000)):
        name = f"{sampler}-{steps}"
        repeats = 1 if (sampler == "ddpm" and args.quick) else (args.repeats if sampler == "ddim" else 2)
        for guided in ((False,) if args.quick else (False, True)):
            wall, cpu = timed(lambda: run_ours(model, sampler, steps, guided), repeats, warmup=0)
            goal = GOALS_S[name]
            rows.append((f"16 digits {name.upper()}" + (" guided" if guided else ""), wall, cpu,
                         f"{wall / goal:.2f}× goal wall, {cpu / threads / goal:.2f}× goal CPU/threads "
                         f"(goal {goal:g} s)"))

    # Against diffusers' schedulers with the same U-Net
    try:
        import diffusers  # noqa: F401
    except ImportError:
        rows.append(("ours vs diffusers", float("nan"), float("nan"), "skipped: diffusers is not installed"))
    else:
        for sampler, steps in (("ddim", 50), ("ddpm", 200)):
            ours, theirs = alternated(lambda: run_ours(model, sampler, steps, False),
                                      lambda: run_diffusers(model, sampler, steps), args.repeats)
            rows.append((f"diffusers loop {sampler.upper()}-{steps}", *theirs, ""))
            rows.append((f"our sample() {sampler.upper()}-{steps}", *ours,
                         f"ours/diffusers {ours[0] / theirs[0]:.2f} wall, {ours[1] / theirs[1]:.2f} CPU"))

    print(f"{'case':<46} {'median wall':>12} {'median CPU':>11}  ratio")
    for name, wall, cpu, note in rows:
        unit = (lambda s: f"{s * 1000:9.1f} ms") if wall < 1 else (lambda s: f"{s:10.2f} s")
        print(f"{name:<46} {unit(wall):>12} {unit(cpu):>11}  {note}")


if __name__ == "__main__":
    main()
