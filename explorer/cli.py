"""The ``diffusion-explorer`` command: open the application, or work headless.

::

    diffusion-explorer [IMAGE]                      open the application
    diffusion-explorer screenshot CHAPTER --out FILE.png
    diffusion-explorer export forward --image NAME_OR_PATH --frames N --out OUT
    diffusion-explorer export latent-walk [--weights PATH --frames N --seed S --spherical] --out OUT
    diffusion-explorer train ae|vae [--latent N --beta B --steps N ...] --out DIR
    diffusion-explorer eval vae [--samples N]
    diffusion-explorer export reverse [--sampler ddpm|ddim --steps N --eta E --seed S --digit D --guidance G --panels] --out OUT
    diffusion-explorer train ddpm [--steps N --batch-size N --lr X --seed S] --out DIR
    diffusion-explorer eval ddpm [--sampler S --steps N --samples M]
    diffusion-explorer train gan [--steps N --batch-size N --lr-d X --lr-g X --loss L --seed S] --out DIR
    diffusion-explorer eval gan [--weights PATH --samples M --seed S]
    diffusion-explorer export gan --mode 2d|images --steps N [--every K --seed S] --out OUT
    diffusion-explorer export reverse --model shapes --prompt TEXT [--negative TEXT --guidance G --steps N
                                      --sampler S --seed S --init IMAGE --strength X --panels] --out OUT
    diffusion-explorer train clip [--steps N --batch-size N ...] --out DIR
    diffusion-explorer train ldm [--part vae|unet --steps N --clip PATH --vae PATH ...] --out DIR
    diffusion-explorer eval ldm [--samples N --guidance G --steps N --weights PATH --clip PATH --vae PATH]
    diffusion-explorer eval clip [--weights PATH --images N]

Each command is one small ``_add_<command>`` function that builds its parser
and one ``_run_<command>`` function that does the work and returns an exit code.
Errors print one line, ``diffusion-explorer: error: ...``, and exit with 2;
exports are atomic, so a failed command leaves no output behind. The headless
exports import neither Qt nor torch; the model commands import torch when they run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterable
from contextlib import closing
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from explorer import __version__
from explorer.export import ExportError, export_format, iter_export, params_path
from models.schedules import BETA_SCHEDULES

PROG = "diffusion-explorer"
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class _UsageError(Exception):
    """A command-line mistake found by argparse (one line)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a mistake in one line instead of the full usage."""

    def error(self, message: str):  # type: ignore[override]
        raise _UsageError(f"{message} (see '{self.prog} --help')")


# ---------------------------------------------------------------------------
# Entry point


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 success, 2 error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if _opens_app(argv, parser):
        from explorer.app import run_app

        return run_app(argv)
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        return _fail(str(exc))
    except SystemExit as exc:  # --help and --version print and exit
        return exc.code if isinstance(exc.code, int) else 0
    if args.command is None:
        return _fail(f"choose a command (see '{PROG} --help')")
    try:
        return args.run(args)
    except (ExportError, ValueError, OSError) as exc:  # ImageLoadError is a ValueError
        return _fail(" ".join(str(exc).split()) or type(exc).__name__)
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED


def _opens_app(argv: list[str], parser: argparse.ArgumentParser) -> bool:
    """No arguments, or an image file to open first: start the application."""
    if not argv:
        return True
    return argv[0] not in _command_names(parser) and Path(argv[0]).is_file()


def _command_names(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: one sub-parser per command."""
    parser = _Parser(
        prog=PROG,
        description="See and touch every stage of an image generator. "
        "Without a command, opens the application (optionally on IMAGE).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_screenshot(commands)
    export = commands.add_parser(
        "export",
        help="write a sequence of frames (PNG folder, GIF, WebP, APNG, MP4, contact sheet)",
        description="Write a sequence of frames. OUT picks the format: a folder (numbered "
        "PNGs), .gif, .webp, .apng, .mp4, or .png with --sheet. The parameters used "
        "are written as JSON beside it.",
    )
    sequences = export.add_subparsers(dest="sequence", metavar="SEQUENCE", required=True)
    _add_export_forward(sequences)
    _add_export_latent_walk(sequences)
    _add_export_reverse(sequences)
    _add_export_gan(sequences)
    train = commands.add_parser(
        "train",
        help="train a model on generated data and save it (safetensors, JSON config, card)",
        description="Train a model and save DIR/NAME.safetensors, NAME.json and the NAME.md card.",
    )
    trainable = train.add_subparsers(dest="model", metavar="MODEL", required=True)
    _add_train_autoencoder(trainable)
    _add_train_ddpm(trainable)
    _add_train_gan(trainable)
    _add_train_clip(trainable)
    _add_train_ldm(trainable)
    evaluate = commands.add_parser(
        "eval",
        help="measure a model's quality and print it as JSON",
        description="Measure a model on fresh generated data and print the numbers as JSON.",
    )
    measurable = evaluate.add_subparsers(dest="model", metavar="MODEL", required=True)
    _add_eval_vae(measurable)
    _add_eval_ddpm(measurable)
    _add_eval_gan(measurable)
    _add_eval_ldm(measurable)
    _add_eval_clip(measurable)
    return parser


# ---------------------------------------------------------------------------
# Argument types


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {text}")
    return value


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[x×X]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1400x860, got {text!r}")
    width, height = int(match[1]), int(match[2])
    if not (200 <= width <= 8000 and 200 <= height <= 8000):
        raise argparse.ArgumentTypeError(f"width and height must be 200 to 8000, got {text}")
    return width, height


def _unwritable_folder(out: Path) -> str:
    """Why weights cannot be written into the folder ``out`` (made if missing), or ""."""
    if out.exists() and not out.is_dir():
        return f"cannot write into '{out}': it is a file, not a folder"
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not os.access(existing, os.W_OK):
        return f"cannot write into '{out}': '{existing}' is not writable"
    return ""


def _train_and_report(name: str, steps: int, diverged: str, train: Callable[[str, Callable[[int], None]], Any]) -> int:
    """Run ``train(command, on_step)`` with a progress bar and say how it went in one line.

    ``train`` returns a result with ``steps``, ``losses``, ``wall_s``, ``cpu_s``, ``path``
    and ``interrupted`` (Ctrl+C keeps the weights so far); ``diverged`` formats the
    DivergedError's message.
    """
    from models.training import DivergedError

    command = " ".join([PROG, "train", *sys.argv[2:]]) if sys.argv[1:2] == ["train"] else ""
    progress = _Progress(steps, sys.stderr)
    try:
        result = train(command, progress.update)
    except DivergedError as exc:
        progress.done()
        return _fail(diverged.format(exc))
    progress.done()
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items())
    timing = f"{result.wall_s:.0f} s, {result.cpu_s:.0f} s CPU"
    if result.interrupted:
        print(f"Stopped at step {result.steps} of {steps} ({timing}): {losses}; weights so far in {result.path}")
        return EXIT_INTERRUPTED
    print(f"Trained {name} for {result.steps} steps ({timing}): {losses}; weights in {result.path}")
    return 0


# ---------------------------------------------------------------------------
# screenshot


def _add_screenshot(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "screenshot",
        help="render a chapter offscreen to a PNG",
        description="Render the application on CHAPTER, without showing a window, to a PNG.",
    )
    p.add_argument("chapter", metavar="CHAPTER", help="chapter name, e.g. pixels or noise")
    p.add_argument("--out", required=True, type=Path, metavar="FILE.png")
    p.add_argument("--size", type=_size, default=(1400, 860), metavar="WxH",
                   help="window size (default 1400x860)")
    p.add_argument("--image", metavar="NAME_OR_PATH",
                   help="a built-in image name or an image file to show")
    p.add_argument("--tab", metavar="TITLE",
                   help="for a chapter with tabs: the tab to show, by title or its start (e.g. reverse)")
    p.set_defaults(run=_run_screenshot)


