"""A GAN on 2-D points, as GAN Lab shows it: toy distributions, two small MLPs and their duel.

Read top to bottom: the distributions, the networks, the losses, the trainer (one D step,
one G step, or ``train_step`` = ``d_steps`` D steps then one G step), and the views the
application draws (D's heat map over the plane, G's manifold, where G wants each sample
to move)::

    trainer = Gan2DTrainer(Gan2DHyper(), distribution="ring", seed=0)
    for snapshot in trainer.run(steps=500):
        print(snapshot.step, snapshot.losses)

Every hyper-parameter is read at each step, so the application changes them while a run
plays. Width, depth and noise size change the networks: the trainer then builds new ones
(new random weights) at the next step and says so in ``trainer.notes``. The networks are
tiny, so they always run on the CPU (faster there than on any accelerator).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from models.training import DivergedError

DISTRIBUTIONS = ("ring", "grid", "line", "moons", "spiral", "drawn")
DISTRIBUTION_TITLES = {
    "ring": "Ring of 8 Gaussians",
    "grid": "5 × 5 grid of Gaussians",
    "line": "A line",
    "moons": "Two moons",
    "spiral": "Spiral",
    "drawn": "Draw your own",
}
LOSSES = ("non-saturating", "least-squares", "hinge")
OPTIMIZERS = ("adam", "sgd")
NOISE_KINDS = ("gaussian", "uniform")
PLANE = (-2.0, 2.0)  # the square of the plane every view shows, both axes
DRAWN_NOISE = 0.04  # standard deviation around each drawn point
REAL_POOL = 4096  # real points per run: batches are drawn from them, the view shows some
VIEWS = ("heat", "manifold", "gradients")  # what a snapshot may compute besides the points
HEAT_SIDE = 48  # heat map cells per side


# ---------------------------------------------------------------------- 1. the data
def sample(distribution: str, n: int, rng: np.random.Generator, drawn: np.ndarray | None = None) -> np.ndarray:
    """``n`` points of a toy distribution as float32 (n, 2), inside ``PLANE``.

    ``drawn`` (float (m, 2)) are the user's points for ``"drawn"``: each sample is one of
    them picked at random plus a little Gaussian noise.
    """
    if distribution == "ring":  # 8 Gaussians on a circle
        angle = 2 * np.pi * rng.integers(0, 8, n) / 8
        points = 1.4 * np.stack([np.cos(angle), np.sin(angle)], 1) + 0.07 * rng.standard_normal((n, 2))
    elif distribution == "grid":  # 5 × 5 Gaussians
        centres = np.stack(np.meshgrid(np.linspace(-1.4, 1.4, 5), np.linspace(-1.4, 1.4, 5)), -1).reshape(-1, 2)
        points = centres[rng.integers(0, 25, n)] + 0.05 * rng.standard_normal((n, 2))
    elif distribution == "line":  # a slanted segment
        t = rng.uniform(-1.0, 1.0, n)
        points = np.stack([1.4 * t, 0.7 * t], 1) + 0.03 * rng.standard_normal((n, 2))
    elif distribution == "moons":  # two interleaved half circles
        upper = rng.random(n) < 0.5
        angle = rng.uniform(0, np.pi, n)
        x = np.where(upper, np.cos(angle), 1 - np.cos(angle))
        y = np.where(upper, np.sin(angle), 0.5 - np.sin(angle))
        points = 1.1 * np.stack([x - 0.5, y - 0.25], 1) + 0.05 * rng.standard_normal((n, 2))
    elif distribution == "spiral":  # one arm, 1.5 turns
        t = np.sqrt(rng.uniform(0.04, 1.0, n))
        angle = 3 * np.pi * t
        points = 1.6 * t[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1) + 0.04 * rng.standard_normal((n, 2))
    elif distribution == "drawn":
        if drawn is None or len(drawn) == 0:
            raise ValueError("draw some points first: click or drag on the plane")
        drawn = np.asarray(drawn, dtype=np.float64).reshape(-1, 2)
        points = drawn[rng.integers(0, len(drawn), n)] + DRAWN_NOISE * rng.standard_normal((n, 2))
    else:
        raise ValueError(f"unknown distribution {distribution!r}; choose one of {', '.join(DISTRIBUTIONS)}")
    return np.clip(points, *PLANE).astype(np.float32)


def ring_modes() -> np.ndarray:
    """The 8 centres of the ring, float (8, 2): what the quality check measures against."""
    angle = 2 * np.pi * np.arange(8) / 8
    return 1.4 * np.stack([np.cos(angle), np.sin(angle)], 1)


def mean_distance_to_modes(points: np.ndarray, modes: np.ndarray) -> float:
    """Mean distance from each point to its nearest mode (0: every point sits on a mode)."""
    distances = np.linalg.norm(points[:, None, :] - modes[None, :, :], axis=-1)  # (n, modes)
    return float(distances.min(axis=1).mean())


# ---------------------------------------------------------------------- 2. the networks
@dataclass(frozen=True)
class Gan2DConfig:
    """What the networks are: changing any of these builds new ones."""

    noise_dim: int = 2
    width: int = 64
    depth: int = 2  # hidden layers in each network


def mlp(inputs: int, width: int, depth: int, outputs: int) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units with LeakyReLU, then a linear output."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(inputs if i == 0 else width, width), nn.LeakyReLU(0.2)]
    layers.append(nn.Linear(width if depth else inputs, outputs))
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """z (N, noise_dim) -> points (N, 2)."""

    def __init__(self, config: Gan2DConfig) -> None:
        super().__init__()
        self.net = mlp(config.noise_dim, config.width, config.depth, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """points (N, 2) -> logits (N,): large means "real"."""

    def __init__(self, config: Gan2DConfig) -> None:
        super().__init__()
        self.net = mlp(2, config.width, config.depth, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


# ---------------------------------------------------------------------- 3. the losses
def d_loss(loss: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss on its raw outputs for real and generated points."""
    if loss == "non-saturating":  # -log D(x) - log(1 - D(G(z))), D = sigmoid
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if loss == "least-squares":  # (D(x) - 1)² + D(G(z))², halved
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()
    if loss == "hinge":  # max(0, 1 - D(x)) + max(0, 1 + D(G(z)))
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def g_loss(loss: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss on D's raw outputs for its points."""
    if loss == "non-saturating":  # -log D(G(z)): strong gradients while D wins
        return F.softplus(-fake).mean()
    if loss == "least-squares":
        return 0.5 * ((fake - 1) ** 2).mean()
    if loss == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def realness(loss: str, output: torch.Tensor) -> torch.Tensor:
    """D's raw output as "how real" in [0, 1]: sigmoid for the log loss, the output clipped
    to [0, 1] for least squares (its targets), (output + 1) / 2 clipped for hinge (±1)."""
    if loss == "least-squares":
        return output.clamp(0, 1)
    if loss == "hinge":
        return ((output + 1) / 2).clamp(0, 1)
    return torch.sigmoid(output)


# ---------------------------------------------------------------------- 4. training
class Optimizer:
    """Adam (β = 0.5, 0.999, as GANs use) or plain SGD over a list of parameters, written out.

    The same updates as ``torch.optim.Adam`` / ``SGD``, without their per-step bookkeeping
    (a fifth of a tiny network's step) and without importing ``torch._dynamo`` (seconds)
    on first use. The learning rate is an argument of each step.
    """

    def __init__(self, kind: str, params: list[torch.Tensor], betas: tuple[float, float] = (0.5, 0.999), eps: float = 1e-8) -> None:
        if kind not in OPTIMIZERS:
            raise ValueError(f"unknown optimiser {kind!r}; choose one of {', '.join(OPTIMIZERS)}")
        self.kind, self.params, self.betas, self.eps = kind, params, betas, eps
        self.steps = 0
        if kind == "adam":
            self.m = [torch.zeros_like(p) for p in params]  # running mean of the gradient
            self.v = [torch.zeros_like(p) for p in params]  # running mean of its square

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor], lr: float) -> None:
        self.steps += 1
        if self.kind == "sgd":  # θ ← θ − lr·g
            torch._foreach_add_(self.params, grads, alpha=-lr)
            return
        beta1, beta2 = self.betas
        torch._foreach_lerp_(self.m, grads, 1 - beta1)  # m ← β₁m + (1 − β₁)g
        torch._foreach_mul_(self.v, beta2)  # v ← β₂v + (1 − β₂)g²
        torch._foreach_addcmul_(self.v, grads, grads, value=1 - beta2)
        correction1, correction2 = 1 - beta1**self.steps, 1 - beta2**self.steps
        denominator = torch._foreach_sqrt(self.v)  # √(v / (1 − β₂ᵗ)) + ε
        torch._foreach_div_(denominator, math.sqrt(correction2))
        torch._foreach_add_(denominator, self.eps)
        torch._foreach_addcdiv_(self.params, self.m, denominator, value=-lr / correction1)  # θ ← θ − lr·m̂/(√v̂ + ε)


