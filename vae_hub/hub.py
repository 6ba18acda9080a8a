"""Publishing to the Hugging Face Hub: model cards, push, Space deploy (the loading checks are ``vae_hub.loading``).

* ``build_model_card`` / ``write_model_card``: the card of a saved model folder (metadata the Hub indexes, a
  body that reads well and a snippet that runs).
* ``upload_file_list`` / ``push_to_hub``: one explicit commit of the files a user needs — never checkpoints,
  logs, optimizer state or anything holding a token.
* ``space_upload_files`` / ``deploy_space``: a self-contained Gradio Space (app, ``vae_hub`` source, models, and
  ``space_config.json`` naming the Hub model to load, if any).

Every Hub call goes through an injectable ``HfApi`` (tests pass a test double), takes the token explicitly, and
turns the Hub's failures into one ``HubError`` whose message says what happened and what to do.
"""

import json
import math
import os
import re
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import httpx2
from diffusers import AutoencoderKL
from diffusers.schedulers.scheduling_utils import SCHEDULER_CONFIG_NAME
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    EvalResult,
    HfApi,
    ModelCard,
    ModelCardData,
    SpaceCard,
    SpaceCardData,
    get_token,
)
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from . import remote_code
from .constants import SPACE_DIR
from .evaluate_samples import describe_setting
from .likelihood import is_discrete
from .markdown import table_cell
from .loading import (
    CONFIG_NAME, MAP_SAMPLE_NAME, PIPELINE_COMPONENT_FILES, PIPELINE_INDEX_NAME, WEIGHTS_NAME, check_model_folder,
    is_pipeline_folder)
from .models.autoencoder_kl import LIKELIHOOD_NAME
from .models import MODEL_CLASSES, AutoencoderKLWithLikelihood, SpatialVAEModel, model_class, own_decoder_stages
from .models.pipeline_loading import LOADER_MODULE as PIPELINE_LOADER
from .pipelines.latent_diffusion import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS, LatentDiffusionPipeline

# ---------------------------------------------------------------------------------------------------- model card
CARD_NAME = "README.md"
METRICS_NAME = "metrics.json"
TRAINING_INFO_NAME = "training_info.json"
LICENSE = "apache-2.0"
PROJECT_TAG = "vae-hub"
# The files are in diffusers' format, but the Hub's diffusers snippet (a DiffusionPipeline) cannot load them:
# the honest library is the package that can.
LIBRARY_NAME = "vae-hub"
CARD_TAGS = ["vae", "variational-autoencoder", "image-generation", "custom_code", PROJECT_TAG]
PIPELINE_TAG = "unconditional-image-generation"  # sampling z ~ p(z) and decoding is exactly this task
FIGURE_CAPTIONS = {
    "samples.png": "Samples: latents drawn from the prior N(0, I) and decoded (the decoder's mean image).",
    "reconstructions.png": "Reconstructions: held-out images (left of each pair) and their reconstructions from "
    "the posterior mean (right).",
    "latents.png": "Latent maps of held-out images, one row per image, one small image per latent channel, scaled "
    "by the scaling factor as a diffusion model sees them (±3 standard deviations from black to white).",
    "loss_curve.png": "Training curve.",
}
_CARD_MARKER = re.compile(r"<!-- vae-hub card for repo: (\S*) -->")
_LIKELIHOOD_WORDS = {
    "bernoulli": "Bernoulli (the decoder outputs a logit per pixel; intensities in [0, 1] are scored with the "
    "binary cross-entropy)",
    "gaussian": "discretised Gaussian over the 256 levels of 8-bit pixels (mean per pixel, learned scale per channel)",
    "laplace": "discretised Laplace over the 256 levels of 8-bit pixels (location per pixel, learned scale per channel)",
}

REMOTE_CODE_NOTE = """**What `trust_remote_code=True` means.** The repo holds Python code ({{ code_files }},
generated from vae-hub's own source when the repo was pushed), and loading it this way runs that code on your machine
with your permissions. Read it first, and pin the commit you read with `revision="<commit sha>"`: loading `main`
runs whatever a later commit puts there."""

QUALITY_SECTION = """## Sample quality
{% if quality_rows %}
| Generator | Fréchet distance ↓ | Class match ↑ | Samples |
|---|---|---|---|
{% for row in quality_rows %}| {{ cell(row.label) }} | {{ row.fd }} | {{ row.match }} | {{ row.n }} |
{% endfor %}
Fréchet distance between generated and held-out real images in the feature space of the classifier
{{ classifier_md }}; class match: the share of samples that classifier assigns to the class they were generated for.
Lower and higher are better; numbers are comparable only with the same classifier, data and sample count.
{% for command in quality_commands %}
```bash
{{ command }}
```
{% endfor %}{% else %}
No sample-quality numbers were saved with this {{ kind }}; measure them with
`python -m vae_hub.evaluate_samples --generator <this folder> --record`.
{% endif %}"""

TRAINING_SECTION = """## Training
{% if training_rows %}
| | |
|---|---|
{% for key, value in training_rows %}| {{ cell(key) }} | {{ cell(value) }} |
{% endfor %}{% if command %}
```bash
{{ command }}
```
{% endif %}{% else %}
No training record (`training_info.json`) was saved with this {{ kind }}.
{% endif %}"""

