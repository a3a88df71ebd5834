"""Text to image: the U-Net's cross-attention, generate_frames (seeds, prompts, guidance, attention,
image to image) and, slow, the shipped pipeline's quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.assets import asset_path
from models.data import COLOR_NAMES, SHAPES
from models.clip import Clip, ClipConfig, describe
from models.diffusion import DiffusionConfig, DiffusionModel
from models.image_vae import ImageVAE, ImageVAEConfig
from models.ldm import (
    LDM_CONFIG, MAX_GUIDANCE, TextToImage, generate, generate_frames, load_ldm, read_prompts, save_ldm,
)
from models.unet import Attention, UNet, UNetConfig

PROMPT = "a red circle on a blue background"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_pipeline(seed: int = 0) -> TextToImage:
    """As tests/explorer/text2img_support.py's (which imports Qt; these tests do not)."""
    torch.manual_seed(seed)
    clip = Clip(ClipConfig(width=16, layers=1, heads=2, image_channels=(8, 8, 16), embed_dim=16))
    vae = ImageVAE(ImageVAEConfig(channels=(8, 8, 16)))
    unet = UNetConfig(in_channels=4, image_size=8, channels=(8, 16), emb_dim=16, groups=4, attention_heads=2,
                      num_classes=None, context_dim=16)
    model = DiffusionModel(DiffusionConfig(unet=unet, beta_schedule=LDM_CONFIG.beta_schedule,
                                           beta_start=LDM_CONFIG.beta_start, beta_end=LDM_CONFIG.beta_end))
    with torch.no_grad():  # zero-initialised last layers would hide the prompt's effect
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return TextToImage(clip.eval(), vae.eval(), model.eval(), {"unet": "tiny"})


@pytest.fixture(scope="module")
def pipe() -> TextToImage:
    return tiny_pipeline()


def run(pipe: TextToImage, prompt="a red circle", **options) -> list:
    options.setdefault("num_steps", 5)
    return list(generate_frames(pipe, prompt, **options))


# --------------------------------------------------------------------------- the U-Net


def test_cross_attention_at_every_level():
    unet = UNet(LDM_CONFIG.unet)
    blocks = unet.cross_attentions()
    assert list(blocks) == ["down 1", "down 2", "middle", "up 2", "up 1"]
    assert all(isinstance(b, Attention) and b.kv.in_features == 64 for b in blocks.values())
    x, context = torch.randn(2, 4, 8, 8), torch.randn(2, 16, 64)
    with torch.no_grad():
        assert unet(x, torch.tensor([10, 500]), None, context).shape == (2, 4, 8, 8)


def test_no_context_dim_no_cross_attention_and_the_digits_keys_unchanged():
    from safetensors import safe_open

    unet = UNet(UNetConfig())
    assert unet.cross_attentions() == {}
    assert not [key for key in unet.state_dict() if "cross" in key]
    shipped = asset_path("weights", "ddpm-digits.safetensors")
    if shipped.is_file():  # the digits DDPM's saved keys are exactly what the U-Net builds
        from models.diffusion import load_ddpm

        model, _ = load_ddpm("ddpm-digits")
        with safe_open(str(shipped), "pt") as f:
            assert set(f.keys()) == set(model.state_dict())


# --------------------------------------------------------------------------- sampling


def test_same_seed_same_frames(pipe):
    a, b, c = run(pipe, seed=3), run(pipe, seed=3), run(pipe, seed=4)
    assert len(a) == 5 and [f.index for f in a] == list(range(5)) and a[-1].last
    for x, y in zip(a, b):
        for name in ("latents", "eps_uncond", "eps_text", "eps_guided", "x0_latents", "prev_latents", "image",
                     "x0_image", "attention"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name))
    np.testing.assert_array_equal(a[-1].final_image, b[-1].final_image)
    assert not np.array_equal(a[-1].final_image, c[-1].final_image)
    frame = a[0]
    assert frame.latents.shape == (1, 4, 8, 8) and frame.latents.dtype == np.float32
    assert frame.image.shape == (1, 32, 32, 3) and frame.image.dtype == np.uint8
    assert frame.final_image is None and a[-1].final_image.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(a[1].latents, a[0].prev_latents)  # z_{t−1} of one step is the next z_t


