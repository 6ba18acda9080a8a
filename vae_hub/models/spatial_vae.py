"""``SpatialVAEModel``: a KL autoencoder with a *map* of latents, Stable Diffusion's kind of VAE, in diffusers' format.

``VAEModel`` squeezes an image into one vector, which is ideal for exploring a latent space but blurry to sample
from. Latent diffusion (Rombach et al. 2022) instead keeps a small spatial grid of latents — Stable Diffusion: 4
channels at 1/8 of the image size — trains the autoencoder with a tiny KL weight so reconstructions stay sharp, and
lets a diffusion model learn the distribution of those latents (``vae_hub.LatentDiffusionPipeline``).

The forward pass, in the order this file does it:

1. **Encoder**: ``conv_in`` → stages of ``ResBlock`` with one stride-2 down-sampling between consecutive entries of
   ``block_out_channels`` (so f = 2 ** (len(block_out_channels) - 1), the factor diffusers' pipelines compute) → a
   middle ``ResBlock`` → GroupNorm, act, 3x3 conv to the moments (μ, log σ²) of q(z | x): 2 · latent_channels maps.
2. **Posterior**: diffusers' ``DiagonalGaussianDistribution``; ``sample(generator)`` is the reparameterization
   z = μ + σ·ε, ``mode()`` is μ, ``kl()`` the KL to N(0, I) summed over the latent map.
3. **Decoder**: 3x3 conv from the latents → middle ``ResBlock`` → stages mirrored with up-sampling between them →
   GroupNorm, act, ``conv_out`` to the parameters of p(x | z) (``likelihood`` as in ``VAEModel``).

Shapes: images (B, C, H, W) in [-1, 1] with H = W = ``sample_size``; latents (B, latent_channels, h, h) with
h = ``latent_size``. Images are padded (border repeated) so that h is a multiple of ``latent_multiple`` — a UNet
with k down-samplings needs h divisible by 2**k — and the decoder's output is centre-cropped back: with the defaults
(f = 4, multiple 4), 28×28 images are padded to 32×32 and give 4×8×8 latents, which a UNet can halve twice.
"""

import math

import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.activations import ACT2CLS
from diffusers.models.autoencoders.vae import AutoencoderMixin, DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils.accelerate_utils import apply_forward_hook

from .. import likelihood as lik
from ..loading import StrictLoadingMixin
from .blocks import (
    LegacyKeysMixin,
    ResBlock,
    ResStack,
    VAEOutput,
    autoencode,
    crop_to,
    downsample,
    likelihood_params,
    pad_to,
    res_stack,
    upsample,
)
from .config_checks import ConfigChecks


class SpatialEncoder(nn.Module):
    """Images (B, C, H, W), padded → the posterior's moments (B, 2 · latent_channels, h, h), [μ, log σ²]: ``conv_in``,
    the stages with one down-sampling between consecutive ones and a middle ``ResBlock`` (``down_blocks``), then
    GroupNorm, activation and a 3x3 ``conv_out``, as in diffusers' ``Encoder``."""

    def __init__(
        self,
        in_channels: int,
        block_out_channels: tuple[int, ...],
        layers_per_block: int,
        latent_channels: int,
        norm_num_groups: int,
        act_fn: str,
    ):
        super().__init__()
        c_last = block_out_channels[-1]
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.down_blocks = ResStack(
            *res_stack(block_out_channels, layers_per_block, norm_num_groups, act_fn, downsample, False),
            ResBlock(c_last, c_last, norm_num_groups, act_fn),
        )
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, c_last, eps=1e-6)
        self.conv_act = ACT2CLS[act_fn]()
        self.conv_out = nn.Conv2d(c_last, 2 * latent_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv_act(self.conv_norm_out(self.down_blocks(self.conv_in(x)))))


class SpatialDecoder(nn.Module):
    """Latents (B, latent_channels, h, h) → the decoder's output at the padded size: a 3x3 ``conv_in``, a middle
    ``ResBlock`` and the stages mirrored with up-sampling between them (``up_blocks``), then GroupNorm, activation and
    ``conv_out``, as in diffusers' ``Decoder``."""

    def __init__(
        self,
        out_channels: int,
        up_block_out_channels: tuple[int, ...],
        layers_per_up_block: int,
        latent_channels: int,
        norm_num_groups: int,
        act_fn: str,
    ):
        super().__init__()
        c_first, c_last = up_block_out_channels[0], up_block_out_channels[-1]
        self.conv_in = nn.Conv2d(latent_channels, c_last, kernel_size=3, padding=1)
        self.up_blocks = ResStack(
            ResBlock(c_last, c_last, norm_num_groups, act_fn),
            *res_stack(up_block_out_channels[::-1], layers_per_up_block, norm_num_groups, act_fn, upsample, False),
        )
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, c_first, eps=1e-6)
        self.conv_act = ACT2CLS[act_fn]()
        self.conv_out = nn.Conv2d(c_first, out_channels, kernel_size=3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv_act(self.conv_norm_out(self.up_blocks(self.conv_in(z)))))


