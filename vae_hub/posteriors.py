"""A frozen spatial VAE's posterior of every training image, encoded once, for training a diffusion model on its
latents (``training/train_latent_diffusion.py``, ``training/train_text_to_image.py``).

    probe_latent_shape(vae, resolution) ──▶ (c, h, w), or one clear error
    encode_posterior(vae, uint8 images) ──▶ Posteriors(mean, std) in the pipeline's scale, (N, c, h, w)
    sample_latents(posteriors, idx, generator) ──▶ z = mean + std·ε for a batch

The scale is what diffusers' pipelines undo before decoding: (z − shift_factor) · scaling_factor.
"""

from types import SimpleNamespace

import torch
from tqdm.auto import tqdm

from .images import uint8_to_float
from .training_utils import fail


@torch.no_grad()
def probe_latent_shape(vae, resolution: int, device: torch.device) -> tuple[int, int, int]:
    """(channels, h, w) of the VAE's latents for ``resolution``² images; fails unless they decode to that size."""
    x = torch.zeros(1, vae.config.in_channels, resolution, resolution, device=device)
    try:
        z = vae.encode(x).latent_dist.mean
        decoded = vae.decode(z).sample
    except (RuntimeError, ValueError) as err:
        fail(f"the VAE does not take {resolution}×{resolution} images: {err}")
    if z.ndim != 4 or decoded.shape != x.shape:
        fail(
            f"the VAE does not take --resolution {resolution}: its latents {tuple(z.shape[1:])} decode to "
            f"{tuple(decoded.shape[1:])}; its sample_size is {vae.config.sample_size}"
        )
    return tuple(z.shape[1:])


@torch.no_grad()
def encode_posterior(
    vae, images: torch.Tensor, batch_size: int, device: torch.device, progress: bool
) -> SimpleNamespace:
    """The VAE posterior of every image (uint8 (N, C, H, W)), once, in the pipeline's scale: ``mean``, ``std``
    (N, c, h, w) float32 on ``device``, so that mean + std·ε ~ (z − shift_factor) · scaling_factor."""
    scale, shift = vae.config.scaling_factor, getattr(vae.config, "shift_factor", None) or 0.0
    means, stds = [], []
    for start in tqdm(range(0, len(images), batch_size), desc="encoding latents", disable=not progress):
        dist = vae.encode(uint8_to_float(images[start : start + batch_size].to(device))).latent_dist
        means.append((dist.mean.float() - shift) * scale)
        stds.append(dist.std.float() * scale)
    return SimpleNamespace(mean=torch.cat(means), std=torch.cat(stds))


def sample_latents(latents: SimpleNamespace, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw z = mean + std·ε of the posteriors of images ``idx`` (B,) → (B, c, h, w); ε from ``generator``."""
    mean, std = latents.mean[idx], latents.std[idx]
    return mean + std * torch.randn(mean.shape, generator=generator, device=mean.device)


def latent_std(latents: SimpleNamespace, seed: int) -> float:
    """The standard deviation of scaled latents drawn from the posteriors (one draw each, at most 10 k images)."""
    generator = torch.Generator(device=latents.mean.device).manual_seed(seed)
    return sample_latents(latents, torch.arange(min(len(latents.mean), 10_000)), generator).std().item()
