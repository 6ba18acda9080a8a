"""The About tab: a model's or a pipeline's parts, numbers, training and card, in markdown."""

import re

from ..markdown import table_row
from ..models import own_decoder_stages
from ..space_models import Loaded, hide_paths
from .diffusion import pipeline_defaults, quality_records
from .entry import ModelEntry, _model_file
from .files import OutputFiles
from .kinds import _read_json, data_name

CARD_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
MAX_CARD_IMAGE_BYTES = 5 * 2**20


def card_with_image_links(text: str, loaded: Loaded, files: OutputFiles) -> str:
    """Point a card's relative image links (``![samples](samples.png)``) where a browser can fetch them: the
    Hub's ``resolve`` URL for a repo; for a folder on this machine, a copy among the Space's output files (served
    by Gradio), so that no link names the model's folder. Links that leave the folder or are not small images
    are left as they are (and show nothing)."""
    folder = loaded.folder.resolve()

    def url(name: str) -> str | None:
        if loaded.source.repo_id:
            return f"https://huggingface.co/{loaded.source.repo_id}/resolve/main/{name}"
        path = (folder / name).resolve()
        if folder not in path.parents or path.suffix.lower() not in CARD_IMAGE_SUFFIXES:
            return None
        if not path.is_file() or path.stat().st_size > MAX_CARD_IMAGE_BYTES:
            return None
        return f"/gradio_api/file={files.copy(path)}"

    def link(m: re.Match) -> str:
        target = url(m.group(2))
        return f"{m.group(1)}{target})" if target else m.group(0)

    return re.sub(r"(!\[[^\]]*\]\()(?![a-z]+:|/|#)([^)\s]+)\)", link, text)


def _strip_front_matter(text: str) -> str:
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4 :].lstrip()
    return text


METRIC_ROWS = (
    ("negative_elbo_nats", "−ELBO", "nats"),
    ("iw_nll_nats", "importance-weighted NLL", "nats"),
    ("reconstruction_nats", "reconstruction −log p(x | z)", "nats"),
    ("kl_nats", "KL(q(z | x) ‖ p(z))", "nats"),
    ("bits_per_dim", "bits/dim", ""),
    ("psnr_db", "PSNR", "dB"),
    ("mse", "MSE (pixels in [0, 1])", ""),  # as vae_hub.evaluate computes it and the card says
    ("active_units", "active units", ""),
    ("images_per_second", "evaluation speed", "images/s"),
)


def evaluation_heading(split) -> str:
    """What the evaluated images were: the test split, or another held-out split (e.g. part of train)."""
    return "Test-set numbers" if split == "test" else "Numbers on held-out images"


def about_markdown(entry: ModelEntry, files: OutputFiles) -> str:
    """The About tab: architecture, held-out metrics (``metrics.json``), training (``training_info.json``), the
    data the tabs show, the card. Every table cell goes through ``table_row`` (a ``|`` would split it)."""
    cfg, model = entry.model.config, entry.model
    params = sum(p.numel() for p in model.parameters())
    if entry.spatial:
        latent_rows = [table_row("latents", f"a {'×'.join(map(str, model.latent_shape))} map (spatial autoencoder: "
                                            "the first stage of latent diffusion), no prior to sample from")]
    else:
        prior = (f"{cfg.prior_components}-component Gaussian mixture fitted to the training codes"
                 if cfg.prior_components else "none (standard N(0, I) only)")
        latent_rows = [table_row("latent", f"{cfg.latent_dim} dimensions, prior N(0, I)"),
                       table_row("mixture prior", prior)]
    lines = [
        f"## {entry.model_id}",
        entry.loaded.source.describe(),
        "",
        "| | this model |",
        "|---|---|",
        table_row("images", f"{cfg.in_channels} channel{'s' if cfg.in_channels > 1 else ''}, "
                            f"{cfg.sample_size}×{cfg.sample_size} px"),
        table_row("trained on", f"`{entry.dataset}`" if entry.dataset else "not recorded"),
        *([table_row("data credits", credits)] if (credits := entry.data_credits) else []),
        *latent_rows,
        table_row("likelihood", cfg.likelihood),
        table_row("encoder / decoder", f"conv, channels {tuple(cfg.block_out_channels)}, "
                                      f"{cfg.layers_per_block} residual block(s) per stage{own_decoder_stages(cfg)}"),
        table_row("parameters", f"{params / 1e6:.2f} M"),
        table_row("scaling factor", f"{cfg.scaling_factor:g}"),
    ]
    metrics_file = _model_file(entry, "metrics.json")
    metrics = _read_json(metrics_file) if metrics_file else {}
    if metrics:
        split = metrics.get("split", "?")
        lines += ["", f"### {evaluation_heading(split)} ({data_name(str(metrics.get('dataset', '?')))}, "
                      f"split {split}, {metrics.get('num_images', '?')} images)",
                  "", "| metric | value |", "|---|---|"]
        for key, name, unit in METRIC_ROWS:
            value = metrics.get(key)
            if value is not None:
                shown = f"{value:.4g}" if isinstance(value, float) else str(value)
                lines.append(table_row(name, f"{shown} {unit}".strip()))
        if metrics.get("likelihood_note"):
            lines += ["", f"*{metrics['likelihood_note']}*"]
    lines += training_lines(entry)
    sample = entry.sample
    lines += ["", "### Data shown here"]
    if entry.spatial:
        lines.append("The Reconstruct tab shows this model's latent maps; it has no latent map or sliders.")
    elif sample is not None:
        lines.append(f"The latent map and the slider order use the model's own sample of {len(sample.labels)} "
                     f"held-out images{f' ({sample.source})' if sample.source else ''}.")
    else:
        lines.append(f"No latent map: {entry.sample_problem}. The sliders are ordered on the model's own prior "
                     "samples.")
    lines.append("The example images to pick are Fashion-MNIST test images (MIT license) and emoji test images "
                 "(Twemoji, CC-BY 4.0; Noto, Apache-2.0) shipped with the Space; like any upload, they are converted "
                 "to this model's size and channels.")
    return "\n".join(lines + card_lines(entry, files))


