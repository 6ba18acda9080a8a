"""The observation models p(x | z): Bernoulli cross-entropy and the discretised Gaussian / Laplace masses."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from torch.distributions import Laplace, Normal

from vae_hub import likelihood as lik


LEVELS = torch.arange(256, dtype=torch.float32) / 127.5 - 1  # the 256 8-bit values in [-1, 1] pixel units
BIN = 2 / 255
FAMILIES = {"gaussian": Normal, "laplace": Laplace}


def level_params(loc: float, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One single-pixel image per 8-bit level, all with the same (loc, log scale): x (256,1,1,1), params (256,2,1,1)."""
    x = LEVELS.view(256, 1, 1, 1)
    params = torch.cat([torch.full_like(x, loc), torch.full_like(x, math.log(scale))], dim=1)
    return params, x


def test_bernoulli_is_the_binary_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 2, 5, 5, generator=gen) * 4
    x = torch.rand(3, 2, 5, 5, generator=gen) * 2 - 1
    expected = -F.binary_cross_entropy_with_logits(logits, (x + 1) / 2, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(lik.log_prob(logits, x, "bernoulli"), expected)


@pytest.mark.parametrize("likelihood", ["gaussian", "laplace"])
@pytest.mark.parametrize("loc", [-3.0, -1.0, -0.37, 0.2, 0.999, 1.4])
@pytest.mark.parametrize("scale", [1e-3, 0.02, 0.3, 2.0, 30.0])
def test_discretised_masses_sum_to_one(likelihood, loc, scale):
    params, x = level_params(loc, scale)
    log_mass = lik.log_prob(params, x, likelihood)
    assert torch.isfinite(log_mass).all() and (log_mass <= 1e-6).all()
    assert abs(log_mass.double().exp().sum().item() - 1.0) < 1e-4


def reference_log_mass(likelihood: str, loc: float, scale: float) -> np.ndarray:
    """log P(bin) of every level in float64 (SciPy): from the CDF left of loc, the survival function right of it."""
    dist = {"gaussian": scipy.stats.norm, "laplace": scipy.stats.laplace}[likelihood](loc, scale)
    levels = LEVELS.double().numpy()
    lo, hi = levels - BIN / 2, levels + BIN / 2
    with np.errstate(divide="ignore"):  # each side is -inf where the other side is the one used
        left = dist.logcdf(hi) + np.log1p(-np.exp(dist.logcdf(lo) - dist.logcdf(hi)))  # F(hi) − F(lo)
        right = dist.logsf(lo) + np.log1p(-np.exp(dist.logsf(hi) - dist.logsf(lo)))  # S(lo) − S(hi)
    interior = np.where(lo > loc, right, left)
    return np.concatenate([dist.logcdf(hi[:1]), interior[1:-1], dist.logsf(lo[-1:])])  # end bins take the tails


@pytest.mark.parametrize("likelihood", ["gaussian", "laplace"])
@pytest.mark.parametrize("loc, scale", [(0.1, 0.3), (-0.9, 0.05), (0.95, 1.0), (0.3, 0.004), (-0.2, 30.0)])
def test_discretised_log_masses_are_exact_also_in_the_tails(likelihood, loc, scale):
    """Interior bins hold F(x + bin/2) − F(x − bin/2) and the end bins the tails beyond them, to float32 accuracy
    even hundreds of nats out in the tails (where the mass itself underflows)."""
    params, x = level_params(loc, scale)
    expected = torch.from_numpy(reference_log_mass(likelihood, loc, scale)).float()
    assert expected.min() < -30 or scale > 0.2  # the narrow cases really reach the far tails
    torch.testing.assert_close(lik.log_prob(params, x, likelihood), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("likelihood", ["gaussian", "laplace"])
@pytest.mark.parametrize("scale", [0.05, 0.2])
def test_narrow_bins_have_mass_close_to_density_times_width(likelihood, scale):
    """When a bin is narrow next to the scale, P(bin) ≈ p(x)·(2/255): the discrete model tracks the density."""
    loc = 0.1
    params, x = level_params(loc, scale)
    distance = (LEVELS - loc).abs()
    interior = (distance < 3 * scale) & (distance > BIN) & (LEVELS.abs() < 0.99)  # Laplace has a kink at loc
    density = FAMILIES[likelihood](loc, scale).log_prob(LEVELS) + math.log(BIN)
    log_mass = lik.log_prob(params, x, likelihood)
    # the error of the midpoint rule is of order (bin / scale)²: 0.025 nats at scale 0.05, 0.0015 at 0.2
    torch.testing.assert_close(log_mass[interior], density[interior], rtol=0, atol=(BIN / scale) ** 2)


@pytest.mark.parametrize("likelihood", ["gaussian", "laplace"])
def test_log_prob_sums_pixels_and_has_finite_gradients_in_the_tails(likelihood):
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2, 3, 4, 4), generator=gen).float() / 127.5 - 1
    loc = (torch.randn(2, 3, 4, 4, generator=gen) * 5).requires_grad_()  # many pixels far in the tails
    log_scale = torch.full((2, 3, 4, 4), math.log(0.01), requires_grad=True)
    per_image = lik.log_prob(torch.cat([loc, log_scale], 1), x, likelihood)
    assert per_image.shape == (2,)
    first_pixel = torch.stack([loc[:1, 0, :1, :1], log_scale[:1, 0, :1, :1]], 1)
    one_pixel = lik.log_prob(first_pixel, x[:1, :1, :1, :1], likelihood)
    assert one_pixel.shape == (1,) and (one_pixel >= per_image[:1]).all()  # more pixels, less probability
    per_image.sum().backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(log_scale.grad).all()


def test_mean_and_metadata():
    logits = torch.tensor([[[[-100.0, 0.0, 100.0]]]])
    torch.testing.assert_close(lik.mean(logits, "bernoulli"), torch.tensor([[[[-1.0, 0.0, 1.0]]]]))
    params = torch.tensor([[[[-3.0, 0.25, 7.0]]], [[[0.0, 0.0, 0.0]]]]).view(1, 2, 1, 3)
    for family in ("gaussian", "laplace"):
        torch.testing.assert_close(lik.mean(params, family), torch.tensor([[[[-1.0, 0.25, 1.0]]]]))
    assert [lik.is_discrete(name) for name in lik.LIKELIHOODS] == [False, True, True]
    assert [lik.num_parameters(name) for name in lik.LIKELIHOODS] == [1, 2, 2]
