"""Sample quality of any generator the project ships, measured one way: ``python -m vae_hub.evaluate_samples``.

Two numbers, both in the feature space of the project's own classifier (``vae_hub.classifier``, trained on the
training split by ``training/train_classifier.py``; the shipped one is ``space/models/fashion-mnist-classifier``):

* the **Fréchet distance** between the Gaussians fitted to the features of N generated images and of the held-out
  reference images (FID's formula, in this classifier's features instead of Inception's)::

      FD = ‖μ_g − μ_r‖² + tr(Σ_g) + tr(Σ_r) − 2 tr((Σ_g^½ Σ_r Σ_g^½)^½)        (float64)

  0 for identical statistics; lower is closer to the data. It depends on N (a biased estimator): compare numbers
  with the same N only. Real images that are not the reference images (``--generator_split train``) set the floor.
* for class-conditional generators, the **class match**: the share of samples asked for class k that the classifier
  assigns to class k (class-balanced samples: N/K per class).

Generators are functions ``sample(num_images, class_labels, generator) -> images`` (``SampleFn``): class labels
(num_images,) int64 or None, a ``torch.Generator``, images (num_images, C, H, W) in [-1, 1]. Provided here: a
``VAEModel``'s prior (``vae_source``), a diffusers pipeline such as ``vae_hub.LatentDiffusionPipeline``
(``pipeline_source``), a VAE's reconstructions of real images (``reconstruction_source``, a baseline) and real
images themselves (``images_source``, the floor). Samples are rounded to 8 bits, as an image file would store them,
so generated and reference images take the same path into the classifier.

With ``--clip`` a VAE's prior samples (or reconstructions, or real images) are measured instead in the image features
of a mini CLIP of the data, as a text-to-image pipeline is (``vae_hub.text_to_image_evaluation``), on as many samples
as the held-out split has captions: so a vector VAE and a text-to-image pipeline of the same data compare like for
like (``python -m vae_hub.evaluate_samples --generator VAE --clip CLIP --dataset_name DATA --record``).
"""

import argparse
import inspect
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .classifier import ImageClassifier
from .evaluate import _one_line
from .images import float_to_uint8, uint8_to_float
from .loading import is_pipeline_folder
from .models import PRIORS
from .pipelines.schedulers import SCHEDULERS
from .text_to_image_evaluation import (
    FD_TIE,
    RECOMMENDED_KEY,
    default_setting,
    evaluate_text_to_image,
    is_text_to_image_folder,
    read_recommended,
    recommend,
)
from .text_to_image_evaluation import RULE as TEXT_TO_IMAGE_RULE
from .text_to_image_evaluation import Setting as TextToImageSetting


SampleFn = Callable[[int, torch.Tensor | None, torch.Generator], torch.Tensor]
SHIPPED_CLASSIFIER = "space/models/fashion-mnist-classifier"  # in the repository; recorded by this name
# A classifier that gets fewer of the labelled reference images right than this does not know that data: its
# features and class match would be confident nonsense (Fashion-MNIST's classifier on MNIST digits: 9 %).
MIN_REFERENCE_ACCURACY = 0.5
FIT_A_CLASSIFIER = (
    "train one on this dataset with training/train_classifier.py and pass its folder with --classifier "
    f"(the default is Fashion-MNIST's, {SHIPPED_CLASSIFIER})"
)
SHIPPED_CLASSIFIER_PATH = str(Path(__file__).resolve().parents[1] / SHIPPED_CLASSIFIER)
METRICS_FILE = "metrics.json"
RECORD_KEY = "sample_quality"
DEFAULT_NUM_SAMPLES = 10_000  # a record measured on another N says so in its key: FD depends on N
# The rule that picks a class-conditional pipeline's recommended setting among its recorded ones (the card quotes it):
# the class match guards against samples of the wrong class, FD against the least varied samples that strong guidance
# gives; FDs closer than FD_TIE are a tie (the 25- and 20-step FDs of one guidance differ by about that), and a tie
# goes to the faster setting.
MIN_CLASS_MATCH = 0.95
CLASS_CONDITIONAL_RULE = (
    f"the lowest Fréchet distance among the settings measured on as many samples whose class "
    f"match is at least {MIN_CLASS_MATCH:.0%}; Fréchet distances within {FD_TIE} of it are a tie, "
    "which fewer steps win"
)


@dataclass
class SampleSource:
    """A generator under evaluation.

    Attributes:
        sample: the ``SampleFn``.
        class_names: the classes it can be asked for, by label id; None for an unconditional generator.
        setting: how it was configured (kind, prior, steps, ...), recorded with the numbers.
    """

    sample: SampleFn
    class_names: list[str] | None = None
    setting: dict = field(default_factory=dict)