def _run_screenshot(args: argparse.Namespace) -> int:
    if not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from explorer.chapters import chapter_names

    names = chapter_names()
    if args.chapter not in names:
        return _fail(f"unknown chapter {args.chapter!r} (choose from: {', '.join(names)})")
    out: Path = args.out
    if out.suffix.lower() != ".png":
        return _fail(f"a screenshot is a PNG file: give --out a name ending in .png, not '{out}'")
    if not out.parent.is_dir():
        return _fail(f"cannot write '{out}': the folder '{out.parent}' does not exist")
    from explorer.app import render_screenshot

    _hide_offscreen_chatter()
    # Render beside the destination, then rename: a failure leaves nothing.
    tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}.part.png"
    try:
        render_screenshot(args.chapter, tmp, size=args.size, image=args.image, tab=args.tab)
        os.replace(tmp, out)
    except ValueError as error:  # no such tab
        return _fail(str(error))
    finally:
        tmp.unlink(missing_ok=True)
    from PIL import Image

    with Image.open(out) as shot:  # the window may not shrink below its minimum size
        width, height = shot.size
    print(f"Wrote {out} ({width}×{height}, chapter {args.chapter})")
    return 0


def _hide_offscreen_chatter() -> None:
    """Drop the offscreen platform's harmless "does not support ..." notices."""
    from PySide6.QtCore import qInstallMessageHandler

    previous = None

    def handler(mode, context, message: str) -> None:
        if "This plugin does not support" in message:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            print(message, file=sys.stderr)

    previous = qInstallMessageHandler(handler)


# ---------------------------------------------------------------------------
# export: shared options and writing


def _add_output_options(p: argparse.ArgumentParser) -> None:
    """--out, --fps, --sheet: every export sequence has them."""
    p.add_argument("--out", required=True, type=Path, metavar="OUT",
                   help="folder, .gif, .webp, .apng, .mp4, or .png with --sheet")
    p.add_argument("--fps", type=_positive_float, default=10.0,
                   help="frames per second of animations and video (default 10)")
    p.add_argument("--sheet", action="store_true",
                   help="write one contact-sheet PNG of all frames (OUT ends in .png)")


def _write_sequence(
    frames: Iterable[np.ndarray], count: int, params: dict, args: argparse.Namespace
) -> int:
    """Export ``frames``, with a progress bar on a terminal, and print a summary."""
    progress = _Progress(count, sys.stderr)
    with closing(iter_export(frames, args.out, params, fps=args.fps, sheet=args.sheet)) as export:
        written = 0
        for written in export:
            progress.update(written)
    progress.done()
    fmt = export_format(args.out, args.sheet)
    if fmt == "folder":
        what = f"{written} PNG frames to {args.out}"
    elif fmt == "sheet":
        what = f"a contact sheet of {written} frames to {args.out}"
    else:
        what = f"{written} frames to {args.out} ({fmt.upper()}, {args.fps:g} fps)"
    print(f"Wrote {what}; parameters in {params_path(args.out, args.sheet)}")
    return 0


def _check_output(args: argparse.Namespace) -> None:
    """Fail on an unknown OUT format before any work, in command-line words."""
    if args.out.suffix.lower() == ".png" and not args.sheet and not args.out.is_dir():
        raise ExportError(
            f"'{args.out}' is a single image: add --sheet for a contact sheet, "
            "or give a folder name for numbered PNG frames"
        )
    export_format(args.out, args.sheet)


