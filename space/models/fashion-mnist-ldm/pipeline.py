"""Lets diffusers' DiffusionPipeline.from_pretrained(..., trust_remote_code=True) load this folder.

The pipeline is vae-hub's (pip install vae-hub); this file only imports it.
"""

from vae_hub.pipelines.latent_diffusion import LatentDiffusionPipeline  # noqa: F401
