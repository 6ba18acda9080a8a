"""Tiny, randomly initialised models that the tests build in a second: the classes the project ships, at a few
thousand parameters, each from a fixed seed (the same call gives the same weights). Keyword arguments override the
config.

    tiny_vae(**config)                          a VAEModel: 28×28 grayscale ↔ 4 latent dimensions
    tiny_spatial_vae(**config)                  a SpatialVAEModel: 12×12 grayscale (padded to 16) ↔ 4×8×8 latents
    tiny_autoencoder_kl(**config)               diffusers' AutoencoderKL: 8×8 grayscale ↔ 4×4×4 latents
    tiny_unet(num_classes, sample_size)         a class-conditional UNet2DModel on 4-channel latents
    random_images(n, channels, size, seed)      images (n, channels, size, size) in [-1, 1]
    tiny_mini_clip(folder, captions)            a mini CLIP (CLIPModel + tokenizer/), as training/train_clip.py writes
    tiny_stable_diffusion(folder, captions)     a StableDiffusionPipeline folder: 16×16 RGB ↔ 4×8×8 latents
"""

from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
    UNet2DModel,
)
from transformers import CLIPModel, CLIPTextModel

from vae_hub.mini_clip import clip_text_config, mini_clip_config, save_mini_clip
from vae_hub.models import SpatialVAEModel, VAEModel
from vae_hub.text_tokenizer import train_caption_tokenizer


SIZE = 16  # pixels of the tiny text-to-image models' images


def tiny_vae(**config) -> VAEModel:
    torch.manual_seed(0)
    return VAEModel(**{"block_out_channels": (8, 16), "norm_num_groups": 4, "latent_dim": 4, **config})


def tiny_spatial_vae(**config) -> SpatialVAEModel:
    torch.manual_seed(0)
    return SpatialVAEModel(
        **{
            "sample_size": 12,
            "block_out_channels": (8, 8),
            "latent_channels": 4,
            "norm_num_groups": 4,
            "scaling_factor": 0.5,
            "shift_factor": 0.1,
            **config,
        }
    ).eval()


def tiny_autoencoder_kl(channels: int = 1, **config) -> AutoencoderKL:
    torch.manual_seed(0)
    stages = len(config.get("block_out_channels", (8, 8)))
    return AutoencoderKL(
        **{
            "in_channels": channels,
            "out_channels": channels,
            "block_out_channels": (8, 8),
            "down_block_types": ("DownEncoderBlock2D",) * stages,
            "up_block_types": ("UpDecoderBlock2D",) * stages,
            "latent_channels": 4,
            "norm_num_groups": 4,
            "sample_size": 8,
            "scaling_factor": 0.7,
            **config,
        }
    ).eval()


def tiny_unet(num_classes: int | None = 2, sample_size: int = 4) -> UNet2DModel:
    """``num_classes`` + 1 class embeddings (the last: "no class"), or None for an unconditional UNet."""
    torch.manual_seed(1)
    return UNet2DModel(
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        attention_head_dim=4,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        num_class_embeds=None if num_classes is None else num_classes + 1,
    ).eval()


def random_images(n: int = 2, channels: int = 1, size: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def tiny_mini_clip(folder: str | Path, captions: list[str], seed: int = 0) -> Path:
    torch.manual_seed(seed)
    tokenizer = train_caption_tokenizer(captions, vocab_size=530)
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
    save_mini_clip(model, tokenizer, folder)
    return Path(folder)


def tiny_stable_diffusion(folder: str | Path, captions: list[str], seed: int = 0) -> Path:
    """A plain diffusers text-to-image folder (no safety checker) with a tokenizer learned from ``captions``."""
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 8),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=SIZE,
        scaling_factor=1.5,
    )
    tokenizer = train_caption_tokenizer(captions, vocab_size=540)
    text_encoder = CLIPTextModel(clip_text_config(tokenizer, hidden_size=16, num_layers=1, num_heads=2))
    unet = UNet2DConditionModel(
        sample_size=SIZE // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        attention_head_dim=4,
        cross_attention_dim=16,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    )
    # as training/train_text_to_image.py saves it: latents are not clipped to [-1, 1], whichever sampler is swapped in
    scheduler = DPMSolverMultistepScheduler.from_config(
        DDPMScheduler(num_train_timesteps=100, clip_sample=False, steps_offset=1).config
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return Path(folder)
