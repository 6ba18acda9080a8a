"""What ``VAEModel``, ``SpatialVAEModel`` and ``AutoencoderKLWithLikelihood`` share: residual blocks and the stacks
made of them, the forward pass (``autoencode``) and its output (``VAEOutput``), and the conversion of weight names
saved before the models were built from ``encoder`` and ``decoder`` parts (``LegacyKeysMixin``)."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.models.activations import ACT2CLS
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.downsampling import Downsample2D
from diffusers.models.upsampling import Upsample2D

from .. import likelihood as lik


@dataclass
class VAEOutput(DecoderOutput):
    """Output of the models' ``forward``: a ``DecoderOutput`` that also carries what the loss needs, tensors only
    (so that ``torch.export`` and diffusers' output handling take it).

    Args:
        sample: mean reconstruction in [-1, 1], (B, C, H, W).
        latents: the z that was decoded — a posterior sample or the posterior mean: (B, latent_dim) for
            ``VAEModel``, (B, latent_channels, h, h) for the spatial models.
        decoder_params: likelihood parameters from the decoder, (B, C, H, W) or (B, 2C, H, W).
        posterior_moments: the parameters of q(z | x), [μ, log σ²] along dim 1: (B, 2 * latent_dim, 1, 1) or
            (B, 2 * latent_channels, h, h). ``latent_dist`` is the distribution they define (as ``encode`` returns
            it).
    """

    latents: torch.Tensor | None = None
    decoder_params: torch.Tensor | None = None
    posterior_moments: torch.Tensor | None = None

    @property
    def latent_dist(self) -> DiagonalGaussianDistribution | None:
        """The posterior q(z | x) of the encoded images, built from ``posterior_moments``."""
        return None if self.posterior_moments is None else DiagonalGaussianDistribution(self.posterior_moments)


def autoencode(
    model, sample: torch.Tensor, sample_posterior: bool, return_dict: bool, generator: torch.Generator | None
) -> VAEOutput | tuple:
    """The forward pass every model shares: encode, take z (a posterior sample, or the mean), decode."""
    posterior = model.encode(sample).latent_dist
    z = (
        model.reparameterize(posterior, generator)
        if sample_posterior
        else posterior.mean.view(-1, *model.latent_shape)
    )
    params = model.decode_params(z)
    image = lik.mean(params, model.config.likelihood)
    if not return_dict:
        return (image,)
    return VAEOutput(sample=image, latents=z, decoder_params=params, posterior_moments=posterior.parameters)


def rename_legacy_keys(state_dict: dict, renames: Mapping[str, str], prefix: str = "") -> dict:
    """Rename, in place, the keys of ``state_dict`` under ``prefix`` whose module path starts with an old name of
    ``renames`` (old → new module path, e.g. ``"conv_in" → "encoder.conv_in"``); new names are left alone.
    Returns ``state_dict``."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        name = key[len(prefix) :]
        old = next((o for o in renames if name == o or name.startswith(o + ".")), None)
        if old is not None:
            state_dict[prefix + renames[old] + name[len(old) :]] = state_dict.pop(key)
    return state_dict


class LegacyKeysMixin:
    """Loads weights saved under the names the model had before it was built from ``encoder`` and ``decoder`` parts.

    ``_legacy_key_renames`` maps each old top-level module path to its new one. The names are converted once, as they
    are read, the way diffusers converts its deprecated attention blocks: ``from_pretrained`` of a single-file
    checkpoint (diffusers' ``_fix_state_dict_keys_on_load``) and ``load_state_dict`` (an accelerate checkpoint of a
    run in progress, resumed) both accept the old names. Saving always writes the new ones.
    """

    _legacy_key_renames: dict[str, str] = {}

    def _register_legacy_keys_hook(self) -> None:
        """Call at the end of ``__init__``: ``load_state_dict`` then converts old names first."""
        self.register_load_state_dict_pre_hook(_legacy_keys_hook)

    def _fix_state_dict_keys_on_load(self, state_dict: dict) -> None:
        super()._fix_state_dict_keys_on_load(state_dict)
        rename_legacy_keys(state_dict, self._legacy_key_renames)

    @classmethod
    def legacy_keys_in(cls, keys) -> list[str]:
        """The keys among ``keys`` that carry an old name (a checkpoint saved before the encoder/decoder split)."""
        return [k for k in keys if any(k == o or k.startswith(o + ".") for o in cls._legacy_key_renames)]


def _legacy_keys_hook(module, state_dict, prefix, *args) -> None:
    rename_legacy_keys(state_dict, module._legacy_key_renames, prefix)


class ResBlock(nn.Module):
    """Pre-activation residual block: (GroupNorm → act → 3x3 conv) twice, plus a 1x1 shortcut if channels change."""

    def __init__(self, c_in: int, c_out: int, groups: int, act_fn: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(groups, c_in, eps=1e-6),
            ACT2CLS[act_fn](),
            nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.GroupNorm(groups, c_out, eps=1e-6),
            ACT2CLS[act_fn](),
            nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.shortcut = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.body(x)


class ResStack(nn.Sequential):
    """A ``nn.Sequential`` of blocks that honours diffusers' gradient checkpointing.

    ``ModelMixin.enable_gradient_checkpointing`` finds the ``gradient_checkpointing`` attribute and sets
    ``_gradient_checkpointing_func``; then each block's activations are recomputed in the backward pass.
    """

    gradient_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        checkpoint = self.gradient_checkpointing and torch.is_grad_enabled()
        for block in self:
            x = self._gradient_checkpointing_func(block, x) if checkpoint else block(x)
        return x


def res_stack(
    channels: Sequence[int],
    layers_per_block: int,
    groups: int,
    act_fn: str,
    resample: Callable[[int], nn.Module],
    resample_last: bool,
    c_in: int | None = None,
) -> ResStack:
    """Stages of ``layers_per_block`` ``ResBlock`` at ``channels[i]``, each followed by ``resample(channels[i])``.

    ``resample_last=False`` leaves out the last stage's resampling (``AutoencoderKL``'s layout: one resampling
    between consecutive stages); ``c_in`` is the input's channels (default ``channels[0]``).
    """
    blocks, current = [], channels[0] if c_in is None else c_in
    for i, c in enumerate(channels):
        for _ in range(layers_per_block):
            blocks.append(ResBlock(current, c, groups, act_fn))
            current = c
        if resample_last or i < len(channels) - 1:
            blocks.append(resample(c))
    return ResStack(*blocks)


def downsample(channels: int) -> nn.Module:
    # name="op" as in diffusers' Encoder: the default name registers the conv twice (a legacy alias), which
    # safetensors refuses to save as shared memory.
    return Downsample2D(channels, use_conv=True, padding=1, name="op")


def upsample(channels: int) -> nn.Module:
    return Upsample2D(channels, use_conv=True)


def execution_device(model: nn.Module) -> torch.device:
    """Where ``model`` computes: an offload hook's execution device, else the device of its weights.

    Under accelerate's (sequential) CPU offload the weights sit on ``meta`` or the CPU between calls, so
    ``model.device`` would say where they are stored, not where the work happens.
    """
    for module in model.modules():
        device = getattr(getattr(module, "_hf_hook", None), "execution_device", None)
        if device is not None:
            return torch.device(device if not isinstance(device, int) else f"cuda:{device}")
    return next(model.parameters()).device


def pad_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Pad images (B, C, H, W) with H = W ≤ ``size`` to ``size`` × ``size``, centred, repeating the border."""
    pad = size - x.shape[-1]
    if not pad:
        return x
    return F.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2), mode="replicate")


def crop_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """The centre ``size`` × ``size`` of (B, C, H, W): undoes ``pad_to``."""
    start = (x.shape[-1] - size) // 2
    return x if start == 0 and x.shape[-1] == size else x[..., start : start + size, start : start + size]


def likelihood_params(out: torch.Tensor, log_scale: torch.Tensor | None) -> torch.Tensor:
    """The decoder's likelihood parameters: Bernoulli logits (B, C, H, W) as they are (``log_scale`` None), or
    location and the learned per-channel log-scale (B, 2C, H, W) (see ``vae_hub.likelihood``)."""
    if log_scale is None:
        return out
    return torch.cat([out, log_scale.view(1, -1, 1, 1).expand_as(out)], dim=1)
