"""Pipelines: ``LatentDiffusionPipeline`` (class-conditional diffusion on a spatial VAE's latents)."""

from .latent_diffusion import LatentDiffusionPipeline

__all__ = ["LatentDiffusionPipeline"]
