"""A CLIP in miniature: a text encoder and an image encoder that meet in one embedding space.

    prompt ─► Tokenizer ─► ids (N, L) ─► TextEncoder ─► tokens (N, L, D) ──► cross-attention (latent U-Net)
                                                   └─► text embedding (N, E), unit length ─┐
    image (N, 3, 32, 32) ─► ImageEncoder ─────────────► image embedding (N, E), unit length ─┴► cosine similarity

Trained contrastively (Radford et al. 2021) on generated shapes and their
captions: in a batch, each image should be most similar to its own caption and
each caption to its own images. Our captions repeat (there are only 336 full
ones) and some name only part of a scene ("a red shape"), so the targets are
"every caption this image satisfies", not just the diagonal.

The text encoder's per-token outputs are what the latent diffusion U-Net attends
to, as Stable Diffusion attends to CLIP's.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.assets import asset_path
from models.data import COLOR_NAMES, SHAPES, all_combinations, article, make_shapes, to_tensor
from models.training import Trainer, TrainingResult, endless_batches, train_steps
from models.weights import load_model, save_model

KIND = "clip"
SHIPPED_NAME = "clip-shapes"
PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
VOCABULARY: tuple[str, ...] = (PAD, BOS, EOS, "a", "an", "on", "background", "shape", *COLOR_NAMES, *SHAPES)
MAX_TOKENS = 16  # <bos>, at most 14 words, <eos>
EVAL_SEED = 7000  # fresh images for zero-shot accuracy (no training uses these seeds)

# Combinations no model of this chapter trains on: measured apart as "held out".
# Every shape, colour and background still appears in training in other combinations.
HELD_OUT: tuple[tuple[str, str, str], ...] = (
    ("circle", "red", "blue"), ("circle", "white", "purple"), ("circle", "orange", "green"),
    ("square", "green", "yellow"), ("square", "black", "orange"), ("square", "purple", "white"),
    ("triangle", "blue", "red"), ("triangle", "yellow", "black"), ("triangle", "orange", "purple"),
    ("star", "purple", "green"), ("star", "white", "blue"), ("star", "red", "yellow"),
    ("cross", "yellow", "blue"), ("cross", "green", "black"),
    ("heart", "blue", "orange"), ("heart", "black", "white"),
)


def seen_combinations() -> list[tuple[str, str, str]]:
    """Every (shape, colour, background) except ``HELD_OUT``: what training draws from."""
    held = set(HELD_OUT)
    return [c for c in all_combinations() if c not in held]


# =========================================================================== words


def describe(shape: str | None, color: str | None, background: str | None) -> str:
    """A caption naming any part of a scene: "a red circle on a blue background", "a red shape", ""."""
    if shape is None and color is None and background is None:
        return ""
    words = [w for w in (color, shape or "shape") if w]
    text = f"{article(words[0])} {' '.join(words)}"
    if background:
        text += f" on {article(background)} {background} background"
    return text


@dataclass(frozen=True)
class Tokens:
    """A prompt as the text encoder reads it."""

    ids: list[int]  # <bos>, the known words, <eos>, padding: MAX_TOKENS ids
    words: list[str]  # the known words, in order (position i + 1 in ``ids``)
    unknown: list[str]  # words not in the vocabulary (left out)
    dropped: list[str]  # known words beyond MAX_TOKENS − 2 (left out)

    @property
    def length(self) -> int:
        """Positions used: <bos>, the words and <eos>."""
        return len(self.words) + 2

    def message(self) -> str:
        """One sentence about what was left out, or "" when nothing was."""
        parts = []
        if self.unknown:
            quoted = ", ".join(f"“{w}”" for w in dict.fromkeys(self.unknown))
            parts.append(f"Unknown word{'s' if len(set(self.unknown)) > 1 else ''} ignored: {quoted}.")
        if self.dropped:
            parts.append(f"The prompt is too long: only the first {MAX_TOKENS - 2} words are used.")
        return " ".join(parts)


class Tokenizer:
    """Words to ids over ``VOCABULARY``: lower case, letters only, unknown words reported and skipped."""

    def __init__(self, vocabulary: Sequence[str] = VOCABULARY, max_tokens: int = MAX_TOKENS) -> None:
        self.vocabulary = tuple(vocabulary)
        self.index = {word: i for i, word in enumerate(self.vocabulary)}
        self.max_tokens = max_tokens

    def __call__(self, text: str) -> Tokens:
        words = re.findall(r"[a-z]+", text.lower())
        known = [w for w in words if w in self.index]
        unknown = [w for w in words if w not in self.index]
        kept, dropped = known[: self.max_tokens - 2], known[self.max_tokens - 2 :]
        ids = [self.index[BOS], *(self.index[w] for w in kept), self.index[EOS]]
        ids += [self.index[PAD]] * (self.max_tokens - len(ids))
        return Tokens(ids, kept, unknown, dropped)

    def batch(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, MAX_TOKENS) long ids of several prompts."""
        return torch.tensor([self(text).ids for text in texts], dtype=torch.long)


