"""The kinds of model the Space shows and their tabs, the models a Space folder offers, and a model folder's
records read for showing (``_read_json``, ``data_name``)."""

import json
import os
from pathlib import Path

from ..loading import PIPELINE_INDEX_NAME
from ..models import AutoencoderKLWithLikelihood, SpatialVAEModel


def data_name(recorded: str) -> str:
    """A dataset as a record names it, fit to show: a Hub id as is, a local folder by its name only (the path of
    the machine that trained the model is nobody's business)."""
    return (Path(recorded).name if Path(recorded).is_absolute() or recorded.startswith(".") else recorded)[:200]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def recorded_data_name(folder: Path) -> str | None:
    """The training data a model folder's records name (``training_info.json``'s ``dataset_name``, else
    ``metrics.json``'s ``dataset``) fit to show (``data_name``), read without loading the model; None if neither."""
    for name, key in (("training_info.json", "dataset_name"), ("metrics.json", "dataset")):
        value = _read_json(folder / name).get(key)
        if isinstance(value, str) and value:
            return data_name(value)
    return None


# The kinds of model the Space shows, in the order it offers them, and the tabs (endpoints) of each.
KINDS = ("vector", "pipeline", "text-to-image", "spatial")
KIND_NAMES = {
    "vector": "a vector VAE",
    "pipeline": "a latent diffusion pipeline",
    "text-to-image": "a text-to-image pipeline (a miniature Stable Diffusion)",
    "spatial": "a spatial autoencoder (the first stage of latent diffusion)",
}
TABS = {
    "vector": ("Sample", "Reconstruct", "Interpolate", "Traverse", "Latent map", "Compare", "About"),
    "pipeline": ("Diffuse", "Compare", "About"),
    "text-to-image": ("Text to image", "Image to image", "Inpaint", "Prompt walk", "Compare", "About"),
    "spatial": ("Reconstruct", "Interpolate", "About"),
}
TEXT_TO_IMAGE_CLASS = "StableDiffusionPipeline"  # model_index.json _class_name of the "text-to-image" kind
MAP_MODELS = (SpatialVAEModel, AutoencoderKLWithLikelihood)  # the "spatial" kind: latents are maps, no prior
FOLDER_KINDS = {"VAEModel": "vector", "SpatialVAEModel": "spatial", "AutoencoderKL": "spatial"}  # config _class_name


def folder_kind(folder: Path) -> str | None:
    """The kind (``KINDS``) of a saved model or pipeline folder, from its config alone; None for anything else."""
    if (folder / PIPELINE_INDEX_NAME).is_file():
        text = _read_json(folder / PIPELINE_INDEX_NAME).get("_class_name") == TEXT_TO_IMAGE_CLASS
        return "text-to-image" if text else "pipeline"
    return FOLDER_KINDS.get(_read_json(folder / "config.json").get("_class_name"))


def default_model_ids(space_dir: Path, env: dict | None = None) -> tuple[list[str], dict[str, Path]]:
    """The models a Space offers, in order: ids from ``VAE_MODEL`` (comma-separated), the ``model_id`` of
    ``space_config.json`` (written by ``vae-hub deploy-space --model-id``), then the folders under
    ``models/`` that hold a ``VAEModel``, a ``LatentDiffusionPipeline`` or a ``SpatialVAEModel`` (shipped, by folder
    name, in that order, text-to-image pipelines after the others; not the sample-quality classifier). Returns (ids, {shipped name: folder})."""
    env = os.environ if env is None else env
    kinds = {p.name: folder_kind(p) for p in (space_dir / "models").glob("*")}
    # vector VAEs first (the Space opens on the first), then pipelines; the spatial autoencoder only reconstructs
    offered = sorted((n for n in kinds if kinds[n]), key=lambda n: (KINDS.index(kinds[n]), n))
    shipped = {name: space_dir / "models" / name for name in offered}
    ids = [s.strip() for s in env.get("VAE_MODEL", "").split(",") if s.strip()]
    configured = _read_json(space_dir / "space_config.json").get("model_id")
    if isinstance(configured, str) and configured.strip():
        ids.append(configured.strip())
    ids += list(shipped)
    return list(dict.fromkeys(ids)), shipped
