"""Honest numbers for a trained VAE on a held-out split: ELBO, importance-weighted NLL, bits/dim, MSE/PSNR.

For each image x the posterior q(z | x) is encoded once, then k latents z_i = μ + σ·ε_i are drawn and
decoded in large batches. From the same k samples:

* the **importance-weighted bound** (Burda et al. 2015), with the standard normal prior p(z) = N(0, I)::

      log p(x) ≥ L_k = log (1/k) Σ_i  p(x | z_i) p(z_i) / q(z_i | x)     (logsumexp, float64)

  L_1 is the ELBO, L_k grows with k towards log p(x); ``iw_nll_nats`` = −L_k is the tightest bound we report.
* the **negative ELBO** = reconstruction + KL, where reconstruction = −(1/k) Σ_i log p(x | z_i) (a Monte Carlo
  estimate over the same k samples) and KL(q(z | x) ‖ N(0, I)) is analytic (no sampling noise). With k = 1 the
  bound L_1 is the single-sample ELBO with a sampled KL, log p(x|z_1) + log p(z_1) − log q(z_1|x): equal to the
  reported ELBO in expectation, not sample by sample.

The mixture prior a model may carry (``VAEModel.set_mixture_prior``) is only for sampling: the model was trained
against N(0, I), so that is the prior of every number here. All values are nats per image (summed over pixels
or latent dimensions, averaged over images) under the model's likelihood; ``likelihood_note`` says what they
mean for that likelihood, and bits/dim are reported only when it is discretised (``vae_hub.likelihood.is_discrete``).
"""

import argparse
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from tqdm.auto import tqdm

from . import likelihood as lik
from .images import uint8_to_float
from .losses import kl_per_dimension


ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2015: unit j is active when Cov_x(E_q[z_j]) > 0.01
CALIBRATION_IMAGES = 512  # images an uncalibrated likelihood scale is fitted on (see evaluate_model)
LogLikelihood = Callable[[torch.Tensor, torch.Tensor, str], torch.Tensor]


@dataclass
class ImportanceSamples:
    """Log-densities of k posterior samples z_i ~ q(z | x) for B images: each (B, k), float64, nats."""

    log_px_z: torch.Tensor  # log p(x | z_i)
    log_pz: torch.Tensor  # log N(z_i; 0, I)
    log_qz: torch.Tensor  # log q(z_i | x)

    def iw_bound(self) -> torch.Tensor:
        """L_k = logsumexp_i(log w_i) − log k per image, (B,): a lower bound on log p(x)."""
        log_w = self.log_px_z + self.log_pz - self.log_qz
        return torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1])


