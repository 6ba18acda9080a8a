"""What the decoder's output means: the observation model p(x | z).

The config field ``likelihood`` selects one of three families. The decoder emits a *parameter tensor*
(like the ``parameters`` of diffusers' ``DiagonalGaussianDistribution``) and everything else — the mean
image shown to users, the reconstruction loss, the evaluation — reads it through the two functions here:

* ``"bernoulli"``: parameters are logits, shape (B, C, H, W). Each intensity in [0, 1] is scored with the
  binary cross-entropy. On intensities between 0 and 1 this is a *cross-entropy*, not a density of the data (an
  intensity strictly between 0 and 1 can never reach probability 1), so no bits/dim are reported for it.
* ``"gaussian"``: parameters are (mean, log σ) stacked on the channel axis, shape (B, 2C, H, W).
* ``"laplace"``:  parameters are (location, log b) stacked likewise.

The Gaussian and Laplace likelihoods are *discretised* to the 256 levels of 8-bit images (the probability
mass of each pixel's bin, as in PixelCNN++), so their negative log-likelihood is a true code length and
bits/dim are meaningful. Pixels live in [-1, 1], so a bin is 2/255 wide; the two end bins take the tails.

All log-probabilities are in nats, summed over channels and pixels: shape (B,).
"""

import math

import torch
import torch.nn.functional as F


LIKELIHOODS = ("bernoulli", "gaussian", "laplace")
NUM_LEVELS = 256
_HALF_BIN = 1.0 / (NUM_LEVELS - 1)  # half of a bin's width in [-1, 1] pixel units


def is_discrete(likelihood: str) -> bool:
    """True when ``log_prob`` is the log-mass of 8-bit pixels, so bits/dim are a true code length."""
    return likelihood != "bernoulli"


def num_parameters(likelihood: str) -> int:
    """How many decoder output channels each image channel needs (1 for logits, 2 for location and scale)."""
    return 1 if likelihood == "bernoulli" else 2


def mean(params: torch.Tensor, likelihood: str) -> torch.Tensor:
    """The expected image E[x | z] in [-1, 1] pixel units, shape (B, C, H, W)."""
    if likelihood == "bernoulli":
        return torch.sigmoid(params) * 2.0 - 1.0
    loc, _ = params.chunk(2, dim=1)
    return loc.clamp(-1.0, 1.0)


def log_prob(params: torch.Tensor, x: torch.Tensor, likelihood: str) -> torch.Tensor:
    """log p(x | z) in nats per image, shape (B,).

    Args:
        params: decoder output, (B, C, H, W) for ``"bernoulli"`` and (B, 2C, H, W) otherwise.
        x: images in [-1, 1], (B, C, H, W).
        likelihood: one of ``LIKELIHOODS``.
    """
    params, x = params.float(), x.float()  # the loss is always computed in fp32, also under autocast
    if likelihood == "bernoulli":
        target = (x + 1.0) / 2.0
        per_pixel = -F.binary_cross_entropy_with_logits(params, target, reduction="none")
    else:
        loc, log_scale = params.chunk(2, dim=1)
        per_pixel = _discretised_log_mass(x, loc, log_scale, likelihood)
    return per_pixel.flatten(1).sum(dim=1)


def _discretised_log_mass(x, loc, log_scale, likelihood):
    """log P(bin of x) for a continuous Gaussian/Laplace on [-1, 1], with the tails folded into the end bins.

    An interior bin holds F(upper) − F(lower). Right of the location both CDF values are close to 1 and their
    difference cancels in float32, so there the mirror image F(−lower) − F(−upper) is used (both families are
    symmetric). The difference is taken in log space, log(F(a) − F(b)) = log F(a) + log(1 − F(b)/F(a)), which
    stays exact far in the tails, where the mass itself underflows.
    """
    log_cdf = torch.special.log_ndtr if likelihood == "gaussian" else _laplace_log_cdf
    scale = log_scale.exp()
    upper = (x + _HALF_BIN - loc) / scale
    lower = (x - _HALF_BIN - loc) / scale
    mirror = lower > 0
    log_big = log_cdf(torch.where(mirror, -lower, upper))
    log_small = log_cdf(torch.where(mirror, -upper, lower))
    # the clamp keeps the log (and its gradient) finite should a bin be too narrow for float32 to resolve
    interior = log_big + (-torch.expm1(log_small - log_big)).clamp_min(1e-30).log()
    lowest = log_cdf(upper)  # bin of -1: all the mass below its upper edge
    highest = log_cdf(-lower)  # bin of +1: all the mass above its lower edge
    return torch.where(x < -1.0 + _HALF_BIN, lowest, torch.where(x > 1.0 - _HALF_BIN, highest, interior))


def _laplace_log_cdf(u: torch.Tensor) -> torch.Tensor:
    """log F(u) of the standard Laplace distribution, F(u) = ½e^u for u < 0 and 1 − ½e^−u otherwise."""
    return torch.where(u < 0, u - math.log(2.0), torch.log1p(-0.5 * torch.exp(-u.abs())))
