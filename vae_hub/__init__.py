"""vae-hub: a variational autoencoder that lives natively in the Hugging Face ecosystem."""

from .models import VAEModel, VAEOutput
from .prior import fit_mixture_prior

__version__ = "0.1.0"
__all__ = ["VAEModel", "VAEOutput", "fit_mixture_prior"]