MODEL_CARD_TEMPLATE = """---
{{ card_data }}
---
<!-- vae-hub card for repo: {{ repo_id or "" }} -->

# {{ name }}

{% if spatial %}A **spatial KL autoencoder** — Stable Diffusion's kind of VAE (Rombach et al., 2022) — for {{ image_desc }}
images{% if dataset_md %}, trained on {{ dataset_md }}{% endif %}. The encoder maps an image to a Gaussian map of
latents q(z | x) of shape {{ latent_desc }}; the decoder maps latents back to an image. Its latents, multiplied by
`scaling_factor`, are what a latent diffusion model learns to generate; the decoder then renders them.

The files are in diffusers' model format (`config.json` + `diffusion_pytorch_model.safetensors`). Load it with
`vae_hub.SpatialVAEModel`, as below; it has `AutoencoderKL`'s API and drops into diffusers pipelines as their `vae`.{% else %}A **variational autoencoder** (Kingma & Welling, 2014) for {{ image_desc }} images{% if dataset_md %}, trained on
{{ dataset_md }}{% endif %}. The encoder maps an image to a {{ latent_dim }}-dimensional Gaussian code
q(z | x); the decoder maps a code back to an image. Decoding codes drawn from the prior generates new images.

The files are in diffusers' model format (`config.json` + `diffusion_pytorch_model.safetensors`), but this is not
a diffusers pipeline: load it with `vae_hub.VAEModel`, as below.{% endif %}
{% if base_model_md %}
Fine-tuned from {{ base_model_md }}.
{% endif %}
{% for figure in figures %}
![{{ figure.alt }}]({{ figure.file }})

*{{ figure.caption }}*
{% endfor %}
## Evaluation
{% if metric_rows %}
On the **{{ split }}** split of {{ dataset_md }} ({{ num_images }} images), prior N(0, I), {{ likelihood }}
likelihood; nats per image:

| Metric | Value |
|---|---|
{% for row in metric_rows %}| {{ cell(row.label) }} | {{ cell(row.text) }} |
{% endfor %}
Active latent {{ 'elements' if spatial else 'units' }}: {{ active_units }} of {{ latent_size }} (posterior means that vary across images, Burda et al.
2015). {{ likelihood_note | capitalize }}.
{% if eval_command %}
Measured with:

```bash
{{ eval_command }}
```
{% endif %}{% else %}
No evaluation was saved with this model (`metrics.json`); compute one with
`python -m vae_hub.evaluate --model {{ model_ref }} --dataset_name <dataset> --split test`.
{% endif %}
""" + QUALITY_SECTION + """
## Model

| | |
|---|---|
{% for key, value in architecture %}| {{ cell(key) }} | {{ cell(value) }} |
{% endfor %}{% if prior_choice %}
Mixture prior: {{ prior_choice }}
{% endif %}
## Usage

`vae_hub` is not on PyPI: install it from a checkout of the vae-hub project (`pip install ./vae-hub`).
{% if not repo_id %}Replace `{{ model_ref }}` with the model's repo id on the Hub, or with the path of its folder.
{% endif %}
```python
import torch
{% if spatial %}from vae_hub import SpatialVAEModel
from vae_hub.images import make_grid, pil_to_tensor

vae = SpatialVAEModel.from_pretrained("{{ model_ref }}").eval()
generator = torch.Generator().manual_seed(0)

# Encode PIL images (any size or mode: converted, resized and centre-cropped to what the model expects).
pil_images = [...]  # your images
x = pil_to_tensor(pil_images, vae.config.sample_size, vae.config.in_channels)  # (B, C, H, W) in [-1, 1]
with torch.no_grad():
    posterior = vae.encode(x).latent_dist                      # a DiagonalGaussianDistribution
    latents = posterior.sample(generator)                       # (B, {{ latent_desc }})
    diffusion_input = latents * vae.config.scaling_factor       # unit variance: what a diffusion model sees
    reconstructions = vae.decode(diffusion_input / vae.config.scaling_factor).sample
make_grid(torch.cat([x, reconstructions]), nrow=len(x), scale=4).save("reconstructions.png")
```

In a diffusers pipeline it stands where `AutoencoderKL` stands, e.g. `DiTPipeline(transformer, vae, scheduler)` or
`vae_hub.LatentDiffusionPipeline(vae, unet, scheduler)`.
{% else %}from vae_hub import VAEModel
from vae_hub.images import make_grid, pil_to_tensor, tensor_to_pil

model = VAEModel.from_pretrained("{{ model_ref }}").eval()
generator = torch.Generator().manual_seed(0)

# Sample: z ~ N(0, I), decoded. Images are (B, C, H, W) in [-1, 1]; the same seed gives the same images.
images = model.generate(16, generator=generator)
make_grid(images, nrow=4, scale=4).save("samples.png")
{% if mixture %}# Or from the {{ mixture }}-component Gaussian mixture fitted to the training codes (where real images encode to):
images = model.generate(16, generator=generator, prior="mixture")
{% endif %}
# Encode PIL images (any size or mode: converted, resized and centre-cropped to what the model expects).
pil_images = tensor_to_pil(images[:2])
x = pil_to_tensor(pil_images, model.config.sample_size, model.config.in_channels)
with torch.no_grad():
    z = model.encode(x).latent_dist.mean.flatten(1)  # (2, {{ latent_dim }}) posterior means
    reconstructions = model.decode(z).sample

# Interpolate between the two codes.
t = torch.linspace(0, 1, 8)[:, None]
with torch.no_grad():
    path = model.decode((1 - t) * z[0] + t * z[1]).sample  # (8, C, H, W)
make_grid(path, nrow=8, scale=4).save("interpolation.png")
```
{% endif %}
### Without vae-hub: diffusers and remote code

The repo carries the model's code ({{ code_files }}), so diffusers alone loads it, with the same API and the
same outputs for the same seed:

```python
from diffusers import AutoModel

model = AutoModel.from_pretrained("{{ model_ref }}", trust_remote_code=True, revision="main").eval()
```

""" + REMOTE_CODE_NOTE + """ Offline, point `from_pretrained` at the downloaded folder
(`huggingface_hub.snapshot_download(repo_id, revision=...)`): diffusers asks the Hub for the repo's commit before it
runs a model's remote code from a repo id, even when the files are cached.

""" + TRAINING_SECTION + """
### Fine-tuning

Continue training on your own images (any Hub image dataset, or a local folder in the Hub's layout) with
`training/train_vae.py` from the vae-hub project, on one or several GPUs or on CPU:

```bash
accelerate launch training/train_vae.py \\
  --pretrained_model_name_or_path {{ model_ref }} \\
  --dataset_name <dataset id or folder> \\
  --num_train_epochs 5 --learning_rate 1e-4 \\
  --output_dir {{ name }}-finetuned
```

## Intended use and limitations

For learning and research: exploring a learned latent space (encoding, interpolation, latent traversals),
generating small images, and comparing likelihoods of models trained with the same likelihood and data.

- It models {{ image_desc }} images{% if dataset_md %} like those of {{ dataset_md }}{% endif %}: other images
  are resized and converted to fit, and their encodings and reconstructions are poor.
{% if spatial %}- It is an autoencoder, not a generator: decoding random latents gives noise-like images. Generate with a
  diffusion model trained on its scaled latents.{% else %}- VAE samples are blurry compared with GANs or diffusion models; this is not a general-purpose image generator.{% endif %}
- The numbers above depend on the likelihood: they are comparable only between models with the same likelihood
  and pixel preprocessing.
- The model reproduces the content and biases of its training data.

## Citation

```bibtex
@inproceedings{kingma2014autoencoding,
  title     = {Auto-Encoding Variational {B}ayes},
  author    = {Kingma, Diederik P. and Welling, Max},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2014},
  url       = {https://arxiv.org/abs/1312.6114}
}
```
"""


def write_model_card(folder, repo_id: str | None = None, *, dataset_id: str | None = None) -> ModelCard:
    """Build the card of a saved model or pipeline folder (see ``build_card``) and save it as ``folder/README.md``."""
    card = build_card(folder, repo_id, dataset_id=dataset_id)
    card.save(Path(folder) / CARD_NAME)
    return card