class _Progress:
    """A one-line text progress bar, drawn only when the stream is a terminal."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO):
        self.total = max(1, total)
        self.stream = stream
        self.shown = stream.isatty()

    def update(self, count: int) -> None:
        if self.shown:
            filled = round(self.WIDTH * count / self.total)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {count}/{self.total}")
            self.stream.flush()

    def done(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------------
# export forward


def _add_export_forward(sequences: argparse._SubParsersAction) -> None:
    p = sequences.add_parser(
        "forward",
        help="forward diffusion of an image, from t=0 (clean) to t=T (noise)",
        description="Forward diffusion x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε at evenly spaced t "
        "from 0 to T, with one seeded ε.",
    )
    p.add_argument("--image", required=True, metavar="NAME_OR_PATH",
                   help="a built-in image name (e.g. coffee) or an image file")
    p.add_argument("--frames", required=True, type=_positive_int, metavar="N",
                   help="number of frames (at least 2, at most T+1)")
    p.add_argument("--schedule", choices=BETA_SCHEDULES, default="linear",
                   help="β schedule (default linear)")
    p.add_argument("--timesteps", type=_positive_int, default=1000, metavar="T",
                   help="number of diffusion steps T (default 1000)")
    p.add_argument("--beta-start", type=_probability, default=1e-4, metavar="B",
                   help="first β (default 0.0001; ignored by cosine)")
    p.add_argument("--beta-end", type=_probability, default=0.02, metavar="B",
                   help="last β (default 0.02; ignored by cosine)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise ε (default 0)")
    _add_output_options(p)
    p.set_defaults(run=_run_export_forward)


def _run_export_forward(args: argparse.Namespace) -> int:
    from models.images import open_image
    from models.schedules import NoiseSchedule, forward_frames, frame_timesteps

    schedule = NoiseSchedule.from_config(
        args.schedule, args.timesteps, args.beta_start, args.beta_end
    )
    steps = frame_timesteps(args.timesteps, args.frames)
    _check_output(args)
    image = open_image(args.image)
    params = {
        "sequence": "forward",
        "image": image.name,
        "image_path": str(image.path) if image.path else None,
        "schedule": args.schedule,
        "timesteps": args.timesteps,
        "beta_start": args.beta_start,
        "beta_end": args.beta_end,
        "seed": args.seed,
        "t": steps,
    }
    frames = (frame for _, frame in forward_frames(image.pixels, schedule, args.frames, args.seed))
    return _write_sequence(frames, len(steps), params, args)


# ---------------------------------------------------------------------------
# Models (torch is imported only when these commands run)

_DEVICES = ("auto", "cpu", "cuda", "mps")


def _add_device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=_DEVICES, default="auto",
                   help="where torch runs (default auto: CUDA or MPS when present, else CPU)")


def _device(name: str):
    """The torch device for --device, using every CPU core; ValueError when it is missing here."""
    from models.device import available_devices, pick_device, set_torch_threads

    set_torch_threads()
    if name != "auto" and name not in available_devices():
        raise ValueError(f"there is no {name} device here (available: {', '.join(available_devices())})")
    return pick_device(None if name == "auto" else name)


# ---------------------------------------------------------------------------
# export latent-walk


def _add_export_latent_walk(sequences: argparse._SubParsersAction) -> None:
    p = sequences.add_parser(
        "latent-walk",
        help="decode a straight (or spherical) path between two digits' latent codes",
        description="Encode two fresh digits with an autoencoder, interpolate between their "
        "codes (linearly, or along the sphere with --spherical) and decode each step.",
    )
    p.add_argument("--weights", default="vae-16d", metavar="PATH",
                   help="autoencoder weights (.safetensors), or a shipped name: "
                   "ae-2d, vae-2d, vae-16d (default vae-16d)")
    p.add_argument("--frames", type=_positive_int, default=16, metavar="N",
                   help="number of frames, both digits included (at least 2; default 16)")
    p.add_argument("--seed", type=int, default=0,
                   help="picks the two fresh digits (default 0)")
    p.add_argument("--digits", type=int, nargs=2, choices=range(10), metavar=("A", "B"),
                   help="walk from a digit A to a digit B (default: two random digits of different classes)")
    p.add_argument("--spherical", action="store_true",
                   help="spherical interpolation (slerp) instead of a straight line")
    p.add_argument("--scale", type=_positive_int, default=4, metavar="K",
                   help="enlarge each 28×28 frame K times, nearest neighbour (default 4)")
    _add_output_options(p)
    p.set_defaults(run=_run_export_latent_walk)


def _run_export_latent_walk(args: argparse.Namespace) -> int:
    if args.frames < 2:
        return _fail(f"a walk needs at least 2 frames, got {args.frames}")
    if args.scale > 64:
        return _fail(f"--scale is at most 64, got {args.scale}")
    if args.seed < 0:
        return _fail(f"--seed must be at least 0, got {args.seed}")
    _check_output(args)
    from models.autoencoder import FRESH_SEED, latent_walk, load_autoencoder
    from models.data import make_digits

    model, _ = load_autoencoder(args.weights, device=_device("cpu"))
    images, labels = make_digits(200, seed=FRESH_SEED + args.seed)
    first, second = _pick_digits(labels, args.digits, args.seed)
    walk = latent_walk(model, images[first], images[second], args.frames, spherical=args.spherical)
    big = walk.repeat(args.scale, axis=1).repeat(args.scale, axis=2)  # (frames, 28K, 28K)
    params = {
        "sequence": "latent-walk",
        "weights": str(args.weights),
        "latent_dim": model.config.latent_dim,
        "variational": model.config.variational,
        "seed": args.seed,
        "spherical": args.spherical,
        "interpolation": "slerp" if args.spherical else "lerp",
        "scale": args.scale,
        "digits": {"labels": [int(labels[first]), int(labels[second])],
                   "indices": [int(first), int(second)],
                   "from": f"make_digits(200, seed={FRESH_SEED + args.seed})"},
    }
    return _write_sequence(iter(big), len(big), params, args)


def _pick_digits(labels: np.ndarray, digits: list[int] | None, seed: int) -> tuple[int, int]:
    """Indices of the two digits to walk between."""
    if digits is not None:
        a, b = digits
        first = int(np.flatnonzero(labels == a)[0])
        second = int(np.flatnonzero((labels == b) & (np.arange(len(labels)) != first))[0])
        return first, second
    rng = np.random.default_rng(seed)
    first = int(rng.integers(len(labels)))
    second = int(rng.choice(np.flatnonzero(labels != labels[first])))
    return first, second


# ---------------------------------------------------------------------------
# train ae|vae


def _add_train_autoencoder(models: argparse._SubParsersAction) -> None:
    for kind, words in (("ae", "a plain convolutional autoencoder"),
                        ("vae", "a variational autoencoder (VAE)")):
        p = models.add_parser(
            kind,
            help=f"{words} on generated 28×28 digits",
            description=f"Train {words} on generated 28×28 digits and save DIR/NAME.safetensors, "
            "NAME.json and the NAME.md card (with quality metrics on fresh digits). "
            "Ctrl+C stops early and saves the steps trained so far (exit code 130).",
        )
        p.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the weights")
        p.add_argument("--name", metavar="NAME", help=f"file name (default {kind}-<latent>d)")
        p.add_argument("--latent", type=_positive_int, default=2, metavar="N",
                       help="size of the latent code (default 2, the map; 16 for better digits)")
        if kind == "vae":
            p.add_argument("--beta", type=_non_negative_float, default=1.0, metavar="B",
                           help="weight of the KL term (default 1)")
        p.add_argument("--label-weight", type=_non_negative_float, default=None, metavar="W",
                       help="weight of a linear digit classifier on the code, which sorts a 2-D map by digit "
                       "(default 50 for --latent 2, as the shipped ae-2d and vae-2d; 0 otherwise)")
        p.add_argument("--steps", type=_positive_int, default=2000, metavar="N",
                       help="optimisation steps (default 2000)")
        p.add_argument("--batch-size", type=_positive_int, default=128, metavar="N",
                       help="digits per step (default 128)")
        p.add_argument("--lr", type=_positive_float, default=2e-3, metavar="X",
                       help="Adam's learning rate (default 0.002)")
        p.add_argument("--data", type=_positive_int, default=60_000, metavar="N",
                       help="number of training digits (default 60000; cached after the first run)")
        p.add_argument("--seed", type=int, default=0, help="seed of the data, weights and noise (default 0)")
        p.add_argument("--no-eval", action="store_true", help="skip the quality metrics in the card")
        _add_device_option(p)
        p.set_defaults(run=_run_train_autoencoder, variational=kind == "vae")


def _run_train_autoencoder(args: argparse.Namespace) -> int:
    out: Path = args.out
    if problem := _unwritable_folder(out):
        return _fail(problem)
    if args.batch_size > args.data:
        return _fail(f"--batch-size {args.batch_size} is larger than --data {args.data}")
    if args.latent > 512:
        return _fail(f"--latent is at most 512, got {args.latent}")
    if args.seed < 0:
        return _fail(f"--seed must be at least 0, got {args.seed}")
    from models.autoencoder import LABEL_WEIGHT_2D, AutoencoderConfig, Recipe, train_autoencoder

    device = _device(args.device)
    label_weight = args.label_weight if args.label_weight is not None else (LABEL_WEIGHT_2D if args.latent == 2 else 0.0)
    config = AutoencoderConfig(latent_dim=args.latent, variational=args.variational,
                               beta=getattr(args, "beta", 1.0), label_weight=label_weight)
    recipe = Recipe(config, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                    data_count=args.data, seed=args.seed)
    name = args.name or config.name
    return _train_and_report(
        name, args.steps, "training diverged: {}; try a smaller --lr",
        lambda command, on_step: train_autoencoder(recipe, out, name=name, device=device, evaluate=not args.no_eval,
                                                   command=command, on_snapshot=lambda s: on_step(s.step)),
    )


# ---------------------------------------------------------------------------
# eval vae


def _add_eval_vae(models: argparse._SubParsersAction) -> None:
    p = models.add_parser(
        "vae",
        help="reconstruction accuracy of the 16-D VAE, k-NN accuracy of the 2-D VAE's latent",
        description="On fresh digits: recon_accuracy (the evaluator's label of the 16-D VAE's "
        "reconstruction is the true digit), recon_mse, and latent_knn_accuracy (5-NN class "
        "accuracy in the 2-D VAE's latent space), with their goals.",
    )
    p.add_argument("--weights", default="vae-16d", metavar="PATH",
                   help="the autoencoder whose reconstructions are judged (default vae-16d)")
    p.add_argument("--map-weights", default="vae-2d", metavar="PATH",
                   help="the autoencoder whose latent space is judged by 5-NN (default vae-2d)")
    p.add_argument("--samples", type=_positive_int, default=2000, metavar="N",
                   help="digits reconstructed and classified by 5-NN (default 2000)")
    p.add_argument("--knn-fit", type=_positive_int, default=5000, metavar="N",
                   help="digits whose codes are the 5-NN neighbours (default 5000)")
    p.add_argument("--seed", type=int, default=None, metavar="S",
                   help="seed of the fresh digits (default: the models' held-out seed)")
    _add_device_option(p)
    p.set_defaults(run=_run_eval_vae)


def _run_eval_vae(args: argparse.Namespace) -> int:
    from models.autoencoder import (
        FRESH_SEED, QUALITY_GOALS, latent_knn_accuracy, load_autoencoder, load_evaluator,
        reconstruction_metrics,
    )

    if args.knn_fit < 5:
        return _fail(f"--knn-fit must be at least 5 (the 5 nearest neighbours), got {args.knn_fit}")
    seed = FRESH_SEED if args.seed is None else args.seed
    device = _device(args.device)
    model, _ = load_autoencoder(args.weights, device=device)
    map_model, _ = load_autoencoder(args.map_weights, device=device)
    evaluator = load_evaluator(device)
    report: dict = reconstruction_metrics(model, args.samples, seed + 1, evaluator)
    report.setdefault("recon_accuracy", None)
    report["latent_knn_accuracy"] = latent_knn_accuracy(map_model, args.knn_fit, args.samples, seed)
    report["goals"] = dict(QUALITY_GOALS)
    report["meets_goals"] = {
        key: report[key] is not None and report[key] >= goal for key, goal in QUALITY_GOALS.items()
    }
    report["counts"] = {"samples": args.samples, "knn_fit": args.knn_fit, "k": 5}
    report["seed"] = seed
    report["weights"] = str(args.weights)
    report["map_weights"] = str(args.map_weights)
    if evaluator is None:
        report["note"] = "no evaluator weights found: recon_accuracy needs models/evaluator.py's shipped weights"
    print(json.dumps(report, indent=2))
    return 0


# ---------------------------------------------------------------------------
# export reverse

_DDPM_MODELS = {"digits": "ddpm-digits"}  # --model NAME -> shipped weights
_DEFAULT_GUIDANCE = 2.0  # models.diffusion.DEFAULT_GUIDANCE (not imported here: torch)
_SHAPES_GUIDANCE, _SHAPES_MAX_GUIDANCE, _SHAPES_STEPS = 5.0, 15.0, 30  # models.ldm's defaults (torch)
_TRAIN_TIMESTEPS = 1000  # T of the shipped DDPM


def _add_export_reverse(sequences: argparse._SubParsersAction) -> None:
    p = sequences.add_parser(
        "reverse",
        help="reverse diffusion: a digit (or a shapes scene from a prompt) coming out of pure noise",
        description="--model digits: sample a digit with the DDPM from seeded pure noise and write x_t at "
        "every step, then the final image (steps + 1 frames); with --panels each frame is "
        "x_t | predicted noise ε̂ | predicted x̂₀. --model shapes: text to image with the latent diffusion "
        "pipeline (CLIP text encoder, U-Net in the VAE's 8×8×4 latent space, VAE decoder) from --prompt, "
        "one picture per step, then the final decoded image; with --init, image to image. "
        "The same seed gives identical frames.",
    )
    p.add_argument("--model", choices=sorted([*_DDPM_MODELS, "shapes"]), default="digits",
                   help="digits: the digits DDPM (default); shapes: the text-to-image pipeline")
    p.add_argument("--weights", metavar="PATH",
                   help="DDPM weights (digits) or latent U-Net weights (shapes), .safetensors, "
                   "instead of the shipped ones")
    p.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddim",
                   help="DDPM (ancestral, noisy steps) or DDIM (default; deterministic with η = 0)")
    p.add_argument("--steps", type=_positive_int, metavar="N",
                   help=f"sampling steps, at most {_TRAIN_TIMESTEPS} (default: digits 50 for DDIM, 1000 for DDPM; "
                   f"shapes {_SHAPES_STEPS})")
    p.add_argument("--eta", type=_non_negative_float, default=0.0, metavar="E",
                   help="DDIM's η: 0 deterministic (default), 1 as noisy as DDPM")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    p.add_argument("--digit", type=int, choices=range(10), metavar="D",
                   help="digits: ask for this digit 0–9 (default: no class, an unconditional sample)")
    p.add_argument("--guidance", type=_non_negative_float, metavar="G",
                   help=f"classifier-free guidance scale: digits with --digit (default {_DEFAULT_GUIDANCE:g}; "
                   f"1 = none), shapes 0 … {_SHAPES_MAX_GUIDANCE:g} (default {_SHAPES_GUIDANCE:g}; "
                   "0 ignores the prompt)")
    p.add_argument("--prompt", metavar="TEXT",
                   help="shapes: what to draw, e.g. 'a red circle on a blue background' (default '': unconditional); "
                   "unknown words are named in a warning and ignored")
    p.add_argument("--negative", metavar="TEXT", help="shapes: a negative prompt, what guidance pushes away from")
    p.add_argument("--init", metavar="IMAGE",
                   help="shapes: image to image from this image file (or built-in name), resized and centre-cropped "
                   "to 32×32")
    p.add_argument("--strength", type=float, metavar="X",
                   help="shapes with --init: how much noise, in (0, 1] (default 0.75; 1 = pure noise)")
    p.add_argument("--clip", metavar="PATH", help="shapes: CLIP weights (.safetensors) instead of the shipped ones")
    p.add_argument("--vae", metavar="PATH", help="shapes: VAE weights (.safetensors) instead of the shipped ones")
    p.add_argument("--panels", action="store_true",
                   help="digits: x_t | ε̂ | x̂₀ side by side; shapes: z_t decoded | ẑ₀ decoded")
    p.add_argument("--scale", type=_positive_int, metavar="K",
                   help="enlarge each picture K times, nearest neighbour (default 4 for 28×28 digits, "
                   "8 for 32×32 shapes)")
    _add_device_option(p)
    _add_output_options(p)
    p.set_defaults(run=_run_export_reverse)


def _check_sampling(args: argparse.Namespace) -> None:
    """Resolve --steps and refuse option mixes that make no sense (ValueError: one line)."""
    if args.steps is None:
        args.steps = _TRAIN_TIMESTEPS if args.sampler == "ddpm" else 50
    if args.steps > _TRAIN_TIMESTEPS:
        raise ValueError(f"--steps is at most {_TRAIN_TIMESTEPS} (the model's training steps), got {args.steps}")
    if args.sampler == "ddpm" and args.eta != 0:
        raise ValueError("--eta is a DDIM setting: use --sampler ddim, or leave --eta out")


def _run_export_reverse(args: argparse.Namespace) -> int:
    if args.model == "shapes":
        return _run_export_reverse_shapes(args)
    for option in ("prompt", "negative", "init", "strength", "clip", "vae"):
        if getattr(args, option) is not None:
            return _fail(f"--{option} is for --model shapes (text to image)")
    if args.scale is None:
        args.scale = 4
    _check_sampling(args)
    if args.guidance is not None and args.digit is None:
        return _fail("--guidance needs --digit (guidance pulls the sample towards a digit)")
    if args.scale > 64:
        return _fail(f"--scale is at most 64, got {args.scale}")
    _check_output(args)
    from models.diffusion import load_ddpm, reverse_images, sample

    device = _device(args.device)
    weights = args.weights or _DDPM_MODELS[args.model]
    model, _ = load_ddpm(weights, device=device)
    guidance = _DEFAULT_GUIDANCE if args.guidance is None else args.guidance
    scheduler = model.scheduler(args.sampler, eta=args.eta)
    scheduler.set_timesteps(args.steps)
    timesteps = [int(t) for t in scheduler.timesteps]
    labels = None if args.digit is None else [args.digit]
    frames = sample(model, scheduler, args.steps, batch=1, seed=args.seed, class_labels=labels,
                    guidance=guidance)
    params = {
        "sequence": "reverse",
        "model": args.model if args.weights is None else None,
        "weights": str(weights),
        "sampler": args.sampler,
        "steps": args.steps,
        "eta": args.eta if args.sampler == "ddim" else None,
        "seed": args.seed,
        "digit": args.digit,
        "guidance": guidance if args.digit is not None else None,
        "schedule": model.config.beta_schedule,
        "train_timesteps": model.config.num_train_timesteps,
        "t": timesteps,
        "frames_show": "x_t at each t, then the final image"
        + (" | predicted noise ε̂ (−3…3) | predicted x̂₀" if args.panels else ""),
        "panels": args.panels,
        "scale": args.scale,
    }
    images = reverse_images(frames, panels=args.panels, scale=args.scale)
    return _write_sequence(images, args.steps + 1, params, args)


def _run_export_reverse_shapes(args: argparse.Namespace) -> int:
    """export reverse --model shapes: text (or image) to image, one picture per step, then the final image."""
    if args.digit is not None:
        return _fail("--digit is for --model digits; describe the scene with --prompt")
    guidance = _SHAPES_GUIDANCE if args.guidance is None else args.guidance
    if not 0 <= guidance <= _SHAPES_MAX_GUIDANCE:
        return _fail(f"--guidance must be between 0 and {_SHAPES_MAX_GUIDANCE:g}, got {guidance:g}")
    steps = args.steps or _SHAPES_STEPS
    if steps > _TRAIN_TIMESTEPS:
        return _fail(f"--steps is at most {_TRAIN_TIMESTEPS} (the model's training steps), got {steps}")
    if args.sampler == "ddpm" and args.eta != 0:
        return _fail("--eta is a DDIM setting: use --sampler ddim, or leave --eta out")
    if args.strength is not None and args.init is None:
        return _fail("--strength needs --init (the image to start from)")
    strength = 0.75 if args.strength is None else args.strength
    if not 0 < strength <= 1:
        return _fail(f"--strength must be more than 0 and at most 1, got {args.strength:g}")
    if args.seed < 0:
        return _fail(f"--seed must be at least 0, got {args.seed}")
    scale = 8 if args.scale is None else args.scale
    if scale > 64:
        return _fail(f"--scale is at most 64, got {scale}")
    _check_output(args)
    from models.images import open_image
    from models.ldm import generate_frames, load_pipeline

    init = None
    if args.init is not None:
        loaded = open_image(args.init)  # ImageLoadError (one line) for anything that is not an image
        init = _scene_from_image(loaded.pixels)
    device = _device(args.device)
    weights = _pipeline_weights(args)
    pipe = load_pipeline(weights["unet"], weights["clip"], weights["vae"], device=device)
    prompt, negative = args.prompt or "", args.negative or ""
    tokens = pipe.tokens(prompt)
    for option, text in (("--prompt", prompt), ("--negative", negative)):
        if message := pipe.tokens(text).message():
            print(f"{PROG}: warning: {option}: {message}", file=sys.stderr)
    frames = list(generate_frames(pipe, prompt, negative=negative, guidance=guidance, num_steps=steps,
                                  sampler=args.sampler, eta=args.eta, seed=args.seed, init_image=init,
                                  strength=strength, decode=True, attention=False))
    config = pipe.unet.config
    params = {
        "sequence": "reverse",
        "model": "shapes",
        "weights": weights,
        "prompt": prompt,
        "words": tokens.words,
        "unknown_words": tokens.unknown,
        "negative": negative,
        "guidance": guidance,
        "sampler": args.sampler,
        "steps": steps,
        "eta": args.eta if args.sampler == "ddim" else None,
        "seed": args.seed,
        "init": None if args.init is None else str(args.init),
        "strength": strength if args.init is not None else None,
        "schedule": config.beta_schedule,
        "train_timesteps": config.num_train_timesteps,
        "t": [frame.t for frame in frames],
        "frames_show": ("z_t decoded | ẑ₀ decoded" if args.panels else "z_t decoded")
        + " at each step, then the final decoded image",
        "panels": args.panels,
        "scale": scale,
    }
    pictures = _text_frame_pictures(frames, args.panels, scale)
    return _write_sequence(iter(pictures), len(pictures), params, args)


def _pipeline_weights(args: argparse.Namespace) -> dict[str, str]:
    """The weights of each part of the text-to-image pipeline: --weights (the U-Net), --clip, --vae or the shipped."""
    return {"unet": args.weights or "ldm-shapes", "clip": args.clip or "clip-shapes", "vae": args.vae or "vae-shapes"}


def _scene_from_image(pixels: np.ndarray) -> np.ndarray:
    """An RGB image as a uint8 (32, 32, 3) scene: scaled so its shorter side is 32, the middle square kept."""
    from PIL import Image, ImageOps

    return np.asarray(ImageOps.fit(Image.fromarray(pixels), (32, 32), Image.Resampling.LANCZOS), dtype=np.uint8)


def _text_frame_pictures(frames: list, panels: bool, scale: int) -> list[np.ndarray]:
    """The pictures the Text to image chapter exports (one renderer for the app and the command line)."""
    from explorer.chapters.text2img.frames_export import text_frame_images

    return text_frame_images(frames, panels=panels, scale=scale)


# ---------------------------------------------------------------------------
# train ddpm


def _add_train_ddpm(models: argparse._SubParsersAction) -> None:
    p = models.add_parser(
        "ddpm",
        help="the class-conditional digits DDPM (a U-Net that predicts noise)",
        description="Train the digits DDPM by the shipped recipe (ε-prediction with min-SNR weights, "
        "AdamW with warm-up and cosine decay, EMA weights, labels dropped to the null class one time "
        "in ten for classifier-free guidance) and save DIR/NAME.safetensors, NAME.json and the NAME.md "
        "card with DDPM-1000 and DDIM-50/20/10 quality metrics. Ctrl+C stops early and saves the "
        "steps trained so far (exit code 130).",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the weights")
    p.add_argument("--name", default="ddpm-digits", metavar="NAME", help="file name (default ddpm-digits)")
    p.add_argument("--steps", type=_positive_int, metavar="N", help="optimisation steps (default: the recipe's)")
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="digits per step (default: the recipe's)")
    p.add_argument("--lr", type=_positive_float, metavar="X", help="AdamW's peak learning rate (default: the recipe's)")
    p.add_argument("--data", type=_positive_int, metavar="N",
                   help="number of training digits (default: the recipe's 60000; cached after the first run)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, weights and noise (default 0)")
    p.add_argument("--checkpoint", type=Path, metavar="FILE",
                   help="save model, EMA and optimiser here every 5 minutes, and resume from it if it exists")
    p.add_argument("--eval-samples", type=_positive_int, default=256, metavar="M",
                   help="samples per sampler for the card's metrics (default 256)")
    p.add_argument("--no-eval", action="store_true", help="skip the quality metrics in the card")
    _add_device_option(p)
    p.set_defaults(run=_run_train_ddpm)


def _run_train_ddpm(args: argparse.Namespace) -> int:
    out: Path = args.out
    if problem := _unwritable_folder(out):
        return _fail(problem)
    if args.seed < 0:
        return _fail(f"--seed must be at least 0, got {args.seed}")
    from dataclasses import replace

    from models.diffusion import SHIPPED_RECIPE, train_ddpm

    changes = {"seed": args.seed}
    for option, field in (("steps", "steps"), ("batch_size", "batch_size"), ("lr", "lr"), ("data", "data_count")):
        if getattr(args, option) is not None:
            changes[field] = getattr(args, option)
    recipe = replace(SHIPPED_RECIPE, **changes)
    if recipe.batch_size > recipe.data_count:
        return _fail(f"the batch size {recipe.batch_size} is larger than the data ({recipe.data_count} digits)")
    device = _device(args.device)
    return _train_and_report(
        args.name, recipe.steps, "training diverged: {}; try a smaller --lr",
        lambda command, on_step: train_ddpm(recipe, out, name=args.name, device=device, evaluate=not args.no_eval,
                                            eval_samples=args.eval_samples, command=command,
                                            checkpoint=args.checkpoint, on_snapshot=lambda s: on_step(s.step)),
    )


# ---------------------------------------------------------------------------
# eval ddpm


def _add_eval_ddpm(models: argparse._SubParsersAction) -> None:
    p = models.add_parser(
        "ddpm",
        help="the evaluator's verdict on the DDPM's digits",
        description="Sample M unconditional digits and M class-conditional ones (digits 0–9 in turn, "
        "with guidance) and print JSON: confident_fraction, real_confident_fraction, class_entropy "
        "(nats), fd, fd_real, conditional_accuracy, with the goals (confident ≥ 0.85 × real, "
        "fd ≤ 3 × fd_real, entropy ≥ 0.95·ln 10, conditional accuracy ≥ 0.95).",
    )
    p.add_argument("--weights", default="ddpm-digits", metavar="PATH",
                   help="DDPM weights (.safetensors) or the shipped name ddpm-digits (default)")
    p.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddim", help="sampler (default ddim)")
    p.add_argument("--steps", type=_positive_int, metavar="N",
                   help="sampling steps (default 50 for DDIM, 1000 for DDPM)")
    p.add_argument("--eta", type=_non_negative_float, default=0.0, metavar="E", help="DDIM's η (default 0)")
    p.add_argument("--samples", type=_positive_int, default=256, metavar="M",
                   help="digits sampled for each measure (default 256; at least 10)")
    p.add_argument("--guidance", type=_non_negative_float, default=_DEFAULT_GUIDANCE, metavar="G",
                   help=f"guidance scale of the conditional samples (default {_DEFAULT_GUIDANCE:g})")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="seed of the sampling noise")
    _add_device_option(p)
    p.set_defaults(run=_run_eval_ddpm)


def _run_eval_ddpm(args: argparse.Namespace) -> int:
    _check_sampling(args)
    if args.samples < 10:
        return _fail(f"--samples must be at least 10 (one of each digit), got {args.samples}")
    from models.diffusion import EVAL_SEED, load_ddpm, quality_metrics

    device = _device(args.device)
    model, _ = load_ddpm(args.weights, device=device)
    seed = EVAL_SEED if args.seed is None else args.seed
    report = quality_metrics(model, args.sampler, args.steps, args.samples, eta=args.eta,
                             guidance=args.guidance, seed=seed)
    report["weights"] = str(args.weights)
    report["seed"] = seed
    print(json.dumps(report, indent=2))
    return 0


# ---------------------------------------------------------------------------
# train gan

_GAN_LOSSES = ("non-saturating", "least-squares", "hinge")  # models.gan.LOSSES (not imported here: torch)


def _add_train_gan(models: argparse._SubParsersAction) -> None:
    p = models.add_parser(
        "gan",
        help="the digits DCGAN (a generator against a discriminator)",
        description="Train the digits DCGAN by the shipped recipe (Adam, one D step per G step) and save "
        "DIR/NAME.safetensors, NAME.json and the NAME.md card with the evaluator's metrics on 256 samples. "
        "Ctrl+C stops early and saves the steps trained so far (exit code 130).",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the weights")
    p.add_argument("--name", default="dcgan-digits", metavar="NAME", help="file name (default dcgan-digits)")
    p.add_argument("--steps", type=_positive_int, metavar="N", help="generator steps (default: the recipe's 3000)")
    p.add_argument("--batch-size", type=_positive_int, default=64, metavar="N", help="images per step (default 64)")
    p.add_argument("--lr-d", type=_positive_float, default=2e-4, metavar="X",
                   help="the discriminator's Adam learning rate (default 0.0002)")
    p.add_argument("--lr-g", type=_positive_float, default=2e-4, metavar="X",
                   help="the generator's Adam learning rate (default 0.0002)")
    p.add_argument("--loss", choices=_GAN_LOSSES, default="non-saturating", help="the GAN loss (default non-saturating)")
    p.add_argument("--d-steps", type=_positive_int, default=1, metavar="N",
                   help="discriminator steps per generator step (default 1)")
    p.add_argument("--data", type=_positive_int, default=60_000, metavar="N",
                   help="number of training digits (default 60000; cached after the first run)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, weights and noise (default 0)")
    p.add_argument("--eval-samples", type=_positive_int, default=256, metavar="M",
                   help="samples for the card's metrics (default 256)")
    p.add_argument("--no-eval", action="store_true", help="skip the quality metrics in the card")
    _add_device_option(p)
    p.set_defaults(run=_run_train_gan)


def _run_train_gan(args: argparse.Namespace) -> int:
    out: Path = args.out
    if problem := _unwritable_folder(out):
        return _fail(problem)
    if args.seed < 0:
        return _fail(f"--seed must be at least 0, got {args.seed}")
    if args.batch_size < 2 or args.batch_size > args.data:
        return _fail(f"--batch-size must be between 2 and --data ({args.data}), got {args.batch_size}")
    if not args.no_eval and args.eval_samples < 10:
        return _fail(f"--eval-samples must be at least 10, got {args.eval_samples}")
    from models.gan import DEFAULT_STEPS, Recipe, train_dcgan

    recipe = Recipe(steps=args.steps or DEFAULT_STEPS, batch_size=args.batch_size, lr_d=args.lr_d, lr_g=args.lr_g,
                    loss=args.loss, d_steps=args.d_steps, data_count=args.data, seed=args.seed)
    device = _device(args.device)
    return _train_and_report(
        args.name, recipe.steps, "{}",
        lambda command, on_step: train_dcgan(recipe, out, name=args.name, device=device, evaluate=not args.no_eval,
                                             eval_samples=args.eval_samples, command=command,
                                             on_snapshot=lambda s, _: on_step(s.step)),
    )


# ---------------------------------------------------------------------------
# eval gan


def _add_eval_gan(models: argparse._SubParsersAction) -> None:
    p = models.add_parser(
        "gan",
        help="the evaluator's verdict on the DCGAN's digits",
        description="Generate M digits with the DCGAN and print JSON: confident_fraction, "
        "real_confident_fraction, class_entropy (nats), fd, fd_real, with the goals "
        "(confident ≥ 0.6 × real, entropy ≥ 0.9·ln 10, fd ≤ 5 × fd_real) and meets_goals.",
    )
    p.add_argument("--weights", default="dcgan-digits", metavar="PATH",
                   help="DCGAN weights (.safetensors) or the shipped name dcgan-digits (default)")
    p.add_argument("--samples", type=_positive_int, default=256, metavar="M",
                   help="digits generated (default 256; at least 10)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="seed of the noise (default: the held-out seed)")
    _add_device_option(p)
    p.set_defaults(run=_run_eval_gan)


def _run_eval_gan(args: argparse.Namespace) -> int:
    if args.samples < 10:
        return _fail(f"--samples must be at least 10, got {args.samples}")
    if args.seed is not None and args.seed < 0:
        return _fail(f"--seed must be at least 0, got {args.seed}")
    from models.gan import EVAL_SEED, load_dcgan, quality_metrics

    device = _device(args.device)
    model, _ = load_dcgan(args.weights, device=device)
    seed = EVAL_SEED if args.seed is None else args.seed
    report = quality_metrics(model, args.samples, seed=seed)
    report["weights"] = str(args.weights)
    print(json.dumps(report, indent=2))
    return 0


# ---------------------------------------------------------------------------
# export gan

_GAN2D_DISTRIBUTIONS = ("ring", "grid", "line", "moons", "spiral")  # models.gan2d.DISTRIBUTIONS, less "drawn"


def _add_export_gan(sequences: argparse._SubParsersAction) -> None:
    p = sequences.add_parser(
        "gan",
        help="a GAN training timelapse, from scratch: the 2-D view or the digit samples",
        description="Train a GAN from scratch for N generator steps and write a frame every K steps "
        "(and before the first and after the last). --mode images: the DCGAN's samples of fixed noise "
        "vectors, on digits; --mode 2d: the 2-D toy GAN, real points (green) and generated ones (purple) "
        "over the discriminator's heat map (light: D says real). The same seed gives identical frames.",
    )
    p.add_argument("--mode", required=True, choices=("2d", "images"), help="2d: points on a plane; images: digits")
    p.add_argument("--steps", required=True, type=_positive_int, metavar="N", help="generator steps to train")
    p.add_argument("--every", type=_positive_int, metavar="K",
                   help="a frame every K steps (default: about 25 frames in all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, noise and data (default 0)")
    p.add_argument("--distribution", choices=_GAN2D_DISTRIBUTIONS, default="ring",
                   help="--mode 2d: the real distribution (default ring)")
    p.add_argument("--samples", type=_positive_int, default=64, metavar="M",
                   help="--mode images: fixed noise vectors shown, 8 per row (default 64)")
    p.add_argument("--size", type=_positive_int, default=320, metavar="PX",
                   help="--mode 2d: side of each frame in pixels (default 320)")
    _add_output_options(p)
    p.set_defaults(run=_run_export_gan)


def _run_export_gan(args: argparse.Namespace) -> int:
    if args.seed < 0:
        return _fail(f"--seed must be at least 0, got {args.seed}")
    if args.steps > 100_000:
        return _fail(f"--steps is at most 100000, got {args.steps}")
    every = args.every or max(1, args.steps // 24)
    if every > args.steps:
        return _fail(f"--every ({every}) is larger than --steps ({args.steps})")
    if args.samples > 256:
        return _fail(f"--samples is at most 256, got {args.samples}")
    if not 64 <= args.size <= 2048:
        return _fail(f"--size must be between 64 and 2048 pixels, got {args.size}")
    _check_output(args)
    from models.gan import capture_steps

    shown = capture_steps(args.steps, every)
    params = {"sequence": "gan", "mode": args.mode, "steps": args.steps, "every": every, "seed": args.seed,
              "frame_steps": shown}
    if args.mode == "images":
        frames = _gan_image_frames(args, every, params)
    else:
        frames = _gan_2d_frames(args, shown, params)
    return _write_sequence(frames, len(shown), params, args)


def _gan_image_frames(args: argparse.Namespace, every: int, params: dict) -> Iterable[np.ndarray]:
    from dataclasses import asdict

    from models.gan import DCGANConfig, GANHyper, sample_grid, training_timelapse

    _device("cpu")
    hyper = GANHyper()
    params.update({"model": "DCGAN", "config": asdict(DCGANConfig()), "hyper": asdict(hyper),
                   "data": "make_digits(20000, seed=0)", "samples": args.samples,
                   "frames_show": "the generator's images of the same fixed noise vectors, 8 per row, 2× enlarged"})
    for _, images in training_timelapse(args.steps, every, seed=args.seed, samples=args.samples, hyper=hyper):
        yield sample_grid(images, columns=min(8, args.samples))


def _gan_2d_frames(args: argparse.Namespace, shown: list[int], params: dict) -> Iterable[np.ndarray]:
    from dataclasses import asdict

    from explorer.widgets.gan_plane import render_frame
    from models.gan2d import PLANE, Gan2DHyper, Gan2DTrainer

    _device("cpu")
    hyper = Gan2DHyper()
    trainer = Gan2DTrainer(hyper, distribution=args.distribution, seed=args.seed)
    params.update({"model": "2-D GAN (MLPs)", "distribution": args.distribution, "hyper": asdict(hyper),
                   "plane": list(PLANE), "side": args.size,
                   "frames_show": "real points (green), generated points (purple), the discriminator's "
                   "verdict as the background (purple: fake, white: unsure, green: real), as the app exports it"})
    for step in shown:
        while trainer.step < step:
            trainer.train_step()
        snapshot = trainer.snapshot()
        yield render_frame(PLANE, snapshot.real, snapshot.fake, snapshot.heat, size=args.size)




# ---------------------------------------------------------------------------
# train clip, train ldm (the Text to image chapter's models)


def _add_shapes_training_options(p: argparse.ArgumentParser, what: str) -> None:
    """The options every shapes model's training shares (defaults: the shipped recipe's)."""
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the weights")
    p.add_argument("--name", metavar="NAME", help="file name (default: the shipped model's name)")
    p.add_argument("--steps", type=_positive_int, metavar="N", help="optimisation steps (default: the recipe's)")
    p.add_argument("--batch-size", "--batch", dest="batch_size", type=_positive_int, metavar="N",
                   help=f"{what} per step (default: the recipe's)")
    p.add_argument("--lr", type=_positive_float, metavar="X", help="peak learning rate (default: the recipe's)")
    p.add_argument("--data", type=_positive_int, metavar="N",
                   help="number of training scenes (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, weights and noise (default 0)")
    p.add_argument("--no-eval", action="store_true", help="skip the quality metrics in the card")
    _add_device_option(p)


def _shapes_recipe(recipe: Any, args: argparse.Namespace, **changes: Any) -> Any:
    """``recipe`` with the command line's --steps, --batch-size, --lr, --data and --seed (ValueError if unusable)."""
    from dataclasses import replace

    if args.seed < 0:
        raise ValueError(f"--seed must be at least 0, got {args.seed}")
    changes["seed"] = args.seed
    for option, field in (("steps", "steps"), ("batch_size", "batch_size"), ("lr", "lr"), ("data", "data_count")):
        if getattr(args, option) is not None:
            changes[field] = getattr(args, option)
    recipe = replace(recipe, **changes)
    if recipe.batch_size > recipe.data_count:
        raise ValueError(f"the batch size {recipe.batch_size} is larger than the data ({recipe.data_count} scenes)")
    return recipe


