"""Sample quality of a text-to-image pipeline (a diffusers ``StableDiffusionPipeline`` folder), measured one way:
``python -m vae_hub.evaluate_samples --generator FOLDER --clip CLIP_FOLDER --dataset_name DATA``.

One sample for each caption of the held-out split (seeded, in batches), measured with the project's own mini CLIP
(``vae_hub.mini_clip``, trained on the same data by ``training/train_clip.py``: the project's emoji image model):

* ``frechet_distance``: FID's formula between the CLIP image features of the samples and of the split's real
  images (``features_frechet_distance``; lower is closer to the data; it depends on N, so compare equal N only);
* ``clip_score`` and ``r_precision`` of the samples with their own captions (``vae_hub.text_image_metrics``);
* ``real_images``: the real images' own CLIP score and R-precision with the same captions and rivals, the ceiling;
* ``reconstruction_frechet_distance``: the pipeline's autoencoder's reconstructions of as many training images,
  the FD a perfect UNet would leave (the autoencoder's share of the error);
* ``empty_prompt``: the same UNet given the empty caption (its unconditional, classifier-free-guidance branch) with
  the same noise: the baseline that following the text must beat.

A setting is (scheduler, steps, guidance). ``recommend`` picks one among the recorded settings by a stated rule, and
``recommended_settings(folder)`` is what the Space, the card and the evaluation use by default, because a folder
cannot change ``StableDiffusionPipeline.__call__``'s own defaults (50 steps, guidance 7.5).
"""

import json
import os
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .images import float_to_uint8
from .mini_clip import MiniClip
from .pipelines.schedulers import SCHEDULERS, build_scheduler, scheduler_name
from .text_image_metrics import features_frechet_distance, image_features, text_image_alignment


PIPELINE_CLASSES = ("StableDiffusionPipeline",)  # model_index.json _class_name of a text-to-image folder
RECOMMENDED_KEY = "recommended_settings"  # in the folder's metrics.json
# The rule that picks the recommended setting among the recorded ones, in words (the card quotes it).
R_PRECISION_MARGIN = 0.05
FD_TIE = 0.05  # Fréchet distances closer than this are a tie, which the faster setting wins (class-conditional too)
RULE = (
    f"the lowest Fréchet distance among the settings whose R-precision is within {R_PRECISION_MARGIN} of the best "
    f"recorded one; Fréchet distances within {FD_TIE} of it are a tie, which fewer steps win"
)


@dataclass(frozen=True)
class Setting:
    """How a text-to-image pipeline is sampled: a scheduler of ``SCHEDULERS`` by name, steps and guidance."""

    scheduler: str
    num_inference_steps: int
    guidance_scale: float

    def __post_init__(self):
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.scheduler!r}: choose one of {', '.join(SCHEDULERS)}")
        if self.num_inference_steps < 1 or not self.guidance_scale >= 0:
            raise ValueError(
                f"steps must be >= 1 and guidance >= 0, got {self.num_inference_steps} and {self.guidance_scale}"
            )

    @property
    def key(self) -> str:
        """Its name in ``metrics.json``'s ``sample_quality``: "dpm-solver++_steps_20_guidance_3"."""
        return f"{self.scheduler.lower()}_steps_{self.num_inference_steps}_guidance_{self.guidance_scale:g}"

    def describe(self) -> str:
        return f"{self.scheduler}, {self.num_inference_steps} steps, guidance {self.guidance_scale:g}"


def is_text_to_image_folder(folder: str) -> bool:
    """Whether ``folder`` holds a diffusers text-to-image pipeline (``model_index.json`` naming one)."""
    try:
        with open(os.path.join(folder, "model_index.json")) as f:
            return json.load(f).get("_class_name") in PIPELINE_CLASSES
    except (OSError, ValueError, AttributeError):
        return False