def build_model_card(folder, repo_id: str | None = None, *, dataset_id: str | None = None) -> ModelCard:
    """The model card of a saved ``VAEModel`` folder, in memory.

    Reads ``config.json`` (required), ``metrics.json`` and ``training_info.json`` (optional: a bare saved model
    still gets a card) and the top-level PNG grids, which the card embeds by relative path (they are uploaded
    with the model).

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
    num_params = sum(p.numel() for p in model.parameters())
    spatial = cls is SpatialVAEModel
    latent_shape = model.latent_shape if spatial else None
    metrics, info = _read_json(folder / METRICS_NAME), _read_json(folder / TRAINING_INFO_NAME)

    data_ref = info.get("dataset_name") or metrics.get("dataset")
    dataset_id = dataset_id or info.get("dataset_id") or _hub_id(data_ref)
    dataset_label = dataset_id or (Path(data_ref).name if data_ref else None)
    base_model = info.get("base_model")
    name = repo_id.split("/")[-1] if repo_id else folder.resolve().name
    rows = _metric_rows(metrics)
    quality = _sample_quality("model", metrics)
    eval_results = [
        EvalResult(
            task_type=PIPELINE_TAG, task_name="Image density estimation", dataset_type=dataset_label,
            dataset_name=dataset_label, dataset_split=metrics.get("split"), metric_type=row["type"],
            metric_name=row["name"], metric_value=row["value"],
        )
        for row in rows
    ] + [
        EvalResult(
            task_type=PIPELINE_TAG, task_name="Sample quality", dataset_type=dataset_label, dataset_name=dataset_label,
            dataset_split=row["split"], metric_type="frechet_distance",
            metric_name=f"Fréchet distance, classifier features ({row['label']}, {row['n']} samples)",
            metric_value=row["fd_value"],
        )
        for row in quality["quality_rows"] if row["own"] and row["fd_value"] is not None
    ] if (rows or quality["quality_rows"]) and dataset_label else None
    card_data = ModelCardData(
        library_name=LIBRARY_NAME, license=LICENSE, tags=list(CARD_TAGS), pipeline_tag=PIPELINE_TAG,
        datasets=[dataset_id] if dataset_id else None, base_model=_hub_id(base_model),
        model_name=name if eval_results else None, eval_results=eval_results,
    )
    dataset_md = _reference(dataset_id, "https://huggingface.co/datasets/") or _reference(dataset_label)
    image_desc = _image_desc(config)
    return ModelCard.from_template(
        card_data,
        template_str=MODEL_CARD_TEMPLATE,
        repo_id=repo_id,
        name=name,
        model_ref=repo_id or f"<your-namespace>/{name}",
        image_desc=image_desc,
        spatial=spatial,
        latent_dim=config.get("latent_dim"),
        latent_size=math.prod(latent_shape) if spatial else config.get("latent_dim"),
        latent_desc="×".join(map(str, latent_shape)) if spatial else None,
        mixture=config.get("prior_components", 0),
        dataset_md=dataset_md,
        base_model_md=_reference(base_model, "https://huggingface.co/"),
        figures=[{"file": p.name, "alt": p.stem.replace("_", " "),
                  "caption": FIGURE_CAPTIONS.get(p.name, p.stem.replace("_", " ").capitalize() + ".")}
                 for p in _figures(folder)],
        metric_rows=rows,
        split=metrics.get("split"),
        num_images=_count(metrics.get("num_images")),
        likelihood=config["likelihood"],
        likelihood_note=metrics.get("likelihood_note", ""),
        active_units=metrics.get("active_units"),
        eval_command=shareable_command(metrics.get("command")),
        architecture=_architecture_rows(config, num_params),
        training_rows=_training_rows(info, dataset_md),
        command=shareable_command(info.get("command")),
        prior_choice=_prior_choice(info.get("mixture_prior")),
        cell=table_cell,  # every table cell goes through it: a "|" in a value would split the row
        code_files=f"`{remote_code.MODEL_CODE_FILE}`",
        kind="model",
        **quality,
    )


def _image_desc(config: dict) -> str:
    """"28×28 grayscale", "32×32 RGB", ...: the images a model's config says it takes."""
    c, s = config["in_channels"], config["sample_size"]
    return f"{s}×{s} {'grayscale' if c == 1 else 'RGB' if c == 3 else f'{c}-channel'}"


def _prior_choice(record) -> str | None:
    """How the mixture prior's number of components was chosen, from ``training_info.json``, in one sentence."""
    if not isinstance(record, dict) or not record.get("num_components"):
        return None
    from .prior import PriorChoice  # scikit-learn: only when there is a record to describe

    refit = f" Refitted after training with `{record['command']}`." if record.get("command") else ""
    return PriorChoice.from_dict(record).describe() + refit


def _figures(folder: Path) -> list[Path]:
    """Top-level PNGs: the known grids first (samples, reconstructions, loss curve), then the rest by name."""
    order = list(FIGURE_CAPTIONS)
    pngs = [p for p in folder.glob("*.png") if p.is_file()]
    return sorted(pngs, key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))


def _metric_rows(metrics: dict) -> list[dict]:
    """The evaluation for the card: metric type, short label (table), name with units (model-index), value."""
    if not metrics:
        return []
    like, k = metrics["likelihood"], metrics.get("iw_samples")
    nll = "NLL" if is_discrete(like) else "NLL (cross-entropy)"
    nats = f"nats/image, {like} likelihood"
    candidates = [  # type, table label, model-index name, value, decimals, unit
        ("nll", f"{nll}, importance-weighted bound (k={k})", f"{nll}, IW bound k={k} ({nats})",
         metrics.get("iw_nll_nats"), 2, " nats"),
        ("negative_elbo", "Negative ELBO", f"Negative ELBO ({nats})", metrics.get("negative_elbo_nats"), 2, " nats"),
        ("reconstruction", "Reconstruction term", f"Reconstruction term ({nats})", metrics.get("reconstruction_nats"),
         2, " nats"),
        ("kl", "KL to the prior", "KL to the prior N(0, I) (nats/image)", metrics.get("kl_nats"), 2, " nats"),
        ("bits_per_dim", "Bits/dim", "Bits/dim (from the IW NLL)", metrics.get("bits_per_dim"), 4, ""),
        ("mse", "MSE of reconstructions, pixels in [0, 1]", "MSE of reconstructions (pixels in [0, 1])",
         metrics.get("mse"), 5, ""),
        ("psnr", "PSNR of reconstructions", "PSNR of reconstructions (dB)", metrics.get("psnr_db"), 2, " dB"),
    ]
    return [
        {"type": t, "label": label, "name": name, "value": round(float(v), d), "text": f"{float(v):.{d}f}{unit}"}
        for t, label, name, v, d, unit in candidates
        if v is not None
    ]


def _architecture_rows(config: dict, num_params: int) -> list[tuple[str, str]]:
    blocks = list(config["block_out_channels"])
    if config["_class_name"] == SpatialVAEModel.__name__:
        shape = SpatialVAEModel.from_config(config).latent_shape
        return [
            ("Class", "`vae_hub.SpatialVAEModel` (a diffusers `ModelMixin` with `AutoencoderKL`'s API)"),
            ("Input", f"{config['in_channels']}×{config['sample_size']}×{config['sample_size']}, pixels in [-1, 1]"),
            ("Encoder / decoder", f"convolutional, stages of {blocks} channels (one down-sampling between stages), "
                                  f"{config['layers_per_block']} residual block(s) per stage + a middle block"
                                  f"{own_decoder_stages(config)}, {config['act_fn']}, "
                                  f"GroupNorm({config['norm_num_groups']})"),
            ("Latents", f"{'×'.join(map(str, shape))} diagonal Gaussian posterior (a map, not a vector)"),
            ("Likelihood", _LIKELIHOOD_WORDS[config["likelihood"]]),
            ("Latent scaling factor", f"{config['scaling_factor']:.4g}"
             + (f", shift {config['shift_factor']:.4g}" if config.get("shift_factor") is not None else "")),
            ("Parameters", f"{num_params:,} ({_human(num_params)})"),
        ]
    k = config["prior_components"]
    return [
        ("Class", "`vae_hub.VAEModel` (a diffusers `ModelMixin`)"),
        ("Input", f"{config['in_channels']}×{config['sample_size']}×{config['sample_size']}, pixels in [-1, 1]"),
        ("Encoder / decoder", f"convolutional, stages of {blocks} channels, {config['layers_per_block']} residual "
                              f"block(s) per stage, {config['act_fn']}, GroupNorm({config['norm_num_groups']})"),
        ("Latent", f"{config['latent_dim']}-dimensional diagonal Gaussian posterior"),
        ("Prior", "N(0, I)" + (f"; also a {k}-component Gaussian mixture fitted to the training codes, for "
                               f'sampling (`prior="mixture"`)' if k else "")),
        ("Likelihood", _LIKELIHOOD_WORDS[config["likelihood"]]),
        ("Latent scaling factor", f"{config['scaling_factor']:.4g}"),
        ("Parameters", f"{num_params:,} ({_human(num_params)})"),
    ]