def importance_samples(
    model,
    x: torch.Tensor,
    posterior: DiagonalGaussianDistribution,
    num_samples: int,
    generator: torch.Generator,
    decode_batch_size: int = 512,
    log_likelihood: LogLikelihood = lik.log_prob,
    decode: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> ImportanceSamples:
    """Draw ``num_samples`` latents per image from ``posterior`` and score them, decoding in chunks.

    Args:
        model: a ``VAEModel`` or ``SpatialVAEModel`` (anything with ``reparameterize``, ``decode_params`` and
            ``config.likelihood``).
        x: images (B, C, H, W) in [-1, 1]; ``posterior`` is ``model.encode(x).latent_dist``.
        num_samples: k.
        generator: source of the ε_i; same generator state, same result.
        decode_batch_size: latents per decoder call, at most max(B, decode_batch_size): memory holds one
            chunk of decoded images, never k·B of them.
        log_likelihood: log p(x | z) from decoder parameters, ``(params, x, likelihood) -> (B,)``; the
            model's own likelihood by default (tests pass a continuous density here).
        decode: latents → decoder parameters; ``model.decode_params`` by default (a compiled copy may be passed).

    Returns:
        ``ImportanceSamples`` with (B, k) float64 tensors on ``x``'s device.
    """
    b = x.shape[0]
    per_call = max(1, decode_batch_size // b)  # samples of every image decoded together
    num_chunks = math.ceil(num_samples / per_call)
    sizes = [len(c) for c in torch.arange(num_samples).chunk(num_chunks)]  # balanced, no tiny last chunk
    parts = []
    for s in sizes:
        # sample-major layout: row r of the chunk is sample r // b of image r % b
        chunk = DiagonalGaussianDistribution(posterior.parameters.repeat(s, 1, 1, 1))
        z = model.reparameterize(chunk, generator)  # (s·b, D) or (s·b, C, h, w)
        params = (decode or model.decode_params)(z)
        log_px_z = log_likelihood(params, x.repeat(s, 1, 1, 1), model.config.likelihood)
        z64 = z.double()
        log_pz = -0.5 * (z64.pow(2) + math.log(2 * math.pi)).flatten(1).sum(dim=1)
        log_qz = -chunk.nll(z64.view(chunk.mean.shape))  # float64: z is scored exactly as it was decoded
        parts.append(torch.stack([log_px_z.double(), log_pz, log_qz]).view(3, s, b))
    log_px_z, log_pz, log_qz = torch.cat(parts, dim=1).transpose(1, 2)  # each (b, k)
    return ImportanceSamples(log_px_z, log_pz, log_qz)


def likelihood_note(likelihood: str) -> str:
    """What the reported nats mean under ``likelihood``, in words."""
    if lik.is_discrete(likelihood):
        return (
            f"discretised {likelihood} likelihood over the {lik.NUM_LEVELS} levels of 8-bit pixels: negative "
            f"log-likelihoods are true code lengths of the data in nats per image; bits/dim = IW NLL / (C*H*W*ln 2)"
        )
    return (
        f"{likelihood} likelihood on pixel intensities in [0, 1] (every channel): a cross-entropy in nats per image, not a density "
        f"of the 8-bit data, so not comparable to code lengths; no bits/dim"
    )


@torch.inference_mode()
def evaluate_model(
    model,
    images: torch.Tensor,
    *,
    iw_samples: int = 1000,
    batch_size: int = 512,
    seed: int = 0,
    progress: bool = True,
    dataset: str | None = None,
    split: str | None = None,
    device: str | torch.device | None = None,
    log_likelihood: LogLikelihood = lik.log_prob,
    compile_decoder: bool = False,
) -> dict:
    """Evaluate ``model`` on uint8 ``images`` (N, C, H, W); returns the ``metrics.json`` dict.

    Args:
        model: a ``VAEModel`` (or anything with ``encode``, ``reparameterize``, ``decode_params`` and a
            ``config`` with ``likelihood``, ``in_channels``, ``sample_size``). Put in eval mode for the call.
        images: uint8 (N, C, H, W) with C, H, W matching the model.
        iw_samples: k, posterior samples per image for the importance-weighted bound (and the ELBO's
            reconstruction term).
        batch_size: latents per decoder call; images are encoded ``max(1, batch_size // iw_samples)`` at a time.
        seed: seeds the ε_i. Same seed and batch_size → the same numbers (except ``images_per_second``).
        progress: show a tqdm bar.
        dataset, split: recorded in the result as given.
        device: where to run; the model is moved there. Default: where the model is.
        log_likelihood: see ``importance_samples``.
        compile_decoder: decode the k samples with ``torch.compile`` (about 2x faster on a CPU; the first chunk
            pays a compilation of ~30 s). Chunks keep one shape when ``batch_size`` is a multiple of ``iw_samples``.

    A model whose likelihood scale is only a default (``calibrated`` False: an ``AutoencoderKL`` folder without
    ``likelihood.json``, e.g. Stable Diffusion's) first gets its maximum-likelihood scale on the first
    ``CALIBRATION_IMAGES`` images (``likelihood_scale_fitted_on`` in the result), in place.

    Returns:
        dict with ``dataset``, ``split``, ``num_images``, ``likelihood``, ``likelihood_note``, ``seed``,
        ``iw_samples``, ``negative_elbo_nats``, ``reconstruction_nats``, ``kl_nats``, ``iw_nll_nats``,
        ``bits_per_dim`` (None unless the likelihood is discretised), ``mse`` and ``psnr_db`` (posterior-mean
        reconstructions vs. the images, both in [0, 1]; PSNR of the dataset's MSE), ``active_units``,
        ``latent_dim``, ``images_per_second``.
    """
    config = model.config
    expected = (config.in_channels, config.sample_size, config.sample_size)
    if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != expected or len(images) == 0:
        raise ValueError(
            f"images must be a non-empty uint8 tensor (N, {', '.join(map(str, expected))}), "
            f"got {images.dtype} {tuple(images.shape)}"
        )
    if iw_samples < 1 or batch_size < 1:
        raise ValueError(f"iw_samples and batch_size must be >= 1, got {iw_samples} and {batch_size}")

    start = time.perf_counter()
    parameter = next(model.parameters())
    device = torch.device(device) if device is not None else parameter.device
    was_training = model.training
    model.to(device).eval()
    calibrated_on = None
    if getattr(model, "calibrated", True) is False:  # an AutoencoderKL that came without likelihood.json
        calibrated_on = min(len(images), CALIBRATION_IMAGES)
        with torch.no_grad():
            model.calibrate(uint8_to_float(images[:calibrated_on]).to(device, parameter.dtype))
    generator = torch.Generator().manual_seed(seed)  # CPU generator: the same ε on every device
    images_per_step = max(1, batch_size // iw_samples)
    decode = torch.compile(model.decode_params, dynamic=False) if compile_decoder else model.decode_params
    totals = torch.zeros(4, dtype=torch.float64)  # Σ over images of: iw bound, log p(x|z) mean, KL, squared error
    means, done = [], 0
    try:
        with tqdm(total=len(images), desc=f"evaluating (k={iw_samples})", unit="img", disable=not progress) as bar:
            for batch in images.split(images_per_step):
                x = uint8_to_float(batch).to(device, parameter.dtype)
                posterior = model.encode(x).latent_dist
                samples = importance_samples(
                    model, x, posterior, iw_samples, generator, batch_size, log_likelihood, decode=decode
                )
                mu = posterior.mean  # (B, D, 1, 1) or (B, C, h, w): decode_params takes both
                reconstruction = lik.mean(model.decode_params(mu), config.likelihood)
                squared_error = ((reconstruction.float() - x.float()) / 2).pow(2).sum()  # in [0, 1] pixel units
                totals += torch.stack(
                    [
                        samples.iw_bound().sum(),
                        samples.log_px_z.mean(dim=1).sum(),
                        kl_per_dimension(posterior).double().sum(),
                        squared_error.double(),
                    ]
                ).cpu()
                means.append(mu.double().cpu())
                done += len(batch)
                bar.update(len(batch))
                bar.set_postfix(iw_nll_nats=f"{-totals[0].item() / done:.2f}", refresh=False)
    finally:
        model.train(was_training)

    n, dims = len(images), images[0].numel()
    iw_bound, log_px_z, kl, squared_error = (totals / n).tolist()
    iw_nll, reconstruction = -iw_bound, -log_px_z
    mse = squared_error / dims
    mu_all = torch.cat(means)
    metrics = {
        "dataset": dataset,
        "split": split,
        "num_images": n,
        "likelihood": config.likelihood,
        "likelihood_note": likelihood_note(config.likelihood),
        "seed": seed,
        "iw_samples": iw_samples,
        "negative_elbo_nats": reconstruction + kl,
        "reconstruction_nats": reconstruction,
        "kl_nats": kl,
        "iw_nll_nats": iw_nll,
        "bits_per_dim": iw_nll / (dims * math.log(2)) if lik.is_discrete(config.likelihood) else None,
        "mse": mse,
        "psnr_db": 10 * math.log10(1.0 / mse),
        "active_units": int((mu_all.flatten(1).var(dim=0, correction=0) > ACTIVE_UNIT_THRESHOLD).sum()),
        "latent_dim": mu_all[0].numel(),
        "images_per_second": n / (time.perf_counter() - start),
    }
    if calibrated_on:
        metrics["likelihood_scale_fitted_on"] = calibrated_on
    if hasattr(config, "latent_channels"):
        metrics["latents"] = latent_statistics(mu_all, config)
    return metrics


def latent_statistics(means: torch.Tensor, config) -> dict:
    """What a diffusion model sees: posterior means (N, C, h, w) shifted and scaled as pipelines do.

    Returns the ``scaling_factor``/``shift_factor`` used, the latent shape, and per channel the mean and the
    standard deviation of ``(μ − shift) · scaling_factor`` over images and positions (unit variance is the aim).
    """
    scaled = (means - (config.shift_factor or 0.0)) * config.scaling_factor
    per_channel = scaled.transpose(0, 1).flatten(1)  # (C, N·h·w)
    return {
        "scaling_factor": config.scaling_factor,
        "shift_factor": config.shift_factor,
        "shape": list(means.shape[1:]),
        "std": scaled.std().item(),
        "channel_mean": per_channel.mean(dim=1).tolist(),
        "channel_std": per_channel.std(dim=1).tolist(),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vae_hub.evaluate",
        allow_abbrev=False,
        description="Evaluate a VAEModel or SpatialVAEModel on a dataset split: negative ELBO, importance-weighted NLL, "
        "bits/dim, MSE/PSNR (and the latents' scaling and per-channel statistics of a spatial model). "
        "The cost is images x iw_samples decoder passes: k=1000 on 10,000 images takes from about a minute "
        "on a GPU to over an hour on 2 CPU cores (--max_samples, a smaller --iw_samples and --compile shorten it).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="model folder or Hub repo id (VAEModel or SpatialVAEModel)")
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="a train_vae.py checkpoint folder (checkpoint-N): evaluate its EMA weights (what the run ships), else "
        "its model weights, in --model's architecture (a folder of the same config, e.g. the finished run's)",
    )
    parser.add_argument("--dataset_name", required=True, help="Hub dataset id or local folder in the Hub layout")
    parser.add_argument("--dataset_config_name", default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--image_column", default=None, help="default: the first image column")
    parser.add_argument("--max_samples", type=int, default=None, help="evaluate only the first N images")
    parser.add_argument("--iw_samples", type=int, default=1000, help="k, posterior samples per image")
    parser.add_argument("--batch_size", type=int, default=512, help="latents per decoder call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--compile", action="store_true", help="decode with torch.compile (about 2x faster on a CPU)")
    parser.add_argument(
        "--output",
        default=None,
        help="also write the metrics JSON to this file; MODEL/metrics.json replaces the numbers the "
        "model's card shows (then `vae-hub card MODEL`)",
    )
    parser.add_argument("--cache_dir", default=None)
    for action in parser._actions:  # the formatter shows defaults only of flags with a help text
        action.help = action.help or "(default: %(default)s)"
    return parser


def main(argv: list[str] | None = None) -> dict:
    """Load the model and the split, evaluate, print the metrics JSON with the command (and write it to ``--output``)."""
    from .data import load_split
    from .models import load_model

    parser = build_parser()
    args = parser.parse_args(argv)
    for flag in ("iw_samples", "batch_size", "max_samples"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag} must be >= 1, got {value}")
    if args.output and not os.path.isdir(os.path.dirname(os.path.abspath(args.output))):
        parser.error(f"--output {args.output}: its folder does not exist")  # before a long evaluation, not after
    try:
        model = load_model(args.model, cache_dir=args.cache_dir)
    except (OSError, ValueError) as err:
        parser.error(f"--model {args.model}: {_one_line(err)}")
    if args.checkpoint:
        try:
            weights = load_checkpoint_weights(model, Path(args.checkpoint))
        except ValueError as err:
            parser.error(f"--checkpoint {args.checkpoint}: {_one_line(err)}")
    try:
        data = load_split(
            args.dataset_name,
            args.split,
            image_column=args.image_column,
            resolution=model.config.sample_size,
            channels=model.config.in_channels,
            dataset_config_name=args.dataset_config_name,
            cache_dir=args.cache_dir,
            max_samples=args.max_samples,
        )
    except ValueError as err:
        parser.error(_one_line(err))
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    metrics = evaluate_model(
        model,
        data.images,
        iw_samples=args.iw_samples,
        batch_size=args.batch_size,
        seed=args.seed,
        dataset=args.dataset_name,
        split=args.split,
        device=device,
        compile_decoder=args.compile,
    )
    if args.checkpoint:
        metrics["checkpoint"] = {"folder": Path(args.checkpoint).name, "weights": weights}
    metrics["command"] = shlex.join(["python", "-m", "vae_hub.evaluate", *(sys.argv[1:] if argv is None else argv)])
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    return metrics


def load_checkpoint_weights(model: torch.nn.Module, checkpoint: Path) -> str:
    """Put the weights of a ``train_vae.py`` checkpoint (accelerate's state) into ``model``, in place: the EMA's
    shadow parameters where the run kept an EMA ("ema"), else the trained weights ("model"). ``ValueError`` when the
    folder is no such checkpoint or its weights do not fit the model's architecture."""
    from safetensors.torch import load_file

    if not (checkpoint / "model.safetensors").is_file():
        raise ValueError("not a train_vae.py checkpoint folder (it has no model.safetensors)")
    params = list(model.parameters())
    for state_file in sorted(checkpoint.glob("custom_checkpoint_*.pkl")):
        try:
            state = torch.load(state_file, map_location="cpu", weights_only=True)
        except Exception:  # the scheduler's or the noise's state: not tensors only, and not the EMA's
            continue
        shadow = state.get("shadow_params") if isinstance(state, dict) else None
        if shadow is not None:
            if [tuple(t.shape) for t in shadow] != [tuple(p.shape) for p in params]:
                raise ValueError("its EMA weights do not fit --model's architecture")
            with torch.no_grad():
                for param, value in zip(params, shadow):
                    param.copy_(value)
            return "ema"
    try:
        model.load_state_dict(load_file(checkpoint / "model.safetensors"), strict=True)
    except RuntimeError as err:
        raise ValueError(f"its weights do not fit --model's architecture: {_one_line(err)}") from None
    return "model"


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    main(sys.argv[1:])
