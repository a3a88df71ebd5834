"""Generated digits, junk and shapes; image folders; the cache; to_tensor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import data
from models.data import (
    BLOCK,
    COLOR_NAMES,
    COLORS,
    DIGITS_VERSION,
    SHAPES,
    all_combinations,
    cache_dir,
    caption,
    load_image_folder,
    make_digits,
    make_junk,
    make_shapes,
    parse_caption,
    to_tensor,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test caches into its own folder, never the user's."""
    monkeypatch.setenv("DIFFUSION_EXPLORER_CACHE", str(tmp_path / "cache"))


def _normalised(images: np.ndarray) -> np.ndarray:
    """Flattened images with zero mean and unit length, for correlations."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    flat -= flat.mean(axis=1, keepdims=True)
    return flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-9)


def _centres_of_mass(images: np.ndarray) -> np.ndarray:
    """(N, 2) centres of mass (x, y) in pixels, pixel centres at k + 0.5."""
    ink = images.astype(np.float64)
    grid = np.arange(images.shape[1]) + 0.5
    mass = ink.sum(axis=(1, 2))
    return np.stack([ink.sum(axis=1) @ grid / mass, ink.sum(axis=2) @ grid / mass], axis=1)


# --------------------------------------------------------------------------- digits


def test_digits_have_mnist_form():
    images, labels = make_digits(600, seed=3)
    assert images.shape == (600, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (600,) and labels.dtype == np.int64
    assert set(labels.tolist()) == set(range(10))
    assert np.bincount(labels, minlength=10).min() > 600 / 10 / 2  # every digit is common
    assert (images.max(axis=(1, 2)) == 255).all()  # white strokes...
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
    assert border.max() <= 64 and border.mean() < 0.5  # ...on black, inside the frame
    ink = (images > 127).mean(axis=(1, 2))
    assert 0.02 < ink.min() and ink.max() < 0.45  # a stroke, not a dot or a blob
    offsets = _centres_of_mass(images) - 14
    assert np.abs(offsets).max() < 1.5  # centred by centre of mass, as MNIST is


def test_digits_match_their_labels():
    """Each digit correlates best with the mean image of its own label (nearest class mean)."""
    train, train_labels = make_digits(2000, seed=1)
    test, test_labels = make_digits(1000, seed=2)
    means = np.stack([train[train_labels == d].mean(axis=0) for d in range(10)])
    predicted = (_normalised(test) @ _normalised(means).T).argmax(axis=1)
    assert (predicted == test_labels).mean() >= 0.80

    # A stronger template check: least squares on random ReLU features of the pixels.
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((28 * 28 + 1, 1200)) / 10

    def features(images):
        pixels = images.reshape(len(images), -1) / 255.0
        return np.maximum(np.hstack([pixels, np.ones((len(images), 1))]) @ weights, 0)

    a = features(train)
    readout = np.linalg.solve(a.T @ a + 10 * np.eye(a.shape[1]), a.T @ np.eye(10)[train_labels])
    predicted = (features(test) @ readout).argmax(axis=1)
    assert (predicted == test_labels).mean() >= 0.90


def test_digits_vary_like_handwriting():
    images, labels = make_digits(400, seed=4)
    for digit in range(10):
        same = _normalised(images[labels == digit])
        similarity = same @ same.T
        off_diagonal = similarity[~np.eye(len(same), dtype=bool)]
        assert off_diagonal.max() < 0.995  # no two copies alike
        assert off_diagonal.mean() < 0.8  # varied...
        assert off_diagonal.mean() > 0.2  # ...but the same digit
    height = [np.ptp(np.flatnonzero((image > 64).any(axis=1))) + 1 for image in images]
    assert 12 <= min(height) and max(height) <= 26 and np.std(height) > 1


def test_digits_are_deterministic_by_seed_and_independent_of_count():
    a_images, a_labels = make_digits(BLOCK + 40, seed=7)
    b_images, b_labels = make_digits(BLOCK + 40, seed=7)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_labels, b_labels)

    other, _ = make_digits(BLOCK + 40, seed=8)
    assert (other != a_images).any(axis=(1, 2)).mean() > 0.99

    # Digit i depends only on (seed, i): a shorter run is a prefix, inside and across blocks.
    for count in (1, 37, BLOCK, BLOCK + 1):
        images, labels = make_digits(count, seed=7)
        np.testing.assert_array_equal(images, a_images[:count])
        np.testing.assert_array_equal(labels, a_labels[:count])


def test_digit_arguments_are_checked():
    assert make_digits(0)[0].shape == (0, 28, 28)
    for count, seed in ((-1, 0), (2.5, 0), (3, -1)):
        with pytest.raises(ValueError):
            make_digits(count, seed)


def test_the_font_is_scalable_and_the_fallback_still_draws_digits(monkeypatch):
    assert data._digit_font() is not None  # Pillow ≥ 10.1 ships a FreeType font
    reference, labels = make_digits(300, seed=5)

    monkeypatch.setattr(data, "_digit_font", lambda: None)
    data._glyph_bank.cache_clear()
    try:
        images, fallback_labels = make_digits(300, seed=5)
    finally:
        data._glyph_bank.cache_clear()  # the next caller builds the bank with the real font
    np.testing.assert_array_equal(fallback_labels, labels)  # the same draws...
    assert not np.array_equal(images, reference)  # ...from other glyphs
    assert (images.max(axis=(1, 2)) > 200).all()
    assert np.abs(_centres_of_mass(images) - 14).max() < 1.5
    means = np.stack([images[labels == d].mean(axis=0) for d in range(10)])
    predicted = (_normalised(images) @ _normalised(means).T).argmax(axis=1)
    assert (predicted == labels).mean() > 0.8


# --------------------------------------------------------------------------- junk


def test_junk_has_the_digit_format_and_is_deterministic():
    junk = make_junk(BLOCK + 20, seed=1)
    assert junk.shape == (BLOCK + 20, 28, 28) and junk.dtype == np.uint8
    np.testing.assert_array_equal(junk, make_junk(BLOCK + 20, seed=1))
    np.testing.assert_array_equal(junk[:123], make_junk(123, seed=1))
    assert (make_junk(50, seed=2) != junk[:50]).any(axis=(1, 2)).mean() > 0.9


def _corner_roughness(images: np.ndarray) -> np.ndarray:
    """Mean step between neighbouring pixels in the smoothest of the four 6×6 corners."""
    corners = [images[:, :6, :6], images[:, :6, -6:], images[:, -6:, :6], images[:, -6:, -6:]]
    steps = [np.abs(np.diff(c.astype(int), axis=2)).mean(axis=(1, 2)) for c in corners]
    return np.min(steps, axis=0)


def test_junk_is_a_mix_that_does_not_look_like_digits():
    junk = make_junk(1000, seed=3)
    digits, labels = make_digits(1000, seed=3)

    blank = junk.max(axis=(1, 2)) < 64
    noisy = _corner_roughness(junk) > 8
    smooth_grey = (~blank) & (~noisy) & (((junk > 20) & (junk < 235)).mean(axis=(1, 2)) > 0.3)
    for kind in (blank, noisy, smooth_grey):
        assert 0.05 < kind.mean() < 0.5
    assert not (digits.max(axis=(1, 2)) < 64).any()
    assert not (_corner_roughness(digits) > 8).any()

    # Junk matches the digit class means worse than digits do.
    means = np.stack([digits[labels == d].mean(axis=0) for d in range(10)])
    digit_match = (_normalised(digits) @ _normalised(means).T).max(axis=1)
    junk_match = (_normalised(junk) @ _normalised(means).T).max(axis=1)
    assert np.median(junk_match) < np.percentile(digit_match, 5)

    # Two digits drawn over each other carry more ink than one digit.
    inky = (junk > 127).mean(axis=(1, 2)) > np.percentile((digits > 127).mean(axis=(1, 2)), 99)
    assert inky.mean() > 0.05


# --------------------------------------------------------------------------- cache


def test_cache_round_trip(tmp_path):
    path = tmp_path / "cache" / "data" / f"digits-{DIGITS_VERSION}-60-2.npz"
    assert cache_dir() == path.parent
    images, labels = make_digits(60, seed=2, cache=True)
    assert path.is_file()
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind

    # The next call reads the file: prove it by planting different contents.
    np.savez(path, images=np.full_like(images, 9), labels=np.zeros_like(labels))
    cached_images, cached_labels = make_digits(60, seed=2, cache=True)
    assert (cached_images == 9).all() and (cached_labels == 0).all()
    assert (make_digits(60, seed=2, cache=False)[0] == images).all()  # cache=False ignores it


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b"not a zip file"),
        lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
        lambda path: np.savez(path, images=np.zeros((3, 28, 28), np.uint8)),  # wrong shape
        lambda path: np.savez(path, images=np.zeros((60, 28, 28)), labels=np.zeros(60)),  # dtype
    ],
    ids=["garbage", "truncated", "wrong-shape", "wrong-dtype"],
)
def test_a_damaged_cache_file_is_regenerated(tmp_path, damage):
    fresh, fresh_labels = make_digits(60, seed=2, cache=False)
    make_digits(60, seed=2, cache=True)
    path = cache_dir() / f"digits-{DIGITS_VERSION}-60-2.npz"
    damage(path)
    images, labels = make_digits(60, seed=2, cache=True)
    np.testing.assert_array_equal(images, fresh)
    np.testing.assert_array_equal(labels, fresh_labels)
    with np.load(path) as repaired:  # and the file is good again
        np.testing.assert_array_equal(repaired["images"], fresh)


def test_junk_is_cached_too_and_small_sets_are_not_cached_by_default():
    junk = make_junk(40, seed=1, cache=True)
    np.testing.assert_array_equal(make_junk(40, seed=1, cache=True), junk)
    assert [p.name for p in cache_dir().iterdir()] == [f"junk-{data.JUNK_VERSION}-40-1.npz"]
    make_digits(40, seed=1)
    make_junk(40, seed=2)
    assert len(list(cache_dir().iterdir())) == 1


def test_cache_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("DIFFUSION_EXPLORER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "diffusion-explorer" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "diffusion-explorer" / "data"


def test_an_unwritable_cache_folder_only_means_no_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    monkeypatch.setenv("DIFFUSION_EXPLORER_CACHE", str(blocker))
    images, _ = make_digits(20, seed=0, cache=True)
    np.testing.assert_array_equal(images, make_digits(20, seed=0, cache=False)[0])


# --------------------------------------------------------------------------- shapes


def _shape_pixels(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background colour (a corner), shape colour (the farthest pixel from it), coverage."""
    pixels = image.astype(np.float64)
    background = pixels[0, 0]
    fill = pixels.reshape(-1, 3)[np.abs(pixels - background).sum(axis=-1).argmax()]
    step = fill - background
    coverage = np.clip((pixels - background) @ step / (step @ step), 0, 1)
    return background, fill, coverage


