"""The card of a saved ``VAEModel`` (``templates/vae.md``) or ``SpatialVAEModel`` (``templates/spatial_vae.md``)
folder, and ``build_card``, which picks the card of any folder vae-hub publishes."""

import math
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .. import remote_code
from ..data import data_credits
from ..description import METRICS_NAME, TRAINING_INFO_NAME, describe_model, image_desc
from ..loading import check_model_folder, is_pipeline_folder
from ..markdown import table_cell
from ..models import AutoencoderKLWithLikelihood, SpatialVAEModel, model_class
from ..records import HUB_URL, hub_id, read_json, reference, shareable_command
from .cards import (
    CARD_NAME,
    FIGURE_CAPTIONS,
    LICENSE,
    PROJECT_TAG,
    card_names,
    evaluation_values,
    figure_entries,
    folder_notes,
    render_section,
    template_path,
    training_data,
)
from .pipeline_card import build_pipeline_card


# The files are in diffusers' format, but the Hub's diffusers snippet (a DiffusionPipeline) cannot load them:
# the honest library is the package that can.
LIBRARY_NAME = "vae-hub"
CARD_TAGS = ["vae", "variational-autoencoder", "image-generation", "custom_code", PROJECT_TAG]
PIPELINE_TAG = "unconditional-image-generation"  # sampling z ~ p(z) and decoding is exactly this task


def write_model_card(folder, repo_id: str | None = None, *, dataset_id: str | None = None) -> ModelCard:
    """Build the card of a saved model or pipeline folder (see ``build_card``) and save it as ``folder/README.md``."""
    card = build_card(folder, repo_id, dataset_id=dataset_id)
    card.save(Path(folder) / CARD_NAME)
    return card


def build_card(folder, repo_id: str | None = None, *, dataset_id: str | None = None) -> ModelCard:
    """The card of a saved model folder (``build_model_card``) or pipeline folder (``build_pipeline_card``)."""
    if is_pipeline_folder(folder):
        return build_pipeline_card(folder, repo_id, dataset_id=dataset_id)
    if model_class(folder) is AutoencoderKLWithLikelihood:
        from ..autoencoder_kl_card import build_autoencoder_kl_card  # it imports this package

        return build_autoencoder_kl_card(folder, repo_id, dataset_id=dataset_id)
    return build_model_card(folder, repo_id, dataset_id=dataset_id)


def build_model_card(folder, repo_id: str | None = None, *, dataset_id: str | None = None) -> ModelCard:
    """The model card of a saved ``VAEModel`` or ``SpatialVAEModel`` folder, in memory.

    Reads ``config.json`` (required), ``metrics.json`` and ``training_info.json`` (optional: a bare saved model
    still gets a card) and the top-level PNG grids, which the card embeds by relative path (they are uploaded
    with the model). Its tables are the model's ``vae_hub.description.describe_model``.

    Args:
        folder: a folder written by ``VAEModel.save_pretrained`` (and possibly the training script).
        repo_id: the Hub id the card is for (``org/name``), used in the snippets; ``None`` puts a placeholder.
        dataset_id: the Hub id of the training data, for the metadata. Default: ``training_info.json``'s
            ``dataset_id``, else its ``dataset_name`` when that is a Hub id (a local folder has no Hub link).
    """
    folder = Path(folder)
    cls = model_class(folder)
    config = check_model_folder(cls, folder)
    model = cls.from_config(config)
    spatial = cls is SpatialVAEModel
    metrics, info = read_json(folder / METRICS_NAME), read_json(folder / TRAINING_INFO_NAME)

    dataset_id, dataset_label, dataset_md = training_data(dataset_id, info, metrics)
    base_model = info.get("base_model")
    names = card_names(folder, repo_id)
    description = describe_model(folder, model, dataset_md)
    rows, quality = description.metrics, description.quality
    eval_results = (
        [
            EvalResult(
                task_type=PIPELINE_TAG,
                task_name="Image density estimation",
                dataset_type=dataset_label,
                dataset_name=dataset_label,
                dataset_split=metrics.get("split"),
                metric_type=row["type"],
                metric_name=row["name"],
                metric_value=row["value"],
            )
            for row in rows
        ]
        + [
            EvalResult(
                task_type=PIPELINE_TAG,
                task_name="Sample quality",
                dataset_type=dataset_label,
                dataset_name=dataset_label,
                dataset_split=row["split"],
                metric_type="frechet_distance",
                metric_name=f"Fréchet distance, {row['features']} ({row['label']}, {row['n']} samples)",
                metric_value=row["fd_value"],
            )
            for row in quality["quality_rows"]
            if row["own"] and row["fd_value"] is not None
        ]
        if (rows or quality["quality_rows"]) and dataset_label
        else None
    )
    card_data = ModelCardData(
        library_name=LIBRARY_NAME,
        license=LICENSE,
        tags=list(CARD_TAGS),
        pipeline_tag=PIPELINE_TAG,
        datasets=[dataset_id] if dataset_id else None,
        base_model=hub_id(base_model),
        model_name=names["name"] if eval_results else None,
        eval_results=eval_results,
    )
    code_files = f"`{remote_code.MODEL_CODE_FILE}`"
    return ModelCard.from_template(
        card_data,
        template_path=template_path("spatial_vae" if spatial else "vae"),
        **names,
        image_desc=image_desc(config),
        latent_dim=config.get("latent_dim"),
        latent_size=math.prod(model.latent_shape) if spatial else config.get("latent_dim"),
        latent_desc="×".join(map(str, model.latent_shape)) if spatial else None,
        mixture=config.get("prior_components", 0),
        dataset_md=dataset_md,
        credits=data_credits(info),
        notes=folder_notes(folder),
        base_model_md=reference(base_model, HUB_URL),
        figures=figure_entries(folder, FIGURE_CAPTIONS),
        **evaluation_values(metrics, rows),
        likelihood=config["likelihood"],
        active_units=metrics.get("active_units"),
        architecture=description.architecture,
        prior_choice=_prior_choice(info.get("mixture_prior")),
        cell=table_cell,  # every table cell goes through it: a "|" in a value would split the row
        code_files=code_files,
        quality_section=render_section("sample_quality", kind="model", **quality),
        remote_code_note=render_section("remote_code", code_files=code_files),
        training_section=render_section(
            "training",
            kind="model",
            training_rows=description.training,
            command=shareable_command(info.get("command")),
        ),
    )


def _prior_choice(record) -> str | None:
    """How the mixture prior's number of components was chosen, from ``training_info.json``, in one sentence."""
    if not isinstance(record, dict) or not record.get("num_components"):
        return None
    from ..prior import PriorChoice  # scikit-learn: only when there is a record to describe

    refit = f" Refitted after training with `{record['command']}`." if record.get("command") else ""
    return PriorChoice.from_dict(record).describe() + refit
