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
from dataclasses import dataclass

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
from .blocks import crop_to, downsample, execution_device, likelihood_params, pad_to, res_stack, upsample
from .config_checks import ConfigChecks

PRIORS = ("standard", "mixture")


@dataclass
class VAEOutput(DecoderOutput):
    """Output of ``VAEModel.forward``: a ``DecoderOutput`` that also carries what the loss needs.

    Args:
        sample: mean reconstruction in [-1, 1], (B, C, H, W).
        latent_dist: the posterior q(z | x), parameters (B, 2 * latent_dim, 1, 1).
        latents: the z that was decoded, (B, latent_dim) — a posterior sample or the posterior mean.
        decoder_params: likelihood parameters from the decoder, (B, C, H, W) or (B, 2C, H, W).
    """

    latent_dist: DiagonalGaussianDistribution | None = None
    latents: torch.Tensor | None = None
    decoder_params: torch.Tensor | None = None


def autoencode(model, sample: torch.Tensor, sample_posterior: bool, return_dict: bool,
               generator: torch.Generator | None) -> VAEOutput | tuple:
    """The forward pass both models share: encode, take z (a posterior sample, or the mean), decode."""
    posterior = model.encode(sample).latent_dist
    z = model.reparameterize(posterior, generator) if sample_posterior else posterior.mean.view(-1, *model.latent_shape)
    params = model.decode_params(z)
    image = lik.mean(params, model.config.likelihood)
    if not return_dict:
        return (image,)
    return VAEOutput(sample=image, latent_dist=posterior, latents=z, decoder_params=params)


class VAEModel(StrictLoadingMixin, ModelMixin, ConfigMixin):
    r"""A convolutional VAE with a vector latent z ∈ R^latent_dim and a N(0, I) prior.

    The encoder is ``conv_in`` then, per entry of ``block_out_channels``, ``layers_per_block``
    ``ResBlock`` and a stride-2 down-sampling, then a linear map to (μ, log σ²). The decoder mirrors it.
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
    # the submodules of the encoder (image → posterior); the rest is the decoder
    encoder_modules = ("conv_in", "down_blocks", "to_moments")

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
        bottom_features = block_out_channels[-1] * self.bottom_size**2

        stack = {"layers_per_block": layers_per_block, "groups": norm_num_groups, "act_fn": act_fn, "resample_last": True}

        # Encoder: image → features at bottom_size² → (μ, log σ²)
        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.down_blocks = res_stack(block_out_channels, resample=downsample, **stack)
        self.encoder_act = ACT2CLS[act_fn]()
        self.to_moments = nn.Linear(bottom_features, 2 * latent_dim)

        # Decoder: z → features at bottom_size² → likelihood parameters
        self.from_latent = nn.Linear(latent_dim, bottom_features)
        self.up_blocks = res_stack(block_out_channels[::-1], resample=upsample, **stack)
        self.norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[0], eps=1e-6)
        self.decoder_act = ACT2CLS[act_fn]()
        self.conv_out = nn.Conv2d(block_out_channels[0], out_channels, kernel_size=3, padding=1)
        if likelihood != "bernoulli":
            self.log_scale = nn.Parameter(
                torch.full((out_channels,), math.log(likelihood_scale)), requires_grad=learn_likelihood_scale
            )
        if prior_components > 0:
            self.register_buffer("prior_means", torch.zeros(prior_components, latent_dim))
            self.register_buffer("prior_log_vars", torch.zeros(prior_components, latent_dim))
            self.register_buffer("prior_log_weights", torch.full((prior_components,), -math.log(prior_components)))

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
        h = self.down_blocks(self.conv_in(pad_to(x, self.padded_size)))
        moments = self.to_moments(self.encoder_act(h).flatten(1))  # (B, 2D): [μ, log σ²]
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
        z = z.flatten(1)
        c, s = self.config.block_out_channels[-1], self.bottom_size
        h = self.up_blocks(self.from_latent(z).view(len(z), c, s, s))
        out = self.conv_out(self.decoder_act(self.norm_out(h)))
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
            ``VAEOutput`` (a ``DecoderOutput``) with the reconstruction in ``sample`` and, for the loss, the
            posterior, the latents and the decoder's likelihood parameters; with ``return_dict=False``,
            ``(sample,)`` as ``AutoencoderKL`` does.
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
    checks.need(isinstance(cfg["prior_components"], int) and cfg["prior_components"] >= 0, "prior_components",
                "must be a non-negative integer")