class SpatialVAEModel(StrictLoadingMixin, LegacyKeysMixin, ModelMixin, ConfigMixin, AutoencoderMixin):
    r"""A KL autoencoder with spatial latents (B, latent_channels, h, h), a drop-in ``vae`` for diffusers pipelines.

    Config fields carry ``AutoencoderKL``'s names and meanings; ``likelihood``, ``likelihood_scale`` and
    ``learn_likelihood_scale`` mean what they mean in ``VAEModel``, and ``latent_multiple`` is ours.

    Args:
        in_channels: image channels (1 grayscale, 3 RGB).
        out_channels: channels of the decoded image; must equal ``in_channels``.
        sample_size: height = width of the images.
        block_out_channels: channels of each stage; one down-sampling between consecutive entries, so the
            latents are 2 ** (len(block_out_channels) - 1) times smaller than the (padded) image.
        layers_per_block: residual blocks per stage.
        latent_channels: channels of the latent map (Stable Diffusion: 4).
        norm_num_groups: groups of the GroupNorms; divides every entry of ``block_out_channels``.
        act_fn: activation, a name diffusers knows ("silu", ...).
        likelihood: "bernoulli", "gaussian" or "laplace" (default: a discretised Laplace, whose location is an
            L1-like reconstruction as in latent diffusion; see ``vae_hub.likelihood``).
        likelihood_scale: initial σ (or b) of a Gaussian/Laplace likelihood, in [-1, 1] pixel units.
        learn_likelihood_scale: learn that scale (one per channel) or keep it fixed.
        scaling_factor: multiply latents by this before a diffusion model sees them (unit variance on the
            training set; measured by ``vae_hub.latent.compute_scaling_factor``). ``encode``/``decode`` never
            apply it, as in ``AutoencoderKL``.
        shift_factor: subtracted from latents before scaling (``(z - shift) * scale``), or None (SD 1/2 style).
        force_upcast: pipelines run this VAE in float32 even when the rest is fp16/bf16 (diffusers' convention).
        latent_multiple: the latent side h is rounded up to a multiple of this by padding the image.
        up_block_out_channels: the decoder's channels per stage, same length as ``block_out_channels``; None
            mirrors the encoder. A wider decoder than encoder (``AsymmetricAutoencoderKL``'s field) buys sharper
            reconstructions without changing the latents: see ``train_vae.py --train_decoder_only``.
        layers_per_up_block: the decoder's residual blocks per stage; None: ``layers_per_block``.
    """

    _supports_gradient_checkpointing = True
    # weight names saved before the model was built from parts (vae-hub ≤ 0.x): converted when loaded
    _legacy_key_renames = {
        "conv_in": "encoder.conv_in",
        "down_blocks": "encoder.down_blocks",
        "encoder_out.0": "encoder.conv_norm_out",
        "encoder_out.2": "encoder.conv_out",
        "conv_latent": "decoder.conv_in",
        "up_blocks": "decoder.up_blocks",
        "decoder_out.0": "decoder.conv_norm_out",
        "decoder_out.2": "decoder.conv_out",
    }

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int | None = None,
        sample_size: int = 28,
        block_out_channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        latent_channels: int = 4,
        norm_num_groups: int = 16,
        act_fn: str = "silu",
        likelihood: str = "laplace",
        likelihood_scale: float = 0.1,
        learn_likelihood_scale: bool = True,
        scaling_factor: float = 1.0,
        shift_factor: float | None = None,
        force_upcast: bool = True,
        latent_multiple: int = 4,
        up_block_out_channels: tuple[int, ...] | None = None,
        layers_per_up_block: int | None = None,
    ):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        _validate_spatial_config(locals())
        block_out_channels = tuple(block_out_channels)
        self.factor = 2 ** (len(block_out_channels) - 1)
        step = self.factor * latent_multiple
        self.padded_size = math.ceil(sample_size / step) * step
        self.latent_size = self.padded_size // self.factor
        self.use_slicing = False
        up_channels = block_out_channels if up_block_out_channels is None else tuple(up_block_out_channels)
        up_layers = layers_per_block if layers_per_up_block is None else layers_per_up_block

        parts = {"latent_channels": latent_channels, "norm_num_groups": norm_num_groups, "act_fn": act_fn}
        self.encoder = SpatialEncoder(in_channels, block_out_channels, layers_per_block, **parts)
        self.decoder = SpatialDecoder(out_channels, up_channels, up_layers, **parts)
        if likelihood != "bernoulli":
            self.log_scale = nn.Parameter(
                torch.full((out_channels,), math.log(likelihood_scale)), requires_grad=learn_likelihood_scale
            )
        self._register_legacy_keys_hook()

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(latent_channels, h, h) of one image's latents."""
        return (self.config.latent_channels, self.latent_size, self.latent_size)

    # ------------------------------------------------------------------ encoder
    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        size = self.config.sample_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.config.in_channels, size, size):
            raise ValueError(f"expected images (B, {self.config.in_channels}, {size}, {size}), got {tuple(x.shape)}")
        return self.encoder(pad_to(x, self.padded_size))

    @apply_forward_hook
    def encode(self, x: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """Posterior q(z | x) of images ``x`` (B, C, H, W) in [-1, 1].

        Returns:
            ``AutoencoderKLOutput(latent_dist)``: a ``DiagonalGaussianDistribution`` whose ``mean``/``std`` are
            (B, latent_channels, h, h). With ``enable_slicing()`` the batch is encoded one image at a time.
        """
        if self.use_slicing and x.shape[0] > 1:
            moments = torch.cat([self._encode(s) for s in x.split(1)])
        else:
            moments = self._encode(x)
        posterior = DiagonalGaussianDistribution(moments)
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    @staticmethod
    def reparameterize(posterior: DiagonalGaussianDistribution, generator: torch.Generator | None = None):
        """z = μ + σ·ε with ε ~ N(0, I): ``posterior.sample(generator)``, (B, latent_channels, h, h)."""
        return posterior.sample(generator=generator)

    # ------------------------------------------------------------------ decoder
    def decode_params(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters for latents ``z`` (B, latent_channels, h, h): (B, C, H, W) Bernoulli logits, or
        (B, 2C, H, W) location and log-scale (see ``vae_hub.likelihood``)."""
        if z.ndim != 4 or tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(f"expected latents (B, {', '.join(map(str, self.latent_shape))}), got {tuple(z.shape)}")
        out = self.decoder(z)
        return likelihood_params(crop_to(out, self.config.sample_size), getattr(self, "log_scale", None))

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        return lik.mean(self.decode_params(z), self.config.likelihood)

    @apply_forward_hook
    def decode(self, z: torch.Tensor, return_dict: bool = True, generator=None) -> DecoderOutput | tuple:
        """Decode latents (B, latent_channels, h, h) to mean images (B, C, H, W) in [-1, 1].

        Latents from a diffusion model must be unscaled first: ``z / scaling_factor (+ shift_factor)``.
        ``generator`` is accepted for diffusers' pipelines and unused (decoding is deterministic).
        """
        if self.use_slicing and z.shape[0] > 1:
            image = torch.cat([self._decode(s) for s in z.split(1)])
        else:
            image = self._decode(z)
        return DecoderOutput(sample=image) if return_dict else (image,)

    def forward(
        self,
        sample: torch.Tensor,
        sample_posterior: bool = False,
        return_dict: bool = True,
        generator: torch.Generator | None = None,
    ) -> VAEOutput | tuple:
        """Encode, take z (a posterior sample, or the mode), decode.

        Args:
            sample: images (B, C, H, W) in [-1, 1].
            sample_posterior: decode z = μ + σ·ε (training) instead of μ (reconstruction).
            generator: source of ε, for reproducible samples.

        Returns:
            ``VAEOutput`` (tensors only) with the reconstruction in ``sample`` and, for the loss, the latents
            (B, latent_channels, h, h), the likelihood parameters and the posterior's moments (its distribution:
            ``latent_dist``); ``(sample,)`` with ``return_dict=False``.
        """
        return autoencode(self, sample, sample_posterior, return_dict, generator)


def own_decoder_stages(config) -> str:
    """ ", decoder [16, 32, 64] × 2 block(s)" for a model whose decoder is not the encoder's mirror (a wider
    decoder: ``up_block_out_channels``/``layers_per_up_block``), else "": for architecture descriptions."""
    channels, layers = config.get("up_block_out_channels"), config.get("layers_per_up_block")
    if channels is None and layers is None:
        return ""
    return (
        f", decoder {list(channels or config['block_out_channels'])} × {layers or config['layers_per_block']} block(s)"
    )


def _validate_spatial_config(cfg: dict) -> None:
    checks = ConfigChecks("SpatialVAEModel", cfg)
    checks.common()
    checks.positive_int("latent_channels", "latent_multiple")
    if cfg["layers_per_up_block"] is not None:
        checks.blocks_per_stage("layers_per_up_block")
    if cfg["up_block_out_channels"] is not None:
        checks.channel_list("up_block_out_channels")
        checks.need(
            len(cfg["up_block_out_channels"]) == len(cfg["block_out_channels"]),
            "up_block_out_channels",
            f"must have one entry per encoder stage ({len(cfg['block_out_channels'])}, as block_out_channels): "
            "the decoder up-samples as often as the encoder down-samples",
        )
    shift = cfg["shift_factor"]
    checks.need(
        shift is None or (isinstance(shift, (int, float)) and math.isfinite(shift)),
        "shift_factor",
        "must be None or a finite number",
    )
    checks.need(isinstance(cfg["force_upcast"], bool), "force_upcast", "must be True or False")
