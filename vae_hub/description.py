"""One description of a model or pipeline: the rows its card's tables show and the Space's About shows the same way.

    describe_model(folder, model, dataset_md)  ──▶ Description(architecture, training, metrics, quality)
    describe_pipeline(folder, dataset_md)      ──▶ Description(architecture, training, quality=...)

The card templates (``vae_hub/templates/*.md``, rendered by ``vae_hub.hub``) and the Space's About tab
(``vae_hub.explore.about``) both take their rows from here, so a measure has one label wherever it is shown. This
module reads a folder's records only: it publishes nothing and imports nothing of ``vae_hub.hub``.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

from diffusers.schedulers.scheduling_utils import SCHEDULER_CONFIG_NAME

from .evaluate_samples import describe_setting
from .likelihood import is_discrete
from .loading import CONFIG_NAME, PIPELINE_INDEX_NAME
from .models import AutoencoderKLWithLikelihood, SpatialVAEModel, VAEModel, own_decoder_stages
from .pipelines import LatentDiffusionPipeline
from .records import HUB_URL, public_name, read_json, reference, shareable_command


# The first line of every card vae-hub writes: such a card shows the rows of its model's description.
CARD_MARKER = re.compile(r"<!-- vae-hub card for repo: (\S*) -->")
METRICS_NAME = "metrics.json"
TRAINING_INFO_NAME = "training_info.json"
LIKELIHOOD_WORDS = {
    "bernoulli": "Bernoulli (the decoder outputs a logit per pixel; intensities in [0, 1] are scored with the "
    "binary cross-entropy)",
    "gaussian": "discretised Gaussian over the 256 levels of 8-bit pixels (mean per pixel, learned scale per channel)",
    "laplace": "discretised Laplace over the 256 levels of 8-bit pixels (location per pixel, learned scale per channel)",
}
# The sample-quality table's header, in the cards and in the Space's About.
QUALITY_COLUMNS = ("Generator", "Fréchet distance ↓", "Class match ↑", "Samples")
Rows = list[tuple[str, str]]


@dataclass(frozen=True)
class Description:
    """What a model is (``architecture``), how it measures (``metrics``: ``metric_rows``; ``quality``:
    ``sample_quality``) and how it was trained (``training``), as (label, text) rows."""

    architecture: Rows
    training: Rows
    metrics: list[dict] = field(default_factory=list)
    quality: dict = field(default_factory=lambda: sample_quality("model", {}))


def describe_model(
    folder, model: VAEModel | SpatialVAEModel | AutoencoderKLWithLikelihood, dataset_md: str | None
) -> Description:
    """The description of a saved model ``folder`` (its ``metrics.json`` and ``training_info.json``, both optional)
    and of ``model``, built from that folder; ``dataset_md`` is how the training table names the data's Hub page."""
    folder = Path(folder)
    metrics, info = read_json(folder / METRICS_NAME), read_json(folder / TRAINING_INFO_NAME)
    if isinstance(model, AutoencoderKLWithLikelihood):
        architecture = autoencoder_kl_architecture_rows(model, sum(p.numel() for p in model.vae.parameters()))
    else:
        architecture = architecture_rows(model, sum(p.numel() for p in model.parameters()))
    return Description(
        architecture=architecture,
        training=training_rows(info, dataset_md),
        metrics=metric_rows(metrics),
        quality=sample_quality("model", metrics),
    )


def describe_pipeline(folder, dataset_md: str | None, vae_folder: str | None = None) -> Description:
    """The description of a saved ``LatentDiffusionPipeline`` ``folder`` from its files: ``model_index.json``, the
    components' configs, ``metrics.json`` and ``training_info.json``; ``dataset_md`` as in ``describe_model``.
    ``vae_folder``: the folder of the VAE it was trained on (``pipeline_vae_ref``), whose own sample-quality records
    join the table when it is at hand."""
    folder = Path(folder)
    index = read_json(folder / PIPELINE_INDEX_NAME)
    metrics, info = read_json(folder / METRICS_NAME), read_json(folder / TRAINING_INFO_NAME)
    return Description(
        architecture=pipeline_architecture_rows(folder, index, info),
        training=training_rows(info, dataset_md),
        quality=sample_quality("pipeline", metrics, vae_folder),
    )


def pipeline_vae_ref(info: dict) -> str | None:
    """The VAE a pipeline was trained on, as its training record names it (a Hub id or a folder)."""
    return info.get("vae") or (info.get("args") or {}).get("pretrained_vae_model_name_or_path")