def training_lines(entry: ModelEntry) -> list[str]:
    """The About tab's "Training" section, from the model's ``training_info.json`` (none without one)."""
    info_file = _model_file(entry, "training_info.json")
    info = _read_json(info_file) if info_file else {}
    if not info:
        return []
    lines = ["", "### Training", ""]
    for key, name in (("dataset_name", "dataset"), ("num_train_images", "training images"), ("epochs", "epochs"),
                      ("steps", "steps"), ("train_batch_size", "batch size"), ("learning_rate", "learning rate"),
                      ("hardware", "hardware"), ("mixed_precision", "precision"),
                      ("wall_time_seconds", "wall time (s)")):
        if info.get(key) is not None:
            lines.append(f"- **{name}**: {data_name(str(info[key])) if key == 'dataset_name' else info[key]}")
    if info.get("command"):  # the folders of the machine that trained it are nobody's business
        lines += ["", f"```\n{hide_paths(info['command'])}\n```"]
    return lines


def card_lines(entry: ModelEntry, files: OutputFiles) -> list[str]:
    """The model's card (``README.md``) without its metadata, its figures linked where a browser can fetch them."""
    card_file = _model_file(entry, "README.md")
    if not card_file:
        return []
    card = card_with_image_links(_strip_front_matter(card_file.read_text()), entry.loaded, files)
    return ["", "---", "", "### Model card", "", card]


def pipeline_about_markdown(entry: ModelEntry, files: OutputFiles) -> str:
    """The About tab of a latent diffusion pipeline: its parts, its measured sample quality (``metrics.json``),
    training, the card."""
    pipe = entry.model
    vae, unet = pipe.vae.config, pipe.unet.config
    params = sum(p.numel() for p in pipe.unet.parameters())
    steps, guidance = pipeline_defaults(pipe)
    lines = [
        f"## {entry.model_id}",
        entry.loaded.source.describe(),
        "",
        "| | this pipeline |",
        "|---|---|",
        table_row("generates", f"{vae.in_channels} channel{'s' if vae.in_channels > 1 else ''}, {vae.sample_size}×"
                               f"{vae.sample_size} px images"),
        table_row("classes", ", ".join(pipe.class_names) if pipe.num_classes else "none (unconditional)"),
        table_row("trained on", f"`{entry.dataset}`" if entry.dataset else "not recorded"),
        *([table_row("data credits", credits)] if (credits := entry.data_credits) else []),
        table_row("autoencoder", f"{type(pipe.vae).__name__}, latents {'×'.join(map(str, pipe.vae.latent_shape))}, "
                                 f"scaling factor {vae.scaling_factor:.4g}"),
        table_row("denoiser", f"UNet2DModel, channels {tuple(unet.block_out_channels)}, "
                              f"{params / 1e6:.2f} M parameters"),
        table_row("scheduler", f"{type(pipe.scheduler).__name__}, {pipe.scheduler.config.prediction_type} prediction"),
        table_row("defaults", f"{steps} steps, guidance scale {guidance:g}"),
    ]
    rows = sorted(quality_records(entry, kind="pipeline"),
                  key=lambda r: (r.get("num_inference_steps") or 0, r.get("guidance_scale") or 0))
    if rows:
        lines += ["", "### Sample quality (measured by `python -m vae_hub.evaluate_samples`)", "",
                  "| steps | guidance | Fréchet distance ↓ | class match ↑ | samples |", "|---|---|---|---|---|"]
        for r in rows:
            match = f"{r['class_match']:.1%}" if isinstance(r.get("class_match"), (int, float)) else "–"
            lines.append(table_row(r.get("num_inference_steps", "?"), r.get("guidance_scale", "?"),
                                   f"{r['frechet_distance']:.2f}", match, r.get("num_samples", "?")))
    return "\n".join(lines + training_lines(entry) + card_lines(entry, files))


def text_to_image_about_markdown(entry: ModelEntry, files: OutputFiles) -> str:
    """The About tab of a text-to-image pipeline: what the Space uses of it (the settings it recommends, its
    vocabulary), the credits of its training data, then its card (which has the architecture, numbers and training)."""
    from ..credits import dataset_readme, training_data_credits
    from .text_to_image import recommended_setting

    pipe = entry.model
    info = _read_json(entry.loaded.folder / "training_info.json")
    credits = training_data_credits(info, dataset_readme(info.get("dataset_name")))
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    lines = [
        f"## {entry.model_id}",
        entry.loaded.source.describe(),
        "",
        "| | this pipeline |",
        "|---|---|",
        table_row("generates", f"RGB {size}×{size} px images from text"),
        table_row("the Space samples with", recommended_setting(entry).describe()),
        table_row("vocabulary", f"{len(pipe.tokenizer):,} tokens learned from the training captions; prompts are cut "
                                f"at {pipe.tokenizer.model_max_length} tokens"),
        table_row("trained on", f"`{entry.dataset}`" if entry.dataset else "not recorded"),
        table_row("data credits", "; ".join(credits) if credits else "not recorded: check the data's licence"),
    ]
    return "\n".join(lines + card_lines(entry, files))
