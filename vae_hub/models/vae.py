"""``VAEModel``: a variational autoencoder with a vector latent, in diffusers' format.

How a VAE works, in the order this file does it:

1. The **encoder** maps an image x to the parameters of a diagonal Gaussian q(z | x) = N(μ(x), diag σ²(x)):
   a mean and a log-variance per latent dimension (``encode`` → ``AutoencoderKLOutput.latent_dist``).
2. The **reparameterization trick** draws z = μ + σ·ε with ε ~ N(0, I). The randomness sits in ε, so z is a
   differentiable function of μ and σ and gradients reach the encoder (``reparameterize``).
3. The **decoder** maps z to the parameters of p(x | z), whose meaning the ``likelihood`` config field fixes
   (see ``vae_hub.likelihood``); ``decode`` returns its mean image in [-1, 1].
4. Training maximises the ELBO = E_q[log p(x | z)] − KL(q(z | x) ‖ p(z)) (``vae_hub.losses``).
5. **Sampling**: z ~ p(z) = N(0, I) (or the optional fitted mixture prior), then decode (``generate``).

Shapes: images are (B, C, H, W) in [-1, 1]; latents are (B, latent_dim). diffusers'
``DiagonalGaussianDistribution`` wants 4-D parameters, so inside ``latent_dist`` (and from its ``sample()``)
a latent is (B, latent_dim, 1, 1); ``decode`` accepts both forms.
"""

import math

import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.activations import ACT2CLS
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils.accelerate_utils import apply_forward_hook
from diffusers.utils.torch_utils import randn_tensor

from .. import likelihood as lik
from ..loading import StrictLoadingMixin
from .blocks import (
    LegacyKeysMixin,
    VAEOutput,
    autoencode,
    crop_to,
    downsample,
    execution_device,
    likelihood_params,
    pad_to,
    res_stack,
    upsample,
)
from .config_checks import ConfigChecks


PRIORS = ("standard", "mixture")