def _training_rows(info: dict, dataset_md: str | None) -> list[tuple[str, str]]:
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
        ("Training images", _count(info.get("num_train_images"))),
        ("Fine-tuned from", base),
        ("Epochs", info.get("epochs")),
        ("Optimizer steps", _count(info.get("steps"))),
        ("Batch size", f"{batch} per process × {processes} processes" if batch and processes > 1 else batch),
        ("Learning rate", info.get("learning_rate")),
        ("Precision", "fp32" if info.get("mixed_precision") == "no" else info.get("mixed_precision")),
        ("Hardware", info.get("hardware")),
        ("Wall time", _duration(info.get("wall_time_seconds"))),
        ("Software", ", ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items())),
    ]
    return [(k, str(v)) for k, v in rows if v not in (None, "")]


def _human(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def _count(n) -> str | None:
    return f"{n:,}" if isinstance(n, int) else n


def _duration(seconds) -> str | None:
    if seconds is None:
        return None
    minutes, s = divmod(round(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {s:02d} s" if m else f"{s} s"


def _reference(name: str | None, hub_url: str | None = None) -> str | None:
    """Markdown for a model, dataset or folder: a link when ``name`` is a Hub id and ``hub_url`` is given, else code
    (a local folder by its name only: ``public_name``)."""
    if not name:
        return None
    return f"[{name}]({hub_url}{name})" if hub_url and _hub_id(name) else f"`{public_name(name)}`"


def public_name(name: str) -> str:
    """A recorded model, dataset or folder as an uploaded file shows it: an absolute (or ``~``) path by its last
    part (``/home/me/data/mnist`` → ``mnist``), anything else (a Hub id, a relative path) as it is."""
    local = os.path.isabs(name) or name.startswith("~")
    return Path(name).name if local and Path(name).name else name


def public_record(data):
    """A JSON record (``training_info.json``, ``metrics.json``) as a push uploads it: every recorded path by its
    last part (``public_name``), every ``command`` as ``shareable_command`` writes it; the rest unchanged."""
    if isinstance(data, dict):
        return {k: shareable_command(v) if k == "command" and isinstance(v, str) else public_record(v)
                for k, v in data.items()}
    if isinstance(data, list):
        return [public_record(v) for v in data]
    return public_name(data) if isinstance(data, str) else data


def _hub_id(name: str | None) -> str | None:
    """``name`` if it can be a Hub repo id, ``None`` for a local path (the metadata can only link Hub ids)."""
    if not name or os.path.exists(name) or name.startswith((".", "~")):
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def shareable_command(command: str | None) -> str | None:
    """A recorded command as a card shows it: an absolute path (``--output_dir /home/me/runs/vae``, or after
    ``=``) becomes its last part, so a card names no folder of the machine it was trained on; relative paths and
    everything else stay as they were run."""
    if not command:
        return command
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: not a command line we wrote; show it as it is
        return command

    def short(word: str) -> str:
        flag, equals, value = word.partition("=") if word.startswith("--") else ("", "", word)
        return flag + equals + Path(value).name if os.path.isabs(value) and Path(value).name else word
    return shlex.join(short(w) for w in words)


def _read_json(path: Path) -> dict:
    """The JSON object in ``path``, or ``{}`` when the (optional) file is absent."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


# ---------------------------------------------------------------------------------------------------- pipeline card
PIPELINE_CLASS = LatentDiffusionPipeline.__name__
PACKAGE = remote_code.PACKAGE
# DiffusionPipeline.from_pretrained(repo, trust_remote_code=True) loads it: the library the Hub should show.
PIPELINE_LIBRARY = "diffusers"
# The Hub's tasks (huggingface.js, packages/tasks/src/pipelines.ts) are named by their input: none
# ("unconditional-image-generation") or free text ("text-to-image"). A class label is neither — calling this model
# unconditional or text-to-image would put it in the wrong searches and widgets — and the Hub has no task for it;
# "other" is the Hub's own id for that case. The task itself is a tag, where it can be found.
PIPELINE_PIPELINE_TAG = "other"
PIPELINE_CARD_TAGS = ["latent-diffusion", "class-conditional-image-generation", "diffusers", "custom_code", PROJECT_TAG]
PIPELINE_FIGURE_CAPTIONS = {
    "samples.png": "Samples, a row per class, from the training run's last step (its seed, steps and guidance).",
    "loss_curve.png": "Training curve: the denoising loss.",
}
PIPELINE_CARD_TEMPLATE = """---
{{ card_data }}
---
<!-- vae-hub card for repo: {{ repo_id or "" }} -->

# {{ name }}

A **class-conditional latent diffusion** pipeline — Stable Diffusion's recipe (Rombach et al., 2022), small enough
to watch on a CPU. A `UNet2DModel` turns noise into the {{ latent_desc }} latents of a frozen {{ vae_md }}, and the
VAE's decoder renders them as {{ image_desc }} images{% if dataset_md %} like those of {{ dataset_md }}{% endif %}.
The class label plays the part of Stable Diffusion's text prompt; classifier-free guidance (`guidance_scale`, Ho &
Salimans 2022) trades variety for fidelity to the class.
{% for figure in figures %}
![{{ figure.alt }}]({{ figure.file }})

*{{ figure.caption }}*
{% endfor %}{% if classes %}
## Classes

| Label | Name |
|---|---|
{% for name in classes %}| {{ loop.index0 }} | {{ cell(name) }} |
{% endfor %}{% endif %}
""" + QUALITY_SECTION + """
## Usage

### With vae-hub

`vae_hub` is not on PyPI: install it from a checkout of the vae-hub project (`pip install ./vae-hub`).
{% if not repo_id %}Replace `{{ model_ref }}` with the pipeline's repo id on the Hub, or with the path of its folder.
{% endif %}
```python
import torch
from vae_hub import LatentDiffusionPipeline

pipe = LatentDiffusionPipeline.from_pretrained("{{ model_ref }}")
generator = torch.Generator().manual_seed(0)
# {{ label_comment }}
# PIL images; output_type="pt" gives tensors (B, C, H, W) in [0, 1]
images = pipe({{ label_example }}, num_images_per_class=4, num_inference_steps={{ steps }}, guidance_scale={{ guidance }},
              generator=generator).images
images[0].save("sample.png")
```

### Without vae-hub: diffusers and remote code

The repo carries its code ({{ code_files }}), so diffusers alone loads it, with the same API; the same seed
gives the same images as above.

```python
import torch
from diffusers import DiffusionPipeline

pipe = DiffusionPipeline.from_pretrained("{{ model_ref }}", trust_remote_code=True, revision="main")
images = pipe({{ label_example }}, num_images_per_class=4, num_inference_steps={{ steps }}, guidance_scale={{ guidance }},
              generator=torch.Generator().manual_seed(0)).images
```

""" + REMOTE_CODE_NOTE + """

## Model

| | |
|---|---|
{% for key, value in architecture %}| {{ cell(key) }} | {{ cell(value) }} |
{% endfor %}
""" + TRAINING_SECTION + """
## Intended use and limitations

For learning and research: watching how latent diffusion generates images, and comparing it with the blurry prior
samples of a VAE and with other samplers, steps and guidance scales.

- It generates {{ image_desc }} images of its {{ classes | length if classes else "training" }} classes only; the
  samples reproduce the content and biases of its training data.
- The sample-quality numbers depend on the classifier that measures them; they are not ImageNet FIDs.

## Citation

```bibtex
@inproceedings{rombach2022high,
  title     = {High-Resolution Image Synthesis with Latent Diffusion Models},
  author    = {Rombach, Robin and Blattmann, Andreas and Lorenz, Dominik and Esser, Patrick and Ommer, Bj{\\"o}rn},
  booktitle = {IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2022},
  url       = {https://arxiv.org/abs/2112.10752}
}
```
"""


def build_card(folder, repo_id: str | None = None, *, dataset_id: str | None = None) -> ModelCard:
    """The card of a saved model folder (``build_model_card``) or pipeline folder (``build_pipeline_card``)."""
    if is_pipeline_folder(folder):
        return build_pipeline_card(folder, repo_id, dataset_id=dataset_id)
    if model_class(folder) is AutoencoderKLWithLikelihood:
        from .autoencoder_kl_card import build_autoencoder_kl_card  # it builds on this module's pieces

        return build_autoencoder_kl_card(folder, repo_id, dataset_id=dataset_id)
    return build_model_card(folder, repo_id, dataset_id=dataset_id)


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
    metrics, info = _read_json(folder / METRICS_NAME), _read_json(folder / TRAINING_INFO_NAME)
    vae_config = _read_json(folder / "vae" / CONFIG_NAME)
    unet_config = _read_json(folder / "unet" / CONFIG_NAME)
    scheduler_config = _read_json(folder / "scheduler" / SCHEDULER_CONFIG_NAME)
    classes = list((index.get("id2label") or {}).values())
    vae_ref = info.get("vae") or (info.get("args") or {}).get("pretrained_vae_model_name_or_path")
    data_ref = info.get("dataset_name")
    dataset_id = dataset_id or info.get("dataset_id") or _hub_id(data_ref)
    name = repo_id.split("/")[-1] if repo_id else folder.resolve().name
    quality = _sample_quality("pipeline", metrics, vae_ref)  # with the VAE's own numbers, when its folder is here
    rows = quality["quality_rows"]
    recorded_data = rows[0]["dataset"] if rows else None  # a Hub id, or a local copy: named, not linked
    quality_data = dataset_id or _hub_id(recorded_data) or (Path(recorded_data).name if recorded_data else None)
    eval_results = [
        EvalResult(task_type=PIPELINE_PIPELINE_TAG, task_name="Class-conditional image generation",
                   dataset_type=quality_data, dataset_name=quality_data, dataset_split=row["split"],
                   metric_type=kind, metric_name=f"{label} ({row['label']}, {row['n']} samples)", metric_value=value)
        for row in rows if row["own"]
        for kind, label, value in (("frechet_distance", "Fréchet distance, classifier features", row["fd_value"]),
                                   ("class_match", "Class match", row["match_value"]))
        if value is not None
    ] if rows and quality_data else None
    card_data = ModelCardData(
        library_name=PIPELINE_LIBRARY, license=LICENSE, tags=list(PIPELINE_CARD_TAGS),
        pipeline_tag=PIPELINE_PIPELINE_TAG, datasets=[dataset_id] if dataset_id else None,
        base_model=_hub_id(vae_ref), model_name=name if eval_results else None, eval_results=eval_results or None,
    )
    latent = (unet_config.get("in_channels"), unet_config.get("sample_size"), unet_config.get("sample_size"))
    vae_class = index["vae"][1]
    unet_params = info.get("unet_parameters")
    return ModelCard.from_template(
        card_data,
        template_str=PIPELINE_CARD_TEMPLATE,
        repo_id=repo_id,
        name=name,
        model_ref=repo_id or f"<your-namespace>/{name}",
        code_files=" and ".join(f"`{name}`" for name in pipeline_code_files(index)),
        image_desc=_image_desc(vae_config),
        latent_desc="×".join(map(str, latent)),
        vae_md=f"`{vae_class}`" + (f" ({_reference(vae_ref, 'https://huggingface.co/')})" if vae_ref else ""),
        dataset_md=_reference(dataset_id, "https://huggingface.co/datasets/") or _reference(data_ref),
        figures=[{"file": p.name, "alt": p.stem.replace("_", " "),
                  "caption": PIPELINE_FIGURE_CAPTIONS.get(p.name, p.stem.replace("_", " ").capitalize() + ".")}
                 for p in _figures(folder)],
        classes=classes,
        steps=DEFAULT_NUM_INFERENCE_STEPS, guidance=DEFAULT_GUIDANCE_SCALE,
        label_example=json.dumps(classes[0], ensure_ascii=False) if classes else "None",
        label_comment=f"a class name or label, or a list of them ({json.dumps(classes[0], ensure_ascii=False)} is "
        "label 0)" if classes else "an unconditional pipeline: class_labels=None",
        **quality,
        architecture=[
            ("Pipeline", f"`vae_hub.{PIPELINE_CLASS}` (a diffusers `DiffusionPipeline`)"),
            ("VAE", f"`{'.'.join(index['vae'])}`, frozen; latents × scaling factor "
                    f"{vae_config.get('scaling_factor', 1.0):.4g}"),
            ("Denoiser", f"`UNet2DModel`, blocks of {list(unet_config.get('block_out_channels', []))} channels"
                         + (f", {_human(unet_params)} parameters" if isinstance(unet_params, int) else "")),
            ("Conditioning", f"{len(classes)} classes + the \"no class\" label (classifier-free guidance)"
                             if classes else "none (unconditional)"),
            ("Scheduler", f"`{scheduler_config.get('_class_name')}`, "
                          f"{scheduler_config.get('prediction_type', 'epsilon')} prediction (any diffusers scheduler "
                          "can replace it)"),
        ],
        training_rows=_training_rows(info, _reference(dataset_id, "https://huggingface.co/datasets/")),
        command=shareable_command(info.get("command")),
        kind="pipeline",
        cell=table_cell,
    )


def _sample_quality(kind: str, metrics: dict, vae_folder: str | None = None) -> dict:
    """The card's sample-quality table: rows, the classifier and the commands, from ``metrics.json``.

    Rows come in groups: this model's or pipeline's own records (``sample_quality``, written by
    ``python -m vae_hub.evaluate_samples --record``; the only ones in the model-index), then, for a pipeline, its
    VAE's records when ``vae_folder`` is at hand, then the generators ``vae-hub card --compare`` copied into
    ``compared_with`` (``{name: records}``), so that the card compares them with the same measure.
    """
    groups = [(f"this {kind}", True, metrics.get("sample_quality") or {})]
    if vae_folder and Path(vae_folder).is_dir():
        groups.append(("VAE", False, _read_json(Path(vae_folder) / METRICS_NAME).get("sample_quality") or {}))
    groups += [(f"`{name}`", False, records) for name, records in (metrics.get("compared_with") or {}).items()]
    rows, records = [], []
    for who, own, group in groups:
        # a pipeline's records by steps, then guidance (a sweep reads in order); the others as they were recorded
        for record in sorted(group.values(), key=lambda r: (r.get("num_inference_steps") or 0, r.get("guidance_scale") or 0)):
            fd, match = record.get("frechet_distance"), record.get("class_match")
            rows.append({
                "own": own, "label": f"{who}, {describe_setting(record)}",
                "fd_value": round(float(fd), 3) if fd is not None else None,
                "match_value": round(float(match), 4) if match is not None else None,
                "fd": f"{fd:.2f}" if fd is not None else "—", "match": f"{match:.1%}" if match is not None else "—",
                "n": _count(record.get("num_samples")) or "—", "split": record.get("split"),
                "dataset": record.get("dataset"),
            })
            records.append(record)
    classifier = next((r["classifier"] for r in records if r.get("classifier")), None)
    return {"quality_rows": rows,
            "classifier_md": _reference(classifier, "https://huggingface.co/") or "recorded with each number",
            "quality_commands": list(dict.fromkeys(shareable_command(r["command"]) for r in records
                                                   if r.get("command")))}


def record_comparison(folder, others: list) -> dict:
    """Copy the sample-quality records of other generators (saved model or pipeline folders) into ``folder``'s
    ``metrics.json`` as ``compared_with`` ({folder name: records}, replacing an earlier set): its card then
    compares them in one table, wherever the card is rebuilt (a push rebuilds it from the folder's own files).

    Raises ``ValueError`` for a folder without records, ``folder`` itself among ``others``, or records measured
    with another classifier, dataset or split than ``folder``'s own (their numbers do not compare).
    """
    folder = Path(folder)
    metrics = _read_json(folder / METRICS_NAME)
    own = list((metrics.get("sample_quality") or {}).values())
    compared = {}
    for other in map(Path, others):
        records = _read_json(other / METRICS_NAME).get("sample_quality") if other.is_dir() else None
        if other.resolve() == folder.resolve():
            raise ValueError(f"{other} is the folder whose card this is: compare it with other generators")
        if not records:
            raise ValueError(f"{other} has no sample-quality records (metrics.json: sample_quality); measure them "
                             f"first with `python -m vae_hub.evaluate_samples --generator {other} --record`")
        for field in ("classifier", "dataset", "split"):
            mine = {r.get(field) for r in own} | {r.get(field) for r in records.values()}
            if len(mine - {None}) > 1:
                raise ValueError(f"{other}'s sample quality was measured with another {field} than {folder}'s "
                                 f"({', '.join(sorted(map(str, mine - {None})))}): the numbers do not compare")
        compared[other.resolve().name] = records
    metrics["compared_with"] = compared
    (folder / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return compared


# ---------------------------------------------------------------------------------------------------- push
UPLOAD_NAMES = (CONFIG_NAME, WEIGHTS_NAME, LIKELIHOOD_NAME, CARD_NAME, METRICS_NAME, TRAINING_INFO_NAME, MAP_SAMPLE_NAME)
PIPELINE_UPLOAD_NAMES = (PIPELINE_INDEX_NAME,
                         *(f"{c}/{n}" for c, names in PIPELINE_COMPONENT_FILES.items() for n in names),
                         CARD_NAME, METRICS_NAME, TRAINING_INFO_NAME)
# What a Hugging Face token looks like, to refuse uploading a file that holds one (whoever's it is).
_TOKEN_PATTERN = re.compile(rb"\bhf_[A-Za-z0-9]{30,}")
_TEXT_SUFFIXES = (".json", ".md", ".txt", ".py", ".yaml", ".yml", ".cfg", ".toml")


class HubError(RuntimeError):
    """A Hub operation failed or was refused; the message says why and what to do. Nothing local was changed."""


def resolve_token(token: str | None = None) -> str:
    """The token to use: ``token`` if given, else ``HF_TOKEN``, else the login cache (``hf auth login``)."""
    token = token or get_token()
    if not token:
        raise HubError("no Hugging Face token: pass --token, set HF_TOKEN, or log in with `hf auth login`.")
    return token


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
    return [n for n in names if (folder / n).is_file()] + [p.name for p in _figures(folder)]


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
        raise ValueError(f"{folder} holds a {class_name or 'model_index.json without _class_name'}, not a "
                         f"{PIPELINE_CLASS}: vae-hub pushes its own pipelines only")
    for component, needed in PIPELINE_COMPONENT_FILES.items():
        missing = [f"{component}/{name}" for name in needed if not (folder / component / name).is_file()]
        entry = index.get(component)
        if missing or not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(v, str) for v in entry)):
            what = (f"{component}/ is missing" if not (folder / component).is_dir() else
                    f"{', '.join(missing)} missing" if missing else f"{PIPELINE_INDEX_NAME} names no {component}")
            raise ValueError(f"{folder} is not a complete {PIPELINE_CLASS} folder: {what}. A training run saves the "
                             "pipeline when it finishes; push a finished run's output_dir (checkpoints are not "
                             "pipelines).")
    library, vae_class = index["vae"]
    if library.split(".")[0] == PACKAGE:
        if vae_class not in MODEL_CLASSES:
            raise ValueError(f"{folder}: {PIPELINE_INDEX_NAME} names a vae {vae_class!r} that vae-hub does not have")
        check_model_folder(MODEL_CLASSES[vae_class], folder / "vae", use_safetensors=True)
    return index


def push_files(folder, repo_id: str) -> dict[str, bytes | Path]:
    """The exact file set a push of ``folder`` to ``repo_id`` commits: path in the repo → bytes or local file.

    ``upload_file_list(folder)``, with what the repo needs to load without vae-hub installed (see
    ``vae_hub.remote_code``): a model's ``config.json`` gets ``auto_map`` and the generated modeling file goes
    beside it; a pipeline's ``pipeline.py`` is the generated pipeline code, and a vae-hub VAE gets the modeling
    file in ``vae/``, named after the library ``model_index.json`` names for it. A ``README.md`` that vae-hub
    generated for another repo id (or for none) is replaced by a card regenerated for ``repo_id``, a missing one by a
    new card; a hand-written one goes up as it is. Nothing is written to ``folder``.

    Raises:
        ValueError / OSError: ``folder`` is not a saved model or a complete saved pipeline.
    """
    folder = Path(folder)
    files: dict[str, bytes | Path] = {name: folder / name for name in upload_file_list(folder)}
    for name in (TRAINING_INFO_NAME, METRICS_NAME):  # the records, without the paths of the machine that wrote them
        if name in files:
            files[name] = _json_bytes(public_record(_read_json(folder / name)))
    if is_pipeline_folder(folder):
        index = check_pipeline_folder(folder)
        index = {**index, "_class_name": [PIPELINE_LOADER, PIPELINE_CLASS]}
        pipeline_file, *vae_file = pipeline_code_files(index)
        files[pipeline_file] = remote_code.pipeline_code(PIPELINE_CLASS).encode("utf-8")
        if vae_file:
            files[vae_file[0]] = remote_code.model_code(index["vae"][1]).encode("utf-8")
            # the VAE loads on its own too, as a pushed VAE does: AutoModel.from_pretrained(repo, subfolder="vae",
            # trust_remote_code=True) reads auto_map from model_index.json (a repo with one) and the code from vae/
            vae_code = {f"vae/{name}": code for name, code in
                        _with_remote_code(folder / "vae", index["vae"][1], remote_code.MODEL_CODE_FILE).items()}
            files.update(vae_code)
            index["auto_map"] = json.loads(vae_code[f"vae/{CONFIG_NAME}"])["auto_map"]
        files[PIPELINE_INDEX_NAME] = _json_bytes(index)
    elif (cls := model_class(folder)) is AutoencoderKLWithLikelihood:  # diffusers' own class: no code to carry
        check_model_folder(AutoencoderKL, folder, use_safetensors=True)
    else:
        check_model_folder(cls, folder, use_safetensors=True)
        files.update(_with_remote_code(folder, cls.__name__, remote_code.MODEL_CODE_FILE))
    card = _card_for_push(folder, repo_id)
    if card is not None:
        files[CARD_NAME] = card
    return files


def pipeline_code_files(index: dict) -> list[str]:
    """The code files a pushed pipeline carries: ``pipeline.py``, then ``vae/<library>.py`` for a vae-hub VAE
    (diffusers resolves a component ``["<library>", Class]`` to that file; a diffusers VAE needs none)."""
    library = index["vae"][0]
    return [remote_code.PIPELINE_CODE_FILE] + ([f"vae/{library}.py"] if library.split(".")[0] == PACKAGE else [])


def _with_remote_code(folder: Path, class_name: str, code_file: str) -> dict[str, bytes]:
    """A model's ``config.json`` with ``auto_map`` pointing at ``code_file``, and that generated file."""
    config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    config["auto_map"] = {remote_code.AUTO_CLASS: f"{Path(code_file).stem}.{class_name}"}
    return {CONFIG_NAME: _json_bytes(config), code_file: remote_code.model_code(class_name).encode("utf-8")}


def _json_bytes(data: dict) -> bytes:
    """JSON as diffusers writes its configs (indent 2, sorted keys, final newline)."""
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_push_files(folder, repo_id: str, out_dir) -> list[str]:
    """A dry run of ``push_to_hub``: write into ``out_dir`` exactly the files (names and bytes) the commit would
    upload, and upload nothing (no token needed). Returns their paths in the repo.

    ``out_dir`` must not exist or be empty, so that it holds the commit and nothing else. The same checks run as
    for a push (a file holding a token is refused), before anything is written.
    """
    _check_repo_id(repo_id)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise HubError(f"--dry-run {out_dir}: not an empty folder; give a new or empty one, so that it holds exactly "
                       "what the commit would upload.")
    files = push_files(folder, repo_id)
    _refuse_tokens(files, token=get_token())
    for path_in_repo, content in files.items():
        target = out_dir / path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.read_bytes())
    return list(files)


def push_to_hub(
    folder,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    api: HfApi | None = None,
) -> str:
    """Upload a saved model or pipeline folder to the Hub model repo ``repo_id`` in one commit; return its URL.

    Creates the repo if needed (``private`` for a new repo) and, with ``revision``, the branch. The files are
    ``push_files(folder, repo_id)`` (``write_push_files`` writes them locally instead). Nothing is written to
    ``folder``.

    Raises:
        HubError: no token; a file to upload holds a token; ``private`` but the existing repo is public;
            offline, unauthorised, forbidden, or a name clash on the Hub.
        ValueError / OSError: ``folder`` is not a saved ``VAEModel``/``SpatialVAEModel`` or a complete
            ``LatentDiffusionPipeline`` — checked before any Hub call.
    """
    folder = Path(folder)
    _check_repo_id(repo_id)
    files = push_files(folder, repo_id)
    token = resolve_token(token)
    _refuse_tokens(files, token)
    operations = _add_operations(files)
    what = PIPELINE_CLASS if is_pipeline_folder(folder) else model_class(folder).__name__
    api = api or HfApi()
    with _hub_errors(repo_id, "model"):
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True, token=token)
        _refuse_public(api, repo_id, "model", private, token)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True, token=token)
        commit = api.create_commit(
            repo_id, operations, repo_type="model", revision=revision, token=token,
            commit_message=commit_message or f"Upload {what} from {folder.resolve().name} with vae-hub",
        )
    return commit.commit_url


