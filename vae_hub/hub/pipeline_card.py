"""The card of a saved ``LatentDiffusionPipeline`` folder (``templates/latent_diffusion.md``), and the comparison
of its sample quality with other generators' that its card shows."""

import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..description import METRICS_NAME, TRAINING_INFO_NAME, describe_pipeline, image_desc, pipeline_vae_ref
from ..loading import CONFIG_NAME
from ..markdown import table_cell
from ..pipelines.latent_diffusion import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS
from ..records import DATASETS_URL, HUB_URL, hub_id, read_json, reference, shareable_command
from .cards import LICENSE, PROJECT_TAG, card_names, figure_entries, render_section, template_path
from .files import check_pipeline_folder, pipeline_code_files


# DiffusionPipeline.from_pretrained(repo, trust_remote_code=True) loads it: the library the Hub should show.
PIPELINE_LIBRARY = "diffusers"
# The Hub's tasks (huggingface.js, packages/tasks/src/pipelines.ts) are named by their input: none
# ("unconditional-image-generation") or free text ("text-to-image"). A class label is neither — calling this model
# unconditional or text-to-image would put it in the wrong searches and widgets — and the Hub has no task for it;
# "other" is the Hub's own id for that case. The task itself is a tag, where it can be found.
PIPELINE_PIPELINE_TAG = "other"
PIPELINE_CARD_TAGS = [
    "latent-diffusion",
    "class-conditional-image-generation",
    "diffusers",
    "custom_code",
    PROJECT_TAG,
]
PIPELINE_FIGURE_CAPTIONS = {
    "samples.png": "Samples, a row per class, from the training run's last step (its seed, steps and guidance).",
    "loss_curve.png": "Training curve: the denoising loss.",
}


def build_pipeline_card(folder, repo_id: str | None = None, *, dataset_id: str | None = None) -> ModelCard:
    """The model card of a saved ``LatentDiffusionPipeline`` folder, in memory.

    Reads ``model_index.json`` and the components' configs (required: ``check_pipeline_folder``), and optionally
    ``training_info.json`` (the VAE it was trained on, which becomes ``base_model`` when it is a Hub id; the data;
    the command), ``metrics.json`` (its ``sample_quality`` records from ``python -m vae_hub.evaluate_samples
    --record``, which become the table and the model-index results; the VAE's own records join the table when
    its folder is at hand, for the comparison) and the top-level PNG grids.
    """
    folder = Path(folder)
    index = check_pipeline_folder(folder)
    info = read_json(folder / TRAINING_INFO_NAME)
    vae_config = read_json(folder / "vae" / CONFIG_NAME)
    unet_config = read_json(folder / "unet" / CONFIG_NAME)
    classes = list((index.get("id2label") or {}).values())
    vae_ref = pipeline_vae_ref(info)
    data_ref = info.get("dataset_name")
    dataset_id = dataset_id or info.get("dataset_id") or hub_id(data_ref)
    names = card_names(folder, repo_id)
    # the sample quality comes with the VAE's own numbers, when its folder is here
    description = describe_pipeline(folder, reference(dataset_id, DATASETS_URL), vae_ref)
    quality = description.quality
    rows = quality["quality_rows"]
    recorded_data = rows[0]["dataset"] if rows else None  # a Hub id, or a local copy: named, not linked
    quality_data = dataset_id or hub_id(recorded_data) or (Path(recorded_data).name if recorded_data else None)
    # the model-index holds the records on the most samples (a sweep on fewer stays in the card's table)
    headline_n = max(
        (row["n"] for row in rows if row["own"]),
        key=lambda n: int(str(n).replace(",", "") or 0) if str(n).replace(",", "").isdigit() else 0,
        default=None,
    )
    eval_results = (
        [
            EvalResult(
                task_type=PIPELINE_PIPELINE_TAG,
                task_name="Class-conditional image generation",
                dataset_type=quality_data,
                dataset_name=quality_data,
                dataset_split=row["split"],
                metric_type=kind,
                metric_name=f"{label} ({row['label']}, {row['n']} samples)",
                metric_value=value,
            )
            for row in rows
            if row["own"] and row["n"] == headline_n
            for kind, label, value in (
                ("frechet_distance", "Fréchet distance, classifier features", row["fd_value"]),
                ("class_match", "Class match", row["match_value"]),
            )
            if value is not None
        ]
        if rows and quality_data
        else None
    )
    card_data = ModelCardData(
        library_name=PIPELINE_LIBRARY,
        license=LICENSE,
        tags=list(PIPELINE_CARD_TAGS),
        pipeline_tag=PIPELINE_PIPELINE_TAG,
        datasets=[dataset_id] if dataset_id else None,
        base_model=hub_id(vae_ref),
        model_name=names["name"] if eval_results else None,
        eval_results=eval_results or None,
    )
    recommended = recommended_settings(folder)
    latent = (unet_config.get("in_channels"), unet_config.get("sample_size"), unet_config.get("sample_size"))
    code_files = " and ".join(f"`{name}`" for name in pipeline_code_files(index))
    return ModelCard.from_template(
        card_data,
        template_path=template_path("latent_diffusion"),
        **names,
        code_files=code_files,
        image_desc=image_desc(vae_config),
        latent_desc="×".join(map(str, latent)),
        vae_md=f"`{index['vae'][1]}`" + (f" ({reference(vae_ref, HUB_URL)})" if vae_ref else ""),
        dataset_md=reference(dataset_id, DATASETS_URL) or reference(data_ref),
        figures=figure_entries(folder, PIPELINE_FIGURE_CAPTIONS),
        classes=classes,
        recommended=recommended,
        steps=recommended["num_inference_steps"] if recommended else DEFAULT_NUM_INFERENCE_STEPS,
        guidance=recommended["guidance_scale"] if recommended else DEFAULT_GUIDANCE_SCALE,
        at_defaults=not recommended
        or (recommended["num_inference_steps"], recommended["guidance_scale"])
        == (DEFAULT_NUM_INFERENCE_STEPS, DEFAULT_GUIDANCE_SCALE),
        label_example=json.dumps(classes[0], ensure_ascii=False) if classes else "None",
        label_comment=f"a class name or label, or a list of them ({json.dumps(classes[0], ensure_ascii=False)} is "
        "label 0)"
        if classes
        else "an unconditional pipeline: class_labels=None",
        architecture=description.architecture,
        cell=table_cell,
        quality_section=render_section("sample_quality", kind="pipeline", **quality),
        remote_code_note=render_section("remote_code", code_files=code_files),
        training_section=render_section(
            "training",
            kind="pipeline",
            training_rows=description.training,
            command=shareable_command(info.get("command")),
        ),
    )


