"""The models: ``VAEModel`` (vector latent, for exploring), ``SpatialVAEModel`` (a map of latents, for diffusion) and
diffusers' own ``AutoencoderKL`` with a likelihood (``AutoencoderKLWithLikelihood``, Stable Diffusion's VAE)."""

from ..loading import CONFIG_NAME
from .autoencoder_kl import AutoencoderKLWithLikelihood
from .blocks import VAEOutput
from .spatial_vae import SpatialVAEModel, own_decoder_stages
from .vae import PRIORS, VAEModel


# the class a folder's config.json names → the class that loads it
MODEL_CLASSES = {
    "VAEModel": VAEModel,
    "SpatialVAEModel": SpatialVAEModel,
    "AutoencoderKL": AutoencoderKLWithLikelihood,
}
AnyModel = VAEModel | SpatialVAEModel | AutoencoderKLWithLikelihood
# the classes a pipeline's model_index.json may name as ["vae_hub", "<class>"] (register_with_diffusers)
PIPELINE_COMPONENT_CLASSES = ("SpatialVAEModel", "VAEModel")

__all__ = [
    "MODEL_CLASSES",
    "PIPELINE_COMPONENT_CLASSES",
    "PRIORS",
    "AnyModel",
    "AutoencoderKLWithLikelihood",
    "SpatialVAEModel",
    "VAEModel",
    "VAEOutput",
    "load_model",
    "model_class",
    "own_decoder_stages",
    "register_with_diffusers",
]


def register_with_diffusers() -> None:
    """Make vae-hub a library whose classes a pipeline's ``model_index.json`` may name, as diffusers and transformers
    are: a pipeline saves a ``SpatialVAEModel`` vae as ``["vae_hub", "SpatialVAEModel"]``, and diffusers' component
    loader (``DiffusionPipeline.from_pretrained``) imports ``vae_hub`` and loads that class with ``from_pretrained``
    (variant, safetensors, dtype and its errors as for any diffusers model). Done once, when this package is imported.
    """
    from diffusers.pipelines import pipeline_loading_utils

    methods = ["save_pretrained", "from_pretrained"]
    classes = dict.fromkeys(PIPELINE_COMPONENT_CLASSES, methods)
    pipeline_loading_utils.LOADABLE_CLASSES.setdefault(__name__.split(".")[0], classes)
    pipeline_loading_utils.ALL_IMPORTABLE_CLASSES.update(classes)  # the loader looks the classes up by these names


register_with_diffusers()


def model_class(pretrained_model_name_or_path, **config_kwargs) -> type[AnyModel]:
    """The class that loads a folder or repo, by the class its ``config.json`` names (``MODEL_CLASSES``).

    ``config_kwargs`` go to ``load_config`` (``cache_dir``, ``token``, ``revision``, ...); any other class is
    refused by name.
    """
    where = str(pretrained_model_name_or_path)[:200]
    try:
        found = VAEModel.load_config(pretrained_model_name_or_path, **config_kwargs).get("_class_name")
    except EnvironmentError as err:
        raise EnvironmentError(f"cannot read the {CONFIG_NAME} of {where}: {err}") from err
    if found not in MODEL_CLASSES:
        raise ValueError(
            f"{where} holds a {found or 'config without _class_name'}, not one of {', '.join(MODEL_CLASSES)}"
        )
    return MODEL_CLASSES[found]


def load_model(pretrained_model_name_or_path, **kwargs) -> AnyModel:
    """Load a ``VAEModel``, a ``SpatialVAEModel`` or an ``AutoencoderKL``, whichever the folder's (or repo's)
    ``config.json`` names.

    ``kwargs`` go to that class's strict ``from_pretrained``.
    """
    config_kwargs = {
        k: kwargs[k] for k in ("cache_dir", "token", "revision", "subfolder", "local_files_only") if k in kwargs
    }
    return model_class(pretrained_model_name_or_path, **config_kwargs).from_pretrained(
        pretrained_model_name_or_path, **kwargs
    )