def _add_train_clip(models: argparse._SubParsersAction) -> None:
    p = models.add_parser(
        "clip",
        help="the CLIP-style text and image encoders of the Text to image chapter",
        description="Train the text encoder and the image encoder contrastively on generated shapes scenes and "
        "their captions (the seen combinations; some held out) and save DIR/NAME.safetensors, NAME.json and "
        "the NAME.md card with the zero-shot accuracy. Ctrl+C stops early and saves the steps trained so far "
        "(exit code 130).",
    )
    _add_shapes_training_options(p, "scenes and captions")
    p.set_defaults(run=_run_train_clip)


def _run_train_clip(args: argparse.Namespace) -> int:
    out: Path = args.out
    if problem := _unwritable_folder(out):
        return _fail(problem)
    from models.clip import SHIPPED_NAME, ClipRecipe, train_clip

    recipe = _shapes_recipe(ClipRecipe(), args)
    name = args.name or SHIPPED_NAME
    device = _device(args.device)
    return _train_and_report(
        name, recipe.steps, "training diverged: {}; try a smaller --lr",
        lambda command, on_step: train_clip(recipe, out, name=name, device=device, evaluate=not args.no_eval,
                                            command=command, on_snapshot=lambda s: on_step(s.step)),
    )


def _add_train_ldm(models: argparse._SubParsersAction) -> None:
    p = models.add_parser(
        "ldm",
        help="the latent diffusion pipeline's VAE or U-Net (text to image)",
        description="--part vae: train the shapes VAE (32×32×3 ↔ 8×8×4) and save it with its latent scaling "
        "factor. --part unet (default): train the latent U-Net with cross-attention on a frozen CLIP (--clip) "
        "and VAE (--vae), prompts dropped one time in ten for classifier-free guidance, and save its EMA "
        "weights. Both write DIR/NAME.safetensors, NAME.json and the NAME.md card. Ctrl+C stops early and "
        "saves the steps trained so far (exit code 130).",
    )
    p.add_argument("--part", choices=("vae", "unet"), default="unet", help="which model to train (default unet)")
    p.add_argument("--clip", metavar="PATH",
                   help="--part unet: the frozen CLIP (.safetensors; default the shipped clip-shapes)")
    p.add_argument("--vae", metavar="PATH",
                   help="--part unet: the frozen VAE (.safetensors; default the shipped vae-shapes)")
    p.add_argument("--init", metavar="PATH",
                   help="--part unet: go on from these U-Net weights instead of random ones")
    p.add_argument("--warmup", type=_positive_int, metavar="N",
                   help="--part unet: learning-rate warm-up steps (default: the recipe's)")
    _add_shapes_training_options(p, "scenes")
    p.set_defaults(run=_run_train_ldm)