def _card_for_push(folder: Path, repo_id: str) -> bytes | None:
    """The card to upload instead of ``folder/README.md``, or ``None`` to upload that file as it is.

    A hand-written README (no vae-hub marker) or one generated for ``repo_id`` goes up unchanged; a card
    generated for another id or none is regenerated for ``repo_id`` (keeping its dataset link), so the snippet
    on the Hub loads the right repo.
    """
    path = folder / CARD_NAME
    dataset_id = None
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        marker = _CARD_MARKER.search(text)
        if marker is None or marker.group(1) == repo_id:
            return None
        datasets = ModelCard(text).data.datasets
        dataset_id = datasets[0] if datasets else None
    return str(build_card(folder, repo_id, dataset_id=dataset_id)).encode("utf-8")


def _refuse_tokens(contents: dict[str, bytes | Path], token: str | None) -> None:
    """Refuse to publish any content that holds ``token`` or anything that looks like a Hugging Face token."""
    for path_in_repo, content in contents.items():
        data = content if isinstance(content, bytes) else content.read_bytes()
        looks_like_one = path_in_repo.endswith(_TEXT_SUFFIXES) and _TOKEN_PATTERN.search(data)
        if (token and token.encode() in data) or looks_like_one:
            raise HubError(f"{path_in_repo} contains a Hugging Face token: refusing to upload it. Remove the token "
                           "from the file (tokens belong in HF_TOKEN or the login cache) and retry.")


