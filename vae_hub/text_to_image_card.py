"""The model card of a text-to-image training run (``training/train_text_to_image.py``), and its push to the Hub.

    write_card(folder) ──▶ folder/README.md, from the template ``templates/text_to_image.md`` and the folder's
                           training_info.json and component configs; the training data's credits from its README
    push_pipeline(folder, repo_id) ──▶ one commit of the pipeline, card, records and figures (no checkpoints or logs)

The folder is a plain ``diffusers.StableDiffusionPipeline``, so the card's snippet needs diffusers only.
"""

import json
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, ModelCardData

from . import hub
from .credits import dataset_readme, licence_section, training_data_credits
from .evaluate_samples import RECORD_KEY
from .markdown import table_cell
from .pipelines.schedulers import SCHEDULERS
from .text_to_image_evaluation import RECOMMENDED_KEY, Setting, read_recommended


CARD_TAGS = ["text-to-image", "stable-diffusion", "diffusers", hub.PROJECT_TAG]
COMPONENTS = ("vae", "text_encoder", "tokenizer", "unet", "scheduler")
RECORDS = ("model_index.json", hub.CARD_NAME, hub.METRICS_NAME, hub.TRAINING_INFO_NAME)
FIGURE_CAPTIONS = {
    "prompts.png": "Samples at the recommended settings, a row per prompt, four seeds each "
    "(`python -m vae_hub.prompt_grid`).",
    "samples.png": "Samples of the validation prompts, a row each, from the training run's last step (its settings).",
    "loss_curve.png": "Training curve: the denoising loss.",
}


def build_card(folder: str | Path, repo_id: str | None = None) -> ModelCard:
    """The card of a saved text-to-image run folder, in memory (reads its ``training_info.json`` and configs)."""
    folder = Path(folder)
    info = _read_json(folder / hub.TRAINING_INFO_NAME)
    unet = _read_json(folder / "unet" / "config.json")
    text = _read_json(folder / "text_encoder" / "config.json")
    scheduler = _read_json(folder / "scheduler" / "scheduler_config.json")
    readme = dataset_readme(info.get("dataset_name"))
    metrics = _read_json(folder / hub.METRICS_NAME)
    recommended = read_recommended(str(folder))
    records = sorted(
        (r for r in (metrics.get(RECORD_KEY) or {}).values() if r.get("kind") == "text-to-image pipeline"),
        key=lambda r: (r["scheduler"], r["num_inference_steps"], r["guidance_scale"]),
    )
    credits = training_data_credits(info, readme)
    name = repo_id.split("/")[-1] if repo_id else folder.resolve().name
    args = info.get("args") or {}
    prompts = info.get("validation_prompts") or ["a prompt"]
    card_data = ModelCardData(
        library_name="diffusers", license=hub.LICENSE, tags=list(CARD_TAGS), pipeline_tag="text-to-image"
    )
    architecture = [
        ("Pipeline", "`diffusers.StableDiffusionPipeline` (no safety checker)"),
        ("VAE", f"`AutoencoderKL`, frozen ({info.get('vae', '?')}); latents {info.get('latent_shape')}"),
        (
            "Text encoder",
            f"`CLIPTextModel`, {text.get('num_hidden_layers')} layers of width {text.get('hidden_size')}, "
            f"{text.get('num_attention_heads')} heads, {text.get('max_position_embeddings')} positions"
            + _params(info.get("text_encoder_parameters"))
            + (f"; frozen, from {info.get('text_encoder')}" if info.get("text_encoder_frozen") else ""),
        ),
        ("Tokenizer", f"`CLIPTokenizer`, BPE learned from the captions, {info.get('tokenizer_vocab_size')} tokens"),
        (
            "Denoiser",
            f"`UNet2DConditionModel`, blocks of {unet.get('block_out_channels')} channels, cross-attention "
            f"dimension {unet.get('cross_attention_dim')}" + _params(info.get("unet_parameters")),
        ),
        ("Scheduler", f"`{scheduler.get('_class_name')}`, {scheduler.get('prediction_type', 'epsilon')} prediction"),
    ]
    training = [
        (key, value)
        for key, value in (
            (
                "Data",
                f"{info.get('dataset_name')}, {info.get('num_train_images')} captioned images "
                f"(column {info.get('caption_column')!r})",
            ),
            (
                "Steps",
                f"{info.get('steps')} ({info.get('epochs')} epochs) of {args.get('train_batch_size')} per process "
                f"× {info.get('num_processes')}",
            ),
            ("Caption dropout", args.get("conditioning_dropout_prob")),
            ("EMA", "yes" if args.get("use_ema") else "no"),
            ("Wall time", f"{info.get('wall_time_seconds')} s on {info.get('hardware')}"),
        )
    ]
    return ModelCard.from_template(
        card_data,
        template_path=hub.cards.template_path("text_to_image"),
        repo_id=repo_id,
        name=name,
        model_ref=repo_id or f"<your-namespace>/{name}",
        dataset=info.get("dataset_name"),
        text_encoder_source=f"`{info.get('text_encoder')}`" if info.get("text_encoder_frozen") else None,
        figures=[
            {"file": p, "alt": p[:-4].replace("_", " "), "caption": caption}
            for p, caption in FIGURE_CAPTIONS.items()
            if (folder / p).is_file()
        ],
        prompt=json.dumps(prompts[0], ensure_ascii=False),
        recommended=recommended,
        scheduler_class=SCHEDULERS[recommended.scheduler][0].__name__ if recommended else None,
        scheduler_options=", ".join(f"{k}={v!r}" for k, v in SCHEDULERS[recommended.scheduler][1].items())
        if recommended
        else "",
        rule=(metrics.get(RECOMMENDED_KEY) or {}).get("rule"),
        steps=args.get("num_inference_steps", 25),
        guidance=args.get("guidance_scale", 4.0),
        evaluation=[evaluation_row(r, recommended) for r in records],
        evaluation_note=records and evaluation_note(records[0]),
        notes=hub.cards.folder_notes(folder),
        max_length=info.get("model_max_length"),
        vocab_size=info.get("tokenizer_vocab_size"),
        architecture=architecture,
        training=training,
        command=hub.shareable_command(info.get("command")),
        credits=credits,
        # recorded by the run, so that the card re-renders the same where the data cannot be reached
        licence_section=info.get("dataset_licence_section") or (licence_section(readme) if readme else None),
        cell=table_cell,
    )


