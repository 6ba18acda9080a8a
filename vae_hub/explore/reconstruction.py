"""The Reconstruct tab: an image's reconstruction and its posterior, per dimension (a vector VAE) or as latent
maps (a spatial model)."""

import functools
import math
from dataclasses import dataclass

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch

from .. import likelihood as lik
from ..images import uint8_to_float
from ..latent import latent_channel_images
from ..losses import kl_per_dimension
from ..models import AnyModel, AutoencoderKLWithLikelihood, SpatialVAEModel
from .checks import ACTIVE_KL_NATS
from .display import _figure, _figure_to_pil, show
from .kinds import MAP_MODELS


@dataclass
class Reconstruction:
    """What the Reconstruct tab shows, in widget order (``astuple``)."""

    input: PIL.Image.Image  # the image as the model sees it, enlarged
    reconstruction: PIL.Image.Image  # decode(μ(x)), enlarged
    posterior: PIL.Image.Image  # chart of the posterior mean ± std per dimension
    code: dict  # {"mean": [...], "std": [...], "kl_nats": [...]}: the posterior, per dimension
    summary: str  # markdown: the numbers and any conversion notes

    def astuple(self) -> tuple:
        return self.input, self.reconstruction, self.posterior, self.code, self.summary


POSTERIOR_RANGE = 5.0  # the chart's y axis: ± this many prior standard deviations


@functools.lru_cache(maxsize=8)
def _posterior_axes(d: int) -> tuple[PIL.Image.Image, tuple[float, float, float, float]]:
    """The chart's empty axes for D dimensions (matplotlib, ~0.1 s) and their plot area in pixels, drawn once."""
    fig = _figure(720, 300)
    ax = fig.add_axes([0.08, 0.17, 0.9, 0.72])
    ax.axhspan(-1, 1, color="#e8e8f0", zorder=0)
    ax.axhline(0, color="#999", lw=0.8, zorder=1)
    ax.set_xlim(-0.7, d - 0.3)
    ax.set_ylim(-POSTERIOR_RANGE, POSTERIOR_RANGE)
    ax.set_xticks(range(d) if d <= 40 else range(0, d, math.ceil(d / 40)))
    ax.tick_params(labelsize=8)
    ax.set_xlabel(
        "latent dimension (colour: KL to the prior, brighter = more information; band: prior ±1 std)", fontsize=9
    )
    ax.set_title("posterior q(z | x): mean ± std of each dimension", fontsize=10)
    image = _figure_to_pil(fig)
    x0, y0, x1, y1 = ax.get_window_extent().extents
    return image, (x0, image.height - y1, x1, image.height - y0)


def posterior_chart(mean: np.ndarray, std: np.ndarray, kl: np.ndarray) -> PIL.Image.Image:
    """Per-dimension posterior mean ± std (D,) over the prior's ±1 band, coloured by KL (nats).

    The points are drawn with PIL onto cached axes: a figure per request would cost ~0.1 s of CPU. A mean
    beyond the axis is drawn as a triangle at its edge, pointing the way it went.
    """
    from matplotlib import colormaps

    d = len(mean)
    base, (left, top, right, bottom) = _posterior_axes(d)
    image = base.copy()
    draw = PIL.ImageDraw.Draw(image)
    colours = colormaps["viridis"](np.clip(kl / max(float(kl.max()), 1e-6), 0, 1) * 0.85)

    def y_px(v: float) -> float:
        return top + (POSTERIOR_RANGE - np.clip(v, -POSTERIOR_RANGE, POSTERIOR_RANGE)) / (2 * POSTERIOR_RANGE) * (
            bottom - top
        )

    for j in range(d):
        colour = tuple(int(255 * c) for c in colours[j][:3])
        x = left + (j + 0.7) / d * (right - left)
        lo, hi, m = y_px(mean[j] - std[j]), y_px(mean[j] + std[j]), y_px(mean[j])
        draw.line((x, lo, x, hi), fill=colour, width=2)
        for cap in (lo, hi):
            draw.line((x - 4, cap, x + 4, cap), fill=colour, width=2)
        if abs(mean[j]) > POSTERIOR_RANGE:
            tip, back = (m - 7, m + 2) if mean[j] > 0 else (m + 7, m - 2)
            draw.polygon([(x, tip), (x - 6, back), (x + 6, back)], fill=colour)
        else:
            draw.ellipse((x - 4, m - 4, x + 4, m + 4), fill=colour)
    return image


