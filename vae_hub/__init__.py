"""vae-hub: a variational autoencoder that lives natively in the Hugging Face ecosystem.

The names below are imported on first use (PEP 562), so that importing a light module of the package, as the
command lines do to show ``--help``, does not wait for torch and diffusers.
"""

import importlib


__version__ = "0.1.0"
_SUBMODULES = {
    "AutoencoderKLWithLikelihood": "models",
    "LatentDiffusionPipeline": "pipelines",
    "SpatialVAEModel": "models",
    "VAEModel": "models",
    "VAEOutput": "models",
    "fit_mixture_prior": "prior",
}
__all__ = list(_SUBMODULES)


def __getattr__(name: str):
    if name not in _SUBMODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_SUBMODULES[name]}", __name__), name)
    globals()[name] = value  # the next look-up does not come here
    return value