def recommended_settings(folder: Path) -> dict | None:
    """The steps and guidance that ``evaluate_samples --recommend`` chose for the folder (its ``metrics.json``), with
    the rule and what it chose among; None when none was chosen or the record is malformed."""
    try:
        chosen = read_json(folder / METRICS_NAME).get("recommended_settings")
        return {
            **chosen,
            "num_inference_steps": int(chosen["num_inference_steps"]),
            "guidance_scale": float(chosen["guidance_scale"]),
            "rule": str(chosen["rule"]),
            "chosen_from": int(chosen["chosen_from"]),
            "num_samples": int(chosen["num_samples"]),
        }
    except (TypeError, KeyError, ValueError, AttributeError):
        return None


def record_comparison(folder, others: list) -> dict:
    """Copy the sample-quality records of other generators (saved model or pipeline folders) into ``folder``'s
    ``metrics.json`` as ``compared_with`` ({folder name: records}, replacing an earlier set): its card then
    compares them in one table, wherever the card is rebuilt (a push rebuilds it from the folder's own files).

    Raises ``ValueError`` for a folder without records, ``folder`` itself among ``others``, or records measured
    with another classifier, dataset or split than ``folder``'s own (their numbers do not compare).
    """
    folder = Path(folder)
    metrics = read_json(folder / METRICS_NAME)
    own = list((metrics.get("sample_quality") or {}).values())
    compared = {}
    for other in map(Path, others):
        records = read_json(other / METRICS_NAME).get("sample_quality") if other.is_dir() else None
        if other.resolve() == folder.resolve():
            raise ValueError(f"{other} is the folder whose card this is: compare it with other generators")
        if not records:
            raise ValueError(
                f"{other} has no sample-quality records (metrics.json: sample_quality); measure them "
                f"first with `python -m vae_hub.evaluate_samples --generator {other} --record`"
            )
        for field in ("classifier", "dataset", "split"):
            mine = {r.get(field) for r in own} | {r.get(field) for r in records.values()}
            if len(mine - {None}) > 1:
                raise ValueError(
                    f"{other}'s sample quality was measured with another {field} than {folder}'s "
                    f"({', '.join(sorted(map(str, mine - {None})))}): the numbers do not compare"
                )
        compared[other.resolve().name] = records
    metrics["compared_with"] = compared
    (folder / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return compared