def _run_train_ldm(args: argparse.Namespace) -> int:
    out: Path = args.out
    if problem := _unwritable_folder(out):
        return _fail(problem)
    if args.part == "vae":
        if args.clip is not None or args.vae is not None or args.init is not None or args.warmup is not None:
            return _fail("--clip, --vae, --init and --warmup are options of --part unet; --part vae takes none")
        from models.image_vae import SHIPPED_NAME, ImageVAERecipe, train_image_vae

        recipe = _shapes_recipe(ImageVAERecipe(), args)
        name = args.name or SHIPPED_NAME
        device = _device(args.device)
        return _train_and_report(
            name, recipe.steps, "training diverged: {}; try a smaller --lr",
            lambda command, on_step: train_image_vae(recipe, out, name=name, device=device,
                                                     evaluate=not args.no_eval, command=command,
                                                     on_snapshot=lambda s: on_step(s.step)),
        )
    from dataclasses import replace

    from models.clip import SHIPPED_NAME as CLIP_NAME, load_clip
    from models.image_vae import SHIPPED_NAME as VAE_NAME, load_image_vae
    from models.ldm import LDM_CONFIG, SHIPPED_NAME, LDMRecipe, train_ldm

    clip_path, vae_path = args.clip or CLIP_NAME, args.vae or VAE_NAME
    clip, _ = load_clip(clip_path)  # WeightsError (one line) before any work
    vae, _ = load_image_vae(vae_path)
    # The U-Net attends to this CLIP's tokens and works in this VAE's latent space: its shapes follow theirs.
    unet = replace(LDM_CONFIG.unet, context_dim=clip.config.width, in_channels=vae.config.latent_channels,
                   image_size=vae.config.latent_size)
    if args.init is not None:
        from models.ldm import load_ldm

        unet = load_ldm(args.init)[0].config.unet  # WeightsError (one line) before any work
    warmup = {"warmup_steps": args.warmup} if args.warmup is not None else {}
    recipe = _shapes_recipe(LDMRecipe(), args, config=replace(LDM_CONFIG, unet=unet), **warmup)
    name = args.name or SHIPPED_NAME
    device = _device(args.device)
    return _train_and_report(
        name, recipe.steps, "training diverged: {}; try a smaller --lr",
        lambda command, on_step: train_ldm(recipe, out, clip=clip_path, vae=vae_path, name=name, device=device,
                                           evaluate=not args.no_eval, command=command, init=args.init,
                                           on_snapshot=lambda s: on_step(s.step)),
    )


