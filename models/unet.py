"""A small U-Net that predicts the noise in a noisy image: read it top to bottom.

    x_t (N,1,28,28), t (N,), class (N,)
      │          t ─► sinusoidal embedding ─► MLP ─┐ (+ class embedding) = emb (N,E)
      ▼                                            │  emb joins every residual block
    conv in ───────────────────────────────── skip ─────────────────────┐  28×28
    down 1: res block ─ skip ─ downsample ───────────────────────────┐  │
    down 2: res block ─ skip ─ downsample ────────────────────────┐  │  │  14×14
    down 3: res block ─ skip ──────────────────────────────────┐  │  │  │   7×7
    middle: res block, self-attention, res block               │  │  │  │   7×7
    up 3:   concat skip, res block, upsample  ◄────────────────┘  │  │  │
    up 2:   concat skip, res block, upsample  ◄───────────────────┘  │  │  14×14
    up 1:   concat skip, res block            ◄──────────────────────┘  │  28×28
    out:    concat conv-in skip, GroupNorm, SiLU, conv ─► ε̂ (N,1,28,28) ◄┘

With ``patch_size`` p > 1 the image is first cut into p×p patches, each one
position of p²·C channels (pixel-unshuffle), and ε̂ is put back together the same
way at the end: the same picture with 1/p² of the positions, so every convolution
is cheaper (the shipped digits U-Net's call is 1.6 × faster with p = 2).

Skip connections carry the fine detail past the bottleneck; the middle, at the
coarsest resolution, sees the whole digit (self-attention lets every position look
at every other). The timestep tells each block how much noise to expect; a class
label (0–9, or ``num_classes`` for "no class", used by classifier-free guidance)
is added to the timestep embedding. Text comes in through cross-attention, which
exists only when ``config.context_dim`` is set: after every residual block of the
down and up paths and in the middle, each position of the feature map asks which
prompt words concern it and mixes in what they say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    in_channels: int = 1  # 1 for grey digits, 3 for RGB
    image_size: int = 28  # side of the (square) input
    patch_size: int = 1  # p > 1: each p×p patch becomes one position of p²·C channels (image_size / p must halve at each level)
    channels: tuple[int, ...] = (32, 64, 64)  # feature channels per resolution level
    emb_dim: int = 128  # size of the timestep (+ class) embedding
    groups: int = 8  # GroupNorm groups
    attention_heads: int = 4  # self-attention at the lowest resolution
    num_classes: int | None = 10  # None: unconditional; else labels 0 … num_classes − 1, plus the null class
    context_dim: int | None = None  # size of the text tokens for cross-attention; None: no text
    dropout: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if not self.channels:
            raise ValueError("the U-Net needs at least one level of channels")
        for c in (*self.channels, self.emb_dim):
            if c % self.groups:
                raise ValueError(f"channel count {c} is not a multiple of {self.groups} GroupNorm groups")
        if self.image_size % self.patch_size:
            raise ValueError(f"image size {self.image_size} is not a whole number of {self.patch_size}-pixel patches")
        if self.grid_size % 2 ** (len(self.channels) - 1):
            raise ValueError(f"the {self.grid_size}×{self.grid_size} grid does not halve {len(self.channels) - 1} times")

    @property
    def grid_size(self) -> int:
        """Side of the U-Net's top level: the image side over the patch size."""
        return self.image_size // self.patch_size

    @property
    def null_class(self) -> int | None:
        """The label meaning "no class" (classifier-free guidance's unconditional branch)."""
        return self.num_classes


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of timesteps, as positions in a Transformer: (N,) -> (N, dim).

    emb[:, i] = cos(t·ω_i) for the first half, sin(t·ω_i) for the second, with
    frequencies ω_i = max_period^(−i / (dim/2)) from 1 down to 1/max_period.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None, :]  # (N, dim/2)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # (N, dim)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, + embedding, GroupNorm → SiLU → conv, plus the input (1×1 conv if the width changes)."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (N, c_out, H, W)
        h = h + self.emb(F.silu(emb))[:, :, None, None]  # + (N, c_out, 1, 1): "how noisy, which class"
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))  # (N, c_out, H, W)
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head attention over the H·W positions of a feature map, with a residual.

    Self-attention when ``context`` is None; cross-attention (queries from the image,
    keys and values from ``context`` (N, L, context_dim)) when the block was built
    with ``context_dim``. ``last_weights`` keeps the attention map of the last call
    (N, heads, H·W, L) when ``keep_weights`` is set, for drawing it.
    """

    def __init__(self, channels: int, heads: int, groups: int, context_dim: int | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.q = nn.Linear(channels, channels)
        self.kv = nn.Linear(context_dim or channels, 2 * channels)
        self.out = nn.Linear(channels, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.keep_weights = False
        self.last_weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        n, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (N, H·W, C)
        source = tokens if context is None else context  # (N, L, C or context_dim)
        q = self.q(tokens)  # (N, H·W, C)
        k, v = self.kv(source).chunk(2, dim=-1)  # (N, L, C) each
        q, k, v = (z.reshape(n, -1, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))  # (N, heads, ·, C/heads)
        if self.keep_weights:  # for drawing only: the output below is the same with or without
            weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // self.heads), dim=-1)  # (N, heads, H·W, L)
            self.last_weights = weights.detach()
        attended = F.scaled_dot_product_attention(q, k, v)  # (N, heads, H·W, C/heads)
        attended = attended.transpose(1, 2).reshape(n, h * w, c)  # (N, H·W, C)
        return x + self.out(attended).transpose(1, 2).reshape(n, c, h, w)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # (N, C, H/2, W/2)


class Upsample(nn.Module):
    """Nearest-neighbour ×2, then a 3×3 conv to the (narrower) width of the level above."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))  # (N, c_out, 2H, 2W)


