"""A latent diffusion pipeline sampled and watched step by step, and the measured sample quality that /compare
shows."""

import inspect
import math
import re
from collections.abc import Iterator

import torch

from ..markdown import table_row
from ..pipelines import LatentDiffusionPipeline
from ..pipelines.schedulers import SCHEDULERS, build_scheduler
from ..space_models import InputError, clip
from .checks import ANY_CLASS, PREVIEWS, check_choice
from .entry import ModelEntry
from .streaming import watch


def pipeline_defaults(pipe: LatentDiffusionPipeline) -> tuple[int, float]:
    """(steps, guidance scale) of the pipeline's ``__call__`` defaults: what ``evaluate_samples`` measures by
    default."""
    parameters = inspect.signature(type(pipe).__call__).parameters
    return parameters["num_inference_steps"].default, float(parameters["guidance_scale"].default)


def class_labels(pipe: LatentDiffusionPipeline, label, n: int, seed: int) -> list[int] | None:
    """The class of each of ``n`` images: ``label`` (a class name, case-insensitive) for all, or for ``ANY_CLASS``
    a random class each, drawn with ``seed``; None for an unconditional pipeline. An ``InputError`` names the
    choices."""
    if pipe.num_classes == 0 and label == ANY_CLASS:
        return None
    if label == ANY_CLASS:
        return torch.randint(pipe.num_classes, (n,), generator=torch.Generator().manual_seed(seed)).tolist()
    try:
        if not isinstance(label, str):
            raise ValueError(label)
        (label_id,) = pipe.get_label_ids(label)
    except ValueError:
        raise InputError(
            f"Class must be one of {', '.join([ANY_CLASS, *pipe.class_names])}; got {clip(label)}."
        ) from None
    return [label_id] * n


def private_copy(pipe: LatentDiffusionPipeline, scheduler: str | None) -> LatentDiffusionPipeline:
    """A pipeline for one request: the shared VAE and UNet (read only), its own ``scheduler`` (one of
    ``SCHEDULERS``, or None for the pipeline's own class; configured from the pipeline's) and its own sampling
    state, so concurrent requests never meet."""
    if scheduler is None:
        own_scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    else:
        own_scheduler = build_scheduler(check_choice(scheduler, "Scheduler", tuple(SCHEDULERS)), pipe.scheduler.config)
    own = type(pipe)(pipe.vae, pipe.unet, own_scheduler, id2label=pipe.config.id2label)
    own.set_progress_bar_config(disable=True)
    return own


def denoise(
    pipe: LatentDiffusionPipeline,
    labels: list[int] | None,
    n: int,
    steps: int,
    guidance: float,
    seed: int,
    scheduler: str | None,
    previews: int = PREVIEWS,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Sample with the pipeline's own ``__call__`` on a ``private_copy``, watching it: yields (step, images) with the
    decoded x0 prediction (B, C, H, W) in [-1, 1] after every ``steps / previews`` steps, then (steps, the final
    images). ``labels``: one class id per image (``class_labels``), or None for ``n`` unconditional images.

    The sampling runs in a worker thread (``watch``): a consumer that stops early interrupts it at its next step.
    """
    own = private_copy(pipe, scheduler)
    every = math.ceil(steps / previews) if previews else steps + 1

    def sample(hand, stopped) -> tuple[int, torch.Tensor]:
        def on_step(p, i, t, tensors):
            if stopped():
                p._interrupt = True  # the pipeline's documented way to stop (see its __call__)
            elif (i + 1) % every == 0 and i + 1 < steps:
                hand((i + 1, p.decode_latents(tensors["pred_original_sample"]).clamp(-1, 1)))
            return {}

        latents = own(
            labels,
            num_images_per_class=n if labels is None else 1,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=torch.Generator().manual_seed(seed),
            output_type="latent",
            callback_on_step_end=on_step,
            callback_on_step_end_tensor_inputs=["pred_original_sample"],
        ).images
        return steps, own.decode_latents(latents).clamp(-1, 1)

    yield from watch(sample)


def quality_records(entry: "ModelEntry", **setting) -> list[dict]:
    """The model's own measured sample quality (``metrics.json`` "sample_quality", written by ``python -m
    vae_hub.evaluate_samples --record``): the records with a Fréchet distance whose fields match ``setting``
    (e.g. ``kind="vae", prior="mixture"``)."""
    return [r for r in entry.sample_quality if all(r.get(k) == v for k, v in setting.items())]


def quality_record(entry: "ModelEntry", **setting) -> dict | None:
    """Of the ``quality_records`` for ``setting``, the one with the most samples; None if there is none."""
    return max(quality_records(entry, **setting), key=lambda r: r.get("num_samples") or 0, default=None)


def quality_caption(what: str, record: dict | None) -> str:
    """A short caption (a gallery cuts long ones): ``what`` and its measured Fréchet distance (FD, lower is better)
    and, for a class-conditional pipeline, class match; for a text-to-image one, R-precision."""
    if record is None:
        return f"{what} · not measured"
    caption = f"{what} · FD {record['frechet_distance']:.2f}"
    for key, name in (("class_match", "class match"), ("r_precision", "R-precision")):
        if isinstance(record.get(key), float):
            caption += f" · {name} {record[key]:.1%}"
    return caption


COMPARE_NOTE = (
    "Measured by `python -m vae_hub.evaluate_samples --record` and read from each model's `metrics.json`: "
    "the Fréchet distance (FD) between the features a classifier sees in the samples and in real test "
    "images (lower is closer), and how often that classifier sees the class that was asked for (class "
    'match). "not measured": the model has no record for these settings.'
)


def same_data(a: str, b: str) -> bool:
    """Whether two recorded dataset names are the same data: a Hub id and a local copy by its folder's name
    ("zalando-datasets/fashion_mnist", "fashion-mnist") match, case, "-" and "_" aside."""

    def key(name: str) -> str:
        return re.sub(r"[-_\s]", "", name.rsplit("/", 1)[-1].lower())

    return key(a) == key(b)


def different_data_note(vae: "ModelEntry", pipe: "ModelEntry") -> str | None:
    """A line for /compare when the two models' records name different training data (None if same or unknown)."""
    if vae.dataset and pipe.dataset and not same_data(vae.dataset, pipe.dataset):
        return (
            f"**Different training data:** {vae.model_id} was trained on {vae.dataset}, {pipe.model_id} on "
            f"{pipe.dataset}: their samples and numbers do not compare like for like."
        )
    return None


def quality_table(
    rows: list[tuple[str, str, str, dict | None]], score: str = "class_match", note: str = COMPARE_NOTE
) -> str:
    """Markdown: one row per (column, model id, settings, record or None), the full numbers behind the captions;
    ``score``: the records' second number, "class_match" (a classifier's) or "r_precision" (a CLIP's), and ``note``
    says how they were measured."""
    name = {"class_match": "class match", "r_precision": "R-precision"}[score]
    lines = [f"| | model | settings | FD ↓ | {name} ↑ | samples |", "|---|---|---|---|---|---|"]
    for what, model_id, settings, record in rows:
        record = record or {}
        fd, match, count = (record.get(k) for k in ("frechet_distance", score, "num_samples"))
        lines.append(
            table_row(
                what,
                model_id,
                settings,
                f"{fd:.2f}" if fd is not None else "not measured",
                f"{match:.1%}" if isinstance(match, float) else "–",
                f"{count:,}" if isinstance(count, int) else "–",
            )
        )
    return "\n".join(lines + ["", note])
