"""Text-to-image speed: the latent diffusion loop against its goal, the frame budget and the bare U-Net.

Cases (the shipped pipeline, or its architecture with random weights when the weights
are absent: the time is the same):

- 4 images, DDIM-30 with classifier-free guidance, ``decode=False, attention=False``
  (the final image decoded only) against the goal of 1.5 s on 2 cores;
- the same with ``decode=True, attention=True``: what the Pipeline tab asks for
  (z_t and ẑ₀ decoded and every word's attention map at every step);
- the VAE decoding one preview frame (batch 1 and batch 4) against the 16 ms frame budget;
- the bare U-Net call on the guided batch (4 images × 2 branches), the same call
  batch-parallel (:mod:`models.parallel`, what ``generate_frames`` uses without attention
  maps) and one step of ``generate_frames``: the loop's overhead (scheduler, numpy copies).

Prints the median wall time and the median process CPU time of each case (the CPU time
leaves out waiting for a core, so it stays meaningful on a busy machine; divided by the
thread count it estimates the wall time of an idle machine) and their ratios.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_text2img.py [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench_diffusion import alternated, timed  # noqa: E402  (this folder is on sys.path)
from models.device import set_torch_threads  # noqa: E402
from models.parallel import batch_parallel  # noqa: E402
from models.ldm import DEFAULT_GUIDANCE, LDM_CONFIG, TextToImage, generate_frames, load_pipeline  # noqa: E402
from models.weights import WeightsError  # noqa: E402

IMAGES = 4
STEPS = 30
GOAL_S = 1.5  # 4 images, 30 steps with guidance, on 2 cores
FRAME_BUDGET_S = 0.016
PROMPTS = ["a red circle on a blue background", "a green star on a white background",
           "a yellow triangle on a purple background", "a black heart on an orange background"]


def load() -> tuple[TextToImage, str]:
    try:
        return load_pipeline(), "the shipped pipeline (clip-shapes, vae-shapes, ldm-shapes)"
    except (WeightsError, OSError):
        from models.clip import Clip
        from models.diffusion import DiffusionModel
        from models.image_vae import ImageVAE

        torch.manual_seed(0)
        pipe = TextToImage(Clip().eval(), ImageVAE().eval(), DiffusionModel(LDM_CONFIG).eval())
        return pipe, "an untrained pipeline of the shipped architecture (no shipped weights yet; the time is the same)"


def run(pipe: TextToImage, decode: bool, attention: bool, steps: int = STEPS) -> None:
    for _ in generate_frames(pipe, PROMPTS, guidance=DEFAULT_GUIDANCE, num_steps=steps, batch=IMAGES, seed=0,
                             decode=decode, attention=attention):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (default 5)")
    parser.add_argument("--threads", type=int, help="torch threads (default: every core)")
    args = parser.parse_args()
    threads = set_torch_threads()
    if args.threads:
        torch.set_num_threads(threads := args.threads)
    pipe, which = load()
    parameters = {name: sum(p.numel() for p in part.parameters()) / 1e6
                  for name, part in (("CLIP", pipe.clip), ("VAE", pipe.vae), ("U-Net", pipe.unet))}
    print(f"torch {torch.__version__}, {threads} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    print(f"model: {which}; " + ", ".join(f"{k} {v:.2f} M" for k, v in parameters.items()) + " parameters")
    rows: list[tuple[str, float, float, str]] = []

    # Whole runs against the goal
    for decode, attention, label in ((False, False, "final image only"),
                                     (True, False, "decode z_t and ẑ₀ every step"),
                                     (False, True, "attention maps every step"),
                                     (True, True, "decode + attention (the GUI's)")):
        wall, cpu = timed(lambda: run(pipe, decode, attention), args.repeats)
        rows.append((f"4 images DDIM-30 guided, {label}", wall, cpu,
                     f"{wall / GOAL_S:.2f}× goal wall, {cpu / threads / GOAL_S:.2f}× goal CPU/threads "
                     f"(goal {GOAL_S:g} s)"))

    # A preview frame's decode against the frame budget
    for batch in (1, 4):
        latents = torch.randn(batch, 4, 8, 8)
        wall, cpu = timed(lambda: pipe.decode(latents), 10 * args.repeats, warmup=3)
        rows.append((f"VAE decode, batch {batch}", wall, cpu,
                     f"{wall / FRAME_BUDGET_S:.2f}× the 16 ms frame budget"))

    # The bare U-Net call against one step of the loop
    z = torch.randn(2 * IMAGES, 4, 8, 8)
    t = torch.full((2 * IMAGES,), 500)
    with torch.inference_mode():
        context = pipe.encode(PROMPTS + [""] * IMAGES)

    def bare() -> None:
        with torch.inference_mode():
            pipe.unet(z, t, None, context)

    with batch_parallel(pipe.unet.unet) as fast_unet:
        def parallel() -> None:
            with torch.inference_mode():
                fast_unet(z, t, None, context)

        (bare_wall, bare_cpu), (par_wall, par_cpu) = alternated(bare, parallel, 10 * args.repeats)
    rows.append((f"bare U-Net call, batch {2 * IMAGES} (guided)", bare_wall, bare_cpu, ""))
    rows.append((f"batch-parallel U-Net call, batch {2 * IMAGES}", par_wall, par_cpu,
                 f"{bare_wall / par_wall:.2f}× faster than the bare call"))
    steps = 5 * args.repeats
    loop_wall, loop_cpu = timed(lambda: run(pipe, False, False, steps), 1)
    loop_wall, loop_cpu = loop_wall / steps, loop_cpu / steps
    rows.append(("one generate_frames step (no decode, no maps)", loop_wall, loop_cpu,
                 f"overhead {100 * (loop_wall / par_wall - 1):+.0f}% wall over the batch-parallel call"))

    print(f"{'case':<56} {'median wall':>12} {'median CPU':>11}  ratio")
    for name, wall, cpu, note in rows:
        unit = (lambda s: f"{s * 1000:9.1f} ms") if wall < 1 else (lambda s: f"{s:10.2f} s")
        print(f"{name:<56} {unit(wall):>12} {unit(cpu):>11}  {note}")


if __name__ == "__main__":
    main()
