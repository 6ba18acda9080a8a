"""Building blocks shared by ``VAEModel`` and ``SpatialVAEModel``: residual blocks and the stacks made of them."""

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.models.activations import ACT2CLS
from diffusers.models.downsampling import Downsample2D
from diffusers.models.upsampling import Upsample2D


class ResBlock(nn.Module):
    """Pre-activation residual block: (GroupNorm → act → 3x3 conv) twice, plus a 1x1 shortcut if channels change."""

    def __init__(self, c_in: int, c_out: int, groups: int, act_fn: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(groups, c_in, eps=1e-6), ACT2CLS[act_fn](), nn.Conv2d(c_in, c_out, 3, padding=1),
            nn.GroupNorm(groups, c_out, eps=1e-6), ACT2CLS[act_fn](), nn.Conv2d(c_out, c_out, 3, padding=1),
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