@dataclass
class FeatureStatistics:
    """Mean (F,) and covariance (F, F) of N feature vectors, float64."""

    mean: torch.Tensor
    covariance: torch.Tensor
    count: int

    @classmethod
    def of(cls, features: torch.Tensor) -> "FeatureStatistics":
        """Statistics of features (N, F), N ≥ 2 (unbiased covariance)."""
        features = features.double()
        return cls(features.mean(0), torch.cov(features.T).reshape(features.shape[1], -1), len(features))


def frechet_distance(a: FeatureStatistics, b: FeatureStatistics) -> float:
    """Fréchet (2-Wasserstein²) distance between N(a.mean, a.covariance) and N(b.mean, b.covariance).

    tr((Σ_a Σ_b)^½) is computed as tr((Σ_a^½ Σ_b Σ_a^½)^½): the same eigenvalues, but of a symmetric positive
    semi-definite matrix, so two symmetric eigen-decompositions do it exactly (no complex square roots, and
    singular covariances — fewer samples than features, dead units — need no regularisation).
    """
    values, vectors = torch.linalg.eigh(a.covariance.double())
    root_a = (vectors * values.clamp(min=0).sqrt()) @ vectors.T
    middle = root_a @ b.covariance.double() @ root_a
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    mean_term = (a.mean.double() - b.mean.double()).pow(2).sum()
    return (mean_term + a.covariance.trace() + b.covariance.trace() - 2 * trace_root).item()


