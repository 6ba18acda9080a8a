"""``AutoencoderKLWithLikelihood``: diffusers' own ``AutoencoderKL`` (Stable Diffusion's VAE), with a likelihood.

``AutoencoderKL`` decodes latents to an image; it has no observation model, so it has no ELBO, no NLL and no loss
of its own. This wrapper adds exactly that, the one thing vae-hub's training, evaluation and Space need: a Gaussian
or discretised Laplace p(x | z) whose location is the decoded image and whose per-channel scale is learned
(``vae_hub.likelihood``). Everything else is the wrapped ``self.vae``, untouched:

* ``save_pretrained`` writes a **plain AutoencoderKL folder** (``config.json`` + safetensors, loadable with
  ``diffusers.AutoencoderKL.from_pretrained`` alone) plus ``likelihood.json`` (the likelihood's family and scale),
  which diffusers ignores.
* ``from_pretrained`` loads any AutoencoderKL folder or Hub id strictly (safetensors only by default, the config
  must name ``AutoencoderKL``, every weight must match). A folder without ``likelihood.json`` (e.g.
  ``stabilityai/sd-vae-ft-mse``) gets a Laplace likelihood with ``likelihood_scale`` and ``calibrated=False``:
  ``vae_hub.evaluate`` then fits the scale to the evaluated images before computing a likelihood.

Shapes: images (B, C, H, W) in [-1, 1], H = W = ``sample_size``, a multiple of the down-sampling factor
f = 2 ** (len(block_out_channels) - 1); latents (B, latent_channels, H / f, W / f).
"""

import inspect
import json
import math
import os
from pathlib import Path

import torch
import torch.nn as nn
from diffusers import AutoencoderKL
from diffusers.configuration_utils import FrozenDict
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

from .. import likelihood as lik
from ..loading import strict_from_pretrained
from .blocks import VAEOutput, autoencode, likelihood_params
from .config_checks import ConfigChecks


LIKELIHOOD_NAME = "likelihood.json"
KL_LIKELIHOODS = ("gaussian", "laplace")  # the decoder's output is an image: the location of p(x | z)
DEFAULT_LIKELIHOOD = "laplace"
DEFAULT_LIKELIHOOD_SCALE = 0.1