def _arcs(coverage: np.ndarray, cx: float, cy: float, radius: float) -> int:
    """How many separate arcs of a circle lie inside the shape; -1: the whole circle."""
    turn = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    x = np.clip(cx + radius * np.cos(turn) - 0.5, 0, 30.999)
    y = np.clip(cy + radius * np.sin(turn) - 0.5, 0, 30.999)
    x0, y0 = x.astype(int), y.astype(int)
    fx, fy = x - x0, y - y0
    top = coverage[y0, x0] * (1 - fx) + coverage[y0, x0 + 1] * fx
    bottom = coverage[y0 + 1, x0] * (1 - fx) + coverage[y0 + 1, x0 + 1] * fx
    inside = top * (1 - fy) + bottom * fy > 0.5
    return -1 if inside.all() else int((inside & ~np.roll(inside, 1)).sum())


# How many arcs of the circles at 0.8 and 0.6 of the enclosing radius fall inside each shape.
_SIGNATURES = {
    "circle": (-1, -1),
    "square": (4, -1),
    "triangle": (3, 3),
    "star": (5, 5),
    "cross": (4, 4),
    "heart": (3, 1),
}


def test_shapes_match_their_labels_and_captions():
    shapes = make_shapes(300, seed=2)
    assert shapes.images.shape == (300, 32, 32, 3) and shapes.images.dtype == np.uint8
    for array in (shapes.shape, shapes.color, shapes.background):
        assert array.shape == (300,) and array.dtype == np.int64
    assert set(shapes.shape.tolist()) == set(range(len(SHAPES)))
    assert set(shapes.color.tolist()) == set(shapes.background.tolist()) == set(range(len(COLORS)))
    assert (shapes.color != shapes.background).all()

    palette = np.array(list(COLORS.values()), dtype=np.float64)
    grid = np.arange(32) + 0.5
    for i, image in enumerate(shapes.images):
        name, color, background = parse_caption(shapes.captions[i])
        assert (name, color, background) == (
            SHAPES[shapes.shape[i]],
            COLOR_NAMES[shapes.color[i]],
            COLOR_NAMES[shapes.background[i]],
        )
        back, fill, coverage = _shape_pixels(image)
        corners = image[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert (corners == corners[0]).all()  # the shape is inside the frame
        assert np.abs(back - palette[COLOR_NAMES.index(background)]).max() <= 10
        assert np.abs(fill - palette[COLOR_NAMES.index(color)]).max() <= 10

        area = coverage.sum()
        assert 0.04 * 32 * 32 < area < 0.55 * 32 * 32
        cx, cy = coverage.sum(axis=0) @ grid / area, coverage.sum(axis=1) @ grid / area
        assert coverage[int(cy), int(cx)] > 0.9  # the middle of the shape has its colour
        radius = np.hypot(*np.meshgrid(grid - cx, grid - cy))[coverage > 0.5].max() + 0.5
        signature = (_arcs(coverage, cx, cy, 0.8 * radius), _arcs(coverage, cx, cy, 0.6 * radius))
        assert signature == _SIGNATURES[name], (i, shapes.captions[i])


def test_shapes_vary_in_size_position_and_are_deterministic():
    shapes = make_shapes(BLOCK + 10, seed=3)
    areas, centres = [], []
    for image in shapes.images:
        coverage = _shape_pixels(image)[2]
        areas.append(coverage.sum())
        centres.append(np.argwhere(coverage > 0.5).mean(axis=0))
    assert max(areas) > 2.5 * min(areas)
    assert np.ptp(np.array(centres), axis=0).min() > 10

    again = make_shapes(BLOCK + 10, seed=3)
    np.testing.assert_array_equal(again.images, shapes.images)
    assert again.captions == shapes.captions
    prefix = make_shapes(17, seed=3)
    np.testing.assert_array_equal(prefix.images, shapes.images[:17])
    assert prefix.captions == shapes.captions[:17]
    assert make_shapes(17, seed=4).captions != prefix.captions


def test_shapes_can_be_restricted_to_some_combinations():
    allowed = [("star", "red", "blue"), ("circle", "orange", "white")]
    shapes = make_shapes(100, seed=0, combinations=allowed)
    assert set(shapes.captions) == {
        "a red star on a blue background",
        "an orange circle on a white background",
    }
    assert len(make_shapes(10, combinations=all_combinations())) == 10
    with pytest.raises(ValueError, match="both red"):
        make_shapes(5, combinations=[("star", "red", "red")])
    with pytest.raises(ValueError, match="unknown shape"):
        make_shapes(5, combinations=[("hexagon", "red", "blue")])
    with pytest.raises(ValueError, match="empty"):
        make_shapes(5, combinations=[])


def test_captions_round_trip_and_read_as_english():
    combinations = all_combinations()
    assert len(combinations) == len(SHAPES) * len(COLORS) * (len(COLORS) - 1)
    for combination in combinations:
        assert parse_caption(caption(*combination)) == combination
    assert caption("circle", "red", "blue") == "a red circle on a blue background"
    assert caption("star", "orange", "white") == "an orange star on a white background"
    assert caption("heart", "white", "orange") == "a white heart on an orange background"
    for bad in (
        "a red circle",
        "an red circle on a blue background",
        "a red blob on a blue background",
        "a red circle on a red background",
        "",
    ):
        with pytest.raises(ValueError):
            parse_caption(bad)
    with pytest.raises(ValueError):
        caption("circle", "red", "red")


def test_named_colours_are_far_apart():
    palette = np.array(list(COLORS.values()), dtype=np.float64)
    assert {"red", "green", "blue", "yellow", "purple", "orange", "white", "black"} <= set(COLORS)
    distances = np.linalg.norm(palette[:, None] - palette[None], axis=-1)
    assert distances[~np.eye(len(palette), dtype=bool)].min() > 60


# --------------------------------------------------------------------------- image folders


def _folder_with_a_mix(folder: Path) -> None:
    folder.mkdir()
    wide = np.zeros((20, 60, 3), np.uint8)
    wide[:, :20] = (255, 0, 0)  # left third red, middle green, right blue
    wide[:, 20:40] = (0, 255, 0)
    wide[:, 40:] = (0, 0, 255)
    Image.fromarray(wide).save(folder / "a-wide.png")
    Image.fromarray(np.full((50, 30, 3), 200, np.uint8)).save(folder / "b-tall.jpg", quality=95)
    Image.fromarray(np.full((8, 8, 4), 0, np.uint8), "RGBA").save(folder / "c-clear.png")
    (folder / "d-notes.txt").write_text("not an image")
    good = (folder / "a-wide.png").read_bytes()
    (folder / "e-truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "f-empty.png").write_bytes(b"")
    (folder / ".hidden.png").write_bytes(good)
    (folder / "sub").mkdir()
    Image.fromarray(wide).save(folder / "sub" / "inside.png")


def test_image_folder_loads_good_files_and_counts_bad_ones(tmp_path):
    folder = tmp_path / "pictures"
    _folder_with_a_mix(folder)
    loaded = load_image_folder(folder, 16)
    assert loaded.images.shape == (3, 16, 16, 3) and loaded.images.dtype == np.uint8
    assert loaded.names == ["a-wide.png", "b-tall.jpg", "c-clear.png"]
    assert loaded.skipped == 3
    assert loaded.skipped_names == ["d-notes.txt", "e-truncated.png", "f-empty.png"]
    middle = loaded.images[0, :, 1:-1].astype(int)  # (resampling blurs the outer columns)
    assert (np.abs(middle - (0, 255, 0)) <= 2).all()  # the middle square of a wide image
    assert (np.abs(loaded.images[1].astype(int) - 200) <= 3).all()
    assert (loaded.images[2] == 255).all()  # transparency is composited on white

    grey = load_image_folder(str(folder), 8, grey=True)
    assert grey.images.shape == (3, 8, 8) and grey.images.dtype == np.uint8
    assert abs(int(grey.images[0, 4, 4]) - round(0.587 * 255)) <= 3  # green's luma


def test_image_folder_errors_read_well(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_image_folder(tmp_path / "missing", 16)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no files"):
        load_image_folder(tmp_path / "empty", 16)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="not a folder"):
        load_image_folder(tmp_path / "file.png", 16)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "one.png").write_bytes(b"junk")
    (bad / "two.txt").write_text("text")
    with pytest.raises(ValueError, match="None of the 2 files") as error:
        load_image_folder(bad, 16)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="size"):
        load_image_folder(bad, 0)


