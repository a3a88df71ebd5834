"""Text to image in miniature: Stable Diffusion's recipe on 32×32 shapes scenes.

    prompt ─► Tokenizer ─► ids ─► CLIP text encoder ─► tokens (N, 16, 64) ───────────┐ cross-attention
    seed ─► noise z_T (N, 4, 8, 8) ─► U-Net loop in latent space, T … 0 ◄─────────────┘
                                        ε̂ = ε̂(∅ or negative) + g·(ε̂(prompt) − ε̂(∅ or negative))
                                      ─► z_0 ─► VAE decoder ─► image (N, 32, 32, 3)

Three models, each trained by this project: the CLIP of :mod:`models.clip` (its
text encoder is frozen here), the VAE of :mod:`models.image_vae` (frozen; the
U-Net learns in its latent space) and a U-Net with cross-attention (trained here,
the prompt dropped one time in ten so that classifier-free guidance works).

Sampling is a generator of :class:`TextFrame` (one per step), as for the digits::

    pipe = load_pipeline()
    for frame in generate_frames(pipe, "a red circle on a blue background", seed=0):
        show(frame.latents, frame.image, frame.eps_text, frame.attention)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.assets import asset_path
from models.clip import (
    HELD_OUT, SHIPPED_NAME as CLIP_NAME, Clip, Tokens, caption_table, describe, load_clip, named_attributes,
    seen_combinations, zero_shot_accuracy,
)
from models.data import COLOR_NAMES, SHAPES, make_shapes, to_tensor
from models.diffusion import EMA, DiffusionConfig, DiffusionModel, learning_rate, noise_loss, noised
from models.image_vae import SHIPPED_NAME as VAE_NAME, ImageVAE, load_image_vae, rgb_uint8
from models.parallel import batch_parallel
from models.schedulers import DDPMScheduler
from models.training import Trainer, TrainingResult, endless_batches, train_steps
from models.unet import UNetConfig
from models.weights import load_model, save_model

KIND = "ldm"
SHIPPED_NAME = "ldm-shapes"
DEFAULT_GUIDANCE = 5.0
DEFAULT_STEPS = 30
MAX_GUIDANCE = 15.0
EVAL_SEED = 9000
FIDELITY_GOAL = 0.90

LDM_CONFIG = DiffusionConfig(
    unet=UNetConfig(in_channels=4, image_size=8, channels=(64, 128), emb_dim=128, groups=8,
                    attention_heads=4, num_classes=None, context_dim=64),
    beta_schedule="scaled-linear", beta_start=0.00085, beta_end=0.012,  # Stable Diffusion's schedule
)


# =========================================================================== the pipeline


@dataclass
class TextToImage:
    """The three models of the pipeline, on one device."""

    clip: Clip
    vae: ImageVAE
    unet: DiffusionModel
    names: dict[str, str] = field(default_factory=dict)  # which weights each part came from

    @property
    def device(self) -> torch.device:
        return self.unet.device

    def tokens(self, prompt: str) -> Tokens:
        return self.clip.tokenizer(prompt)

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """Per-token text outputs (N, MAX_TOKENS, width): what the U-Net attends to."""
        return self.clip.encode_prompts(list(prompts))[0]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Scaled latents (N, 4, 8, 8) -> uint8 images (N, 32, 32, 3)."""
        return rgb_uint8(self.vae.from_latent(latents.to(self.device)))

    @torch.no_grad()
    def encode_images(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (N, 32, 32, 3) -> scaled latents (N, 4, 8, 8)."""
        return self.vae.to_latent(to_tensor(_rgb_batch(images)).to(self.device))


def load_pipeline(unet: str | os.PathLike = SHIPPED_NAME, clip: str | os.PathLike = CLIP_NAME,
                  vae: str | os.PathLike = VAE_NAME, device: str | torch.device = "cpu") -> TextToImage:
    """The shipped pipeline, or any part replaced by a saved file; raises ``WeightsError``."""
    clip_model, _ = load_clip(clip, device)
    vae_model, _ = load_image_vae(vae, device)
    unet_model, _ = load_ldm(unet, device)
    names = {"unet": Path(unet).stem, "clip": Path(clip).stem, "vae": Path(vae).stem}
    return TextToImage(clip_model, vae_model, unet_model, names)


def _rgb_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3) or images.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB images (N, 32, 32, 3), got {images.dtype} {images.shape}")
    return images


# =========================================================================== sampling


@dataclass
class TextFrame:
    """One step of text-to-image sampling (numpy, safe to pass between threads)."""

    index: int  # 0 … total − 1
    total: int
    t: int  # the timestep the U-Net saw
    prev_t: int  # the timestep of ``prev_latents`` (−1: the end)
    latents: np.ndarray  # float32 (N, 4, 8, 8): z_t
    eps_uncond: np.ndarray  # float32 (N, 4, 8, 8): ε̂ without the prompt (or with the negative prompt)
    eps_text: np.ndarray  # float32 (N, 4, 8, 8): ε̂ with the prompt
    eps_guided: np.ndarray  # float32 (N, 4, 8, 8): ε̂_uncond + g·(ε̂_text − ε̂_uncond), what the step used
    x0_latents: np.ndarray  # float32 (N, 4, 8, 8): ẑ₀ predicted at this step
    prev_latents: np.ndarray  # float32 (N, 4, 8, 8): z_{t−1}, after the step
    image: np.ndarray | None = None  # uint8 (N, 32, 32, 3): z_t decoded (when asked)
    x0_image: np.ndarray | None = None  # uint8 (N, 32, 32, 3): ẑ₀ decoded: what the image is becoming
    final_image: np.ndarray | None = None  # uint8 (N, 32, 32, 3): z_{t−1} decoded, on the last frame only
    attention: np.ndarray | None = None  # float32 (N, words, 8, 8): each prompt word's cross-attention map

    @property
    def last(self) -> bool:
        return self.index == self.total - 1


@dataclass(frozen=True)
class Prompt:
    """What a prompt turned into: its tokens, and a message about any words left out."""

    text: str
    tokens: Tokens

    @property
    def words(self) -> list[str]:
        return self.tokens.words

    @property
    def message(self) -> str:
        return self.tokens.message()


def read_prompts(pipe: TextToImage, prompt: str | Sequence[str], batch: int) -> list[Prompt]:
    """One :class:`Prompt` per image: a single prompt repeats over the batch."""
    texts = [prompt] * batch if isinstance(prompt, str) else list(prompt)
    if len(texts) != batch:
        raise ValueError(f"got {len(texts)} prompts for a batch of {batch}")
    return [Prompt(text, pipe.tokens(text)) for text in texts]


def generate_frames(
    pipe: TextToImage,
    prompt: str | Sequence[str] = "",
    *,
    negative: str = "",
    guidance: float = DEFAULT_GUIDANCE,
    num_steps: int = DEFAULT_STEPS,
    sampler: str = "ddim",
    eta: float = 0.0,
    seed: int = 0,
    batch: int = 1,
    init_image: np.ndarray | None = None,
    strength: float = 0.75,
    decode: bool = True,
    attention: bool = True,
    parallel: bool = True,
) -> Iterator[TextFrame]:
    """Text-to-image (or image-to-image) sampling, one :class:`TextFrame` per step.

    Parameters
    ----------
    prompt
        One prompt for every image, or one per image. Unknown words are left out
        (:func:`read_prompts` says which); "" is the unconditional model.
    negative
        What the unconditional branch is given instead of "": guidance then pushes
        away from it.
    guidance
        Classifier-free guidance scale g (0 … 15): 0 ignores the prompt, 1 is plain
        conditional sampling, larger follows the prompt more strictly.
    init_image
        uint8 (32, 32, 3) or (N, 32, 32, 3): image-to-image. The image is encoded,
        noised to ``strength`` of the schedule (0: unchanged, 1: pure noise) and
        denoised from there, so only the last ``strength`` of the steps run.
    decode
        Decode z_t and ẑ₀ to images on every frame (the final image is always decoded).
    attention
        Record each prompt word's cross-attention map, averaged over heads and blocks.
    parallel
        Without ``attention``, call the U-Net as a frozen graph on slices of the batch
        in parallel threads (:mod:`models.parallel`, the same ε̂); False for a model
        whose weights change between calls (training previews).
    """
    if not 0.0 <= guidance <= MAX_GUIDANCE:
        raise ValueError(f"guidance must be between 0 and {MAX_GUIDANCE:g}, got {guidance:g}")
    prompts = read_prompts(pipe, prompt, batch)
    unet, device = pipe.unet, pipe.device
    scheduler = unet.scheduler(sampler, eta=eta, clip_sample=False)  # latents are not confined to [−1, 1]
    scheduler.set_timesteps(num_steps)
    timesteps = [int(t) for t in scheduler.timesteps]
    generator = torch.Generator().manual_seed(int(seed))
    shape = (batch, unet.config.unet.in_channels, unet.config.unet.image_size, unet.config.unet.image_size)
    with torch.inference_mode():
        text = pipe.encode([p.text for p in prompts])  # (N, L, D)
        uncond = pipe.encode([negative] * batch)  # (N, L, D)
        noise = torch.randn(shape, generator=generator).to(device)  # z_T ~ N(0, I)
        if init_image is None:
            z = noise * scheduler.init_noise_sigma
        else:
            if not 0.0 < strength <= 1.0:
                raise ValueError(f"strength must be in (0, 1], got {strength:g}")
            start = num_steps - max(1, round(num_steps * strength))
            timesteps = timesteps[start:]
            z0 = pipe.encode_images(np.broadcast_to(_rgb_batch(init_image), (batch, 32, 32, 3)).copy())
            z = scheduler.add_noise(z0, noise, torch.full((batch,), timesteps[0], dtype=torch.long))
    blocks = unet.unet.cross_attentions()
    for block in blocks.values():
        block.keep_weights = attention
    unet.eval()
    fast = parallel and not attention  # the maps are recorded by the module's own call
    with batch_parallel(unet.unet, threads=None if fast else 1) as fast_unet:
        predict = fast_unet if fast else unet
        try:
            for index, t in enumerate(timesteps):
                with torch.inference_mode():
                    tt = torch.full((2 * batch,), t, dtype=torch.long, device=device)
                    eps_text, eps_uncond = predict(torch.cat([z, z]), tt, None, torch.cat([text, uncond])).chunk(2)
                    eps = eps_uncond + guidance * (eps_text - eps_uncond)  # classifier-free guidance
                    maps = _word_maps(blocks, prompts, batch, shape[-1]) if attention else None
                    step = scheduler.step(eps, t, z, generator=generator)
                    last = index == len(timesteps) - 1
                    frame = TextFrame(
                        index=index, total=len(timesteps), t=t, prev_t=scheduler.previous_timestep(t),
                        latents=_numpy(z), eps_uncond=_numpy(eps_uncond), eps_text=_numpy(eps_text),
                        eps_guided=_numpy(eps), x0_latents=_numpy(step.pred_original_sample),
                        prev_latents=_numpy(step.prev_sample),
                        image=pipe.decode(z) if decode else None,
                        x0_image=pipe.decode(step.pred_original_sample) if decode else None,
                        final_image=pipe.decode(step.prev_sample) if last else None,
                        attention=maps,
                    )
                    z = step.prev_sample
                yield frame
        finally:
            for block in blocks.values():
                block.keep_weights = False
                block.last_weights = None


def _numpy(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.float().cpu().numpy())


def _word_maps(blocks: dict[str, nn.Module], prompts: list[Prompt], batch: int, side: int) -> np.ndarray:
    """Each prompt word's attention over the latent's positions, (N, words, side, side), each summing to 1.

    The maps of every cross-attention block (prompt branch only), averaged over heads,
    resized to the latent's side and averaged over blocks; then, for each word, divided
    by its total so it shows *where* the word looks, whatever its share of attention.
    """
    words = max(len(p.words) for p in prompts)
    if words == 0:  # empty prompts: no word looks anywhere
        return np.zeros((batch, 0, side, side), np.float32)
    total = torch.zeros(batch, words, side, side)
    for block in blocks.values():
        weights = block.last_weights[:batch].mean(dim=1)  # (N, H·W, L) over heads, prompt branch
        s = int(round(weights.shape[1] ** 0.5))
        per_word = weights[:, :, 1 : 1 + words].transpose(1, 2).reshape(batch, words, s, s)  # skip <bos>
        total += F.interpolate(per_word.float().cpu(), size=(side, side), mode="nearest")
    for i, p in enumerate(prompts):
        total[i, len(p.words):] = 0.0  # positions beyond this prompt's words are not words
    sums = total.sum(dim=(2, 3), keepdim=True)
    maps = torch.where(sums > 0, total / sums.clamp(min=1e-12), total)
    return np.ascontiguousarray(maps.numpy(), dtype=np.float32)


def generate(pipe: TextToImage, prompts: Sequence[str], *, guidance: float = DEFAULT_GUIDANCE,
             num_steps: int = DEFAULT_STEPS, sampler: str = "ddim", seed: int = 0, negative: str = "",
             batch_size: int = 64) -> np.ndarray:
    """Final images only, uint8 (len(prompts), 32, 32, 3), in batches (batch b uses seed + b)."""
    out = []
    for b, begin in enumerate(range(0, len(prompts), batch_size)):
        chunk = list(prompts[begin : begin + batch_size])
        for frame in generate_frames(pipe, chunk, negative=negative, guidance=guidance, num_steps=num_steps,
                                     sampler=sampler, seed=seed + b, batch=len(chunk), decode=False,
                                     attention=False):
            pass
        out.append(frame.final_image)
    return np.concatenate(out) if out else np.zeros((0, 32, 32, 3), np.uint8)


# =========================================================================== training


@dataclass(frozen=True)
class LDMRecipe:
    """How the shipped latent U-Net is trained (the CLIP and the VAE are trained first, and frozen)."""

    config: DiffusionConfig = LDM_CONFIG
    steps: int = 6000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 200
    final_lr_fraction: float = 0.05
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    min_snr_gamma: float | None = 5.0
    ema_decay: float = 0.999
    prompt_dropout: float = 0.1  # share of empty prompts (the unconditional model, for guidance)
    partial_fraction: float = 0.15  # prompts that name only part of the scene ("a red shape")
    data_count: int = 40_000
    seed: int = 0


def text_table(clip: Clip) -> torch.Tensor:
    """The text encoder's outputs for every partial caption (see :func:`models.clip.caption_table`).

    (len(SHAPES) + 1, len(COLOR_NAMES) + 1, len(COLOR_NAMES) + 1, MAX_TOKENS, width): the
    text encoder is frozen, so a training batch only looks its prompts up.
    """
    ids = caption_table(clip.tokenizer)
    with torch.no_grad():
        tokens, _ = clip.text(ids.reshape(-1, ids.shape[-1]).to(clip.device))
    return tokens.reshape(*ids.shape, -1).cpu()


def make_trainer(recipe: LDMRecipe = LDMRecipe(), *, clip: Clip, vae: ImageVAE,
                 device: str | torch.device = "cpu", model: DiffusionModel | None = None,
                 ema: EMA | None = None) -> Trainer:
    """A Trainer for the latent U-Net on the seen combinations (AdamW, warm-up + cosine, EMA)."""
    device = torch.device(device)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            model = DiffusionModel(recipe.config)
    model.to(device)
    data = make_shapes(recipe.data_count, seed=recipe.seed, combinations=seen_combinations())
    vae = vae.to(device).eval()
    with torch.no_grad():
        latents = torch.cat([vae.to_latent(to_tensor(data.images[i : i + 1000]).to(device)).cpu()
                             for i in range(0, len(data), 1000)])  # (N, 4, 8, 8)
    attributes = torch.from_numpy(np.stack([data.shape, data.color, data.background], axis=1))
    table = text_table(clip.to(device).eval()).to(device)
    alphas_cumprod = DDPMScheduler(recipe.config.num_train_timesteps, recipe.config.beta_start,
                                   recipe.config.beta_end, recipe.config.beta_schedule).alphas_cumprod

    def compute_loss(unet: DiffusionModel, batch) -> dict[str, torch.Tensor]:
        z0, attrs = batch  # (B, 4, 8, 8), (B, 3)
        t, noise, abar, z_t = noised(z0, alphas_cumprod)
        named = named_attributes(attrs.cpu(), recipe.partial_fraction, recipe.prompt_dropout).to(z0.device)
        context = table[named[:, 0] + 1, named[:, 1] + 1, named[:, 2] + 1]  # (B, L, D): the prompts' tokens
        return noise_loss(unet(z_t, t, None, context), noise, abar, recipe.min_snr_gamma)

    batches = endless_batches(latents, attributes, batch_size=recipe.batch_size, seed=recipe.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    ema = ema or EMA(model, recipe.ema_decay)
    trainer = Trainer(model, optimizer, compute_loss, batches, device=device)

    def before_step(opt, args, kwargs) -> None:
        if recipe.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        for group in opt.param_groups:
            group["lr"] = learning_rate(recipe, trainer.step)  # type: ignore[arg-type]

    optimizer.register_step_pre_hook(before_step)
    optimizer.register_step_post_hook(lambda opt, args, kwargs: ema.update(model))
    trainer.ema = ema  # type: ignore[attr-defined]
    return trainer


# =========================================================================== quality


def fidelity_prompts(count: int = 256, seed: int = EVAL_SEED) -> dict[str, list[tuple[str, str, str]]]:
    """Half the combinations drawn from the seen ones, half cycling through the held-out ones."""
    rng = np.random.default_rng(seed)
    seen = seen_combinations()
    return {
        "seen": [seen[i] for i in rng.integers(0, len(seen), count // 2)],
        "held_out": [HELD_OUT[i % len(HELD_OUT)] for i in range(count - count // 2)],
    }


def prompt_matches(evaluator, images: np.ndarray, combos: Sequence[tuple[str, str, str]]) -> np.ndarray:
    """Per image (bool): the evaluator finds the shape, colour and background ``combos`` ask for."""
    predicted = evaluator.shape_predictions(images)
    want = np.array([(SHAPES.index(s), COLOR_NAMES.index(c), COLOR_NAMES.index(b)) for s, c, b in combos])
    return ((predicted["shape"].argmax(1) == want[:, 0]) & (predicted["color"].argmax(1) == want[:, 1])
            & (predicted["background"].argmax(1) == want[:, 2]))


def fidelity(evaluator, images: np.ndarray, combos: Sequence[tuple[str, str, str]]) -> float:
    """Share of images whose shape, colour and background the evaluator finds as ``combos`` ask."""
    return float(prompt_matches(evaluator, images, combos).mean())


def fidelity_by_shape(matches: np.ndarray, combos: Sequence[tuple[str, str, str]]) -> dict[str, float]:
    """Prompt fidelity of the images asked for each shape (from :func:`prompt_matches`): which shapes fail."""
    asked = np.array([shape for shape, _, _ in combos])
    return {shape: round(float(matches[asked == shape].mean()), 4) for shape in SHAPES if (asked == shape).any()}


def quality_metrics(pipe: TextToImage, count: int = 256, *, guidance: float = DEFAULT_GUIDANCE,
                    num_steps: int = DEFAULT_STEPS, sampler: str = "ddim", seed: int = EVAL_SEED,
                    evaluator=None, zero_shot_images: int = 2000) -> dict[str, Any]:
    """``prompt_fidelity`` (seen, held out), ``real_fidelity`` and ``clip_zero_shot_accuracy`` as JSON-able numbers."""
    from models.evaluator import Evaluator

    evaluator = evaluator or Evaluator.load()
    start = time.perf_counter()
    report: dict[str, Any] = {"samples": count, "guidance": guidance, "sampler": sampler, "steps": num_steps}
    split = fidelity_prompts(count, seed)
    matches = {}
    for name, combos in split.items():
        images = generate(pipe, [describe(*c) for c in combos], guidance=guidance, num_steps=num_steps,
                          sampler=sampler, seed=seed + (0 if name == "seen" else 50_000))
        matches[name] = prompt_matches(evaluator, images, combos)
        report[f"prompt_fidelity_{name}"] = float(matches[name].mean())
        real = make_shapes(len(combos), seed=seed, combinations=combos)
        wanted = list(zip((SHAPES[s] for s in real.shape), (COLOR_NAMES[c] for c in real.color),
                          (COLOR_NAMES[b] for b in real.background)))
        report[f"real_fidelity_{name}"] = fidelity(evaluator, real.images, wanted)
    for key in ("prompt_fidelity", "real_fidelity"):
        report[key] = (report[f"{key}_seen"] * len(split["seen"])
                       + report[f"{key}_held_out"] * len(split["held_out"])) / count
    report["prompt_fidelity_by_shape"] = fidelity_by_shape(np.concatenate([matches[n] for n in split]),
                                                           [c for n in split for c in split[n]])
    zero_shot = zero_shot_accuracy(pipe.clip, count=zero_shot_images)
    report["clip_zero_shot_accuracy"] = zero_shot["accuracy"]
    report["clip_zero_shot_accuracy_seen"] = zero_shot["seen"]
    report["clip_zero_shot_accuracy_held_out"] = zero_shot["held_out"]
    report["goals"] = {"prompt_fidelity": FIDELITY_GOAL, "clip_zero_shot_accuracy": 0.95}
    report["meets_goals"] = {"prompt_fidelity": report["prompt_fidelity"] >= FIDELITY_GOAL,
                             "clip_zero_shot_accuracy": report["clip_zero_shot_accuracy"] >= 0.95}
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def fidelity_by_guidance(pipe: TextToImage, scales: Sequence[float] = (0.0, 1.0, 3.0, 5.0, 7.5, 10.0),
                         count: int = 128, evaluator=None) -> dict[str, float]:
    """Prompt fidelity (seen and held out together) at each guidance scale, for the card."""
    from models.evaluator import Evaluator

    evaluator = evaluator or Evaluator.load()
    split = fidelity_prompts(count)
    combos = split["seen"] + split["held_out"]
    prompts = [describe(*c) for c in combos]
    return {f"{g:g}": fidelity(evaluator, generate(pipe, prompts, guidance=g, seed=EVAL_SEED), combos)
            for g in scales}


# =========================================================================== weights


def save_ldm(model: DiffusionModel, path: str | os.PathLike, card: dict[str, Any] | None = None) -> Path:
    copy = DiffusionModel(model.config)
    copy.load_state_dict(model.state_dict())
    return save_model(copy, copy.config, path, KIND, card)


def load_ldm(path_or_name: str | os.PathLike = SHIPPED_NAME,
             device: str | torch.device = "cpu") -> tuple[DiffusionModel, dict[str, Any]]:
    """The shipped latent U-Net by name, or one saved by :func:`save_ldm`; raises ``WeightsError``."""
    path = asset_path("weights", f"{SHIPPED_NAME}.safetensors") if str(path_or_name) == SHIPPED_NAME \
        else Path(path_or_name)
    return load_model(path, DiffusionModel, DiffusionConfig, KIND, device)


def train_ldm(recipe: LDMRecipe = LDMRecipe(), out: str | os.PathLike = "runs/ldm", *,
              clip: str | os.PathLike = CLIP_NAME, vae: str | os.PathLike = VAE_NAME, name: str = SHIPPED_NAME,
              device: str | torch.device = "cpu", evaluate: bool = True, command: str = "",
              init: str | os.PathLike | None = None, on_snapshot=None) -> TrainingResult:
    """Train the latent U-Net on a frozen CLIP and VAE; save its EMA weights as ``out/NAME.*``.

    ``init``: start from these U-Net weights (a run that goes on from an earlier one);
    its card's steps and CPU time are added to this run's in the new card.
    """
    from models.weights import weights_files

    torch.manual_seed(recipe.seed)
    clip_model, _ = load_clip(clip, device)
    vae_model, _ = load_image_vae(vae, device)
    start_model, start_meta = load_ldm(init, device) if init is not None else (None, {})
    trainer = make_trainer(recipe, clip=clip_model, vae=vae_model, device=device, model=start_model)
    losses, wall, interrupted = train_steps(trainer, recipe.steps, on_snapshot)
    model: DiffusionModel = trainer.ema.model  # type: ignore[attr-defined]
    card = {
        "description": "A latent diffusion U-Net (ε-prediction) with cross-attention on the CLIP text "
        "encoder's tokens, in the 8×8×4 latent space of the shapes VAE.",
        "recipe": command or f"diffusion-explorer train ldm --out {out}",
        "clip": Path(weights_files(clip)[0]).stem if str(clip) != CLIP_NAME else CLIP_NAME,
        "vae": Path(weights_files(vae)[0]).stem if str(vae) != VAE_NAME else VAE_NAME,
        "data": f"make_shapes({recipe.data_count}, seed={recipe.seed}) over the seen combinations "
        f"({len(seen_combinations())}; {len(HELD_OUT)} held out), encoded once by the VAE",
        "objective": f"ε-prediction, min-SNR weight γ = {recipe.min_snr_gamma}; prompts empty with p = "
        f"{recipe.prompt_dropout}, partial with p = {recipe.partial_fraction}",
        "optimizer": f"AdamW lr {recipe.lr} (warm-up {recipe.warmup_steps}, cosine to {recipe.final_lr_fraction:g}×), "
        f"grad clip {recipe.grad_clip}, batch {recipe.batch_size}; EMA {recipe.ema_decay} (the saved weights)",
        "steps": trainer.step,
        "cpu_seconds": round(trainer.cpu_seconds, 1),
        "wall_seconds": round(wall, 1),
        "hardware": f"{torch.get_num_threads()} torch threads on {torch.device(device)}",
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_losses": {k: round(v, 4) for k, v in losses.items()},
    }
    if init is not None:
        earlier = start_meta.get("card", {})
        card["init"] = (f"went on from {Path(init).name}: {earlier.get('steps', '?')} steps, "
                        f"{earlier.get('cpu_seconds', '?')} CPU-s, recipe: {earlier.get('recipe', '?')}")
        # An earlier run that itself went on from another has the totals of the whole chain.
        card["total_steps"] = trainer.step + int(earlier.get("total_steps", earlier.get("steps", 0)))
        card["total_cpu_seconds"] = round(trainer.cpu_seconds + float(
            earlier.get("total_cpu_seconds", earlier.get("cpu_seconds", 0.0))), 1)
    if interrupted:
        card["interrupted"] = f"stopped by the user at step {trainer.step} of {recipe.steps}"
    elif evaluate:
        pipe = TextToImage(clip_model, vae_model, model)
        card["metrics"] = quality_metrics(pipe)
        card["fidelity_by_guidance"] = fidelity_by_guidance(pipe)
    path = save_ldm(model, Path(out) / name, card)
    return TrainingResult(path, model, trainer.step, losses, wall, trainer.cpu_seconds, interrupted, card)
