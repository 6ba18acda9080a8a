"""How well images fit their captions, measured with the project's own mini CLIP (``vae_hub.mini_clip``).

    image_features(clip, uint8 images) ──▶ (N, P)    the vision tower's projected pooled output, no grad, batched
    text_features(clip, captions)      ──▶ (N, P)    the text tower's projected output at the first eos
    clip_score      100 × mean over pairs of max(cos(image, own caption), 0)
    r_precision     the share of images whose own caption ranks first among itself and num_candidates − 1 other
                    distinct captions drawn (seeded) from the same set: chance is 1 / num_candidates
    retrieval_accuracy  image→text and text→image top-1 within groups of num_candidates pairs (CLIP's own test)
    features_frechet_distance   Fréchet distance between two sets of features (the project's one implementation)

``text_image_alignment(clip, images, captions)`` gives the CLIP score and R-precision of a set of images, generated
or real; on the real test images with their own captions it is the ceiling a text-to-image model is measured
against (``r_precision_ceiling``). The candidates depend on the captions and the seed only, so generated samples and
the real images of the same captions face the same 31 rivals each.

The CLIP score is CLIPScore's (Hessel et al. 2021, https://arxiv.org/abs/2104.08718) with torchmetrics' weight of
100 instead of 2.5: each pair's cosine is clipped at 0, then averaged (torchmetrics clips the average instead; the
two agree whenever no pair is negative). R-precision is AttnGAN's (Xu et al. 2018), with 31 rivals as there.
"""

import torch
import torch.nn.functional as F

from .constants import NUM_CANDIDATES
from .mini_clip import MiniClip, pixel_values
from .text_tokenizer import tokenize