# --------------------------------------------------------------------------- torch


def test_to_tensor_scales_to_minus_one_one_in_nchw():
    import torch

    grey = np.array([[[0, 255], [51, 204]]], np.uint8)
    tensor = to_tensor(grey)
    assert tensor.dtype == torch.float32 and tuple(tensor.shape) == (1, 1, 2, 2)
    np.testing.assert_allclose(tensor[0, 0].numpy(), [[-1, 1], [-0.6, 0.6]], atol=1e-6)

    rgb = np.zeros((2, 3, 4, 3), np.uint8)
    rgb[..., 0] = 255  # red channel full
    rgb.flags.writeable = False  # read-only input is fine
    tensor = to_tensor(rgb)
    assert tuple(tensor.shape) == (2, 3, 3, 4)
    assert (tensor[:, 0] == 1).all() and (tensor[:, 1:] == -1).all()

    shapes = to_tensor(make_shapes(4).images)
    assert tuple(shapes.shape) == (4, 3, 32, 32)
    assert shapes.min() >= -1 and shapes.max() <= 1
    with pytest.raises(TypeError):
        to_tensor(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError):
        to_tensor(np.zeros((2, 2), np.uint8))


def test_importing_models_data_does_not_import_torch():
    code = "import sys, models.data; print('torch' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
