"""The models: ``VAEModel`` (vector latent, for exploring) and ``SpatialVAEModel`` (a map of latents, for diffusion)."""

from .vae import PRIORS, VAEModel, VAEOutput

__all__ = ["PRIORS", "VAEModel", "VAEOutput"]