def read_recommended(folder: str) -> Setting | None:
    """The folder's recommended setting (``metrics.json``), or None when none was chosen or it is unreadable."""
    try:
        with open(os.path.join(folder, "metrics.json")) as f:
            chosen = json.load(f).get(RECOMMENDED_KEY)
        return Setting(chosen["scheduler"], int(chosen["num_inference_steps"]), float(chosen["guidance_scale"]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def default_setting(pipe) -> Setting:
    """``StableDiffusionPipeline.__call__``'s own defaults (50 steps, guidance 7.5) with the pipeline's scheduler."""
    name = scheduler_name(pipe.scheduler)
    if name is None:
        raise ValueError(
            f"the pipeline's scheduler {type(pipe.scheduler).__name__} is not one of "
            f"{', '.join(SCHEDULERS)}: pass --scheduler"
        )
    return Setting(name, 50, 7.5)


@torch.inference_mode()
def generate(
    pipe, captions: list[str], setting: Setting, *, seed: int = 0, batch_size: int = 64, progress: bool = True
) -> torch.Tensor:
    """uint8 images (N, 3, H, W), one per caption, sampled with ``setting`` on a copy of ``pipe`` that holds its own
    scheduler. One CPU generator seeded with ``seed`` feeds every batch: same seed and batch size, same images."""
    own = type(pipe)(**{**pipe.components, "scheduler": build_scheduler(setting.scheduler, pipe.scheduler.config)})
    own.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(seed)
    parts = []
    for start in tqdm(range(0, len(captions), batch_size), desc="samples", disable=not progress):
        out = own(
            prompt=captions[start : start + batch_size],
            num_inference_steps=setting.num_inference_steps,
            guidance_scale=setting.guidance_scale,
            generator=generator,
            output_type="pt",
        )
        parts.append(float_to_uint8(out.images.cpu() * 2 - 1))
    return torch.cat(parts)


@torch.inference_mode()
def reconstruct(vae, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """uint8 reconstructions decode(E[z | x]) of uint8 images (N, C, H, W) by a diffusers ``AutoencoderKL``."""
    parts = []
    for batch in images.split(batch_size):
        x = batch.to(vae.device, vae.dtype) / 127.5 - 1
        parts.append(float_to_uint8(vae.decode(vae.encode(x).latent_dist.mode()).sample.float().cpu()))
    return torch.cat(parts)


def at_size(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images resized (antialiased) to size × size, as the CLIP takes them; unchanged at that size."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    resized = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8)


def evaluate_text_to_image(
    pipe,
    clip: MiniClip,
    reference: torch.Tensor,
    captions: list[str],
    train_images: torch.Tensor,
    setting: Setting,
    *,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = True,
) -> dict:
    """The numbers described above, for one sample per caption.

    Args:
        pipe: a ``StableDiffusionPipeline`` (or one called as it is).
        clip: the measuring mini CLIP.
        reference: the held-out real images, uint8 (N, 3, H, W), ``reference[i]`` showing ``captions[i]``.
        captions: N captions, at least ``NUM_CANDIDATES`` distinct (for R-precision).
        train_images: uint8 training images (M ≥ N, 3, H, W): N of them, drawn with ``seed``, are reconstructed.
        setting: the sampler.
    """
    if len(reference) != len(captions) or len(reference) < 2:
        raise ValueError(f"{len(reference)} reference images for {len(captions)} captions: they must pair up (N >= 2)")
    if len(train_images) < len(captions):
        raise ValueError(f"{len(train_images)} training images, fewer than the {len(captions)} samples to compare")
    size = clip.image_size
    start = time.perf_counter()
    samples = generate(pipe, captions, setting, seed=seed, batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - start
    unconditional = generate(
        pipe,
        [""] * len(captions),
        Setting(setting.scheduler, setting.num_inference_steps, 1.0),
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )
    chosen = torch.randperm(len(train_images), generator=torch.Generator().manual_seed(seed))[: len(captions)]
    reconstructions = reconstruct(pipe.vae, train_images[chosen], batch_size)

    real_features = image_features(clip, at_size(reference, size))

    def measured(images: torch.Tensor) -> dict:
        images = at_size(images, size)
        fd = features_frechet_distance(image_features(clip, images), real_features)
        return {"frechet_distance": fd, **text_image_alignment(clip, images, captions, seed=seed)}

    result, real, empty = (
        measured(samples),
        text_image_alignment(clip, at_size(reference, size), captions, seed=seed),
        measured(unconditional),
    )
    return {
        "kind": "text-to-image pipeline",
        **asdict(setting),
        **result,
        "r_precision_ceiling": real["r_precision"],
        "real_images": {"clip_score": real["clip_score"], "r_precision": real["r_precision"]},
        "empty_prompt": {key: empty[key] for key in ("frechet_distance", "clip_score", "r_precision")},
        "reconstruction_frechet_distance": features_frechet_distance(
            image_features(clip, at_size(reconstructions, size)), real_features
        ),
        "num_samples": len(captions),
        "seed": seed,
        "batch_size": batch_size,
        "samples_per_second": len(captions) / seconds,
    }


def recommend(records: dict) -> dict:
    """The recommended setting among recorded text-to-image results (``sample_quality``'s values), by ``RULE``.

    Returns:
        {"scheduler", "num_inference_steps", "guidance_scale", "rule", "chosen_from"} (the number of settings).

    Raises:
        ValueError: no text-to-image setting is recorded.
    """
    candidates = [r for r in records.values() if r.get("kind") == "text-to-image pipeline"]
    if not candidates:
        raise ValueError("no text-to-image setting is recorded yet: run evaluate_samples --record first")
    best_r = max(r["r_precision"] for r in candidates)
    eligible = [r for r in candidates if r["r_precision"] >= best_r - R_PRECISION_MARGIN]
    best_fd = min(r["frechet_distance"] for r in eligible)
    tied = [r for r in eligible if r["frechet_distance"] <= best_fd + FD_TIE]
    chosen = min(tied, key=lambda r: (r["num_inference_steps"], r["frechet_distance"]))
    return {
        **{k: chosen[k] for k in ("scheduler", "num_inference_steps", "guidance_scale")},
        "rule": RULE,
        "chosen_from": len(candidates),
    }
