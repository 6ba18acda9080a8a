"""Tiny, randomly initialised models that the tests build in a second: the diffusers and transformers classes the
project ships, at a few thousand parameters, saved as their folders are.

    tiny_mini_clip(folder, captions)            a mini CLIP (CLIPModel + tokenizer/), as training/train_clip.py writes
    tiny_stable_diffusion(folder, captions)     a StableDiffusionPipeline folder: 16×16 RGB ↔ 4×8×8 latents
"""

from pathlib import Path

import torch
from diffusers import (AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler, StableDiffusionPipeline,
                       UNet2DConditionModel)
from transformers import CLIPModel, CLIPTextModel

from vae_hub.mini_clip import clip_text_config, mini_clip_config, save_mini_clip
from vae_hub.text_tokenizer import train_caption_tokenizer

SIZE = 16  # pixels of the tiny models' images


def tiny_mini_clip(folder: str | Path, captions: list[str], seed: int = 0) -> Path:
    torch.manual_seed(seed)
    tokenizer = train_caption_tokenizer(captions, vocab_size=530)
    model = CLIPModel(mini_clip_config(tokenizer, text_hidden_size=16, text_layers=1, text_heads=2,
                                       vision_hidden_size=16, vision_layers=1, vision_heads=2, image_size=SIZE,
                                       patch_size=8, projection_dim=8))
    save_mini_clip(model, tokenizer, folder)
    return Path(folder)


def tiny_stable_diffusion(folder: str | Path, captions: list[str], seed: int = 0) -> Path:
    """A plain diffusers text-to-image folder (no safety checker) with a tokenizer learned from ``captions``."""
    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 8), latent_channels=4,
                        norm_num_groups=4, sample_size=SIZE, scaling_factor=1.5)
    tokenizer = train_caption_tokenizer(captions, vocab_size=540)
    text_encoder = CLIPTextModel(clip_text_config(tokenizer, hidden_size=16, num_layers=1, num_heads=2))
    unet = UNet2DConditionModel(sample_size=SIZE // 2, in_channels=4, out_channels=4, block_out_channels=(16, 32),
                                layers_per_block=1, norm_num_groups=8, attention_head_dim=4, cross_attention_dim=16,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    # as training/train_text_to_image.py saves it: latents are not clipped to [-1, 1], whichever sampler is swapped in
    scheduler = DPMSolverMultistepScheduler.from_config(DDPMScheduler(num_train_timesteps=100, clip_sample=False,
                                                                      steps_offset=1).config)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return Path(folder)