def evaluation_row(record: dict, recommended: Setting | None) -> list[str]:
    """A row of the evaluation table: the setting (bold when recommended) and its measures."""
    setting = Setting(record["scheduler"], record["num_inference_steps"], record["guidance_scale"])
    ceiling = record.get("r_precision_ceiling") or 0
    empty = record.get("empty_prompt") or {}
    name = setting.describe()
    return [
        f"**{name}** (recommended)" if setting == recommended else name,
        f"{record['frechet_distance']:.3f}",
        f"{record['clip_score']:.1f}",
        f"{record['r_precision']:.3f}",
        f"{record['r_precision'] / ceiling:.2f}" if ceiling else "–",
        f"{empty.get('frechet_distance', float('nan')):.3f} / {empty.get('r_precision', float('nan')):.3f}",
    ]


def evaluation_note(record: dict) -> str:
    """What every row shares: the data, the references and the measuring CLIP."""
    real = record.get("real_images") or {}
    return (
        f"{record['num_samples']} samples, one per caption of the {record.get('split')} split of "
        f"{Path(str(record.get('dataset'))).name}, seed {record.get('seed')}; measured with the mini CLIP "
        f"`{Path(str(record.get('clip'))).name}`. The real test images score CLIP score "
        f"{real.get('clip_score', float('nan')):.1f} and R-precision {real.get('r_precision', float('nan')):.3f} "
        f"(the ceiling; chance is {record.get('r_precision_chance', 0):.3f}). The autoencoder's own reconstructions "
        f"of as many training images are at FD {record.get('reconstruction_frechet_distance', float('nan')):.3f} "
        "from the test images: the floor a perfect UNet would reach."
    )


def write_card(folder: str | Path, repo_id: str | None = None) -> ModelCard:
    """Build the card and save it as ``folder/README.md``."""
    card = build_card(folder, repo_id)
    card.save(Path(folder) / hub.CARD_NAME)
    return card


def upload_files(folder: str | Path) -> list[str]:
    """What a push uploads, relative to ``folder``: the pipeline's components, the records, the top-level PNGs."""
    folder = Path(folder)
    files = [p for c in COMPONENTS for p in sorted((folder / c).rglob("*")) if p.is_file()]
    files += [folder / n for n in RECORDS if (folder / n).is_file()] + sorted(folder.glob("*.png"))
    return [p.relative_to(folder).as_posix() for p in files]


def push_pipeline(
    folder: str | Path, repo_id: str, *, private: bool = False, token: str | None = None, api: HfApi | None = None
) -> str:
    """Upload ``upload_files(folder)`` to the model repo ``repo_id`` in one commit; return the commit URL.

    Raises ``hub.HubError`` as ``hub.push_to_hub`` does (no token, a file holding a token, Hub failures).
    """
    folder = Path(folder)
    token = hub.resolve_token(token)
    files = {name: folder / name for name in upload_files(folder)}
    hub.push._refuse_tokens(files, token)  # the project's one guard against publishing a token
    api = api or HfApi()
    with hub.push._hub_errors(repo_id, "model"):
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True, token=token)
        commit = api.create_commit(
            repo_id,
            [CommitOperationAdd(path_in_repo=n, path_or_fileobj=str(p)) for n, p in files.items()],
            repo_type="model",
            token=token,
            commit_message="Upload StableDiffusionPipeline",
        )
    return commit.commit_url


def _params(n) -> str:
    return f", {n:,} parameters" if isinstance(n, int) else ""


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