# =========================================================================== model


@dataclass(frozen=True)
class ClipConfig:
    vocab_size: int = len(VOCABULARY)
    max_tokens: int = MAX_TOKENS
    width: int = 64  # text transformer width: the size of each token's output (the U-Net's context_dim)
    layers: int = 2
    heads: int = 4
    image_channels: tuple[int, ...] = (32, 64, 128)  # conv widths at 16×16, 8×8, 4×4
    embed_dim: int = 64  # the shared embedding space

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_channels", tuple(int(c) for c in self.image_channels))


class TextEncoder(nn.Module):
    """Token + position embeddings, a small Transformer encoder, and a projection of the <eos> output."""

    def __init__(self, config: ClipConfig) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.position_embedding = nn.Parameter(torch.randn(config.max_tokens, config.width) * 0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(config.width, config.heads, 4 * config.width, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(config.width)
        self.projection = nn.Linear(config.width, config.embed_dim, bias=False)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids (N, L) -> (per-token outputs (N, L, width), unit text embeddings (N, embed_dim))."""
        padding = ids == VOCABULARY.index(PAD)  # (N, L): True where nothing is
        h = self.token_embedding(ids) + self.position_embedding[: ids.shape[1]]  # (N, L, W)
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=padding)  # every word sees every other word
        tokens = self.norm(h)  # (N, L, W)
        eos = (ids == VOCABULARY.index(EOS)).float().argmax(dim=1)  # (N,) position of <eos>
        pooled = tokens[torch.arange(len(ids)), eos]  # (N, W): <eos> has read the whole prompt
        return tokens, F.normalize(self.projection(pooled), dim=-1)


class ImageEncoder(nn.Module):
    """A small CNN: 32×32 → 16×16 → 8×8 → 4×4, global average, projection to the embedding space."""

    def __init__(self, config: ClipConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_prev = 3
        for c in config.image_channels:  # each halves the side
            layers += [nn.Conv2d(c_prev, c, 3, stride=2, padding=1), nn.GroupNorm(8, c), nn.SiLU()]
            c_prev = c
        layers += [nn.Conv2d(c_prev, c_prev, 3, padding=1), nn.GroupNorm(8, c_prev), nn.SiLU()]
        self.body = nn.Sequential(*layers)
        self.projection = nn.Linear(c_prev, config.embed_dim, bias=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, 32, 32) in [−1, 1] -> unit image embeddings (N, embed_dim)."""
        h = self.body(images).mean(dim=(2, 3))  # (N, C)
        return F.normalize(self.projection(h), dim=-1)


class Clip(nn.Module):
    """Text and image encoders with a learned temperature."""

    def __init__(self, config: ClipConfig = ClipConfig()) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = Tokenizer(max_tokens=config.max_tokens)
        self.text = TextEncoder(config)
        self.image = ImageEncoder(config)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # similarity × e^s, at most 100

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def scale(self) -> torch.Tensor:
        return self.logit_scale.clamp(max=math.log(100)).exp()

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-token outputs (N, L, width), unit text embeddings (N, E)) of prompts, on the model's device."""
        return self.text(self.tokenizer.batch(prompts).to(self.device))

    @torch.no_grad()
    def embed_text(self, prompts: Sequence[str]) -> np.ndarray:
        """float32 (N, E) unit embeddings of prompts."""
        return self.encode_prompts(prompts)[1].float().cpu().numpy()

    @torch.no_grad()
    def embed_images(self, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
        """float32 (N, E) unit embeddings of uint8 (N, 32, 32, 3) images."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != (32, 32, 3) or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 images (N, 32, 32, 3), got {images.dtype} {images.shape}")
        out = [self.image(to_tensor(images[i : i + batch_size]).to(self.device)).float().cpu()
               for i in range(0, len(images), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.config.embed_dim), np.float32)


# =========================================================================== training


@dataclass(frozen=True)
class ClipRecipe:
    config: ClipConfig = ClipConfig()
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    partial_fraction: float = 0.3  # captions that name only some of shape, colour and background
    data_count: int = 30_000
    seed: int = 0


def _attributes(data) -> torch.Tensor:
    return torch.from_numpy(np.stack([data.shape, data.color, data.background], axis=1))  # (N, 3)


def caption_table(tokenizer: Tokenizer) -> torch.Tensor:
    """Token ids of every partial caption, indexed by (shape + 1, colour + 1, background + 1), 0 = unnamed.

    Shape (len(SHAPES) + 1, len(COLOR_NAMES) + 1, len(COLOR_NAMES) + 1, MAX_TOKENS) long.
    """
    table = torch.zeros(len(SHAPES) + 1, len(COLOR_NAMES) + 1, len(COLOR_NAMES) + 1, tokenizer.max_tokens,
                        dtype=torch.long)
    for s in range(len(SHAPES) + 1):
        for c in range(len(COLOR_NAMES) + 1):
            for b in range(len(COLOR_NAMES) + 1):
                text = describe(SHAPES[s - 1] if s else None, COLOR_NAMES[c - 1] if c else None,
                                COLOR_NAMES[b - 1] if b else None)
                table[s, c, b] = torch.tensor(tokenizer(text).ids)
    return table


def named_attributes(attributes: torch.Tensor, partial_fraction: float, empty_fraction: float = 0.0) -> torch.Tensor:
    """(N, 3) attributes with some left unnamed (−1): the caption of each image in a batch.

    Of the partial captions, each attribute is dropped with probability ½, keeping at
    least one; ``empty_fraction`` of the captions name nothing (the empty prompt).
    Uses torch's global generator.
    """
    n = len(attributes)
    partial = torch.rand(n) < partial_fraction
    drop = (torch.rand(n, 3) < 0.5) & partial[:, None]
    drop[drop.all(dim=1)] = torch.tensor([True, True, False])  # keep one: the background
    drop[torch.rand(n) < empty_fraction] = True
    return torch.where(drop, torch.full_like(attributes, -1), attributes)


def clip_loss(model: Clip, batch: tuple[torch.Tensor, torch.Tensor], table: torch.Tensor,
              partial_fraction: float) -> dict[str, torch.Tensor]:
    """Symmetric contrastive loss where every caption an image satisfies is a right answer."""
    images, attributes = batch  # (B, 3, 32, 32), (B, 3)
    named = named_attributes(attributes.cpu(), partial_fraction).to(images.device)  # (B, 3), −1 = unnamed
    ids = table.to(images.device)[named[:, 0] + 1, named[:, 1] + 1, named[:, 2] + 1]  # (B, L)
    _, text = model.text(ids)  # (B, E)
    image = model.image(images)  # (B, E)
    logits = model.scale() * image @ text.T  # (B images, B captions)
    # fits[i, j]: image i satisfies caption j (every attribute caption j names matches image i)
    fits = ((named[None, :, :] == attributes[:, None, :]) | (named[None, :, :] < 0)).all(dim=2).float()
    image_to_text = -(F.log_softmax(logits, dim=1) * fits / fits.sum(1, keepdim=True)).sum(1).mean()
    text_to_image = -(F.log_softmax(logits.T, dim=1) * fits.T / fits.T.sum(1, keepdim=True)).sum(1).mean()
    loss = (image_to_text + text_to_image) / 2
    accuracy = (fits[torch.arange(len(fits)), logits.argmax(dim=1)]).mean()  # picked a caption it satisfies
    return {"loss": loss, "accuracy": accuracy.detach()}


def make_trainer(recipe: ClipRecipe = ClipRecipe(), *, device: str | torch.device = "cpu",
                 model: Clip | None = None) -> Trainer:
    """A Trainer for the contrastive objective on the seen combinations of shapes."""
    device = torch.device(device)
    if model is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.seed)
            model = Clip(recipe.config)
    model.to(device)
    data = make_shapes(recipe.data_count, seed=recipe.seed, combinations=seen_combinations())
    batches = endless_batches(to_tensor(data.images), _attributes(data), batch_size=recipe.batch_size,
                              seed=recipe.seed)
    table = caption_table(model.tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe.lr, total_steps=recipe.steps,
                                                    pct_start=0.1)
    optimizer.register_step_post_hook(
        lambda opt, args, kwargs: scheduler.step() if scheduler.last_epoch + 1 < recipe.steps else None)
    return Trainer(model, optimizer, lambda m, b: clip_loss(m, b, table, recipe.partial_fraction), batches,
                   device=device)


# =========================================================================== measures


def zero_shot_accuracy(model: Clip, count: int = 2000, seed: int = EVAL_SEED) -> dict[str, Any]:
    """Pick each fresh image's caption among all 336 full captions: accuracy, seen and held out."""
    captions = [describe(s, c, b) for s, c, b in all_combinations()]
    text = model.embed_text(captions)  # (336, E)
    result: dict[str, Any] = {}
    for split, combos in (("seen", seen_combinations()), ("held_out", list(HELD_OUT))):
        data = make_shapes(count // 2, seed=seed, combinations=combos)
        picked = (model.embed_images(data.images) @ text.T).argmax(axis=1)
        result[split] = float(np.mean([captions[p] == c for p, c in zip(picked, data.captions)]))
    result["accuracy"] = (result["seen"] + result["held_out"]) / 2
    result["captions"] = len(captions)
    result["images"] = count
    return result


# =========================================================================== weights


def save_clip(model: Clip, path: str | os.PathLike, card: dict[str, Any] | None = None) -> Path:
    return save_model(model.cpu(), model.config, path, KIND, card)


def load_clip(path_or_name: str | os.PathLike = SHIPPED_NAME,
              device: str | torch.device = "cpu") -> tuple[Clip, dict[str, Any]]:
    """The shipped CLIP by name, or one saved by :func:`save_clip`; raises ``WeightsError``."""
    path = asset_path("weights", f"{SHIPPED_NAME}.safetensors") if str(path_or_name) == SHIPPED_NAME \
        else Path(path_or_name)
    return load_model(path, Clip, ClipConfig, KIND, device)


def train_clip(recipe: ClipRecipe = ClipRecipe(), out: str | os.PathLike = "runs/clip", *,
               name: str = SHIPPED_NAME, device: str | torch.device = "cpu", evaluate: bool = True,
               command: str = "", on_snapshot=None) -> TrainingResult:
    """Train ``recipe`` and save ``out/NAME.*`` with its card (Ctrl+C saves what was trained)."""
    torch.manual_seed(recipe.seed)
    trainer = make_trainer(recipe, device=device)
    losses, wall, interrupted = train_steps(trainer, recipe.steps, on_snapshot)
    model: Clip = trainer.model  # type: ignore[assignment]
    card = {
        "description": "A CLIP-style text encoder and image encoder trained contrastively on generated "
        "shapes scenes and their captions; its per-token text outputs condition the latent diffusion U-Net.",
        "recipe": command or f"diffusion-explorer train clip --out {out}",
        "data": f"make_shapes({recipe.data_count}, seed={recipe.seed}) over the seen combinations "
        f"({len(seen_combinations())}; {len(HELD_OUT)} held out)",
        "objective": "symmetric InfoNCE; every caption an image satisfies counts as right; "
        f"{recipe.partial_fraction:.0%} of captions name only part of the scene",
        "optimizer": f"AdamW lr {recipe.lr} one-cycle, weight decay 0.01, batch {recipe.batch_size}",
        "steps": trainer.step,
        "cpu_seconds": round(trainer.cpu_seconds, 1),
        "wall_seconds": round(wall, 1),
        "hardware": f"{torch.get_num_threads()} torch threads on {torch.device(device)}",
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_losses": {k: round(v, 4) for k, v in losses.items()},
    }
    model.eval()
    if interrupted:
        card["interrupted"] = f"stopped by the user at step {trainer.step} of {recipe.steps}"
    elif evaluate:
        card["metrics"] = {"zero_shot": zero_shot_accuracy(model)}
    path = save_clip(model, Path(out) / name, card)
    return TrainingResult(path, model, trainer.step, losses, wall, trainer.cpu_seconds, interrupted, card)
