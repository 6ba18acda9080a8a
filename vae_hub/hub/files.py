"""What a published folder is and which of its files a push uploads: an allow-list, and the check that a pipeline
folder is complete before anything is read from it for a card or sent to the Hub."""

import json
from pathlib import Path

from .. import remote_code
from ..description import METRICS_NAME, TRAINING_INFO_NAME
from ..loading import (
    CONFIG_NAME,
    MAP_SAMPLE_NAME,
    PIPELINE_COMPONENT_FILES,
    PIPELINE_INDEX_NAME,
    WEIGHTS_NAME,
    check_model_folder,
    is_pipeline_folder,
)
from ..models import MODEL_CLASSES
from ..models.autoencoder_kl import LIKELIHOOD_NAME
from ..models.pipeline_loading import LOADER_MODULE as PIPELINE_LOADER
from ..pipelines.latent_diffusion import LatentDiffusionPipeline
from .cards import CARD_NAME, figures


PIPELINE_CLASS = LatentDiffusionPipeline.__name__
PACKAGE = remote_code.PACKAGE
UPLOAD_NAMES = (
    CONFIG_NAME,
    WEIGHTS_NAME,
    LIKELIHOOD_NAME,
    CARD_NAME,
    METRICS_NAME,
    TRAINING_INFO_NAME,
    MAP_SAMPLE_NAME,
)
PIPELINE_UPLOAD_NAMES = (
    PIPELINE_INDEX_NAME,
    *(f"{c}/{n}" for c, names in PIPELINE_COMPONENT_FILES.items() for n in names),
    CARD_NAME,
    METRICS_NAME,
    TRAINING_INFO_NAME,
)


def upload_file_list(folder) -> list[str]:
    """The files of a saved model or pipeline folder that a push uploads as they are, relative to it, in order.

    An allow-list. A model: ``config.json``, ``diffusion_pytorch_model.safetensors``, ``README.md``,
    ``metrics.json``, ``training_info.json``, ``latent_map_sample.npz`` and the top-level ``*.png`` figures, where
    present. A pipeline
    (``model_index.json``): that file, each component's config and safetensors weights (``vae/``, ``unet/``,
    ``scheduler/``) and the same card, records and figures (not its ``pipeline.py``: a push generates its own).
    Everything else — ``checkpoint-*/``, ``logs/``, optimizer/scheduler/random states, pickles, caches — stays local.
    """
    folder = Path(folder)
    names = PIPELINE_UPLOAD_NAMES if is_pipeline_folder(folder) else UPLOAD_NAMES
    return [n for n in names if (folder / n).is_file()] + [p.name for p in figures(folder)]


def check_pipeline_folder(folder) -> dict:
    """Refuse a folder that is not a complete saved ``LatentDiffusionPipeline``; return its ``model_index.json``.

    Each component must be there with what loading it needs: ``vae/`` and ``unet/`` a config and safetensors
    weights (the VAE's config naming the class ``model_index.json`` names), ``scheduler/`` its config. A run
    that stopped before saving the pipeline (no ``unet/``, a component without weights) is refused by name.
    """
    folder = Path(folder)
    try:
        index = json.loads((folder / PIPELINE_INDEX_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{folder}: cannot read {PIPELINE_INDEX_NAME} ({err})") from err
    class_name = index.get("_class_name") if isinstance(index, dict) else None
    if class_name not in (PIPELINE_CLASS, [PIPELINE_LOADER, PIPELINE_CLASS]):
        raise ValueError(
            f"{folder} holds a {class_name or 'model_index.json without _class_name'}, not a "
            f"{PIPELINE_CLASS}: vae-hub pushes its own pipelines only"
        )
    for component, needed in PIPELINE_COMPONENT_FILES.items():
        missing = [f"{component}/{name}" for name in needed if not (folder / component / name).is_file()]
        entry = index.get(component)
        if missing or not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, str) for v in entry)):
            what = (
                f"{component}/ is missing"
                if not (folder / component).is_dir()
                else f"{', '.join(missing)} missing"
                if missing
                else f"{PIPELINE_INDEX_NAME} names no {component}"
            )
            raise ValueError(
                f"{folder} is not a complete {PIPELINE_CLASS} folder: {what}. A training run saves the "
                "pipeline when it finishes; push a finished run's output_dir (checkpoints are not "
                "pipelines)."
            )
    library, vae_class = index["vae"]
    if library.split(".")[0] == PACKAGE:
        if vae_class not in MODEL_CLASSES:
            raise ValueError(f"{folder}: {PIPELINE_INDEX_NAME} names a vae {vae_class!r} that vae-hub does not have")
        check_model_folder(MODEL_CLASSES[vae_class], folder / "vae", use_safetensors=True)
    return index


def pipeline_code_files(index: dict) -> list[str]:
    """The code files a pushed pipeline carries: ``pipeline.py``, then ``vae/<library>.py`` for a vae-hub VAE
    (diffusers resolves a component ``["<library>", Class]`` to that file; a diffusers VAE needs none)."""
    library = index["vae"][0]
    return [remote_code.PIPELINE_CODE_FILE] + ([f"vae/{library}.py"] if library.split(".")[0] == PACKAGE else [])