def test_different_prompts_different_images(pipe):
    red = run(pipe, PROMPT, seed=1)[-1]
    green = run(pipe, "a green star on a white background", seed=1)[-1]
    assert not np.array_equal(red.eps_text, green.eps_text)
    assert not np.array_equal(red.final_image, green.final_image)
    both = run(pipe, [PROMPT, "a green star"], batch=2, seed=1)[-1]
    assert both.final_image.shape == (2, 32, 32, 3)


def test_attention_maps_one_per_word_each_summing_to_one(pipe):
    frames = run(pipe, [PROMPT, "a star"], batch=2, seed=2)
    words = len(PROMPT.split())
    for frame in frames:
        assert frame.attention.shape == (2, words, 8, 8) and frame.attention.dtype == np.float32
        np.testing.assert_allclose(frame.attention[0].sum(axis=(1, 2)), 1.0, atol=1e-5)
        np.testing.assert_allclose(frame.attention[1, :2].sum(axis=(1, 2)), 1.0, atol=1e-5)
        assert not frame.attention[1, 2:].any()  # "a star" has two words
        assert (frame.attention >= 0).all()
    assert run(pipe, attention=False)[0].attention is None
    assert all(b.keep_weights is False for b in pipe.unet.unet.cross_attentions().values())  # tidied up


def test_unknown_words_are_named_and_ignored(pipe):
    prompt = read_prompts(pipe, "a red blorp circle", 1)[0]
    assert prompt.words == ["a", "red", "circle"] and "“blorp”" in prompt.message
    np.testing.assert_array_equal(run(pipe, "a red blorp circle", seed=5)[-1].final_image,
                                  run(pipe, "a red circle", seed=5)[-1].final_image)
    with pytest.raises(ValueError, match="2 prompts for a batch of 3"):
        read_prompts(pipe, ["a", "b"], 3)


def test_empty_prompt_is_unconditional(pipe):
    for frame in run(pipe, "", seed=6, attention=False):
        np.testing.assert_array_equal(frame.eps_text, frame.eps_uncond)
        np.testing.assert_allclose(frame.eps_guided, frame.eps_uncond, atol=1e-6)


def test_empty_prompt_with_attention_has_no_maps(pipe):
    frames = run(pipe, "", seed=6)  # the GUI's settings: attention on
    assert frames[-1].attention.shape == (1, 0, 8, 8)  # no words, no maps


def test_guidance_zero_ignores_the_prompt(pipe):
    frames = run(pipe, PROMPT, guidance=0.0, seed=7)
    for frame in frames:
        np.testing.assert_array_equal(frame.eps_guided, frame.eps_uncond)
    assert not np.array_equal(frames[0].eps_text, frames[0].eps_uncond)
    unconditional = run(pipe, "", guidance=5.0, seed=7, attention=False)
    np.testing.assert_array_equal(frames[-1].final_image, unconditional[-1].final_image)


def test_guidance_formula(pipe):
    frame = run(pipe, PROMPT, guidance=3.5, seed=8)[2]
    np.testing.assert_allclose(frame.eps_guided, frame.eps_uncond + 3.5 * (frame.eps_text - frame.eps_uncond),
                               atol=1e-5)


def test_negative_prompt_changes_eps_uncond(pipe):
    plain = run(pipe, PROMPT, seed=9)[0]
    negative = run(pipe, PROMPT, negative="a blue square", seed=9)[0]
    np.testing.assert_array_equal(plain.latents, negative.latents)  # the same z_T
    np.testing.assert_array_equal(plain.eps_text, negative.eps_text)
    assert not np.array_equal(plain.eps_uncond, negative.eps_uncond)


def test_image_to_image_runs_the_last_strength_of_the_steps(pipe):
    from models.data import make_shapes

    scene = make_shapes(1, seed=10).images[0]
    for steps, strength, expected in ((10, 0.3, 3), (10, 1.0, 10), (10, 0.01, 1), (30, 0.75, 22)):
        frames = run(pipe, PROMPT, init_image=scene, strength=strength, num_steps=steps, decode=False)
        assert len(frames) == expected == frames[0].total
        assert frames[-1].final_image is not None and frames[0].image is None
    full = run(pipe, PROMPT, num_steps=10, decode=False)
    short = run(pipe, PROMPT, init_image=scene, strength=0.3, num_steps=10, decode=False)
    assert [f.t for f in short] == [f.t for f in full][-3:]  # the last steps of the same schedule
    with pytest.raises(ValueError, match="strength"):
        run(pipe, PROMPT, init_image=scene, strength=0.0)
    with pytest.raises(ValueError, match="strength"):
        run(pipe, PROMPT, init_image=scene, strength=1.5)