def _add_operations(files: dict[str, bytes | Path]) -> list[CommitOperationAdd]:
    return [CommitOperationAdd(path_in_repo=p, path_or_fileobj=c if isinstance(c, bytes) else str(c))
            for p, c in files.items()]


def _check_repo_id(repo_id: str) -> None:
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise HubError(f"invalid repo id {repo_id!r}: {err}") from None
    if "/" not in repo_id:
        raise HubError(f"invalid repo id {repo_id!r}: expected ORG/NAME (your user name or an organisation, then the name).")


def _refuse_public(api: HfApi, repo_id: str, repo_type: str, private: bool, token: str) -> None:
    """``create_repo(private=True)`` leaves an existing public repo public: check, and refuse to publish."""
    if private and not api.repo_info(repo_id, repo_type=repo_type, token=token).private:
        raise HubError(f"{repo_id} already exists and is public: refusing a private upload into it. Make it private "
                       f"in its settings on the Hub, or choose another repo id.")


@contextmanager
def _hub_errors(repo_id: str, repo_type: str) -> Iterator[None]:
    """Turn the Hub's failures into one ``HubError`` saying what happened and what to do."""
    what = f"the Space {repo_id}" if repo_type == "space" else repo_id
    try:
        yield
    except (OfflineModeIsEnabled, httpx2.TransportError) as err:
        raise HubError(f"cannot reach the Hugging Face Hub ({type(err).__name__}: {err}). Check the network "
                       "connection and that HF_HUB_OFFLINE is not set, then retry. Nothing was uploaded.") from err
    except HfHubHTTPError as err:
        status = err.response.status_code
        reason = {
            401: "unauthorised: the Hub rejected the token (from --token, HF_TOKEN or the login cache). Log in "
                 "again with `hf auth login` or pass a valid token with write access",
            403: f"forbidden: the token may not write to {what} (a namespace you cannot write to, or a read-only "
                 "token)",
            404: f"{what} was not found, or the token cannot see it",
            409: f"name clash: {what} conflicts with an existing repository, branch or operation",
        }.get(status, f"the Hub refused the request for {what} (HTTP {status})")
        detail = f" Hub says: {err.server_message}" if err.server_message else ""
        raise HubError(f"{reason}.{detail} Nothing was uploaded.") from err


