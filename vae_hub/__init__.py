"""vae-hub: a variational autoencoder that lives natively in the Hugging Face ecosystem."""

from .models import AutoencoderKLWithLikelihood, SpatialVAEModel, VAEModel, VAEOutput
from .pipelines import LatentDiffusionPipeline
from .prior import fit_mixture_prior

__version__ = "0.1.0"
__all__ = ["AutoencoderKLWithLikelihood", "LatentDiffusionPipeline", "SpatialVAEModel", "VAEModel", "VAEOutput", "fit_mixture_prior"]
