"""The model card of a saved ``AutoencoderKL`` folder (``vae_hub/templates/autoencoder_kl.md``).

Unlike a ``VAEModel`` card, it needs no remote code: the folder is diffusers' own class, so the card's library is
diffusers and its snippet uses diffusers alone. The data credits come from the training record (``--dataset_credit``
and the dataset card's licence); ``NOTES.md`` in the folder, written by a person who looked at the grids, becomes the
card's "What the grids show".
"""

from importlib.resources import files
from pathlib import Path

import jinja2
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .hub import (
    FIGURE_CAPTIONS, LICENSE, METRICS_NAME, PROJECT_TAG, TRAINING_INFO_NAME, TRAINING_SECTION, _count, _figures,
    _human, _hub_id, _image_desc, _metric_rows, _read_json, _reference, _training_rows, shareable_command,
)
from .data import data_credits
from .markdown import table_cell
from .models import AutoencoderKLWithLikelihood

TEMPLATE = files("vae_hub") / "templates" / "autoencoder_kl.md"
NOTES_NAME = "NOTES.md"
CARD_TAGS = ["vae", "autoencoder-kl", "stable-diffusion", "latent-diffusion", "diffusers", PROJECT_TAG]
PIPELINE_TAG = "image-to-image"  # encode and decode: the Hub has no autoencoder task


def build_autoencoder_kl_card(folder, repo_id: str | None = None, *, dataset_id: str | None = None) -> ModelCard:
    """The card of a folder written by ``AutoencoderKLWithLikelihood.save_pretrained`` (and possibly
    ``train_vae.py``), in memory; ``repo_id`` and ``dataset_id`` as in ``vae_hub.hub.build_model_card``."""
    folder = Path(folder)
    model = AutoencoderKLWithLikelihood.from_pretrained(folder)
    config = model.config
    num_params = sum(p.numel() for p in model.vae.parameters())
    metrics, info = _read_json(folder / METRICS_NAME), _read_json(folder / TRAINING_INFO_NAME)
    data_ref = info.get("dataset_name") or metrics.get("dataset")
    dataset_id = dataset_id or info.get("dataset_id") or _hub_id(data_ref)
    dataset_label = dataset_id or (Path(data_ref).name if data_ref else None)
    name = repo_id.split("/")[-1] if repo_id else folder.resolve().name
    rows = _metric_rows(metrics)
    eval_results = [
        EvalResult(task_type=PIPELINE_TAG, task_name="Image reconstruction", dataset_type=dataset_label,
                   dataset_name=dataset_label, dataset_split=metrics.get("split"), metric_type=row["type"],
                   metric_name=row["name"], metric_value=row["value"])
        for row in rows
    ] if rows and dataset_label else None
    card_data = ModelCardData(
        library_name="diffusers", license=LICENSE, tags=list(CARD_TAGS), pipeline_tag=PIPELINE_TAG,
        datasets=[dataset_id] if dataset_id else None, base_model=_hub_id(info.get("base_model")),
        model_name=name if eval_results else None, eval_results=eval_results,
    )
    dataset_md = _reference(dataset_id, "https://huggingface.co/datasets/") or _reference(dataset_label)
    notes = folder / NOTES_NAME
    training_section = jinja2.Template(TRAINING_SECTION).render(
        kind="model", training_rows=_training_rows(info, dataset_md), cell=table_cell,
        command=shareable_command(info.get("command")))
    return ModelCard.from_template(
        card_data,
        template_str=TEMPLATE.read_text(encoding="utf-8"),
        repo_id=repo_id,
        name=name,
        model_ref=repo_id or f"<your-namespace>/{name}",
        image_desc=_image_desc(config),
        size=config["sample_size"],
        factor=model.factor,
        latent_desc="×".join(map(str, model.latent_shape)),
        dataset_md=dataset_md,
        credits=data_credits(info),
        base_model_md=_reference(info.get("base_model"), "https://huggingface.co/"),
        decoder_only=(info.get("args") or {}).get("train_decoder_only"),
        figures=[{"file": p.name, "alt": p.stem.replace("_", " "),
                  "caption": FIGURE_CAPTIONS.get(p.name, p.stem.replace("_", " ").capitalize() + ".")}
                 for p in _figures(folder)],
        notes=notes.read_text(encoding="utf-8").strip() if notes.is_file() else None,
        metric_rows=rows,
        split=metrics.get("split"),
        num_images=_count(metrics.get("num_images")),
        likelihood=config["likelihood"],
        likelihood_note=metrics.get("likelihood_note", ""),
        latents=metrics.get("latents"),
        eval_command=shareable_command(metrics.get("command")),
        architecture=architecture_rows(model, num_params),
        scaling_note=scaling_note(info.get("scaling_factor")),
        training_section=training_section,
        cell=table_cell,
    )


def scaling_note(record) -> str | None:
    """Whether the scaling factor was measured on this model's latents or kept from the model it was fine-tuned from."""
    if not isinstance(record, dict):
        return None
    if record.get("kept_from_base_model"):
        return (f"`scaling_factor` {record['value']:.5g} is the base model's, kept on purpose (a diffusion model trained "
                f"on its latents depends on it); this model's own latents measure {record['measured']:.5g}.")
    return f"`scaling_factor` {record['value']:.5g} was measured as 1 / std of this model's training latents."


def architecture_rows(model: AutoencoderKLWithLikelihood, num_params: int) -> list[tuple[str, str]]:
    config = model.config
    scale = ", ".join(f"{s:.3g}" for s in model.log_scale.detach().exp().tolist())
    return [
        ("Class", "`diffusers.AutoencoderKL`"),
        ("Input", f"{config['in_channels']}×{config['sample_size']}×{config['sample_size']}, pixels in [-1, 1]"),
        ("Encoder / decoder", f"stages of {list(config['block_out_channels'])} channels (f = {model.factor}), "
                              f"{config['layers_per_block']} residual block(s) per stage, a middle block with "
                              f"attention, {config['act_fn']}, GroupNorm({config['norm_num_groups']})"),
        ("Latents", f"{'×'.join(map(str, model.latent_shape))} diagonal Gaussian posterior"),
        ("Likelihood (vae-hub, `likelihood.json`)", f"discretised {config['likelihood']}, location = the decoded "
                                                    f"image, scale per channel {scale}"),
        ("Latent scaling factor", f"{config['scaling_factor']:.5g}"
         + (f", shift {config['shift_factor']:.4g}" if config.get("shift_factor") is not None else "")),
        ("Parameters", f"{num_params:,} ({_human(num_params)})"),
    ]