# ---------------------------------------------------------------------------------------------------- Space
SPACE_CONFIG_NAME = "space_config.json"  # {"model_id": id | null}, read by vae_hub.explore.default_model_ids
SPACE_APP = "app.py"
SPACE_REQUIREMENTS = "requirements.txt"
SPACE_EXAMPLES = "examples"
SPACE_MODELS = "models"
SPACE_CARD_DEFAULTS = {  # front matter the Space's own README.md may override
    "title": "VAE Hub",
    "emoji": "🧥",
    "colorFrom": "indigo",
    "colorTo": "pink",
    "short_description": "Sample, encode and interpolate with a variational autoencoder",
    "license": LICENSE,
    "pinned": False,
}
SPACE_CARD_BODY = """
# VAE Hub

Sample new images from a variational autoencoder, encode your own images and walk through its latent space.
{% if model_id %}The model is [{{ model_id }}](https://huggingface.co/{{ model_id }}).{% else %}The models ship with the Space (`models/`).{% endif %}
Built with [vae-hub](https://huggingface.co/models?other=vae-hub): diffusers' model format, 🤗 Accelerate training,
Gradio.
"""


def space_upload_files(space_dir=None, *, model_id: str | None = None) -> dict[str, bytes | Path]:
    """The exact file set of a Space deploy: path in the Space → bytes or the local file to upload.

    * from ``space_dir`` (default: the project's ``space/``): ``app.py``, ``examples/**`` and, without
      ``model_id``, each shipped model or pipeline under ``models/<name>/`` (its ``upload_file_list``: no
      checkpoints; a pipeline must be complete);
    * ``requirements.txt``: the Space's own, without a requirement on vae-hub itself (not on any index);
    * ``vae_hub/**/*.py``: this package's source (subpackages too), so that ``import vae_hub`` works in the Space;
    * ``space_config.json``: ``{"model_id": model_id}``, which the app offers first (``vae_hub.explore``) —
      always written, so a redeploy without ``model_id`` switches the Space back to its shipped models;
    * ``README.md``: the Space card — front matter (title, emoji, colours, ``sdk: gradio``, ``sdk_version`` = the
      installed gradio, ``python_version``, ``app_file``, ``models: [model_id]``, license) and a short body.
    """
    space_dir = Path(space_dir) if space_dir is not None else SPACE_DIR
    if not (space_dir / SPACE_APP).is_file():
        raise HubError(f"{space_dir} has no {SPACE_APP}: not a Space folder (pass --space-dir).")
    files: dict[str, bytes | Path] = {SPACE_APP: space_dir / SPACE_APP}
    files.update(_tree(space_dir / SPACE_EXAMPLES, SPACE_EXAMPLES))
    if model_id is None:
        shipped = space_dir / SPACE_MODELS
        models = sorted({p.parent for name in (CONFIG_NAME, PIPELINE_INDEX_NAME) for p in shipped.glob(f"*/{name}")})
        if not models:
            raise HubError(f"no shipped models under {shipped}: train them first, or pass "
                           "--model-id to make the Space load a model from the Hub.")
        from .text_to_image_card import upload_files as text_to_image_files  # it imports this module

        for model in models:
            index = _read_json(model / PIPELINE_INDEX_NAME) if is_pipeline_folder(model) else None
            if index is None and "_class_name" not in _read_json(model / CONFIG_NAME):
                continue  # not a diffusers model (the measuring mini CLIP): the Space does not show it
            if index is not None and index.get("_class_name") == "StableDiffusionPipeline":  # a plain diffusers one
                names = text_to_image_files(model)
            else:
                if index is not None:
                    check_pipeline_folder(model)  # a half-trained pipeline would break the Space at start
                names = upload_file_list(model)
            files.update({f"{SPACE_MODELS}/{model.name}/{name}": model / name for name in names})
    package = Path(__file__).resolve().parent
    files.update({f"vae_hub/{p.relative_to(package).as_posix()}": p for p in sorted(package.rglob("*.py"))})
    files[SPACE_REQUIREMENTS] = _space_requirements(space_dir / SPACE_REQUIREMENTS).encode("utf-8")
    files[SPACE_CONFIG_NAME] = (json.dumps({"model_id": model_id}, indent=2) + "\n").encode("utf-8")
    files[CARD_NAME] = str(_space_card(space_dir / CARD_NAME, model_id)).encode("utf-8")
    return files