@torch.inference_mode()
def reconstruct(model: AnyModel, x_uint8: torch.Tensor, notes: list[str] = ()) -> Reconstruction:
    """Encode uint8 (1, C, S, S), decode the posterior mean; report −log p(x | z = μ) and the KL, in nats.

    A spatial model's third picture is its latent map, channel by channel, as a diffusion model sees it."""
    x = uint8_to_float(x_uint8)
    if isinstance(model, MAP_MODELS):
        return reconstruct_spatial(model, x, notes)
    posterior = model.encode(x).latent_dist
    mu = posterior.mean.flatten(1)
    params = model.decode_params(mu)
    rec = -lik.log_prob(params, x, model.config.likelihood)[0].item()
    kl_dims = kl_per_dimension(posterior)[0]
    kl = kl_dims.sum().item()
    mean, std, kl_np = mu[0].numpy(), posterior.std.flatten(1)[0].numpy(), kl_dims.numpy()
    summary = (
        f"**−log p(x | z = μ)** {rec:.1f} nats · **KL(q ‖ p)** {kl:.1f} nats · **total** {rec + kl:.1f} nats "
        f"({model.config.likelihood} likelihood) · {int((kl_np > ACTIVE_KL_NATS).sum())}/{len(kl_np)} dimensions "
        "carry information"
    )
    if notes:
        summary += "\n\nInput: " + "; ".join(notes) + "."
    return Reconstruction(
        input=show(x, nrow=1, width=336),
        reconstruction=show(lik.mean(params, model.config.likelihood), nrow=1, width=336),
        posterior=posterior_chart(mean, std, kl_np),
        code={"mean": mean.round(4).tolist(), "std": std.round(4).tolist(), "kl_nats": kl_np.round(4).tolist()},
        summary=summary,
    )


def reconstruct_spatial(
    model: SpatialVAEModel | AutoencoderKLWithLikelihood, x: torch.Tensor, notes: list[str] = ()
) -> Reconstruction:
    """``reconstruct`` for a ``SpatialVAEModel``: the latent channels (scaled and shifted as a diffusion model
    sees them, ±3 std from black to white) instead of the per-dimension chart."""
    posterior = model.encode(x).latent_dist
    params = model.decode_params(posterior.mean)
    rec = -lik.log_prob(params, x, model.config.likelihood)[0].item()
    kl = posterior.kl()[0].item()
    cfg = model.config
    scaled = (posterior.mean[0] - (cfg.shift_factor or 0.0)) * cfg.scaling_factor  # (C, h, w)
    maps = latent_channel_images(posterior.mean, cfg.scaling_factor, cfg.shift_factor)
    shape = "×".join(map(str, model.latent_shape))
    summary = (
        f"**−log p(x | z = μ)** {rec:.1f} nats · **KL(q ‖ p)** {kl:.1f} nats ({cfg.likelihood} likelihood) · "
        f"latents {shape}: the {cfg.latent_channels} small images are what a diffusion model sees, "
        f"(z − shift) × scaling factor {cfg.scaling_factor:.3g}"
    )
    if notes:
        summary += "\n\nInput: " + "; ".join(notes) + "."
    return Reconstruction(
        input=show(x, nrow=1, width=336),
        reconstruction=show(lik.mean(params, cfg.likelihood), nrow=1, width=336),
        posterior=show(maps, nrow=cfg.latent_channels, width=720),
        code={
            "shape": list(model.latent_shape),
            "channel_mean": scaled.flatten(1).mean(1).round(decimals=4).tolist(),
            "channel_std": scaled.flatten(1).std(1).round(decimals=4).tolist(),
            "kl_nats": round(kl, 4),
        },
        summary=summary,
    )
