"""The model card of a saved ``AutoencoderKL`` folder (``vae_hub/templates/autoencoder_kl.md``).

Unlike a ``VAEModel`` card, it needs no remote code: the folder is diffusers' own class, so the card's library is
diffusers and its snippet uses diffusers alone. The data credits come from the training record (``--dataset_credit``
and the dataset card's licence); ``NOTES.md`` in the folder, written by a person who looked at the grids, becomes the
card's "What the grids show".
"""

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .data import data_credits
from .description import METRICS_NAME, TRAINING_INFO_NAME, describe_model, image_desc
from .hub.cards import (
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
from .markdown import table_cell
from .models import AutoencoderKLWithLikelihood
from .records import HUB_URL, hub_id, read_json, reference, shareable_command


CARD_TAGS = ["vae", "autoencoder-kl", "stable-diffusion", "latent-diffusion", "diffusers", PROJECT_TAG]
PIPELINE_TAG = "image-to-image"  # encode and decode: the Hub has no autoencoder task


def build_autoencoder_kl_card(folder, repo_id: str | None = None, *, dataset_id: str | None = None) -> ModelCard:
    """The card of a folder written by ``AutoencoderKLWithLikelihood.save_pretrained`` (and possibly
    ``train_vae.py``), in memory; ``repo_id`` and ``dataset_id`` as in ``vae_hub.hub.build_model_card``."""
    folder = Path(folder)
    model = AutoencoderKLWithLikelihood.from_pretrained(folder)
    config = model.config
    metrics, info = read_json(folder / METRICS_NAME), read_json(folder / TRAINING_INFO_NAME)
    dataset_id, dataset_label, dataset_md = training_data(dataset_id, info, metrics)
    names = card_names(folder, repo_id)
    description = describe_model(folder, model, dataset_md)
    rows = description.metrics
    eval_results = (
        [
            EvalResult(
                task_type=PIPELINE_TAG,
                task_name="Image reconstruction",
                dataset_type=dataset_label,
                dataset_name=dataset_label,
                dataset_split=metrics.get("split"),
                metric_type=row["type"],
                metric_name=row["name"],
                metric_value=row["value"],
            )
            for row in rows
        ]
        if rows and dataset_label
        else None
    )
    card_data = ModelCardData(
        library_name="diffusers",
        license=LICENSE,
        tags=list(CARD_TAGS),
        pipeline_tag=PIPELINE_TAG,
        datasets=[dataset_id] if dataset_id else None,
        base_model=hub_id(info.get("base_model")),
        model_name=names["name"] if eval_results else None,
        eval_results=eval_results,
    )
    return ModelCard.from_template(
        card_data,
        template_path=template_path("autoencoder_kl"),
        **names,
        image_desc=image_desc(config),
        size=config["sample_size"],
        factor=model.factor,
        latent_desc="×".join(map(str, model.latent_shape)),
        dataset_md=dataset_md,
        credits=data_credits(info),
        base_model_md=reference(info.get("base_model"), HUB_URL),
        decoder_only=(info.get("args") or {}).get("train_decoder_only"),
        figures=figure_entries(folder, FIGURE_CAPTIONS),
        notes=folder_notes(folder),
        **evaluation_values(metrics, rows),
        likelihood=config["likelihood"],
        latents=metrics.get("latents"),
        architecture=description.architecture,
        scaling_note=scaling_note(info.get("scaling_factor")),
        training_section=render_section(
            "training",
            kind="model",
            training_rows=description.training,
            command=shareable_command(info.get("command")),
        ),
        cell=table_cell,
    )


def scaling_note(record) -> str | None:
    """Whether the scaling factor was measured on this model's latents or kept from the model it was fine-tuned from."""
    if not isinstance(record, dict):
        return None
    if record.get("kept_from_base_model"):
        return (
            f"`scaling_factor` {record['value']:.5g} is the base model's, kept on purpose (a diffusion model trained "
            f"on its latents depends on it); this model's own latents measure {record['measured']:.5g}."
        )
    return f"`scaling_factor` {record['value']:.5g} was measured as 1 / std of this model's training latents."