def deploy_space(
    space_id: str,
    *,
    model_id: str | None = None,
    private: bool = False,
    token: str | None = None,
    api: HfApi | None = None,
    space_dir=None,
) -> str:
    """Create or update the Gradio Space ``space_id`` with ``space_upload_files`` in one commit; return its URL.

    With ``model_id`` the Space loads that Hub model (``space_config.json``, ``models:`` in its card) and ships no
    weights; without, it ships the models under ``space_dir/models``. The same commit deletes the Space's files
    that are not in the new set (an old ``models/`` folder, a module ``vae_hub`` no longer has), so the Space
    holds exactly what was tested. Errors as for ``push_to_hub``.
    """
    _check_repo_id(space_id)
    if model_id is not None:
        _check_repo_id(model_id)
    token = resolve_token(token)
    files = space_upload_files(space_dir, model_id=model_id)
    _refuse_tokens(files, token)
    operations = _add_operations(files)
    api = api or HfApi()
    with _hub_errors(space_id, "space"):
        api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True, token=token)
        _refuse_public(api, space_id, "space", private, token)
        uploaded = {op.path_in_repo for op in operations}
        stale = [CommitOperationDelete(path_in_repo=path)
                 for path in api.list_repo_files(space_id, repo_type="space", token=token)
                 if path not in uploaded and path != ".gitattributes"]
        commit = api.create_commit(
            space_id, operations + stale, repo_type="space", token=token,
            commit_message=f"Deploy the vae-hub Space ({model_id or 'shipped models'})",
        )
    return commit.commit_url


def _tree(folder: Path, prefix: str) -> dict[str, Path]:
    """Every file under ``folder`` (recursively, skipping hidden files and caches) as ``prefix/relative path``."""
    return {
        f"{prefix}/{p.relative_to(folder).as_posix()}": p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts)
    }


def _space_requirements(path: Path) -> str:
    """The Space's requirements without vae-hub itself (its source is uploaded instead; it is on no index).

    A gradio pin must match the ``sdk_version`` the card declares (the installed gradio), or the Space would run
    another gradio than the one tested.
    """
    if not path.is_file():
        raise HubError(f"{path} is missing: the Space needs its requirements.")
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec.startswith(("-e", ".", "/")) or _requirement_name(spec) == PROJECT_TAG:
            continue  # vae-hub itself, by name or as a local install
        if _requirement_name(spec) == "gradio" and not Requirement(spec).specifier.contains(metadata.version("gradio")):
            raise HubError(f"{path} asks for {spec} but the installed gradio (the Space's sdk_version) is "
                           f"{metadata.version('gradio')}: make them agree.")
        kept.append(line)
    return "\n".join(kept).strip() + "\n"


def _requirement_name(spec: str) -> str | None:
    try:
        return canonicalize_name(Requirement(spec).name) if spec else None
    except InvalidRequirement:
        return None


def _space_card(path: Path, model_id: str | None) -> SpaceCard:
    """The Space's README: its own (if ``space/README.md`` exists) or a default, with the deploy's front matter."""
    if path.is_file():
        card = SpaceCard.load(path)
    else:
        card = SpaceCard.from_template(SpaceCardData(), template_str="---\n{{ card_data }}\n---\n" + SPACE_CARD_BODY,
                                       model_id=model_id)
    data = card.data
    for key, value in SPACE_CARD_DEFAULTS.items():
        if data.get(key) is None:
            data[key] = value
    data.sdk, data.sdk_version, data.app_file = "gradio", metadata.version("gradio"), SPACE_APP
    data.python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    data.models = [model_id] if model_id else None
    data.tags = sorted(set(data.tags or []) | {PROJECT_TAG, "vae"})
    return card