@torch.no_grad()
def image_features(clip: MiniClip, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Projected image features (N, P), float32 on the CPU, of uint8 RGB images (N, 3, S, S) at the model's size S."""
    model = clip.model
    parts = []
    for batch in images.split(batch_size):
        x = pixel_values(batch, clip.image_size).to(model.device, model.dtype)
        parts.append(model.visual_projection(model.vision_model(pixel_values=x).pooler_output).float().cpu())
    return torch.cat(parts) if parts else torch.empty(0, model.config.projection_dim)


@torch.no_grad()
def text_features(clip: MiniClip, captions: list[str], batch_size: int = 256) -> torch.Tensor:
    """Projected text features (N, P), float32 on the CPU, of ``captions`` (padded and truncated as the pipelines do)."""
    model = clip.model
    parts = []
    for start in range(0, len(captions), batch_size):
        ids = tokenize(clip.tokenizer, captions[start : start + batch_size]).to(model.device)
        parts.append(model.text_projection(model.text_model(input_ids=ids).pooler_output).float().cpu())
    return torch.cat(parts) if parts else torch.empty(0, model.config.projection_dim)


def clip_score(image_feats: torch.Tensor, text_feats: torch.Tensor) -> float:
    """100 × the mean of max(cos, 0) over the pairs (image_feats[i], text_feats[i]), both (N, P)."""
    if image_feats.shape != text_feats.shape or len(image_feats) == 0:
        raise ValueError(
            f"clip_score needs paired features of one shape, got {tuple(image_feats.shape)} and "
            f"{tuple(text_feats.shape)}"
        )
    cosine = F.cosine_similarity(image_feats.double(), text_feats.double(), dim=1)
    return 100 * cosine.clamp(min=0).mean().item()


def candidate_captions(
    captions: list[str], num_candidates: int = NUM_CANDIDATES, seed: int = 0
) -> tuple[list[str], torch.Tensor]:
    """(the distinct captions, candidates (N, num_candidates)): row i holds indices into the distinct captions, its
    own caption first, then num_candidates − 1 other distinct captions drawn without replacement with ``seed``.

    Raises:
        ValueError: fewer than ``num_candidates`` distinct captions, or ``num_candidates`` below 2.
    """
    distinct = list(dict.fromkeys(captions))
    if num_candidates < 2 or len(distinct) < num_candidates:
        raise ValueError(
            f"R-precision among {num_candidates} captions needs at least that many distinct captions "
            f"(and at least 2); there are {len(distinct)}"
        )
    index = {caption: i for i, caption in enumerate(distinct)}
    own = torch.tensor([index[c] for c in captions], dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    rivals = torch.stack([torch.randperm(len(distinct) - 1, generator=generator)[: num_candidates - 1] for _ in own])
    rivals += (rivals >= own[:, None]).long()  # skip the own caption: 0..M-2 → the M-1 others
    return distinct, torch.cat([own[:, None], rivals], dim=1)


def r_precision(image_feats: torch.Tensor, caption_feats: torch.Tensor, candidates: torch.Tensor) -> float:
    """The share of images (image_feats (N, P)) whose own caption (candidates[:, 0], rows of caption_feats (M, P))
    is strictly more similar (cosine) than each of the other candidates; a tie counts as a miss."""
    images = F.normalize(image_feats.double(), dim=1)
    texts = F.normalize(caption_feats.double(), dim=1)
    similarity = torch.einsum("np,nkp->nk", images, texts[candidates])  # (N, num_candidates)
    return (similarity[:, 0] > similarity[:, 1:].max(dim=1).values).double().mean().item()


def retrieval_accuracy(
    image_feats: torch.Tensor,
    text_feats: torch.Tensor,
    captions: list[str],
    group_size: int = NUM_CANDIDATES,
    seed: int = 0,
) -> dict:
    """Top-1 retrieval within groups of ``group_size`` pairs (a seeded shuffle of the N pairs cut into N // group_size
    groups; all N in one group when N < group_size): image→text (the most similar caption of the group is the
    image's own) and text→image. A retrieved item that carries the same caption text counts as a hit.

    Returns:
        {"image_to_text_top1", "text_to_image_top1", "group_size", "num_pairs"} (the pairs scored).
    """
    if image_feats.shape != text_feats.shape or len(image_feats) != len(captions) or len(captions) < 2:
        raise ValueError(
            f"retrieval needs at least 2 pairs and paired features, got {tuple(image_feats.shape)}, "
            f"{tuple(text_feats.shape)} and {len(captions)} captions"
        )
    size = min(group_size, len(captions))
    order = torch.randperm(len(captions), generator=torch.Generator().manual_seed(seed))
    groups = order[: len(order) // size * size].view(-1, size)  # (G, size)
    ids = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    caption_ids = torch.tensor([ids[c] for c in captions])[groups]  # (G, size)
    similarity = torch.einsum(
        "gip,gjp->gij",
        F.normalize(image_feats.double(), dim=1)[groups],
        F.normalize(text_feats.double(), dim=1)[groups],
    )  # images × captions of each group
    to_text = caption_ids.gather(1, similarity.argmax(dim=2)) == caption_ids
    to_image = caption_ids.gather(1, similarity.argmax(dim=1)) == caption_ids
    return {
        "image_to_text_top1": to_text.double().mean().item(),
        "text_to_image_top1": to_image.double().mean().item(),
        "group_size": size,
        "num_pairs": groups.numel(),
    }


def text_image_alignment(
    clip: MiniClip,
    images: torch.Tensor,
    captions: list[str],
    *,
    num_candidates: int = NUM_CANDIDATES,
    seed: int = 0,
    batch_size: int = 256,
) -> dict:
    """CLIP score and R-precision of uint8 images (N, 3, S, S), image i made for (or showing) ``captions[i]``.

    Returns:
        {"clip_score", "r_precision", "r_precision_chance" (1 / num_candidates), "num_candidates", "num_images"}
    """
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    distinct, candidates = candidate_captions(captions, num_candidates, seed)
    image_feats = image_features(clip, images, batch_size)
    caption_feats = text_features(clip, distinct, batch_size)
    return {
        "clip_score": clip_score(image_feats, caption_feats[candidates[:, 0]]),
        "r_precision": r_precision(image_feats, caption_feats, candidates),
        "r_precision_chance": 1 / num_candidates,
        "num_candidates": num_candidates,
        "num_images": len(images),
    }


def r_precision_ceiling(
    clip: MiniClip,
    real_images: torch.Tensor,
    captions: list[str],
    *,
    num_candidates: int = NUM_CANDIDATES,
    seed: int = 0,
    batch_size: int = 256,
) -> float:
    """R-precision of the real images of ``captions`` (the test split): what a perfect text-to-image model would get
    from this CLIP, with the same rivals (same captions and seed) as the generated samples face."""
    return text_image_alignment(
        clip, real_images, captions, num_candidates=num_candidates, seed=seed, batch_size=batch_size
    )["r_precision"]


def features_frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to features a (N, P) and b (M, P), N, M ≥ 2:
    ``vae_hub.evaluate_samples.frechet_distance``, the project's one implementation."""
    # Imported here: evaluate_samples is to import this module, and a top-level import each way would be circular.
    from .evaluate_samples import FeatureStatistics, frechet_distance

    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"the Fréchet distance needs two sets of at least 2 features of one width, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    return frechet_distance(FeatureStatistics.of(a), FeatureStatistics.of(b))