def autoencoder_kl_defaults() -> dict:
    """``AutoencoderKL.__init__``'s defaults: what a config field left out means."""
    return {
        name: p.default
        for name, p in inspect.signature(AutoencoderKL.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def check_autoencoder_kl_config(config: dict) -> None:
    """One ``ValueError`` naming the field for an ``AutoencoderKL`` config that cannot be trained as given.

    ``AutoencoderKL`` itself accepts such configs and fails later, inside ``forward``, with a shape or GroupNorm
    error.
    """
    cfg = {
        **autoencoder_kl_defaults(),
        "likelihood": DEFAULT_LIKELIHOOD,
        "likelihood_scale": DEFAULT_LIKELIHOOD_SCALE,
        "learn_likelihood_scale": True,
        "scaling_factor": 1.0,
        **config,
    }
    checks = ConfigChecks("AutoencoderKL", cfg)
    checks.common()
    checks.positive_int("latent_channels")
    for field in ("down_block_types", "up_block_types"):
        checks.need(
            len(cfg[field]) == len(cfg["block_out_channels"]),
            field,
            f"must have one entry per stage of block_out_channels ({len(cfg['block_out_channels'])})",
        )
    factor = 2 ** (len(cfg["block_out_channels"]) - 1)
    size = cfg["sample_size"]
    if size % factor:
        valid = " or ".join(str(s) for s in (size // factor * factor, -(-size // factor) * factor) if s > 0)
        raise ValueError(
            f"AutoencoderKL config: `sample_size` {size} is not a multiple of the down-sampling factor "
            f"{factor} (2 ** (len(block_out_channels) - 1)), so the decoder cannot give back the "
            f"image's size: use {valid} (--resolution)"
        )


class AutoencoderKLWithLikelihood(nn.Module):
    r"""diffusers' ``AutoencoderKL`` (``self.vae``) with a likelihood p(x | z) for its decoded image.

    It has the model API the rest of vae-hub uses (``encode``, ``reparameterize``, ``decode_params``, ``decode``,
    ``forward`` → ``VAEOutput``, ``latent_shape``, ``config.likelihood``), so ``train_vae.py``, ``vae_hub.evaluate``
    and the Space treat it as they treat ``SpatialVAEModel``.

    Args:
        vae: the autoencoder; its images are (B, C, H, W) in [-1, 1].
        likelihood: "gaussian" or "laplace" (discretised to 8-bit pixels, see ``vae_hub.likelihood``); the decoded
            image is its location.
        likelihood_scale: σ (or b) per channel in [-1, 1] pixel units: a float for every channel, or one per channel.
        learn_likelihood_scale: train the scale with the autoencoder (the reconstruction term then sharpens as the
            reconstructions improve) or keep it fixed.
        calibrated: whether the scale was fitted to data (trained, or ``calibrate``); a scale that is only a default
            gives a meaningless likelihood.
    """

    def __init__(
        self,
        vae: AutoencoderKL,
        likelihood: str = DEFAULT_LIKELIHOOD,
        likelihood_scale: float | list[float] = DEFAULT_LIKELIHOOD_SCALE,
        learn_likelihood_scale: bool = True,
        calibrated: bool = True,
    ):
        super().__init__()
        if likelihood not in KL_LIKELIHOODS:
            raise ValueError(
                f"an AutoencoderKL decodes an image, the location of a Gaussian or Laplace likelihood: "
                f"likelihood must be one of {KL_LIKELIHOODS}, got {likelihood!r}"
            )
        self.vae = vae
        self.likelihood = likelihood
        channels = vae.config.out_channels
        scales = (
            list(likelihood_scale) if isinstance(likelihood_scale, (list, tuple)) else [likelihood_scale] * channels
        )
        # checked as numbers, not tensors: the model may be built on the meta device (sizing a config)
        if len(scales) != channels or not all(
            isinstance(s, (int, float)) and math.isfinite(s) and s > 0 for s in scales
        ):
            raise ValueError(
                f"likelihood_scale must be one positive number or one per channel ({channels}), "
                f"got {likelihood_scale!r}"
            )
        self.log_scale = nn.Parameter(
            torch.tensor(scales, dtype=torch.float32).log(), requires_grad=learn_likelihood_scale
        )
        self.calibrated = calibrated

    @classmethod
    def from_config(
        cls,
        config: dict,
        likelihood: str = DEFAULT_LIKELIHOOD,
        likelihood_scale: float = DEFAULT_LIKELIHOOD_SCALE,
        learn_likelihood_scale: bool = True,
    ) -> "AutoencoderKLWithLikelihood":
        """A new, randomly initialised ``AutoencoderKL(**config)``; the config is checked first (one ValueError)."""
        check_autoencoder_kl_config({**config, "likelihood": likelihood, "likelihood_scale": likelihood_scale})
        return cls(AutoencoderKL.from_config(config), likelihood, likelihood_scale, learn_likelihood_scale)

    # ------------------------------------------------------------------ what the rest of vae-hub reads
    @property
    def config(self) -> FrozenDict:
        """The AutoencoderKL's config and this wrapper's ``likelihood``, read fresh on every access."""
        return FrozenDict({**self.vae.config, "likelihood": self.likelihood})

    def register_to_config(self, **kwargs) -> None:
        """Set AutoencoderKL config fields (``scaling_factor``, ...): they are saved with the autoencoder."""
        self.vae.register_to_config(**kwargs)

    @property
    def factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(latent_channels, h, h) of one image's latents, h = sample_size / f."""
        h = self.vae.config.sample_size // self.factor
        return (self.vae.config.latent_channels, h, h)

    @property
    def dtype(self) -> torch.dtype:
        return self.vae.dtype

    @property
    def device(self) -> torch.device:
        return self.vae.device

    @property
    def encoder(self) -> nn.ModuleList:
        """What maps an image to its posterior, as ``VAEModel.encoder`` and ``SpatialVAEModel.encoder`` do: the
        AutoencoderKL's ``encoder`` and its ``quant_conv`` (``train_vae.py --train_decoder_only`` freezes them); the
        rest, and the likelihood scale, decode."""
        return nn.ModuleList(m for m in (self.vae.encoder, self.vae.quant_conv) if isinstance(m, nn.Module))

    # ------------------------------------------------------------------ the autoencoder
    def encode(self, x: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """Posterior q(z | x) of images (B, C, H, W): ``AutoencoderKL.encode``, after a check of the shape."""
        size = self.vae.config.sample_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.vae.config.in_channels, size, size):
            raise ValueError(
                f"expected images (B, {self.vae.config.in_channels}, {size}, {size}), got {tuple(x.shape)}"
            )
        return self.vae.encode(x, return_dict=return_dict)

    @staticmethod
    def reparameterize(posterior: DiagonalGaussianDistribution, generator: torch.Generator | None = None):
        """z = μ + σ·ε with ε ~ N(0, I): ``posterior.sample(generator)``, (B, latent_channels, h, h)."""
        return posterior.sample(generator=generator)

    def decode_params(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters (B, 2C, H, W) of latents (B, latent_channels, h, h): the decoded image (location)
        and the per-channel log-scale."""
        if z.ndim != 4 or tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(f"expected latents (B, {', '.join(map(str, self.latent_shape))}), got {tuple(z.shape)}")
        return likelihood_params(self.vae.decode(z).sample, self.log_scale)

    def decode(self, z: torch.Tensor, return_dict: bool = True, generator=None) -> DecoderOutput | tuple:
        """Images (B, C, H, W) in [-1, 1] of latents (B, latent_channels, h, h): the likelihood's mean, i.e. the
        AutoencoderKL's output clamped to the pixel range."""
        image = lik.mean(self.decode_params(z), self.likelihood)
        return DecoderOutput(sample=image) if return_dict else (image,)

    def forward(
        self,
        sample: torch.Tensor,
        sample_posterior: bool = False,
        return_dict: bool = True,
        generator: torch.Generator | None = None,
    ) -> VAEOutput | tuple:
        """Encode, take z (a posterior sample, or the mode), decode: ``VAEOutput`` with the loss's terms."""
        return autoencode(self, sample, sample_posterior, return_dict, generator)

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor) -> torch.Tensor:
        """Set the scale to its maximum-likelihood value on images ``x`` (B, C, H, W) reconstructed from their
        posterior modes: per channel, the RMS error (Gaussian) or the mean absolute error (Laplace). Returns it."""
        error = x - self.decode(self.encode(x).latent_dist.mode()).sample
        per_channel = (
            error.abs().mean((0, 2, 3)) if self.likelihood == "laplace" else error.pow(2).mean((0, 2, 3)).sqrt()
        )
        self.log_scale.copy_(per_channel.clamp_min(1e-3).log())
        self.calibrated = True
        return per_channel

    # ------------------------------------------------------------------ files
    def likelihood_record(self) -> dict:
        return {
            "likelihood": self.likelihood,
            "scale": self.log_scale.detach().exp().tolist(),
            "learned": self.log_scale.requires_grad,
            "calibrated": self.calibrated,
        }

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        is_main_process: bool = True,
        save_function=None,
        safe_serialization: bool = True,
        variant: str | None = None,
        max_shard_size: int | str = "10GB",
        push_to_hub: bool = False,
        **kwargs,
    ) -> None:
        """A plain AutoencoderKL folder (the arguments are ``ModelMixin.save_pretrained``'s and go to the
        AutoencoderKL's) and ``likelihood.json``."""
        self.vae.save_pretrained(
            save_directory,
            is_main_process=is_main_process,
            save_function=save_function,
            safe_serialization=safe_serialization,
            variant=variant,
            max_shard_size=max_shard_size,
            push_to_hub=push_to_hub,
            **kwargs,
        )
        (Path(save_directory) / LIKELIHOOD_NAME).write_text(json.dumps(self.likelihood_record(), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "AutoencoderKLWithLikelihood":
        """Load an AutoencoderKL folder or Hub id strictly (``vae_hub.loading.strict_from_pretrained``), with its
        ``likelihood.json`` when it has one; in eval mode."""
        vae = strict_from_pretrained(
            AutoencoderKL, AutoencoderKL.from_pretrained, pretrained_model_name_or_path, **kwargs
        )
        record = _read_likelihood(pretrained_model_name_or_path, kwargs)
        if record is None:
            return cls(vae, calibrated=False).eval()
        return cls(
            vae, record["likelihood"], record["scale"], record.get("learned", True), record.get("calibrated", True)
        ).eval()  # in eval mode, as diffusers' from_pretrained


def _read_likelihood(path_or_repo_id, kwargs: dict) -> dict | None:
    """The folder's or repo's ``likelihood.json``, or None when it has none."""
    subfolder = kwargs.get("subfolder") or ""
    if os.path.isdir(path_or_repo_id):
        path = Path(path_or_repo_id, subfolder, LIKELIHOOD_NAME)
        return json.loads(path.read_text()) if path.is_file() else None
    try:
        path = hf_hub_download(
            str(path_or_repo_id),
            LIKELIHOOD_NAME,
            subfolder=subfolder or None,
            revision=kwargs.get("revision"),
            cache_dir=kwargs.get("cache_dir"),
            token=kwargs.get("token"),
            local_files_only=kwargs.get("local_files_only", False),
        )
    except (EntryNotFoundError, LocalEntryNotFoundError):
        return None
    return json.loads(Path(path).read_text())