@pytest.mark.parametrize("guidance", [-0.5, MAX_GUIDANCE + 0.1])
def test_guidance_out_of_range_raises(pipe, guidance):
    with pytest.raises(ValueError, match="guidance must be between 0 and 15"):
        run(pipe, guidance=guidance)


def test_generate_and_ldm_weights_round_trip(pipe, tmp_path):
    images = generate(pipe, ["a red circle", "a star", "a blue shape"], num_steps=3, batch_size=2)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    path = save_ldm(pipe.unet, tmp_path / "ldm", {"steps": 0})
    loaded, _ = load_ldm(path)
    assert loaded.config == pipe.unet.config
    again = TextToImage(pipe.clip, pipe.vae, loaded.eval())
    np.testing.assert_array_equal(run(again, seed=11)[-1].final_image, run(pipe, seed=11)[-1].final_image)


# --------------------------------------------------------------------------- quality (slow)


@pytest.mark.slow
def test_shipped_pipeline_follows_prompts():
    from models.ldm import load_pipeline, quality_metrics

    names = ("clip-shapes", "vae-shapes", "ldm-shapes")
    missing = [n for n in names if not asset_path("weights", f"{n}.safetensors").is_file()]
    if missing:
        pytest.skip(f"the shipped text-to-image weights are missing: {', '.join(missing)}")
    from models.device import set_torch_threads

    set_torch_threads()  # every core (the module's fixture set one)
    report = quality_metrics(load_pipeline(), count=128)
    assert report["clip_zero_shot_accuracy"] >= 0.95, report
    assert report["prompt_fidelity_seen"] >= 0.5 and report["prompt_fidelity_held_out"] >= 0.5, report


@pytest.mark.slow
def test_shipped_pipeline_meets_the_fidelity_goal():
    from models.device import set_torch_threads
    from models.ldm import FIDELITY_GOAL, load_pipeline, quality_metrics

    set_torch_threads()
    assert quality_metrics(load_pipeline(), count=128)["prompt_fidelity"] >= FIDELITY_GOAL


def test_fidelity_by_shape_scores_each_shape_on_its_own_images():
    from models.data import make_shapes
    from models.evaluator import Evaluator
    from models.ldm import fidelity_by_shape, prompt_matches

    combos = [("circle", "red", "blue"), ("square", "green", "white"), ("star", "yellow", "black")]
    real = make_shapes(12, seed=4, combinations=combos)
    asked = [(SHAPES[s], COLOR_NAMES[c], COLOR_NAMES[b]) for s, c, b in zip(real.shape, real.color, real.background)]
    asked = [("square", "green", "black") if a[0] == "square" else a for a in asked]  # shown on white: all wrong
    by_shape = fidelity_by_shape(prompt_matches(Evaluator.load(), real.images, asked), asked)
    assert by_shape == {"circle": 1.0, "square": 0.0, "star": 1.0}


def test_the_shipped_pipeline_paints_the_colours_it_is_asked_for():
    from models.evaluator import Evaluator
    from models.ldm import load_pipeline

    prompts = [("red", "blue"), ("yellow", "purple"), ("white", "black"), ("green", "orange")]
    images = generate(load_pipeline(), [describe("circle", c, b) for c, b in prompts], num_steps=10)
    predicted = Evaluator.load().shape_predictions(images)
    assert [COLOR_NAMES[i] for i in predicted["color"].argmax(1)] == [c for c, _ in prompts]
    assert [COLOR_NAMES[i] for i in predicted["background"].argmax(1)] == [b for _, b in prompts]


def test_recording_attention_does_not_change_the_images(pipe):
    with_maps = run(pipe, PROMPT, seed=9)
    without = run(pipe, PROMPT, seed=9, attention=False, parallel=False)
    parallel = run(pipe, PROMPT, seed=9, attention=False)  # the frozen graph, batch-parallel
    for a, b, c in zip(with_maps, without, parallel):
        np.testing.assert_array_equal(a.prev_latents, b.prev_latents)
        np.testing.assert_allclose(c.prev_latents, b.prev_latents, atol=1e-4)