class VectorEncoder(nn.Module):
    """Images (B, C, H, W), padded to a multiple of 2**stages → the posterior's moments (B, 2 · latent_dim), [μ, log σ²]:
    ``conv_in``, per stage ``layers_per_block`` ``ResBlock`` and a stride-2 down-sampling, the activation, and a linear
    map of the flattened features (``to_moments``)."""

    def __init__(
        self,
        in_channels: int,
        block_out_channels: tuple[int, ...],
        layers_per_block: int,
        latent_dim: int,
        act_fn: str,
        norm_num_groups: int,
        bottom_size: int,
    ):
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.down_blocks = res_stack(block_out_channels, layers_per_block, norm_num_groups, act_fn, downsample, True)
        self.act = ACT2CLS[act_fn]()
        self.to_moments = nn.Linear(block_out_channels[-1] * bottom_size**2, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_moments(self.act(self.down_blocks(self.conv_in(x))).flatten(1))


class VectorDecoder(nn.Module):
    """Latents (B, latent_dim) → the decoder's output at the padded size: a linear map to features at the bottleneck
    (``from_latent``), the stages mirrored with up-sampling, then GroupNorm, activation and ``conv_out``."""

    def __init__(
        self,
        out_channels: int,
        block_out_channels: tuple[int, ...],
        layers_per_block: int,
        latent_dim: int,
        act_fn: str,
        norm_num_groups: int,
        bottom_size: int,
    ):
        super().__init__()
        self.bottom_shape = (block_out_channels[-1], bottom_size, bottom_size)
        self.from_latent = nn.Linear(latent_dim, block_out_channels[-1] * bottom_size**2)
        self.up_blocks = res_stack(block_out_channels[::-1], layers_per_block, norm_num_groups, act_fn, upsample, True)
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[0], eps=1e-6)
        self.conv_act = ACT2CLS[act_fn]()
        self.conv_out = nn.Conv2d(block_out_channels[0], out_channels, kernel_size=3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.up_blocks(self.from_latent(z).view(len(z), *self.bottom_shape))
        return self.conv_out(self.conv_act(self.conv_norm_out(h)))


class VAEModel(StrictLoadingMixin, LegacyKeysMixin, ModelMixin, ConfigMixin):
    r"""A convolutional VAE with a vector latent z ∈ R^latent_dim and a N(0, I) prior.

    Built from parts, as diffusers' ``AutoencoderKL``: ``self.encoder`` (``VectorEncoder``: ``conv_in`` then, per
    entry of ``block_out_channels``, ``layers_per_block`` ``ResBlock`` and a stride-2 down-sampling, then a linear map
    to (μ, log σ²)) and ``self.decoder`` (``VectorDecoder``, its mirror); the likelihood's ``log_scale`` and the
    mixture prior's buffers belong to the model.
    Images whose size is not a multiple of 2**len(block_out_channels) are padded at the encoder's input and
    the decoder's output is centre-cropped back, so every ``sample_size`` works.

    Args:
        in_channels: image channels (1 grayscale, 3 RGB).
        out_channels: channels of the decoded image; must equal ``in_channels`` (a VAE reconstructs its input).
        sample_size: height = width of the images.
        block_out_channels: channels of each down-sampling stage; each is divisible by ``norm_num_groups``.
        layers_per_block: residual blocks per stage.
        latent_dim: dimension D of the vector latent.
        act_fn: activation, a name diffusers knows ("silu", "relu", "gelu", "mish", ...).
        norm_num_groups: groups of the GroupNorms.
        likelihood: what the decoder output means — "bernoulli" (logits of intensities in [0, 1]), "gaussian"
            (mean and learned log σ), "laplace" (location and learned log b); see ``vae_hub.likelihood``.
        likelihood_scale: initial σ (or b) of the Gaussian/Laplace likelihood, in [-1, 1] pixel units.
        learn_likelihood_scale: learn one scale per channel (True) or keep ``likelihood_scale`` fixed.
        scaling_factor: as in ``AutoencoderKL``: latents are multiplied by it before a diffusion model sees
            them, so that the training set's latents have unit variance. 1.0 until training measures it
            (``vae_hub.latent.compute_scaling_factor``); ``encode``/``decode`` never apply it themselves.
        prior_components: K > 0 stores a diagonal Gaussian mixture prior fitted to the training codes
            (``vae_hub.prior.fit_mixture_prior``) for ``generate(prior="mixture")``; 0 for none.
    """

    _supports_gradient_checkpointing = True
    # weight names saved before the model was built from parts (vae-hub ≤ 0.x): converted when loaded
    _legacy_key_renames = {
        "conv_in": "encoder.conv_in",
        "down_blocks": "encoder.down_blocks",
        "to_moments": "encoder.to_moments",
        "from_latent": "decoder.from_latent",
        "up_blocks": "decoder.up_blocks",
        "norm_out": "decoder.conv_norm_out",
        "conv_out": "decoder.conv_out",
    }

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int | None = None,
        sample_size: int = 28,
        block_out_channels: tuple[int, ...] = (32, 64),
        layers_per_block: int = 1,
        latent_dim: int = 16,
        act_fn: str = "silu",
        norm_num_groups: int = 8,
        likelihood: str = "bernoulli",
        likelihood_scale: float = 0.1,
        learn_likelihood_scale: bool = True,
        scaling_factor: float = 1.0,
        prior_components: int = 0,
    ):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        _validate_config(locals())
        block_out_channels = tuple(block_out_channels)
        factor = 2 ** len(block_out_channels)
        self.padded_size = math.ceil(sample_size / factor) * factor
        self.bottom_size = self.padded_size // factor  # spatial size at the bottleneck

        parts = {
            "block_out_channels": block_out_channels,
            "layers_per_block": layers_per_block,
            "latent_dim": latent_dim,
            "act_fn": act_fn,
            "norm_num_groups": norm_num_groups,
            "bottom_size": self.bottom_size,
        }
        self.encoder = VectorEncoder(in_channels, **parts)  # image → (μ, log σ²)
        self.decoder = VectorDecoder(out_channels, **parts)  # z → likelihood parameters
        if likelihood != "bernoulli":
            self.log_scale = nn.Parameter(
                torch.full((out_channels,), math.log(likelihood_scale)), requires_grad=learn_likelihood_scale
            )
        if prior_components > 0:
            self.register_buffer("prior_means", torch.zeros(prior_components, latent_dim))
            self.register_buffer("prior_log_vars", torch.zeros(prior_components, latent_dim))
            self.register_buffer("prior_log_weights", torch.full((prior_components,), -math.log(prior_components)))
        self._register_legacy_keys_hook()

    @property
    def latent_shape(self) -> tuple[int]:
        """(latent_dim,): the shape of one image's code."""
        return (self.config.latent_dim,)

    # ------------------------------------------------------------------ encoder
    @apply_forward_hook
    def encode(self, x: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """Posterior q(z | x) of images ``x`` (B, C, H, W) in [-1, 1].

        Returns:
            ``AutoencoderKLOutput(latent_dist)`` whose ``DiagonalGaussianDistribution`` has ``mean``/``std``
            of shape (B, latent_dim, 1, 1); ``latent_dist.mean.flatten(1)`` is the (B, latent_dim) code.
        """
        size = self.config.sample_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.config.in_channels, size, size):
            raise ValueError(f"expected images (B, {self.config.in_channels}, {size}, {size}), got {tuple(x.shape)}")
        moments = self.encoder(pad_to(x, self.padded_size))  # (B, 2D): [μ, log σ²]
        posterior = DiagonalGaussianDistribution(moments[:, :, None, None])
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    @staticmethod
    def reparameterize(posterior: DiagonalGaussianDistribution, generator: torch.Generator | None = None):
        """The reparameterization trick: z = μ + σ·ε with ε ~ N(0, I), returned as (B, latent_dim).

        Sampling ε outside the network makes z a deterministic, differentiable function of (μ, σ), so
        the ELBO's gradient flows back into the encoder through z.
        """
        mu, sigma = posterior.mean.flatten(1), posterior.std.flatten(1)
        eps = randn_tensor(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + sigma * eps

    # ------------------------------------------------------------------ decoder
    def decode_params(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters for latents ``z`` (B, latent_dim) or (B, latent_dim, 1, 1).

        Returns (B, C, H, W) Bernoulli logits, or (B, 2C, H, W) location and log-scale (see
        ``vae_hub.likelihood``).
        """
        d = self.config.latent_dim
        if tuple(z.shape[1:]) not in ((d,), (d, 1, 1)):
            raise ValueError(f"expected latents (B, {d}) or (B, {d}, 1, 1), got {tuple(z.shape)}")
        out = self.decoder(z.flatten(1))
        return likelihood_params(crop_to(out, self.config.sample_size), getattr(self, "log_scale", None))

    @apply_forward_hook
    def decode(self, z: torch.Tensor, return_dict: bool = True) -> DecoderOutput | tuple:
        """Decode latents (B, latent_dim) or (B, latent_dim, 1, 1) to mean images (B, C, H, W) in [-1, 1]."""
        image = lik.mean(self.decode_params(z), self.config.likelihood)
        return DecoderOutput(sample=image) if return_dict else (image,)

    def forward(
        self,
        sample: torch.Tensor,
        sample_posterior: bool = False,
        return_dict: bool = True,
        generator: torch.Generator | None = None,
    ) -> VAEOutput | tuple:
        """Encode, take z (a posterior sample, or the mean), decode.

        Args:
            sample: images (B, C, H, W) in [-1, 1].
            sample_posterior: decode z = μ + σ·ε (training) instead of μ (reconstruction).
            generator: source of ε, for reproducible samples.

        Returns:
            ``VAEOutput`` (a ``DecoderOutput`` of tensors only) with the reconstruction in ``sample`` and, for the
            loss, the latents, the decoder's likelihood parameters and the posterior's moments (its distribution:
            ``latent_dist``); with ``return_dict=False``, ``(sample,)`` as ``AutoencoderKL`` does.
        """
        return autoencode(self, sample, sample_posterior, return_dict, generator)

    # ------------------------------------------------------------------ prior
    @torch.no_grad()
    @apply_forward_hook
    def sample_prior(
        self,
        num_samples: int,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        prior: str = "standard",
    ) -> torch.Tensor:
        """Latents from the prior, (num_samples, latent_dim).

        ``"standard"``: z ~ N(0, T²·I). ``"mixture"``: pick a component k by its weight, then
        z ~ N(μ_k, T²·diag σ_k²). The temperature T scales the spread around the chosen centre.
        """
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
        shape = (num_samples, self.config.latent_dim)
        eps = randn_tensor(shape, generator=generator, device=execution_device(self), dtype=self.dtype)
        if prior == "standard":
            return temperature * eps
        if self.config.prior_components == 0:
            raise ValueError("this model has no mixture prior: fit one with vae_hub.prior.fit_mixture_prior")
        weights = self.prior_log_weights.float().softmax(0).cpu()
        k = torch.multinomial(weights, num_samples, replacement=True, generator=_cpu_generator(generator))
        k = k.to(eps.device)
        return self.prior_means[k] + temperature * (0.5 * self.prior_log_vars[k]).exp() * eps

    @torch.no_grad()
    def generate(
        self,
        num_images: int,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        prior: str = "standard",
    ) -> torch.Tensor:
        """Sample ``num_images`` new images (num_images, C, H, W) in [-1, 1]: z from the prior, then decode.

        Same generator seed → same images. See ``sample_prior`` for ``temperature`` and ``prior``.
        """
        return self.decode(self.sample_prior(num_images, generator, temperature, prior)).sample

    def set_mixture_prior(self, means: torch.Tensor, log_vars: torch.Tensor, log_weights: torch.Tensor) -> None:
        """Store a diagonal Gaussian mixture prior: means/log_vars (K, latent_dim), log_weights (K,).

        The mixture lives in the state dict (safetensors) and K in the config, so ``save_pretrained`` /
        ``from_pretrained`` carry it; ``vae_hub.prior.fit_mixture_prior`` computes it.
        """
        d, k = self.config.latent_dim, means.shape[0] if means.ndim == 2 else 0
        if k == 0 or means.shape[1] != d or log_vars.shape != means.shape or log_weights.shape != (k,):
            shapes = ", ".join(str(tuple(t.shape)) for t in (means, log_vars, log_weights))
            raise ValueError(f"mixture shapes {shapes} do not fit (K, {d}), (K, {d}), (K,) with K ≥ 1")
        self.register_to_config(prior_components=k)
        kw = {"device": self.device, "dtype": self.dtype}
        self.register_buffer("prior_means", means.detach().to(**kw).clone())
        self.register_buffer("prior_log_vars", log_vars.detach().to(**kw).clone())
        self.register_buffer("prior_log_weights", log_weights.detach().to(**kw).clone())


def _cpu_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """torch.multinomial needs a CPU generator for CPU weights; derive one from a device generator."""
    if generator is None or generator.device.type == "cpu":
        return generator
    return torch.Generator().manual_seed(generator.initial_seed())


def _validate_config(cfg: dict) -> None:
    checks = ConfigChecks("VAEModel", cfg)
    checks.common()
    checks.positive_int("latent_dim")
    checks.need(
        isinstance(cfg["prior_components"], int) and cfg["prior_components"] >= 0,
        "prior_components",
        "must be a non-negative integer",
    )