class UNet(nn.Module):
    """ε̂ = UNet(x_t, t, class, context): the noise predictor of a diffusion model."""

    def __init__(self, config: UNetConfig = UNetConfig()) -> None:
        super().__init__()
        self.config = config
        ch, emb_dim, groups = config.channels, config.emb_dim, config.groups
        levels = len(ch)

        # Timestep (and class) embedding
        self.time_mlp = nn.Sequential(nn.Linear(ch[0], emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_emb = nn.Embedding(config.num_classes + 1, emb_dim) if config.num_classes else None

        patch_channels = config.in_channels * config.patch_size**2
        self.conv_in = nn.Conv2d(patch_channels, ch[0], 3, padding=1)

        # Down path: one residual block per level, then halve the resolution (except at the bottom)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c_prev = ch[0]
        for level, c in enumerate(ch):
            self.down.append(ResBlock(c_prev, c, emb_dim, groups, config.dropout))
            self.downsample.append(Downsample(c) if level < levels - 1 else nn.Identity())
            c_prev = c
        text = config.context_dim is not None
        self.down_cross = nn.ModuleList(self._cross(c) for c in ch) if text else None

        # Middle, at the lowest resolution: residual block, self-attention, (cross-attention), residual block
        self.mid1 = ResBlock(ch[-1], ch[-1], emb_dim, groups, config.dropout)
        self.mid_attn = Attention(ch[-1], config.attention_heads, groups)
        self.mid_cross = (
            Attention(ch[-1], config.attention_heads, groups, context_dim=config.context_dim)
            if config.context_dim else None
        )
        self.mid2 = ResBlock(ch[-1], ch[-1], emb_dim, groups, config.dropout)

        # Up path: concatenate the skip of the same level, residual block, double the resolution
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(levels)):
            c = ch[level]
            self.up.append(ResBlock(c_prev + c, c, emb_dim, groups, config.dropout))
            self.upsample.append(Upsample(c, ch[level - 1]) if level > 0 else nn.Identity())
            c_prev = ch[level - 1] if level > 0 else c
        self.up_cross = nn.ModuleList(self._cross(ch[level]) for level in reversed(range(levels))) if text else None

        # Output: the conv-in features join once more, then back to image channels
        self.norm_out = nn.GroupNorm(groups, ch[0] * 2)
        self.conv_out = nn.Conv2d(ch[0] * 2, patch_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # starts by predicting ε̂ = 0
        nn.init.zeros_(self.conv_out.bias)

    def _cross(self, channels: int) -> Attention:
        return Attention(channels, self.config.attention_heads, self.config.groups, self.config.context_dim)

    def cross_attentions(self) -> dict[str, Attention]:
        """The cross-attention blocks by the name of the block they follow (empty without text)."""
        if self.mid_cross is None:
            return {}
        levels = len(self.config.channels)
        named = {f"down {i + 1}": a for i, a in enumerate(self.down_cross)}
        named["middle"] = self.mid_cross
        named |= {f"up {levels - i}": a for i, a in enumerate(self.up_cross)}
        return named

    def embed(self, t: torch.Tensor, class_labels: torch.Tensor | None) -> torch.Tensor:
        """Timestep (+ class) embedding, (N, emb_dim). No label means the null class."""
        emb = self.time_mlp(timestep_embedding(t, self.config.channels[0]))  # (N, E)
        if self.class_emb is not None:
            if class_labels is None:
                class_labels = torch.full_like(t, self.config.null_class, dtype=torch.long)
            emb = emb + self.class_emb(class_labels)  # (N, E)
        return emb

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor | int,
        class_labels: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        return_features: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Predict the noise ε̂ in ``x`` (N, C, H, W) at timesteps ``t`` (N,) or one int.

        ``class_labels`` (N,) long: 0 … num_classes − 1, or ``config.null_class``
        (None: all null). ``context`` (N, L, context_dim): text tokens for cross-attention.
        With ``return_features``, also returns a dict of named feature maps
        (the names of :meth:`blocks`).
        """
        n = x.shape[0]
        t = torch.as_tensor(t, device=x.device)
        t = t.expand(n) if t.ndim == 0 else t  # (N,)
        if context is not None and self.mid_cross is None:
            raise ValueError("this U-Net has no cross-attention (config.context_dim is None)")
        features: dict[str, torch.Tensor] = {}
        keep = features.__setitem__ if return_features else (lambda name, value: None)

        emb = self.embed(t, class_labels)  # (N, E)
        p = self.config.patch_size
        if p > 1:
            x = F.pixel_unshuffle(x, p)  # (N, C·p², 28/p, 28/p): fewer, deeper positions; cheaper convolutions
        h = self.conv_in(x)  # (N, c0, 28, 28)
        keep("conv in", h)
        skips = [h]
        for level, (block, down) in enumerate(zip(self.down, self.downsample)):
            h = block(h, emb)  # (N, c_level, S, S)
            if context is not None:
                h = self.down_cross[level](h, context)  # positions attend to the prompt's tokens
            keep(f"down {level + 1}", h)
            skips.append(h)
            h = down(h)  # (N, c_level, S/2, S/2) except at the bottom

        h = self.mid1(h, emb)  # (N, c_last, 7, 7)
        h = self.mid_attn(h)  # every position attends to every other
        if self.mid_cross is not None and context is not None:
            h = self.mid_cross(h, context)  # positions attend to the text tokens
        h = self.mid2(h, emb)
        keep("middle", h)

        for i, (block, up) in enumerate(zip(self.up, self.upsample)):
            level = len(self.up) - i
            h = block(torch.cat([h, skips.pop()], dim=1), emb)  # (N, c_level, S, S)
            if context is not None:
                h = self.up_cross[i](h, context)
            keep(f"up {level}", h)
            h = up(h)  # (N, c_level, 2S, 2S) except at the top

        h = torch.cat([h, skips.pop()], dim=1)  # (N, 2·c0, 28, 28)
        eps = self.conv_out(F.silu(self.norm_out(h)))  # (N, C·p², 28/p, 28/p)
        if p > 1:
            eps = F.pixel_shuffle(eps, p)  # (N, C, 28, 28)
        keep("out", eps)
        return (eps, features) if return_features else eps

    def blocks(self) -> list[dict]:
        """Each block for an architecture drawing: name, kind, input and output shape (C, H, W).

        Shapes are for one image of ``config.image_size``, read from a real forward pass;
        ``skip_to`` names the block a block's output is also concatenated into.
        """
        cfg = self.config
        levels = len(cfg.channels)
        parts = {"conv in": (self.conv_in, self.conv_in), "middle": (self.mid1, self.mid2),
                 "out": (self.norm_out, self.conv_out)}
        for level in range(levels):
            parts[f"down {level + 1}"] = (self.down[level], self.down[level])
            parts[f"up {level + 1}"] = (self.up[levels - 1 - level], self.up[levels - 1 - level])
        order = ["conv in", *(f"down {i + 1}" for i in range(levels)), "middle",
                 *(f"up {i}" for i in range(levels, 0, -1)), "out"]
        shapes: dict[str, dict] = {}
        hooks = []
        for name, (first, last) in parts.items():
            hooks.append(first.register_forward_hook(
                lambda m, args, out, name=name: shapes.setdefault(name, {}).__setitem__("in", tuple(args[0].shape[1:]))))
            hooks.append(last.register_forward_hook(
                lambda m, args, out, name=name: shapes.setdefault(name, {}).__setitem__("out", tuple(out.shape[1:]))))
        try:
            x = torch.zeros(1, cfg.in_channels, cfg.image_size, cfg.image_size, device=self.conv_in.weight.device)
            with torch.no_grad():
                self(x, 0)
        finally:
            for hook in hooks:
                hook.remove()
        if cfg.patch_size > 1:  # the hooks saw the patch grid; the block's ends are the image
            image = (cfg.in_channels, cfg.image_size, cfg.image_size)
            shapes["conv in"]["in"] = shapes["out"]["out"] = image
        middle = ["res", "self-attention"] + (["cross-attention"] if cfg.context_dim else []) + ["res"]
        kinds = {"conv in": "conv", "middle": " + ".join(middle), "out": "GroupNorm + SiLU + conv"}
        if cfg.patch_size > 1:
            kinds["conv in"] = f"{cfg.patch_size}×{cfg.patch_size} patches + conv"
            kinds["out"] = "norm, SiLU, conv, unpatch"
        level_kind = "res + cross-attention" if cfg.context_dim else "res"
        skips = {"conv in": "out", **{f"down {i + 1}": f"up {i + 1}" for i in range(levels)}}
        return [{"name": name, "kind": kinds.get(name, level_kind), "in": shapes[name]["in"],
                 "out": shapes[name]["out"], "skip_to": skips.get(name)} for name in order]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
