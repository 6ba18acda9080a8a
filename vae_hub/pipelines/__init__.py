"""Pipelines: ``LatentDiffusionPipeline`` (class-conditional diffusion on a spatial VAE's latents)."""

from .latent_diffusion import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS, LatentDiffusionPipeline


__all__ = ["DEFAULT_GUIDANCE_SCALE", "DEFAULT_NUM_INFERENCE_STEPS", "LatentDiffusionPipeline"]