@dataclass
class Gan2DHyper:
    """Mutable: the trainer reads it at every step, so changes take effect while it runs."""

    lr_d: float = 1e-3
    lr_g: float = 1e-3
    optimizer: str = "adam"  # "adam" (betas 0.5, 0.999) or "sgd"
    loss: str = "non-saturating"
    d_steps: int = 1  # D updates per G update in train_step
    batch_size: int = 128
    noise_dim: int = 2  # } these three change the networks:
    width: int = 64  # } new ones are built (random weights)
    depth: int = 2  # } at the next step
    noise_kind: str = "gaussian"  # "gaussian" N(0, 1) or "uniform" U(-1, 1)

    def config(self) -> Gan2DConfig:
        return Gan2DConfig(noise_dim=int(self.noise_dim), width=int(self.width), depth=int(self.depth))


@dataclass
class Gan2DSnapshot:
    """What the 2-D view draws between steps (numpy only, safe to pass between threads)."""

    step: int  # G steps done
    d_updates: int  # D steps done
    losses: dict[str, float]  # means since the last snapshot: d_loss, g_loss, d_real, d_fake
    real: np.ndarray  # float32 (n, 2)
    fake: np.ndarray  # float32 (m, 2): G of the fixed noise
    gradients: np.ndarray | None  # float32 (m, 2): -∂loss_G/∂x at each fake point
    heat: np.ndarray | None  # float32 (res, res) D's realness over PLANE, row 0 at the bottom (y = PLANE[0])
    manifold: np.ndarray | None  # float32 (lines, points, 2): G of a grid of noise space, as polylines
    steps_per_second: float  # G steps per second since the last snapshot
    elapsed_s: float
    notes: tuple[str, ...] = ()  # what changed since the last snapshot, in plain words
    done: bool = False