# ---------------------------------------------------------------------------------------------- generators
def vae_source(vae, prior: str = "standard") -> SampleSource:
    """Samples of a ``VAEModel``: z from its ``prior`` ("standard" N(0, I) or its fitted "mixture"), decoded."""
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
    if prior == "mixture" and vae.config.prior_components == 0:
        raise ValueError("this VAE has no mixture prior (prior_components is 0): use the standard prior")

    def sample(num_images: int, class_labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        return vae.generate(num_images, generator=generator, prior=prior)

    return SampleSource(sample, None, {"kind": "vae", "prior": prior})


def pipeline_source(pipe, num_inference_steps: int | None = None, guidance_scale: float | None = None) -> SampleSource:
    """Samples of a class-conditional diffusers pipeline called as ``vae_hub.LatentDiffusionPipeline`` is.

    ``pipe(class_labels=[...], num_images_per_class=1, generator=..., output_type="pt")`` gives one image per
    label, in order, in [0, 1]; they are mapped to [-1, 1]. ``pipe.class_names`` (empty or absent:
    unconditional) names its classes. Steps and guidance left as None are the defaults of ``pipe.__call__``,
    recorded as such.
    """
    defaults = inspect.signature(pipe.__call__).parameters
    options = {}
    for name, value in (("num_inference_steps", num_inference_steps), ("guidance_scale", guidance_scale)):
        if value is None and name in defaults and defaults[name].default is not inspect.Parameter.empty:
            value = defaults[name].default
        if value is not None:
            options[name] = value
    class_names = list(getattr(pipe, "class_names", None) or []) or None

    def sample(num_images: int, class_labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        if class_labels is None:
            out = pipe(
                class_labels=None, num_images_per_class=num_images, generator=generator, output_type="pt", **options
            )
        else:
            out = pipe(
                class_labels=class_labels.tolist(),
                num_images_per_class=1,
                generator=generator,
                output_type="pt",
                **options,
            )
        return out.images * 2 - 1

    return SampleSource(sample, class_names, {"kind": "pipeline", **options})


def _without_replacement(num_available: int) -> Callable[[int, torch.Generator], torch.Tensor]:
    """``take(n, generator)``: the next n indices of one random order of range(num_available), drawn on first use."""
    state = {"order": None, "next": 0}

    def take(n: int, generator: torch.Generator) -> torch.Tensor:
        if state["order"] is None:
            state["order"] = torch.randperm(num_available, generator=generator)
        start = state["next"]
        if start + n > num_available:
            raise ValueError(f"asked for more images than the {num_available} available")
        state["next"] = start + n
        return state["order"][start : start + n]

    return take


def images_source(images: torch.Tensor) -> SampleSource:
    """Real uint8 images (N, C, H, W) as a generator: a random subset without replacement (the floor)."""
    take = _without_replacement(len(images))

    def sample(num_images: int, class_labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        return uint8_to_float(images[take(num_images, generator)])

    return SampleSource(sample, None, {"kind": "real images"})


def reconstruction_source(vae, images: torch.Tensor) -> SampleSource:
    """A VAE's reconstructions decode(E[z | x]) of random real uint8 images (N, C, H, W), without replacement.

    The decoder given the codes of real images: what its samples could look like with a perfect prior (or, for a
    ``SpatialVAEModel``, with a perfect diffusion model on its latents). Any model with ``AutoencoderKL``'s
    ``encode(x).latent_dist`` and ``decode(z).sample`` works.
    """
    take = _without_replacement(len(images))

    def sample(num_images: int, class_labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        x = uint8_to_float(images[take(num_images, generator)]).to(vae.device, vae.dtype)
        return vae.decode(vae.encode(x).latent_dist.mean).sample

    return SampleSource(sample, None, {"kind": "vae reconstructions"})


# ---------------------------------------------------------------------------------------------- measuring
@dataclass
class ClassifiedFeatures:
    """Classifier features (N, F) float64 and predicted class ids (N,) of a set of images."""

    features: torch.Tensor
    predictions: torch.Tensor


def classify(classifier: ImageClassifier, x: torch.Tensor) -> ClassifiedFeatures:
    """Features and predicted classes of float images (B, C, H, W) in [-1, 1], after rounding them to 8 bits."""
    x = uint8_to_float(float_to_uint8(x)).to(classifier.device, classifier.dtype)
    features = classifier.features(x)
    return ClassifiedFeatures(features.double().cpu(), classifier.head(features).argmax(1).cpu())


def classify_images(
    classifier: ImageClassifier, images: torch.Tensor, batch_size: int, progress: bool = True
) -> ClassifiedFeatures:
    """``classify`` uint8 images (N, C, H, W) in batches."""
    parts = [
        classify(classifier, uint8_to_float(batch))
        for batch in tqdm(images.split(batch_size), desc="reference features", disable=not progress)
    ]
    return ClassifiedFeatures(torch.cat([p.features for p in parts]), torch.cat([p.predictions for p in parts]))


def class_shares(predictions: torch.Tensor, names: list[str]) -> dict[str, float]:
    """Share of each class among predicted ids (N,), by name."""
    counts = torch.bincount(predictions, minlength=len(names)).double() / len(predictions)
    return dict(zip(names, counts.tolist()))


@torch.inference_mode()
def evaluate_samples(
    source: SampleSource,
    classifier: ImageClassifier,
    reference: torch.Tensor,
    reference_labels: torch.Tensor | None = None,
    *,
    num_samples: int = 10_000,
    batch_size: int = 500,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Fréchet distance of ``num_samples`` samples of ``source`` to uint8 ``reference`` images, and class match.

    Args:
        source: the generator; a class-conditional one is asked for ``num_samples`` class-balanced samples
            (labels 0, 1, ..., K−1, 0, 1, ... so every batch holds every class).
        classifier: feature network; its classes must be the source's (same number, same names).
        reference: held-out real images, uint8 (M, C, H, W) with the classifier's C, H, W; M ≥ 2.
        reference_labels: their class ids (M,), to report the classifier's accuracy on them; may be None.
        num_samples: N ≥ 2; batch_size: images per generator call; seed: seeds the one ``torch.Generator``
            every call draws from: same seed and batch size, same numbers.

    Returns:
        the ``metrics_samples.json`` dict: ``frechet_distance``, ``class_match`` (None if unconditional),
        ``class_match_per_class``, ``predicted_class_shares``, the counts, the seed, ``feature_dim``,
        ``classifier_accuracy_on_reference`` and ``samples_per_second``.
    """
    config = classifier.config
    expected = (config.in_channels, config.sample_size, config.sample_size)
    if (
        reference.dtype != torch.uint8
        or reference.ndim != 4
        or tuple(reference.shape[1:]) != expected
        or len(reference) < 2
    ):
        raise ValueError(
            f"reference images must be uint8 (M >= 2, {', '.join(map(str, expected))}), "
            f"got {reference.dtype} {tuple(reference.shape)}"
        )
    if num_samples < 2 or batch_size < 1:
        raise ValueError(f"num_samples must be >= 2 and batch_size >= 1, got {num_samples} and {batch_size}")
    names = classifier.label_names
    check_classes(source.class_names, names)

    was_training = classifier.training
    classifier.eval()
    try:
        real = classify_images(classifier, reference, batch_size, progress)
        accuracy = None
        if reference_labels is not None:
            accuracy = (real.predictions == reference_labels.cpu()).double().mean().item()
            if accuracy < MIN_REFERENCE_ACCURACY:
                raise ValueError(
                    f"the classifier does not fit the reference images: it classifies {accuracy:.1%} of "
                    f"them right, below {MIN_REFERENCE_ACCURACY:.0%}; {FIT_A_CLASSIFIER}"
                )
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(seed)  # CPU: the same draws on every device
        labels = torch.arange(num_samples) % len(names) if source.class_names else None
        parts = []
        with tqdm(total=num_samples, desc="samples", unit="img", disable=not progress) as bar:
            for begin in range(0, num_samples, batch_size):
                n = min(batch_size, num_samples - begin)
                images = source.sample(n, None if labels is None else labels[begin : begin + n], generator)
                check_samples(images, n, expected)
                parts.append(classify(classifier, images))
                bar.update(n)
        seconds = time.perf_counter() - start
    finally:
        classifier.train(was_training)

    fake = ClassifiedFeatures(torch.cat([p.features for p in parts]), torch.cat([p.predictions for p in parts]))
    match = per_class = None
    if labels is not None:
        hits = fake.predictions == labels
        match = hits.double().mean().item()
        per_class = {
            name: hits[labels == k].double().mean().item() for k, name in enumerate(names) if (labels == k).any()
        }
    return {
        **source.setting,
        "num_samples": num_samples,
        "class_balanced": labels is not None,
        "num_reference_images": len(reference),
        "seed": seed,
        "batch_size": batch_size,
        "feature_dim": fake.features.shape[1],
        "frechet_distance": frechet_distance(FeatureStatistics.of(fake.features), FeatureStatistics.of(real.features)),
        "class_match": match,
        "class_match_per_class": per_class,
        "predicted_class_shares": class_shares(fake.predictions, names),
        "classifier_accuracy_on_reference": accuracy,
        "samples_per_second": num_samples / seconds,
    }


def check_classes(names: list[str] | None, classifier_names: list[str], whose: str = "the generator") -> None:
    """A class-conditional generator (or a labelled reference split, ``whose``) must have the classifier's classes,
    by name (case aside): "0"–"9" are MNIST's digits, not ten unnamed classes of any data."""
    if names is None:
        return
    if len(names) != len(classifier_names):
        raise ValueError(
            f"{whose} has {len(names)} classes, the classifier {len(classifier_names)}: "
            f"the classifier does not fit; {FIT_A_CLASSIFIER}"
        )
    if [n.casefold() for n in names] != [n.casefold() for n in classifier_names]:
        raise ValueError(
            f"{whose}'s classes {names} are not the classifier's {classifier_names}: "
            f"the classifier does not fit; {FIT_A_CLASSIFIER}"
        )


def check_samples(images, n: int, expected: tuple[int, int, int]) -> None:
    """Generated images must be a finite float tensor (n, C, H, W) of the measuring network's shape."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or tuple(images.shape) != (n, *expected):
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(
            f"the generator made {got} images, the measuring network takes float ({n}, "
            f"{', '.join(map(str, expected))}): they must agree on channels and size"
        )
    if not torch.isfinite(images).all():
        raise ValueError("the generator made images with NaN or infinite values")


# ---------------------------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vae_hub.evaluate_samples",
        allow_abbrev=False,
        description="Sample quality of a generator: Fréchet distance to held-out images in the project "
        "classifier's features, and the class match of class-conditional samples.",
    )
    parser.add_argument(
        "--generator",
        required=True,
        help="a VAEModel (or, with --reconstruct_split, SpatialVAEModel) folder or repo id, a diffusion "
        "pipeline folder (model_index.json), or with "
        "--generator_split a dataset whose real images are the samples (the floor)",
    )
    parser.add_argument(
        "--prior", default=None, choices=PRIORS, help="VAE only: the prior to sample (default standard)"
    )
    parser.add_argument(
        "--reconstruct_split",
        default=None,
        help="VAE only: measure its reconstructions of this split of --dataset_name instead of samples",
    )
    parser.add_argument("--generator_split", default=None, help="--generator is a dataset: its images of this split")
    parser.add_argument("--num_inference_steps", type=int, default=None, help="pipeline only (default: its own)")
    parser.add_argument("--guidance_scale", type=float, default=None, help="pipeline only (default: its own)")
    parser.add_argument("--classifier", default=None, help=f"ImageClassifier folder (default: {SHIPPED_CLASSIFIER})")
    t2i = parser.add_argument_group("text-to-image pipelines (a StableDiffusionPipeline folder)")
    t2i.add_argument(
        "--clip",
        default=None,
        help="the measuring mini CLIP folder (training/train_clip.py on the same data); required",
    )
    t2i.add_argument("--caption_column", default="text", help="the captions of --split, one sample each")
    t2i.add_argument(
        "--scheduler",
        default=None,
        choices=tuple(SCHEDULERS),
        help="default: the folder's recommended one, else its own",
    )
    parser.add_argument("--dataset_name", required=True, help="Hub dataset id or local folder: the reference images")
    parser.add_argument("--dataset_config_name", default=None)
    parser.add_argument("--split", default="test", help="the held-out reference split")
    parser.add_argument("--image_column", default=None, help="default: the first image column")
    parser.add_argument(
        "--num_samples",
        type=int,
        default=None,
        help="default 10,000, class-balanced for class-conditional generators; text-to-image: one per "
        "caption of --split, all of them by default (or its first N)",
    )
    parser.add_argument("--batch_size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--output", default=None, help="also write the result JSON to this file")
    parser.add_argument(
        "--record",
        action="store_true",
        help=f"merge the result into the generator folder's {METRICS_FILE} under "
        f"{RECORD_KEY!r} (keyed by the setting: standard_prior, mixture_prior, ...)",
    )
    parser.add_argument(
        "--recommend",
        action="store_true",
        help=f"pipelines, with --record: choose the recommended setting among the recorded ones and "
        f"write it into {METRICS_FILE} (text to image: {TEXT_TO_IMAGE_RULE}; class-conditional: "
        f"{CLASS_CONDITIONAL_RULE})",
    )
    parser.add_argument("--cache_dir", default=None)
    return parser


def record_key(setting: dict) -> str:
    """The name of a generator setting inside ``sample_quality``: "standard_prior", "steps_25_guidance_3", ..."""
    clip = "_clip" if setting.get("clip") else ""  # a CLIP's numbers are not a classifier's: both may be recorded
    if setting["kind"] == "vae":
        return f"{setting['prior']}_prior{clip}"
    if setting["kind"] == "vae reconstructions":
        return f"reconstructions_{setting['images_split']}{clip}"
    parts = [
        f"{name}_{setting[key]:g}"
        for name, key in (("steps", "num_inference_steps"), ("guidance", "guidance_scale"))
        if key in setting
    ]
    if setting.get("num_samples", DEFAULT_NUM_SAMPLES) != DEFAULT_NUM_SAMPLES:
        parts.append(f"n{setting['num_samples']}")
    return "_".join(parts) or "default"


def recommend_class_conditional(records: dict, num_samples: int) -> dict:
    """The recommended setting of a class-conditional pipeline among its records measured on ``num_samples``
    samples (``sample_quality``'s values), by ``CLASS_CONDITIONAL_RULE``.

    Returns:
        {"num_inference_steps", "guidance_scale", "rule", "chosen_from" (the number of settings), "num_samples"}.

    Raises:
        ValueError: no recorded setting has that many samples and a class match of at least ``MIN_CLASS_MATCH``.
    """
    candidates = [
        r
        for r in records.values()
        if r.get("kind") == "pipeline" and r.get("num_samples") == num_samples and r.get("class_match") is not None
    ]
    eligible = [r for r in candidates if r["class_match"] >= MIN_CLASS_MATCH]
    if not eligible:
        raise ValueError(
            f"none of the {len(candidates)} settings recorded with {num_samples} samples has a class match "
            f"of at least {MIN_CLASS_MATCH:.0%}: record stronger guidance first"
        )
    best = min(r["frechet_distance"] for r in eligible)
    tied = [r for r in eligible if r["frechet_distance"] <= best + FD_TIE]
    chosen = min(tied, key=lambda r: (r["num_inference_steps"], r["frechet_distance"]))
    return {
        "num_inference_steps": chosen["num_inference_steps"],
        "guidance_scale": chosen["guidance_scale"],
        "rule": CLASS_CONDITIONAL_RULE,
        "chosen_from": len(candidates),
        "num_samples": num_samples,
    }


def describe_setting(setting: dict) -> str:
    """A recorded setting in words, for tables: "N(0, I) prior", "reconstructions of train images", "25 steps,
    guidance 4"."""
    if setting.get("kind") == "vae":
        return "N(0, I) prior" if setting.get("prior") == "standard" else f"{setting.get('prior')} prior"
    if setting.get("kind") == "vae reconstructions":
        return f"reconstructions of {setting.get('images_split')} images"
    if setting.get("kind") == "real images":
        return "real images"
    parts = [f"{setting['num_inference_steps']:g} steps"] if "num_inference_steps" in setting else []
    parts += [f"guidance {setting['guidance_scale']:g}"] if "guidance_scale" in setting else []
    return ", ".join(parts) or "default settings"


def read_metrics(folder: str) -> dict:
    """The generator folder's metrics.json as a dict ({} when it has none); ValueError if it is not a JSON object."""
    path = os.path.join(folder, METRICS_FILE)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            metrics = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} cannot be read as JSON ({err}): not overwriting it") from err
    if not isinstance(metrics, dict):
        raise ValueError(f"{path} holds a JSON {type(metrics).__name__}, not an object: not overwriting it")
    return metrics


def write_json_atomically(path: str, data: dict) -> None:
    """Write under a temporary name, then rename: the file is the old one or the new one, never half of one."""
    partial = f"{path}.partial"
    with open(partial, "w") as f:
        f.write(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)


def load_source(
    args: argparse.Namespace, parser: argparse.ArgumentParser, judge: str, image_format: tuple[int, int], device: str
) -> SampleSource:
    """The generator the flags name, loaded and checked against the measuring network (``judge``, "the classifier"
    or "the CLIP", which takes ``image_format`` = (channels, size) images): a parser error on bad input."""
    from .data import load_split

    channels, size = image_format

    def split_images(dataset_name: str, split: str, flag: str) -> torch.Tensor:
        images = load_split(
            dataset_name,
            split,
            image_column=args.image_column,
            resolution=size,
            channels=channels,
            dataset_config_name=args.dataset_config_name,
            cache_dir=args.cache_dir,
        ).images
        if len(images) < args.num_samples:
            parser.error(f"--{flag} {split} has {len(images)} images, fewer than --num_samples {args.num_samples}")
        return images

    is_pipeline = os.path.isfile(os.path.join(args.generator, "model_index.json"))
    pipeline_flags = [f for f in ("num_inference_steps", "guidance_scale") if getattr(args, f) is not None]
    vae_flags = [f for f in ("prior", "reconstruct_split") if getattr(args, f) is not None]
    if args.generator_split:
        if pipeline_flags or vae_flags:
            parser.error(f"--{(pipeline_flags + vae_flags)[0]} does not apply to real images (--generator_split)")
        source = images_source(split_images(args.generator, args.generator_split, "generator_split"))
        source.setting["images_split"] = args.generator_split
        return source
    if is_pipeline:
        if vae_flags:
            parser.error(f"--{vae_flags[0]} is for a VAE; {args.generator} is a diffusion pipeline")
        from .pipelines import LatentDiffusionPipeline

        pipe = LatentDiffusionPipeline.from_pretrained(args.generator).to(device)
        pipe.set_progress_bar_config(disable=True)  # one bar, ours
        return pipeline_source(pipe, args.num_inference_steps, args.guidance_scale)
    if pipeline_flags:
        parser.error(f"--{pipeline_flags[0]} is for a diffusion pipeline; {args.generator} is not one")
    if args.prior and args.reconstruct_split:
        parser.error("--prior and --reconstruct_split exclude each other (reconstructions use no prior)")
    from .models import VAEModel, load_model

    vae = load_model(args.generator, cache_dir=args.cache_dir).to(device).eval()  # a VAEModel or SpatialVAEModel
    made = (vae.config.in_channels, vae.config.sample_size)
    if made != (channels, size):
        parser.error(
            f"--generator makes {made[0]}-channel {made[1]}x{made[1]} images, {judge} takes "
            f"{channels}-channel {size}x{size}: they must agree"
        )
    if args.reconstruct_split:
        source = reconstruction_source(
            vae, split_images(args.dataset_name, args.reconstruct_split, "reconstruct_split")
        )
        source.setting["images_split"] = args.reconstruct_split
        return source
    if not isinstance(vae, VAEModel):
        parser.error(
            f"{args.generator} holds a {type(vae).__name__}, which has no prior to sample: measure its "
            "--reconstruct_split, or a diffusion pipeline built on it"
        )
    return vae_source(vae, args.prior or "standard")


def main(argv: list[str] | None = None) -> dict:
    """Load generator, classifier (or CLIP) and reference split; measure; print the JSON (and write/record it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag in ("num_samples", "batch_size", "num_inference_steps"):
        value = getattr(args, flag)
        if value is not None and value < (2 if flag == "num_samples" else 1):
            parser.error(f"--{flag} must be >= {2 if flag == 'num_samples' else 1}, got {value}")
    if args.output and not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
        parser.error(f"--output {args.output}: its folder does not exist")  # before the work, not after
    if args.record:
        if args.generator_split or not os.path.isdir(args.generator):
            parser.error("--record writes into the generator's folder: --generator must be a local model folder")
        try:
            read_metrics(args.generator)
        except ValueError as err:
            parser.error(_one_line(err))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    text_to_image = not args.generator_split and is_text_to_image_folder(args.generator)
    if text_to_image:
        wrong = [f for f in ("classifier", "prior", "reconstruct_split") if getattr(args, f) is not None]
        why = f"it is for a VAE or a class-conditional pipeline; {args.generator} is a text-to-image pipeline"
    elif args.clip:
        wrong = [f for f in ("classifier", "scheduler", "num_inference_steps", "guidance_scale") if getattr(args, f)]
        why = "with --clip it measures a VAE's prior samples, its reconstructions or real images"
    else:
        wrong = [f for f in ("scheduler",) if getattr(args, f) is not None]
        why = f"it is for a text-to-image pipeline; {args.generator} is not one"
    if wrong:
        parser.error(f"--{wrong[0]}: {why}")
    if args.recommend and (args.generator_split or not is_pipeline_folder(args.generator)):
        parser.error(f"--recommend chooses a pipeline's sampling setting; {args.generator} is not a pipeline folder")
    if args.recommend and not args.record:
        parser.error("--recommend chooses among the recorded settings: add --record")
    if text_to_image:
        try:
            metrics = measure_text_to_image(args, parser, device)
        except (OSError, ValueError) as err:
            parser.error(_one_line(err))
    elif args.clip:
        metrics = measure_with_clip(args, parser, device)
    else:
        metrics = measure_with_classifier(args, parser, device)
    metrics["command"] = shlex.join(
        ["python", "-m", "vae_hub.evaluate_samples", *(sys.argv[1:] if argv is None else argv)]
    )
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    if args.record:
        recorded = read_metrics(args.generator)
        records = recorded.setdefault(RECORD_KEY, {})
        records[metrics.pop("record_key", None) or record_key(metrics)] = metrics
        if args.recommend:
            try:
                recorded[RECOMMENDED_KEY] = (
                    recommend(records)
                    if text_to_image
                    else recommend_class_conditional(records, metrics["num_samples"])
                )
            except ValueError as err:
                parser.error(f"--recommend: {err}")
            print(f"recommended: {json.dumps(recorded[RECOMMENDED_KEY])}")
        write_json_atomically(os.path.join(args.generator, METRICS_FILE), recorded)
    return metrics


def measure_with_classifier(args: argparse.Namespace, parser: argparse.ArgumentParser, device: str) -> dict:
    """The classifier's measures of a VAE, a class-conditional pipeline or real images (see the module's doc)."""
    from .data import load_split

    args.num_samples = args.num_samples or 10_000
    try:
        classifier = ImageClassifier.from_pretrained(
            args.classifier or SHIPPED_CLASSIFIER_PATH, cache_dir=args.cache_dir
        ).to(device)
    except (OSError, ValueError) as err:
        parser.error(f"--classifier {args.classifier or SHIPPED_CLASSIFIER}: {_one_line(err)}")
    try:
        source = load_source(
            args, parser, "the classifier", (classifier.config.in_channels, classifier.config.sample_size), device
        )
        reference = load_split(
            args.dataset_name,
            args.split,
            image_column=args.image_column,
            resolution=classifier.config.sample_size,
            channels=classifier.config.in_channels,
            dataset_config_name=args.dataset_config_name,
            cache_dir=args.cache_dir,
        )
        check_classes(reference.label_names, classifier.label_names, f"--dataset_name {args.dataset_name}")
        metrics = evaluate_samples(
            source,
            classifier,
            reference.images,
            reference.labels,
            num_samples=args.num_samples,
            batch_size=args.batch_size,
            seed=args.seed,
        )
    except (OSError, ValueError) as err:  # a generator that cannot load, a dataset error, a shape mismatch
        parser.error(_one_line(err))
    return {
        "generator": args.generator,
        **metrics,
        "classifier": args.classifier or SHIPPED_CLASSIFIER,
        "dataset": args.dataset_name,
        "split": args.split,
    }


def measure_with_clip(args: argparse.Namespace, parser: argparse.ArgumentParser, device: str) -> dict:
    """A VAE's prior samples (or reconstructions, or real images) in a mini CLIP's image features: the Fréchet
    distance that a text-to-image pipeline of the same data records, so the two stand side by side. N defaults to
    the number of --split images, as a text-to-image pipeline makes one sample per caption."""
    from .data import load_split
    from .mini_clip import MiniClip

    if os.path.isfile(os.path.join(args.generator, "model_index.json")) and not args.generator_split:
        parser.error(
            f"--clip: {args.generator} is a class-conditional pipeline, measured with --classifier (its class "
            "match needs the classifier's classes)"
        )
    try:
        clip = MiniClip.from_pretrained(args.clip)
    except (OSError, ValueError) as err:
        parser.error(f"--clip {args.clip}: {_one_line(err)}")
    clip.model.to(device)
    image_format = (3, clip.image_size)
    try:
        reference = load_split(
            args.dataset_name,
            args.split,
            image_column=args.image_column,
            resolution=clip.image_size,
            channels=3,
            dataset_config_name=args.dataset_config_name,
            cache_dir=args.cache_dir,
        ).images
        args.num_samples = args.num_samples or len(reference)
        source = load_source(args, parser, "the CLIP", image_format, device)
        metrics = clip_features_distance(
            source, clip, reference, num_samples=args.num_samples, batch_size=args.batch_size, seed=args.seed
        )
    except (OSError, ValueError) as err:
        parser.error(_one_line(err))
    return {
        "generator": args.generator,
        **metrics,
        "clip": args.clip,
        "dataset": args.dataset_name,
        "split": args.split,
    }


@torch.inference_mode()
def clip_features_distance(
    source: SampleSource,
    clip,
    reference: torch.Tensor,
    *,
    num_samples: int,
    batch_size: int = 500,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Fréchet distance between a mini CLIP's image features of ``num_samples`` samples of an unconditional
    ``source`` and of uint8 RGB ``reference`` images (M ≥ 2, 3, S, S) at the CLIP's size S; the samples are rounded
    to 8 bits first, as ``evaluate_text_to_image`` rounds a pipeline's. Same seed and batch size, same number."""
    from .text_image_metrics import features_frechet_distance, image_features

    expected = (3, clip.image_size, clip.image_size)
    if reference.dtype != torch.uint8 or tuple(reference.shape[1:]) != expected or len(reference) < 2:
        raise ValueError(
            f"reference images must be uint8 (M >= 2, {', '.join(map(str, expected))}), "
            f"got {reference.dtype} {tuple(reference.shape)}"
        )
    if source.class_names:
        raise ValueError("a class-conditional generator is measured with a classifier, not a CLIP")
    if num_samples < 2 or batch_size < 1:
        raise ValueError(f"num_samples must be >= 2 and batch_size >= 1, got {num_samples} and {batch_size}")
    generator = torch.Generator().manual_seed(seed)  # CPU: the same draws on every device
    start, parts = time.perf_counter(), []
    with tqdm(total=num_samples, desc="samples", unit="img", disable=not progress) as bar:
        for begin in range(0, num_samples, batch_size):
            n = min(batch_size, num_samples - begin)
            images = source.sample(n, None, generator)
            check_samples(images, n, expected)
            parts.append(image_features(clip, float_to_uint8(images.cpu())))
            bar.update(n)
    seconds = time.perf_counter() - start
    fake = torch.cat(parts)
    return {
        **source.setting,
        "num_samples": num_samples,
        "num_reference_images": len(reference),
        "seed": seed,
        "batch_size": batch_size,
        "feature_dim": fake.shape[1],
        "frechet_distance": features_frechet_distance(fake, image_features(clip, reference)),
        "samples_per_second": num_samples / seconds,
    }


def measure_text_to_image(args: argparse.Namespace, parser: argparse.ArgumentParser, device: str) -> dict:
    """``evaluate_text_to_image`` of the pipeline folder, on --split's captions (or its first --num_samples)."""
    from diffusers import DiffusionPipeline

    from .data import DataError, captioned_rows, decode_images, find_image_column, load_image_dataset
    from .mini_clip import MiniClip

    if not args.clip:
        parser.error(
            "a text-to-image pipeline is measured with a mini CLIP of its data: pass --clip FOLDER "
            "(training/train_clip.py)"
        )
    clip = MiniClip.from_pretrained(args.clip)
    clip.model.to(device)
    pipe = DiffusionPipeline.from_pretrained(args.generator).to(device)
    base = read_recommended(args.generator)
    if base is None:  # StableDiffusionPipeline.__call__'s own defaults
        base = TextToImageSetting(args.scheduler, 50, 7.5) if args.scheduler else default_setting(pipe)
    setting = TextToImageSetting(
        args.scheduler or base.scheduler,
        args.num_inference_steps or base.num_inference_steps,
        base.guidance_scale if args.guidance_scale is None else args.guidance_scale,
    )
    dataset = load_image_dataset(args.dataset_name, args.dataset_config_name, cache_dir=args.cache_dir)
    for split in (args.split, "train"):
        if split not in dataset:
            raise DataError(f"dataset {args.dataset_name!r} has no split {split!r}; its splits are {list(dataset)}")
    rows, captions, dropped = captioned_rows(dataset[args.split], args.caption_column)
    if args.num_samples:
        if args.num_samples > len(captions):
            parser.error(f"--num_samples {args.num_samples} is more than the {len(captions)} captions of {args.split}")
        rows, captions = rows.select(range(args.num_samples)), captions[: args.num_samples]
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    column = find_image_column(rows, args.image_column)
    reference = decode_images(rows, column, size, 3, None, f"decoding {args.split}", True).images
    train = dataset["train"]
    train = train.shuffle(seed=args.seed).select(range(min(len(train), len(captions))))
    train_images = decode_images(
        train, find_image_column(train, args.image_column), size, 3, None, "decoding train", True
    ).images
    metrics = evaluate_text_to_image(
        pipe, clip, reference, captions, train_images, setting, seed=args.seed, batch_size=min(args.batch_size, 64)
    )
    return {
        "generator": args.generator,
        **metrics,
        "record_key": setting.key,
        "clip": args.clip,
        "dataset": args.dataset_name,
        "split": args.split,
        "dropped_empty_captions": dropped,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