# ---------------------------------------------------------------------------
# eval ldm, eval clip


def _add_eval_ldm(models: argparse._SubParsersAction) -> None:
    p = models.add_parser(
        "ldm",
        help="how faithfully the text-to-image pipeline follows prompts, and CLIP's zero-shot accuracy",
        description="Generate M scenes from captions (half seen in training, half held-out combinations) and "
        "print JSON: prompt_fidelity (the evaluator finds the asked shape, colour and background; goal ≥ 0.90), "
        "real_fidelity (the same judge on real scenes), clip_zero_shot_accuracy (goal ≥ 0.95), each also "
        "split into _seen and _held_out, prompt_fidelity_by_shape (which shapes fail), with the goals and "
        "meets_goals.",
    )
    p.add_argument("--weights", metavar="PATH", help="latent U-Net weights (default the shipped ldm-shapes)")
    p.add_argument("--clip", metavar="PATH", help="CLIP weights (default the shipped clip-shapes)")
    p.add_argument("--vae", metavar="PATH", help="VAE weights (default the shipped vae-shapes)")
    p.add_argument("--samples", type=_positive_int, default=256, metavar="M",
                   help="scenes generated (default 256; at least 2)")
    p.add_argument("--guidance", type=_non_negative_float, default=_SHAPES_GUIDANCE, metavar="G",
                   help=f"guidance scale, 0 … {_SHAPES_MAX_GUIDANCE:g} (default {_SHAPES_GUIDANCE:g})")
    p.add_argument("--steps", type=_positive_int, default=_SHAPES_STEPS, metavar="N",
                   help=f"sampling steps (default {_SHAPES_STEPS})")
    p.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddim", help="sampler (default ddim)")
    p.add_argument("--zero-shot-images", type=_positive_int, default=2000, metavar="N",
                   help="fresh scenes CLIP labels for its zero-shot accuracy (default 2000)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="seed of the noise (default: the held-out seed)")
    _add_device_option(p)
    p.set_defaults(run=_run_eval_ldm)


def _run_eval_ldm(args: argparse.Namespace) -> int:
    if args.samples < 2:
        return _fail(f"--samples must be at least 2 (seen and held-out prompts), got {args.samples}")
    if args.zero_shot_images < 2:
        return _fail(f"--zero-shot-images must be at least 2, got {args.zero_shot_images}")
    if args.guidance > _SHAPES_MAX_GUIDANCE:
        return _fail(f"--guidance must be between 0 and {_SHAPES_MAX_GUIDANCE:g}, got {args.guidance:g}")
    if args.steps > _TRAIN_TIMESTEPS:
        return _fail(f"--steps is at most {_TRAIN_TIMESTEPS}, got {args.steps}")
    if args.seed is not None and args.seed < 0:
        return _fail(f"--seed must be at least 0, got {args.seed}")
    from models.ldm import EVAL_SEED, load_pipeline, quality_metrics

    device = _device(args.device)
    weights = _pipeline_weights(args)
    pipe = load_pipeline(weights["unet"], weights["clip"], weights["vae"], device=device)
    seed = EVAL_SEED if args.seed is None else args.seed
    report = quality_metrics(pipe, args.samples, guidance=args.guidance, num_steps=args.steps, sampler=args.sampler,
                             seed=seed, zero_shot_images=args.zero_shot_images)
    report["weights"] = weights
    report["seed"] = seed
    print(json.dumps(report, indent=2))
    return 0


def _add_eval_clip(models: argparse._SubParsersAction) -> None:
    p = models.add_parser(
        "clip",
        help="CLIP's zero-shot accuracy on fresh shapes scenes",
        description="Pick each fresh scene's caption among all 336 full captions by cosine similarity and print "
        "JSON: accuracy (goal ≥ 0.95), seen and held_out (combinations no model of the chapter trained on).",
    )
    p.add_argument("--weights", metavar="PATH", help="CLIP weights (default the shipped clip-shapes)")
    p.add_argument("--images", type=_positive_int, default=2000, metavar="N",
                   help="fresh scenes, half seen and half held-out combinations (default 2000; at least 2)")
    p.add_argument("--seed", type=int, default=None, metavar="S",
                   help="seed of the scenes (default: the held-out seed)")
    _add_device_option(p)
    p.set_defaults(run=_run_eval_clip)


def _run_eval_clip(args: argparse.Namespace) -> int:
    if args.images < 2:
        return _fail(f"--images must be at least 2, got {args.images}")
    if args.seed is not None and args.seed < 0:
        return _fail(f"--seed must be at least 0, got {args.seed}")
    from models.clip import EVAL_SEED, load_clip, zero_shot_accuracy

    model, _ = load_clip(args.weights or "clip-shapes", device=_device(args.device))
    seed = EVAL_SEED if args.seed is None else args.seed
    report = zero_shot_accuracy(model.eval(), count=args.images, seed=seed)
    report["goal"] = 0.95
    report["meets_goal"] = report["accuracy"] >= 0.95
    report["weights"] = args.weights or "clip-shapes"
    report["seed"] = seed
    print(json.dumps(report, indent=2))
    return 0