def noise(kind: str, n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """(n, dim) noise: N(0, 1) or U(-1, 1)."""
    if kind == "uniform":
        return torch.rand(n, dim, generator=generator) * 2 - 1
    if kind == "gaussian":
        return torch.randn(n, dim, generator=generator)
    raise ValueError(f"unknown noise kind {kind!r}; choose one of {', '.join(NOISE_KINDS)}")


class Gan2DTrainer:
    """G and D on a 2-D distribution, with separate D and G steps and live hyper-parameters.

    Parameters
    ----------
    hyper
        Read at every step (the caller may change it at any time).
    distribution, drawn
        What ``sample`` draws the real points from (``drawn`` for ``"drawn"``).
    seed
        Seeds the weights, the real points, the noise and the fixed noise that the view shows.
    """

    SHOWN = 512  # fixed-noise samples drawn (and real points shown)

    def __init__(
        self,
        hyper: Gan2DHyper | None = None,
        distribution: str = "ring",
        drawn: np.ndarray | None = None,
        seed: int = 0,
    ) -> None:
        self.hyper = hyper if hyper is not None else Gan2DHyper()
        self.distribution, self.seed = distribution, seed
        self.set_real(distribution, drawn)
        self.max_steps_per_s: float | None = None  # run() slows down to this (None: full speed)
        self.views: frozenset[str] = frozenset(VIEWS)  # what run()'s snapshots compute
        self.heat_every = 1
        self.generator_rng = torch.Generator().manual_seed(seed)
        self.step = 0  # G steps
        self.d_updates = 0
        self.notes: list[str] = []  # plain-words events since the caller last took them
        self.config: Gan2DConfig | None = None
        self._noise_kind = ""
        self._optimizer_kind = ""
        self._ensure(optimizers=False)

    # -------------------------------------------------------------- building
    def _ensure(self, optimizers: bool = True) -> None:
        """Apply hyper-parameters that change objects: networks, fixed noise, optimisers."""
        hyper = self.hyper
        config = hyper.config()
        if config.noise_dim < 1 or config.width < 1 or config.depth < 0:
            raise ValueError(f"impossible network: {config}")
        if config != self.config:
            torch.manual_seed(self.seed + 7919 * (self.config is not None))  # fresh weights, reproducible
            first = self.config is None
            self.generator, self.discriminator = Generator(config), Discriminator(config)
            self.config, self._optimizer_kind, self._noise_kind = config, "", ""
            if not first:
                self.notes.append(
                    f"New networks (noise {config.noise_dim}-D, width {config.width}, depth {config.depth}): "
                    "they start again from random weights."
                )
        if hyper.noise_kind != self._noise_kind:
            self.fixed_noise = noise(hyper.noise_kind, self.SHOWN, config.noise_dim, torch.Generator().manual_seed(self.seed + 1))
            self._noise_kind = hyper.noise_kind
        if not optimizers:
            return
        if hyper.optimizer != self._optimizer_kind:  # a new optimiser starts with a fresh state
            self.opt_d = Optimizer(hyper.optimizer, list(self.discriminator.parameters()))
            self.opt_g = Optimizer(hyper.optimizer, list(self.generator.parameters()))
            self._optimizer_kind = hyper.optimizer

    def set_real(self, distribution: str, drawn: np.ndarray | None = None) -> None:
        """New real data (e.g. more drawn points); G and D keep their weights. Safe to call
        from another thread while ``run`` plays: the pool is swapped in one assignment."""
        self.distribution = distribution
        self.real_pool = torch.from_numpy(sample(distribution, REAL_POOL, np.random.default_rng(self.seed), drawn))

    def shown_real(self) -> np.ndarray:
        """The real points a view shows: the same array while the data stays the same."""
        pool = self.real_pool
        if getattr(self, "_shown_for", None) is not pool:
            self._shown, self._shown_for = pool[: self.SHOWN].numpy().copy(), pool
        return self._shown

    def real_batch(self, n: int) -> torch.Tensor:
        index = torch.randint(0, len(self.real_pool), (n,), generator=self.generator_rng)
        return self.real_pool[index]

    def noise_batch(self, n: int) -> torch.Tensor:
        return noise(self.hyper.noise_kind, n, self.config.noise_dim, self.generator_rng)

    # -------------------------------------------------------------- steps
    def d_step(self) -> dict[str, float]:
        """One discriminator update: {"d_loss", "d_real", "d_fake"} (mean realness)."""
        self._ensure()
        hyper, n = self.hyper, int(self.hyper.batch_size)
        real = self.real_batch(n)  # (n, 2)
        with torch.no_grad():
            fake = self.generator(self.noise_batch(n))  # (n, 2), no gradient into G
        out = self.discriminator(torch.cat([real, fake]))  # (2n,): one pass for both
        out_real, out_fake = out[:n], out[n:]
        loss = d_loss(hyper.loss, out_real, out_fake)
        with torch.no_grad():
            scores = torch.stack([loss, realness(hyper.loss, out_real).mean(), realness(hyper.loss, out_fake).mean()])
        value, d_real, d_fake = scores.tolist()
        self._check(value, "discriminator")
        grads = torch.autograd.grad(loss, self.opt_d.params)
        self.opt_d.step(grads, float(hyper.lr_d))
        self.d_updates += 1
        return {"d_loss": value, "d_real": d_real, "d_fake": d_fake}

    def g_step(self) -> dict[str, float]:
        """One generator update (D's weights get no update): {"g_loss", "d_fake"}."""
        self._ensure()
        hyper, n = self.hyper, int(self.hyper.batch_size)
        out_fake = self.discriminator(self.generator(self.noise_batch(n)))  # (n,)
        loss = g_loss(hyper.loss, out_fake)
        with torch.no_grad():
            value, d_fake = torch.stack([loss, realness(hyper.loss, out_fake).mean()]).tolist()
        self._check(value, "generator")
        grads = torch.autograd.grad(loss, self.opt_g.params)  # through D into G; D's weights get none
        self.opt_g.step(grads, float(hyper.lr_g))
        self.step += 1
        return {"g_loss": value, "d_fake": d_fake}

    def train_step(self) -> dict[str, float]:
        """``hyper.d_steps`` D updates, then one G update; the D figures are the last D step's."""
        result: dict[str, float] = {}
        for _ in range(max(1, int(self.hyper.d_steps))):
            result = self.d_step()
        g = self.g_step()
        return {**result, "g_loss": g["g_loss"]}

    def _check(self, loss: float, who: str) -> None:
        # A NaN or Inf weight makes the next loss NaN or Inf: checking the loss is enough, and
        # raising before the update leaves the weights as they were.
        if not math.isfinite(loss):
            raise DivergedError(
                f"the {who}'s loss became {loss} at step {self.step + 1} "
                "(a learning rate too large, or a network that blew up)"
            )

    def prepare(self) -> None:
        """Build what the next step needs now (the optimisers): the first one takes seconds."""
        self._ensure()

    def weights_finite(self) -> bool:
        """Whether every weight of G and D is a finite number."""
        params = [*self.generator.parameters(), *self.discriminator.parameters()]
        return bool(torch.isfinite(torch.stack([p.detach().sum() for p in params]).sum()))

    # -------------------------------------------------------------- pretrained pair
    def load_pair(self, pair: dict) -> None:
        """Take the weights of ``pretrained_pair()`` (the hyper-parameters become the pair's)."""
        for key, value in pair["hyper"].items():
            setattr(self.hyper, key, value)
        self._ensure()
        self.generator.load_state_dict(pair["generator"])
        self.discriminator.load_state_dict(pair["discriminator"])
        self._optimizer_kind = ""  # fresh optimiser state
        self._ensure()
        self.step, self.d_updates = pair["steps"], pair["steps"] * pair["hyper"]["d_steps"]

    # -------------------------------------------------------------- the views
    def snapshot(self, losses: dict[str, float] | None = None, steps_per_second: float = 0.0,
                 elapsed_s: float = 0.0, views: Iterable[str] = VIEWS, done: bool = False) -> Gan2DSnapshot:  # fmt: skip
        """What the view draws, now: the points and losses, and of the dearer ``views``
        ("heat", "manifold", "gradients") those asked for (the others are None)."""
        self._ensure(optimizers=False)
        views = set(views)
        if "gradients" in views:
            fake, gradients = generator_gradients(self, self.fixed_noise)
        else:
            with torch.no_grad():
                fake, gradients = self.generator(self.fixed_noise).numpy().astype(np.float32), None
        if not np.isfinite(fake).all():  # NaN or Inf weights (e.g. after a NaN learning rate)
            raise DivergedError(f"the generator's output became NaN or infinite at step {self.step}")
        notes, self.notes = tuple(self.notes), []
        return Gan2DSnapshot(
            step=self.step,
            d_updates=self.d_updates,
            losses=dict(losses or {}),
            real=self.shown_real(),
            fake=fake,
            gradients=gradients,
            heat=heat_map(self, HEAT_SIDE) if "heat" in views else None,
            manifold=manifold(self) if "manifold" in views else None,
            steps_per_second=steps_per_second,
            elapsed_s=elapsed_s,
            notes=notes,
            done=done,
        )

    def run(self, steps: int | None = None, snapshot_every_s: float = 1 / 30,
            max_steps_per_s: float | None = None) -> Iterator[Gan2DSnapshot]:  # fmt: skip
        """Train ``steps`` more steps (None: until closed), yielding a snapshot at most every
        ``snapshot_every_s`` (and at the end). ``max_steps_per_s`` slows it down to watch;
        it may also be changed on the trainer (``self.max_steps_per_s``) while it runs, as may
        ``self.views`` (the views the snapshots hold) and ``self.heat_every`` (the heat map in
        every n-th snapshot only: it is the dearest view to compute and to draw).
        Raises ``DivergedError`` on NaN or Inf."""
        if max_steps_per_s is not None:
            self.max_steps_per_s = max_steps_per_s
        end = None if steps is None else self.step + steps
        snapshots = 0
        start = last = time.perf_counter()
        sums: dict[str, float] = {}
        count = 0
        while end is None or self.step < end:
            for key, value in self.train_step().items():
                sums[key] = sums.get(key, 0.0) + value
            count += 1
            limit = self.max_steps_per_s
            if limit:  # wait for the next step's turn, in slices so that stopping stays quick
                wait_until = time.perf_counter() + 1.0 / limit
                while (now := time.perf_counter()) < wait_until:
                    time.sleep(min(wait_until - now, 0.02))
            now = time.perf_counter()
            finished = end is not None and self.step >= end
            if now - last >= snapshot_every_s or finished:
                means = {key: total / count for key, total in sums.items()}
                views = set(self.views)
                if snapshots % max(1, self.heat_every) and not finished:
                    views.discard("heat")
                snapshots += 1
                yield self.snapshot(means, count / max(now - last, 1e-9), now - start, views, done=finished)
                last, sums, count = time.perf_counter(), {}, 0


# ---------------------------------------------------------------------- 5. the views (numpy)
def plane_grid(side: int) -> np.ndarray:
    """float32 (side*side, 2) cell centres of PLANE, row by row from the bottom (y = PLANE[0])."""
    low, high = PLANE
    step = (high - low) / side
    axis = np.linspace(low + step / 2, high - step / 2, side, dtype=np.float32)
    x, y = np.meshgrid(axis, axis)  # y varies along rows
    return np.stack([x.ravel(), y.ravel()], 1)


@torch.no_grad()
def heat_map(trainer: Gan2DTrainer, side: int = 64) -> np.ndarray:
    """D's realness in [0, 1] over a side × side grid of PLANE, float32, row 0 at y = PLANE[0]."""
    out = trainer.discriminator(torch.from_numpy(plane_grid(side)))  # (side²,)
    return realness(trainer.hyper.loss, out).reshape(side, side).numpy().astype(np.float32)


def noise_grid(kind: str, dim: int, lines: int = 13, points: int = 33) -> np.ndarray:
    """Polylines of a regular grid in noise space, float32 (L, points, dim).

    The grid covers U(-1, 1) or ±2 standard deviations of N(0, 1) in the first two noise
    dimensions, the others held at 0 (for a 1-D noise: one line).
    """
    extent = 1.0 if kind == "uniform" else 2.0
    along = np.linspace(-extent, extent, points, dtype=np.float32)
    across = np.linspace(-extent, extent, lines, dtype=np.float32)
    if dim == 1:
        return along.reshape(1, points, 1)
    polylines = np.zeros((2 * lines, points, dim), dtype=np.float32)
    polylines[:lines, :, 0] = along[None, :]  # lines of constant z₂
    polylines[:lines, :, 1] = across[:, None]
    polylines[lines:, :, 0] = across[:, None]  # lines of constant z₁
    polylines[lines:, :, 1] = along[None, :]
    return polylines


@torch.no_grad()
def manifold(trainer: Gan2DTrainer, lines: int = 13, points: int = 33) -> np.ndarray:
    """G applied to ``noise_grid``: the warped grid of noise space, float32 (L, points, 2)."""
    grid = noise_grid(trainer.hyper.noise_kind, trainer.config.noise_dim, lines, points)
    out = trainer.generator(torch.from_numpy(grid.reshape(-1, grid.shape[-1])))  # (L·points, 2)
    return out.reshape(grid.shape[0], points, 2).numpy().astype(np.float32)


def generator_gradients(trainer: Gan2DTrainer, z: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """G(z) and −∂loss_G/∂x at each of those points (where G wants to move them), float32 (n, 2) each.

    The loss is summed over the points, so each gradient is that point's own.
    """
    with torch.no_grad():
        points = trainer.generator(z)  # (n, 2)
    points.requires_grad_(True)
    with torch.enable_grad():
        n = len(points)
        loss = g_loss(trainer.hyper.loss, trainer.discriminator(points)) * n  # mean → sum
        (gradient,) = torch.autograd.grad(loss, points)
    return points.detach().numpy().astype(np.float32), (-gradient).numpy().astype(np.float32)


def timelapse(steps: int, every: int, distribution: str = "ring", seed: int = 0,
              hyper: Gan2DHyper | None = None, drawn: np.ndarray | None = None) -> Iterator[Gan2DSnapshot]:  # fmt: skip
    """A short run from scratch, a snapshot (every view) at step 0 and every ``every`` steps:
    what ``diffusion-explorer export gan --mode 2d`` renders (with ``explorer.widgets.gan_plane.render_frame``)."""
    trainer = Gan2DTrainer(hyper, distribution, drawn, seed=seed)
    yield trainer.snapshot()
    sums: dict[str, float] = {}
    count = 0
    while trainer.step < steps:
        for key, value in trainer.train_step().items():
            sums[key] = sums.get(key, 0.0) + value
        count += 1
        if trainer.step % every == 0 or trainer.step == steps:
            yield trainer.snapshot({key: total / count for key, total in sums.items()}, done=trainer.step == steps)
            sums, count = {}, 0


# ---------------------------------------------------------------------- 6. a pretrained pair
PRETRAINED_STEPS = 1200
PAIR_VERSION = 1  # part of the cache file name: bump it when the recipe changes
_pairs: dict[str, dict] = {}


def pretrained_pair(distribution: str = "ring", steps: int | None = None) -> dict:
    """G and D trained ``steps`` (default ``PRETRAINED_STEPS``) steps on ``distribution`` with
    default hyper-parameters and seed 0: {"hyper", "generator", "discriminator", "steps"}.

    Nothing is shipped: the pair is trained on first use (about 5 s on one free CPU core),
    kept for the session and cached as safetensors in ``models.data.cache_dir()``, so later
    sessions load it in milliseconds. A cache file that cannot be read or written is ignored.
    """
    for _ in pretrained_pair_progress(distribution, steps):
        pass
    return _pairs[f"{distribution}-{PRETRAINED_STEPS if steps is None else steps}"]


def pretrained_pair_progress(distribution: str = "ring", steps: int | None = None) -> Iterator[int]:
    """``pretrained_pair`` as a generator that yields the steps trained so far every 50 steps
    while it trains (nothing when the pair is in memory or in the cache), so it can be stopped."""
    steps = PRETRAINED_STEPS if steps is None else steps
    key = f"{distribution}-{steps}"
    if key in _pairs:
        return
    pair = _read_pair(key)
    if pair is None:
        hyper = Gan2DHyper()
        trainer = Gan2DTrainer(hyper, distribution=distribution, seed=0)
        while trainer.step < steps:
            trainer.train_step()
            if trainer.step % 50 == 0:
                yield trainer.step
        pair = {
            "hyper": dict(vars(hyper)),
            "generator": copy.deepcopy(trainer.generator.state_dict()),
            "discriminator": copy.deepcopy(trainer.discriminator.state_dict()),
            "steps": steps,
        }
        _write_pair(key, pair)
    _pairs[key] = pair


def _pair_path(key: str):
    from models.data import cache_dir

    return cache_dir() / f"gan2d-pair-v{PAIR_VERSION}-{key}.safetensors"


def _read_pair(key: str) -> dict | None:
    import json

    from safetensors.torch import safe_open

    try:
        with safe_open(str(_pair_path(key)), framework="pt") as file:
            meta = file.metadata()
            tensors = {name: file.get_tensor(name) for name in file.keys()}  # noqa: SIM118
        pair = {"hyper": json.loads(meta["hyper"]), "steps": int(meta["steps"]), "generator": {}, "discriminator": {}}
        for name, tensor in tensors.items():
            network, _, parameter = name.partition(".")
            pair[network][parameter] = tensor
        Gan2DTrainer(Gan2DHyper(**pair["hyper"])).load_pair(pair)  # the shapes fit
        return pair
    except Exception:  # noqa: BLE001 (missing, truncated or stale: train again)
        return None


def _write_pair(key: str, pair: dict) -> None:
    import json
    import os

    from safetensors.torch import save_file

    path = _pair_path(key)
    tensors = {f"{network}.{name}": value.contiguous() for network in ("generator", "discriminator")
               for name, value in pair[network].items()}  # fmt: skip
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")
        save_file(tensors, str(partial), metadata={"hyper": json.dumps(pair["hyper"]), "steps": str(pair["steps"])})
        os.replace(partial, path)
    except OSError:
        pass  # a read-only cache: train again next session


__all__ = [
    "DISTRIBUTIONS", "DISTRIBUTION_TITLES", "LOSSES", "NOISE_KINDS", "OPTIMIZERS", "PLANE",
    "Discriminator", "Gan2DConfig", "Gan2DHyper", "Gan2DSnapshot", "Gan2DTrainer", "Generator",
    "d_loss", "g_loss", "generator_gradients", "heat_map", "manifold", "mean_distance_to_modes",
    "noise", "noise_grid", "plane_grid", "pretrained_pair", "pretrained_pair_progress", "realness", "ring_modes", "sample", "timelapse",
]  # fmt: skip
