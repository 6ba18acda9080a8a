"""The models: ``VAEModel`` (vector latent, for exploring) and ``SpatialVAEModel`` (a map of latents, for diffusion)."""

from ..loading import CONFIG_NAME
from .spatial_vae import SpatialVAEModel, own_decoder_stages
from .vae import PRIORS, VAEModel, VAEOutput

MODEL_CLASSES = {cls.__name__: cls for cls in (VAEModel, SpatialVAEModel)}

__all__ = ["MODEL_CLASSES", "PRIORS", "SpatialVAEModel", "VAEModel", "VAEOutput", "load_model", "model_class",
           "own_decoder_stages"]


def model_class(pretrained_model_name_or_path, **config_kwargs) -> type[VAEModel] | type[SpatialVAEModel]:
    """The class (``VAEModel`` or ``SpatialVAEModel``) that a folder's or repo's ``config.json`` names.

    ``config_kwargs`` go to ``load_config`` (``cache_dir``, ``token``, ``revision``, ...); any other class is
    refused by name.
    """
    where = str(pretrained_model_name_or_path)[:200]
    try:
        found = VAEModel.load_config(pretrained_model_name_or_path, **config_kwargs).get("_class_name")
    except EnvironmentError as err:
        raise EnvironmentError(f"cannot read the {CONFIG_NAME} of {where}: {err}") from err
    if found not in MODEL_CLASSES:
        raise ValueError(f"{where} holds a {found or 'config without _class_name'}, not one of {', '.join(MODEL_CLASSES)}")
    return MODEL_CLASSES[found]


def load_model(pretrained_model_name_or_path, **kwargs) -> VAEModel | SpatialVAEModel:
    """Load a ``VAEModel`` or a ``SpatialVAEModel``, whichever the folder's (or repo's) ``config.json`` names.

    ``kwargs`` go to that class's strict ``from_pretrained``.
    """
    config_kwargs = {k: kwargs[k] for k in ("cache_dir", "token", "revision", "subfolder", "local_files_only") if k in kwargs}
    return model_class(pretrained_model_name_or_path, **config_kwargs).from_pretrained(pretrained_model_name_or_path, **kwargs)
