"""vae_hub.mini_clip and vae_hub.text_image_metrics on a tiny random CLIPModel and hand-made features: the folder
that transformers alone reads, features batched and no-grad, CLIP score, R-precision's candidates, retrieval and the
Fréchet distance (the project's one implementation). The trained mini CLIP is in test_train_clip.py.
"""

import math

import pytest
import torch
from transformers import CLIPImageProcessor, CLIPModel, CLIPTextModel, CLIPTokenizer, CLIPVisionModel

from vae_hub.evaluate_samples import FeatureStatistics, frechet_distance
from vae_hub.mini_clip import MiniClip, load_text_encoder, mini_clip_config, pixel_values, save_mini_clip
from vae_hub.text_image_metrics import (
    candidate_captions,
    clip_score,
    features_frechet_distance,
    image_features,
    r_precision,
    r_precision_ceiling,
    retrieval_accuracy,
    text_features,
    text_image_alignment,
)
from vae_hub.text_tokenizer import train_caption_tokenizer


CAPTIONS = [f"{colour} {shape}" for colour in ("red", "green", "blue", "black") for shape in ("square", "disc")]
SIZE = 16


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny random mini CLIP (a few thousand parameters besides the token embeddings), saved."""
    torch.manual_seed(0)
    tokenizer = train_caption_tokenizer(CAPTIONS * 2, vocab_size=520)
    model = CLIPModel(
        mini_clip_config(
            tokenizer,
            text_hidden_size=16,
            text_layers=1,
            text_heads=2,
            vision_hidden_size=16,
            vision_layers=1,
            vision_heads=2,
            image_size=SIZE,
            patch_size=8,
            projection_dim=8,
        )
    )
    out = tmp_path_factory.mktemp("mini-clip") / "clip"
    save_mini_clip(model, tokenizer, out)
    return out


@pytest.fixture(scope="module")
def clip(folder):
    return MiniClip.from_pretrained(folder)


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_transformers_alone_reads_the_folder(folder, clip):
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "tokenizer"} <= {
        p.name for p in folder.iterdir()
    }
    tokenizer = CLIPTokenizer.from_pretrained(folder, subfolder="tokenizer")
    ids = tokenizer(
        CAPTIONS, padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt"
    ).input_ids
    # the text tower alone, as a Stable Diffusion text encoder: the same pooled states as inside the CLIPModel
    text = CLIPTextModel.from_pretrained(folder).eval()
    with torch.no_grad():
        inside = clip.model.text_model(input_ids=ids)
        alone = text(input_ids=ids)
        assert torch.equal(alone.last_hidden_state, inside.last_hidden_state)
        assert torch.equal(clip.model.text_projection(alone.pooler_output), text_features(clip, CAPTIONS))
        vision = CLIPVisionModel.from_pretrained(folder).eval()
        x = images(3)
        assert torch.equal(
            clip.model.visual_projection(vision(pixel_values=pixel_values(x, SIZE)).pooler_output),
            image_features(clip, x),
        )
    # transformers' image processor from the folder gives exactly the pixels the project feeds the vision tower
    processed = CLIPImageProcessor.from_pretrained(folder)(list(images(4)), return_tensors="pt").pixel_values
    assert torch.allclose(processed, pixel_values(images(4), SIZE), atol=1e-6)


def test_load_text_encoder_takes_the_text_tower_and_the_tokenizer(folder, clip):
    text, tokenizer = load_text_encoder(folder)
    assert type(text) is CLIPTextModel and len(tokenizer) == len(clip.tokenizer)
    assert text.config.hidden_size == 16 and text.config.eos_token_id == tokenizer.eos_token_id
    with pytest.raises(ValueError, match="holds no CLIP text model"):
        load_text_encoder(folder / "tokenizer")
    with pytest.raises(ValueError, match="is not a mini CLIP folder"):
        MiniClip.from_pretrained(folder / "tokenizer")


def test_features_are_batched_no_grad_and_check_their_input(clip):
    x = images(5)
    whole, batched = image_features(clip, x), image_features(clip, x, batch_size=2)
    assert whole.shape == (5, 8) and not whole.requires_grad and whole.dtype == torch.float32
    assert torch.allclose(whole, batched, atol=1e-6)
    assert torch.allclose(text_features(clip, CAPTIONS), text_features(clip, CAPTIONS, batch_size=3), atol=1e-6)
    for bad in (x.float(), images(2)[:, :1], torch.zeros(2, 3, 8, 8, dtype=torch.uint8)):
        with pytest.raises(ValueError, match=r"takes uint8 RGB images \(N, 3, 16, 16\)"):
            image_features(clip, bad)


def test_clip_score_is_100_times_the_clipped_mean_cosine():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    b = torch.tensor([[3.0, 0.0], [0.0, -1.0], [1.0, 1.0]])  # cosines 1, −1 (clipped to 0), 1/√2
    assert clip_score(a, b) == pytest.approx(100 * (1 + 0 + 1 / math.sqrt(2)) / 3)
    with pytest.raises(ValueError, match="paired features"):
        clip_score(a, b[:2])


def test_candidates_are_the_own_caption_then_distinct_seeded_rivals():
    captions = CAPTIONS + CAPTIONS[:3]  # repeated captions share one candidate index
    distinct, candidates = candidate_captions(captions, num_candidates=5, seed=1)
    assert distinct == CAPTIONS and candidates.shape == (len(captions), 5)
    assert [distinct[i] for i in candidates[:, 0]] == captions
    assert all(len(set(row.tolist())) == 5 for row in candidates)  # no rival is the own caption, none twice
    assert torch.equal(candidates, candidate_captions(captions, 5, seed=1)[1])
    assert not torch.equal(candidates, candidate_captions(captions, 5, seed=2)[1])
    rivals = candidate_captions(CAPTIONS * 50, 2, seed=0)[1][:, 1]  # every other caption is drawn
    assert set(rivals.tolist()) == set(range(len(CAPTIONS)))
    with pytest.raises(ValueError, match="needs at least that many distinct captions .* there are 8"):
        candidate_captions(captions, num_candidates=9)


def test_r_precision_counts_strict_wins():
    caption_feats = torch.eye(4)
    candidates = torch.tensor([[0, 1, 2], [1, 2, 3], [2, 0, 1], [3, 0, 1]])
    perfect = torch.eye(4)
    assert r_precision(perfect, caption_feats, candidates) == 1.0
    wrong = torch.eye(4)[[1, 2, 0, 0]]  # rows 0, 1, 2 look like a rival, row 3 like caption 0
    assert r_precision(wrong, caption_feats, candidates) == 0.0
    ties = torch.ones(4, 4)
    assert r_precision(ties, caption_feats, candidates) == 0.0


def test_retrieval_accuracy_both_ways_and_same_caption_counts():
    texts = torch.eye(4)
    images = torch.eye(4)[[0, 1, 3, 3]]  # image 2 looks like caption 3
    scores = retrieval_accuracy(images, texts, ["a", "b", "c", "d"], group_size=4)
    assert scores["image_to_text_top1"] == 0.75 and scores["group_size"] == 4 and scores["num_pairs"] == 4
    assert scores["text_to_image_top1"] == 0.75  # caption 2's best image is 0, 1 or 3, never its own
    same = retrieval_accuracy(images, texts, ["a", "b", "c", "c"], group_size=4)
    assert same["image_to_text_top1"] == 1.0  # image 2 retrieves caption 3, whose text is its own
    assert retrieval_accuracy(images, texts, list("abcd"), group_size=3)["num_pairs"] == 3  # one full group


def test_random_clip_scores_near_chance(clip):
    captions = CAPTIONS * 4
    scores = text_image_alignment(clip, images(len(captions)), captions, num_candidates=4, seed=0)
    assert scores["num_images"] == 32 and scores["r_precision_chance"] == 0.25
    assert 0 <= scores["r_precision"] <= 0.6 and 0 <= scores["clip_score"] <= 100
    assert r_precision_ceiling(clip, images(len(captions)), captions, num_candidates=4) == scores["r_precision"]
    with pytest.raises(ValueError, match="32 images but 8 captions"):
        text_image_alignment(clip, images(32), CAPTIONS)


def test_frechet_distance_is_the_projects_one():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 3, generator=generator), torch.randn(40, 3, generator=generator) + 1
    assert features_frechet_distance(a, b) == frechet_distance(FeatureStatistics.of(a), FeatureStatistics.of(b))
    assert features_frechet_distance(a, a) == pytest.approx(0, abs=1e-9)
    assert features_frechet_distance(a, b) > 2  # the means alone are √3 apart
    with pytest.raises(ValueError, match="two sets of at least 2 features of one width"):
        features_frechet_distance(a, b[:, :2])