def image_desc(config: dict) -> str:
    """ "28×28 grayscale", "32×32 RGB", ...: the images a model's config says it takes."""
    c, s = config["in_channels"], config["sample_size"]
    return f"{s}×{s} {'grayscale' if c == 1 else 'RGB' if c == 3 else f'{c}-channel'}"


def human(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def count(n) -> str | None:
    return f"{n:,}" if isinstance(n, int) else n


def duration(seconds) -> str | None:
    if seconds is None:
        return None
    minutes, s = divmod(round(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{s} s"


def metric_rows(metrics: dict) -> list[dict]:
    """The evaluation (``vae_hub.evaluate``'s ``metrics.json``): metric type, short label (tables), name with units
    (the card's model-index), value, text."""
    if not metrics:
        return []
    like, k = metrics.get("likelihood"), metrics.get("iw_samples")
    nll = "NLL" if is_discrete(like) else "NLL (cross-entropy)"
    nats = f"nats/image, {like} likelihood"
    candidates = [  # type, table label, model-index name, value, decimals, unit
        (
            "nll",
            f"{nll}, importance-weighted bound (k={k})",
            f"{nll}, IW bound k={k} ({nats})",
            metrics.get("iw_nll_nats"),
            2,
            " nats",
        ),
        ("negative_elbo", "Negative ELBO", f"Negative ELBO ({nats})", metrics.get("negative_elbo_nats"), 2, " nats"),
        (
            "reconstruction",
            "Reconstruction term",
            f"Reconstruction term ({nats})",
            metrics.get("reconstruction_nats"),
            2,
            " nats",
        ),
        ("kl", "KL to the prior", "KL to the prior N(0, I) (nats/image)", metrics.get("kl_nats"), 2, " nats"),
        ("bits_per_dim", "Bits/dim", "Bits/dim (from the IW NLL)", metrics.get("bits_per_dim"), 4, ""),
        (
            "mse",
            "MSE of reconstructions, pixels in [0, 1]",
            "MSE of reconstructions (pixels in [0, 1])",
            metrics.get("mse"),
            5,
            "",
        ),
        ("psnr", "PSNR of reconstructions", "PSNR of reconstructions (dB)", metrics.get("psnr_db"), 2, " dB"),
    ]
    return [
        {"type": t, "label": label, "name": name, "value": round(float(v), d), "text": f"{float(v):.{d}f}{unit}"}
        for t, label, name, v, d, unit in candidates
        if isinstance(v, (int, float)) and not isinstance(v, bool)  # not recorded (None), or not a number
    ]


def architecture_rows(model: VAEModel | SpatialVAEModel, num_params: int) -> Rows:
    """A ``VAEModel``'s or ``SpatialVAEModel``'s parts, from its config."""
    config = model.config
    blocks = list(config["block_out_channels"])
    if isinstance(model, SpatialVAEModel):
        return [
            ("Class", "`vae_hub.SpatialVAEModel` (a diffusers `ModelMixin` with `AutoencoderKL`'s API)"),
            ("Input", f"{config['in_channels']}×{config['sample_size']}×{config['sample_size']}, pixels in [-1, 1]"),
            (
                "Encoder / decoder",
                f"convolutional, stages of {blocks} channels (one down-sampling between stages), "
                f"{config['layers_per_block']} residual block(s) per stage + a middle block"
                f"{own_decoder_stages(config)}, {config['act_fn']}, "
                f"GroupNorm({config['norm_num_groups']})",
            ),
            ("Latents", f"{'×'.join(map(str, model.latent_shape))} diagonal Gaussian posterior (a map, not a vector)"),
            ("Likelihood", LIKELIHOOD_WORDS[config["likelihood"]]),
            (
                "Latent scaling factor",
                f"{config['scaling_factor']:.4g}"
                + (f", shift {config['shift_factor']:.4g}" if config.get("shift_factor") is not None else ""),
            ),
            ("Parameters", f"{num_params:,} ({human(num_params)})"),
        ]
    k = config["prior_components"]
    return [
        ("Class", "`vae_hub.VAEModel` (a diffusers `ModelMixin`)"),
        ("Input", f"{config['in_channels']}×{config['sample_size']}×{config['sample_size']}, pixels in [-1, 1]"),
        (
            "Encoder / decoder",
            f"convolutional, stages of {blocks} channels, {config['layers_per_block']} residual "
            f"block(s) per stage, {config['act_fn']}, GroupNorm({config['norm_num_groups']})",
        ),
        ("Latent", f"{config['latent_dim']}-dimensional diagonal Gaussian posterior"),
        (
            "Prior",
            "N(0, I)"
            + (
                f"; also a {k}-component Gaussian mixture fitted to the training codes, for "
                f'sampling (`prior="mixture"`)'
                if k
                else ""
            ),
        ),
        ("Likelihood", LIKELIHOOD_WORDS[config["likelihood"]]),
        ("Latent scaling factor", f"{config['scaling_factor']:.4g}"),
        ("Parameters", f"{num_params:,} ({human(num_params)})"),
    ]


def autoencoder_kl_architecture_rows(model: AutoencoderKLWithLikelihood, num_params: int) -> Rows:
    """An ``AutoencoderKL``'s parts and the likelihood vae-hub adds to it (``likelihood.json``)."""
    config = model.config
    scale = ", ".join(f"{s:.3g}" for s in model.log_scale.detach().exp().tolist())
    return [
        ("Class", "`diffusers.AutoencoderKL`"),
        ("Input", f"{config['in_channels']}×{config['sample_size']}×{config['sample_size']}, pixels in [-1, 1]"),
        (
            "Encoder / decoder",
            f"stages of {list(config['block_out_channels'])} channels (f = {model.factor}), "
            f"{config['layers_per_block']} residual block(s) per stage, a middle block with "
            f"attention, {config['act_fn']}, GroupNorm({config['norm_num_groups']})",
        ),
        ("Latents", f"{'×'.join(map(str, model.latent_shape))} diagonal Gaussian posterior"),
        (
            "Likelihood (vae-hub, `likelihood.json`)",
            f"discretised {config['likelihood']}, location = the decoded image, scale per channel {scale}",
        ),
        (
            "Latent scaling factor",
            f"{config['scaling_factor']:.5g}"
            + (f", shift {config['shift_factor']:.4g}" if config.get("shift_factor") is not None else ""),
        ),
        ("Parameters", f"{num_params:,} ({human(num_params)})"),
    ]


def pipeline_architecture_rows(folder: Path, index: dict, info: dict) -> Rows:
    """A ``LatentDiffusionPipeline``'s components, from ``model_index.json`` and their configs in ``folder``."""
    vae_config = read_json(folder / "vae" / CONFIG_NAME)
    unet_config = read_json(folder / "unet" / CONFIG_NAME)
    scheduler_config = read_json(folder / "scheduler" / SCHEDULER_CONFIG_NAME)
    classes = list((index.get("id2label") or {}).values())
    unet_params = info.get("unet_parameters")
    return [
        ("Pipeline", f"`vae_hub.{LatentDiffusionPipeline.__name__}` (a diffusers `DiffusionPipeline`)"),
        (
            "VAE",
            f"`{'.'.join(index['vae'])}`, frozen; latents × scaling factor "
            f"{vae_config.get('scaling_factor', 1.0):.4g}",
        ),
        (
            "Denoiser",
            f"`UNet2DModel`, blocks of {list(unet_config.get('block_out_channels', []))} channels"
            + (f", {human(unet_params)} parameters" if isinstance(unet_params, int) else ""),
        ),
        (
            "Conditioning",
            f'{len(classes)} classes + the "no class" label (classifier-free guidance)'
            if classes
            else "none (unconditional)",
        ),
        (
            "Scheduler",
            f"`{scheduler_config.get('_class_name')}`, "
            f"{scheduler_config.get('prediction_type', 'epsilon')} prediction (any diffusers scheduler "
            "can replace it)",
        ),
    ]


def training_rows(info: dict, dataset_md: str | None) -> Rows:
    """The training record as table rows; the dataset as recorded, with its Hub link when it differs."""
    if not info:
        return []
    recorded = public_name(info["dataset_name"]) if info.get("dataset_name") else None
    dataset = f"`{recorded}`" if recorded else dataset_md
    if recorded and dataset_md and f"`{recorded}`" != dataset_md and f"[{recorded}]" not in dataset_md:
        dataset += f" ({dataset_md})"
    processes = info.get("num_processes") or 1
    batch = info.get("train_batch_size")
    base = public_name(info["base_model"]) if info.get("base_model") else None
    if base and (info.get("args") or {}).get("train_decoder_only"):
        base += " — its decoder only: the encoder and its latents are that model's, bit for bit"
    rows = [
        ("Dataset", dataset),
        ("Training images", count(info.get("num_train_images"))),
        ("Fine-tuned from", base),
        ("Epochs", info.get("epochs")),
        ("Optimizer steps", count(info.get("steps"))),
        ("Batch size", f"{batch} per process × {processes} processes" if batch and processes > 1 else batch),
        ("Learning rate", info.get("learning_rate")),
        ("Precision", "fp32" if info.get("mixed_precision") == "no" else info.get("mixed_precision")),
        ("Hardware", info.get("hardware")),
        ("Wall time", duration(info.get("wall_time_seconds"))),
        ("Software", ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items())),
    ]
    return [(k, str(v)) for k, v in rows if v not in (None, "")]


def sample_quality(kind: str, metrics: dict, vae_folder: str | None = None) -> dict:
    """The sample-quality table: rows, the classifier and the commands, from ``metrics.json``.

    Rows come in groups: this model's or pipeline's own records (``sample_quality``, written by
    ``python -m vae_hub.evaluate_samples --record``; the only ones in the model-index), then, for a pipeline, its
    VAE's records when ``vae_folder`` is at hand, then the generators ``vae-hub card --compare`` copied into
    ``compared_with`` (``{name: records}``), so that the card compares them with the same measure.
    """
    groups = [(f"this {kind}", True, metrics.get("sample_quality") or {})]
    if vae_folder and Path(vae_folder).is_dir():
        groups.append(("VAE", False, read_json(Path(vae_folder) / METRICS_NAME).get("sample_quality") or {}))
    groups += [(f"`{name}`", False, records) for name, records in (metrics.get("compared_with") or {}).items()]
    rows, records = [], []
    for who, own, group in groups:
        # a pipeline's records by steps, then guidance (a sweep reads in order); the others as they were recorded
        for record in sorted(
            group.values(), key=lambda r: (r.get("num_inference_steps") or 0, r.get("guidance_scale") or 0)
        ):
            fd, match = record.get("frechet_distance"), record.get("class_match")
            rows.append(
                {
                    "own": own,
                    "label": f"{who}, {describe_setting(record)}" + (", mini CLIP" if record.get("clip") else ""),
                    "features": "mini CLIP image features" if record.get("clip") else "classifier features",
                    "fd_value": round(float(fd), 3) if fd is not None else None,
                    "match_value": round(float(match), 4) if match is not None else None,
                    "fd": f"{fd:.2f}" if fd is not None else "—",
                    "match": f"{match:.1%}" if match is not None else "—",
                    "n": count(record.get("num_samples")) or "—",
                    "split": record.get("split"),
                    "dataset": record.get("dataset"),
                }
            )
            records.append(record)
    classifier = next((r["classifier"] for r in records if r.get("classifier")), None)
    clip = next((r["clip"] for r in records if r.get("clip")), None)
    return {
        "quality_rows": rows,
        "classifier_md": reference(classifier, HUB_URL) or "recorded with each number",
        "clip_md": reference(clip, HUB_URL),  # None when no record was measured with a mini CLIP
        "quality_by_classifier": any(not r.get("clip") for r in records),
        "quality_commands": (
            commands := sweep_commands([shareable_command(r["command"]) for r in records if r.get("command")])
        ),
        "quality_swept": any(f"{flag} {letter}" in c for c in commands for flag, letter in SWEPT_FLAGS.items()),
    }


# A sweep's commands differ only in these values; the card shows them once, with a letter for each.
SWEPT_FLAGS = {"--num_inference_steps": "S", "--guidance_scale": "G"}


def sweep_commands(commands: list[str]) -> list[str]:
    """The distinct commands, those that differ only in the values of ``SWEPT_FLAGS`` written once with S and G
    (and ``--recommend`` left out) when there are several of them; the others as they are, in their order."""

    def template(command: str) -> str:
        for flag, letter in SWEPT_FLAGS.items():
            command = re.sub(rf"{flag} \S+", f"{flag} {letter}", command)
        return command.replace(" --recommend", "")

    groups: dict[str, list[str]] = {}
    for command in dict.fromkeys(commands):
        groups.setdefault(template(command), []).append(command)
    return [shape if len(members) > 1 else members[0] for shape, members in groups.items()]
