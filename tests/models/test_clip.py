"""The miniature CLIP: tokenizer, captions, embeddings, the contrastive loss and its targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import clip as clip_module
from models.clip import (
    BOS, EOS, MAX_TOKENS, PAD, VOCABULARY, Clip, ClipConfig, Tokenizer, caption_table, clip_loss, describe,
    load_clip, named_attributes, save_clip, seen_combinations, zero_shot_accuracy, HELD_OUT,
)
from models.data import COLOR_NAMES, SHAPES, all_combinations, caption, make_shapes, to_tensor

TINY = ClipConfig(width=16, layers=1, heads=2, image_channels=(8, 8, 16), embed_dim=16)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread (on a busy 2-core machine, two threads were 9× slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_clip(seed: int = 0) -> Clip:
    torch.manual_seed(seed)
    return Clip(TINY).eval()


# --------------------------------------------------------------------------- words


def test_tokenizer_reports_unknown_words_and_ignores_case_and_punctuation():
    tokens = Tokenizer()("A RED, circle!! on a blorp background?? zzz")
    assert tokens.words == ["a", "red", "circle", "on", "a", "background"]
    assert tokens.unknown == ["blorp", "zzz"] and tokens.dropped == []
    ids = [VOCABULARY.index(w) for w in (BOS, *tokens.words, EOS)]
    assert tokens.ids == ids + [VOCABULARY.index(PAD)] * (MAX_TOKENS - len(ids))
    assert tokens.length == 8
    assert tokens.message() == "Unknown words ignored: “blorp”, “zzz”."
    assert Tokenizer()("a blorp blorp").message() == "Unknown word ignored: “blorp”."


def test_too_long_prompts_are_cut_with_a_message():
    tokens = Tokenizer()(" ".join(["red"] * 20))
    assert len(tokens.words) == MAX_TOKENS - 2 and len(tokens.dropped) == 20 - (MAX_TOKENS - 2)
    assert len(tokens.ids) == MAX_TOKENS and tokens.ids[-1] == VOCABULARY.index(EOS)
    assert "too long" in tokens.message() and tokens.unknown == []


def test_empty_prompt_is_bos_eos():
    for text in ("", "   ", "!?"):
        tokens = Tokenizer()(text)
        assert tokens.ids[:2] == [VOCABULARY.index(BOS), VOCABULARY.index(EOS)]
        assert set(tokens.ids[2:]) == {VOCABULARY.index(PAD)}
        assert tokens.words == [] and tokens.message() == "" and tokens.length == 2


def test_describe_names_any_part_of_a_scene():
    assert describe("circle", "red", "blue") == "a red circle on a blue background"
    assert describe(None, "orange", None) == "an orange shape"
    assert describe("star", None, None) == "a star"
    assert describe(None, None, "orange") == "a shape on an orange background"
    assert describe(None, None, None) == ""
    assert all(describe(*c) == caption(*c) for c in all_combinations())  # the data's own captions
    assert all(not Tokenizer()(describe(*c)).unknown for c in all_combinations())


def test_held_out_combinations_are_not_seen():
    seen = set(seen_combinations())
    assert len(seen) + len(HELD_OUT) == len(all_combinations())
    assert not seen & set(HELD_OUT)


def test_caption_table_holds_every_partial_caption():
    tokenizer = Tokenizer()
    table = caption_table(tokenizer)
    assert table.shape == (len(SHAPES) + 1, len(COLOR_NAMES) + 1, len(COLOR_NAMES) + 1, MAX_TOKENS)
    assert table[2, 0, 0].tolist() == tokenizer(describe(SHAPES[1], None, None)).ids
    assert table[0, 1, 3].tolist() == tokenizer(describe(None, COLOR_NAMES[0], COLOR_NAMES[2])).ids
    assert table[0, 0, 0].tolist() == tokenizer("").ids


def test_named_attributes_keep_at_least_one_part():
    attributes = torch.tensor([[0, 1, 2]] * 500)
    torch.manual_seed(0)
    named = named_attributes(attributes, partial_fraction=1.0)
    kept = named >= 0
    assert kept.any(dim=1).all()  # never an empty caption unless asked
    assert torch.equal(named[kept], attributes[kept])  # what is named is true
    assert (~kept).any()
    assert (named_attributes(attributes, 0.0) == attributes).all()
    assert (named_attributes(attributes, 0.0, empty_fraction=1.0) == -1).all()


# --------------------------------------------------------------------------- the model


def test_embeddings_are_unit_vectors():
    model = tiny_clip()
    text = model.embed_text(["a red circle", "", "a blue star on a green background"])
    images = model.embed_images(make_shapes(5, seed=1).images)
    assert text.shape == (3, 16) and images.shape == (5, 16)
    assert text.dtype == np.float32 and images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)
    assert model.embed_images(np.zeros((0, 32, 32, 3), np.uint8)).shape == (0, 16)
    with pytest.raises(ValueError, match="uint8"):
        model.embed_images(np.zeros((2, 32, 32, 3), np.float32))
    tokens, pooled = model.encode_prompts(["a red circle"])
    assert tokens.shape == (1, MAX_TOKENS, 16) and pooled.shape == (1, 16)


def fixed_batch(count: int = 64, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    data = make_shapes(count, seed=seed)
    return to_tensor(data.images), torch.from_numpy(np.stack([data.shape, data.color, data.background], 1))


def test_clip_loss_decreases():
    model = tiny_clip().train()
    batch = fixed_batch()
    table = caption_table(model.tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    losses = []
    for _ in range(30):
        loss = clip_loss(model, batch, table, partial_fraction=0.0)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3])


def test_an_image_satisfies_a_partial_caption(monkeypatch):
    """Every caption an image satisfies is a right answer: captions naming only a shared background fit all."""
    model = tiny_clip()
    images, _ = fixed_batch(2)
    attributes = torch.tensor([[0, 0, 2], [1, 1, 2]])  # a red circle and a green square, both on blue
    table = caption_table(model.tokenizer)
    monkeypatch.setattr(clip_module, "named_attributes", lambda a, *args, **kw: torch.tensor([[-1, -1, 2]] * 2))
    with torch.no_grad():
        assert float(clip_loss(model, (images, attributes), table, 1.0)["accuracy"]) == 1.0  # any pick is right
    monkeypatch.setattr(clip_module, "named_attributes", lambda a, *args, **kw: a.clone())  # full captions
    with torch.no_grad():
        result = clip_loss(model, (images, attributes), table, 0.0)
        text = model.text(table[attributes[:, 0] + 1, attributes[:, 1] + 1, attributes[:, 2] + 1])[1]
        picked = (model.image(images) @ text.T).argmax(dim=1)
    assert float(result["accuracy"]) == float((picked == torch.arange(2)).float().mean())


def test_zero_shot_accuracy_and_weights_round_trip(tmp_path):
    model = tiny_clip()
    result = zero_shot_accuracy(model, count=20)
    assert result["captions"] == len(all_combinations()) and result["images"] == 20
    assert 0 <= result["seen"] <= 1 and 0 <= result["held_out"] <= 1
    assert result["accuracy"] == pytest.approx((result["seen"] + result["held_out"]) / 2)
    path = save_clip(model, tmp_path / "tiny", {"steps": 0})
    loaded, meta = load_clip(path)
    assert loaded.config == TINY and meta["card"]["steps"] == 0
    np.testing.assert_array_equal(loaded.embed_text(["a red circle"]), model.embed_text(["a red circle"]))
