"""The negative ELBO: the KL term against torch.distributions, the split into terms, β, warm-up and free bits."""

import pytest
import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from torch.distributions import Normal, kl_divergence

from vae_hub import likelihood as lik
from vae_hub.losses import kl_per_dimension, kl_weight, negative_elbo
from vae_hub.models import VAEModel


def posterior(batch: int = 5, dim: int = 6, seed: int = 0, spread: float = 3.0) -> DiagonalGaussianDistribution:
    """A posterior with (B, 2D, 1, 1) moments like VAEModel.encode gives: μ and log σ² over a wide range."""
    moments = torch.randn(batch, 2 * dim, 1, 1, generator=torch.Generator().manual_seed(seed)) * spread
    return DiagonalGaussianDistribution(moments)


def reference_kl(q: DiagonalGaussianDistribution) -> torch.Tensor:
    mu, sigma = q.mean.flatten(1), q.std.flatten(1)
    return kl_divergence(Normal(mu, sigma), Normal(torch.zeros_like(mu), torch.ones_like(sigma))).sum(-1)


@pytest.mark.parametrize("seed, spread", [(0, 0.1), (1, 1.0), (2, 3.0)])
def test_kl_matches_torch_distributions(seed, spread):
    q = posterior(seed=seed, spread=spread)
    expected = reference_kl(q)
    assert kl_per_dimension(q).shape == (5, 6)
    torch.testing.assert_close(kl_per_dimension(q).sum(1), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(q.kl(), expected, rtol=1e-5, atol=1e-5)  # diffusers' own KL agrees
    params, x = torch.zeros(5, 1, 4, 4), torch.zeros(5, 1, 4, 4)
    terms = negative_elbo(params, x, q, "bernoulli")
    torch.testing.assert_close(terms.kl, expected.mean(), rtol=1e-5, atol=1e-5)


def test_kl_of_the_prior_itself_is_zero():
    q = DiagonalGaussianDistribution(torch.zeros(3, 8, 1, 1))  # μ = 0, log σ² = 0
    assert torch.equal(kl_per_dimension(q), torch.zeros(3, 4))


def test_terms_are_nats_per_image():
    """reconstruction = batch mean of −log p(x|z) summed over pixels; negative_elbo = reconstruction + kl."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 5, 5), generator=gen).float() / 127.5 - 1
    params = torch.randn(4, 6, 5, 5, generator=gen)
    q = posterior(batch=4)
    terms = negative_elbo(params, x, q, "gaussian", beta=1.0)
    torch.testing.assert_close(terms.reconstruction, -lik.log_prob(params, x, "gaussian").mean())
    torch.testing.assert_close(terms.kl, kl_per_dimension(q).sum(1).mean())
    torch.testing.assert_close(terms.negative_elbo, terms.reconstruction + terms.kl)
    torch.testing.assert_close(terms.loss, terms.negative_elbo)
    for t in (terms.loss, terms.reconstruction, terms.kl, terms.negative_elbo):
        assert t.shape == ()
    # doubling the batch with the same images leaves every per-image term unchanged
    twice = negative_elbo(
        params.repeat(2, 1, 1, 1),
        x.repeat(2, 1, 1, 1),
        DiagonalGaussianDistribution(q.parameters.repeat(2, 1, 1, 1)),
        "gaussian",
    )
    torch.testing.assert_close(twice.negative_elbo, terms.negative_elbo)


def test_beta_weights_only_the_loss():
    x, params, q = torch.zeros(5, 1, 4, 4), torch.randn(5, 1, 4, 4), posterior()
    plain = negative_elbo(params, x, q, "bernoulli", beta=1.0)
    weighted = negative_elbo(params, x, q, "bernoulli", beta=0.25)
    assert weighted.beta == 0.25
    torch.testing.assert_close(weighted.loss, plain.reconstruction + 0.25 * plain.kl)
    torch.testing.assert_close(weighted.negative_elbo, plain.negative_elbo)  # the bound itself is never β-weighted
    torch.testing.assert_close(weighted.kl, plain.kl)


def test_free_bits_floor_each_dimension():
    x, params = torch.zeros(4, 1, 4, 4), torch.zeros(4, 1, 4, 4)

    def moments() -> torch.Tensor:  # D = 3, moments = [μ_0, μ_1, μ_2, log σ²_0, log σ²_1, log σ²_2]
        return torch.tensor([3.0, 0.5, 0.0, 0.0, 0.0, 0.5]).repeat(4, 1)[:, :, None, None].requires_grad_()

    kl_dims = torch.tensor([4.5, 0.125, 0.5 * (torch.e**0.5 - 1.5)])  # ½(μ² + σ² − 1 − log σ²): only dim 0 > 0.5

    m = moments()
    terms = negative_elbo(params, x, DiagonalGaussianDistribution(m), "bernoulli", free_bits=0.5)
    torch.testing.assert_close(terms.kl, kl_dims.sum())
    torch.testing.assert_close(terms.negative_elbo, terms.reconstruction + kl_dims.sum())
    torch.testing.assert_close(terms.loss, terms.reconstruction + 4.5 + 2 * 0.5)  # floored dims count 0.5 each
    terms.loss.backward()
    grad = m.grad.flatten(1)
    assert (grad[:, 0] != 0).all()  # above the floor: the KL still pulls μ_0 towards 0
    assert (grad[:, [1, 2, 4, 5]] == 0).all()  # below it: no KL gradient for dimensions 1 and 2

    m = moments()  # control: without free bits those same dimensions do get a gradient
    negative_elbo(params, x, DiagonalGaussianDistribution(m), "bernoulli").loss.backward()
    assert (m.grad.flatten(1)[:, [1, 5]] != 0).all()


def test_kl_weight_warms_up_linearly():
    assert kl_weight(0, beta=2.0, warmup_steps=100) == 0.0
    assert kl_weight(25, beta=2.0, warmup_steps=100) == 0.5
    assert kl_weight(100, beta=2.0, warmup_steps=100) == 2.0
    assert kl_weight(10_000, beta=2.0, warmup_steps=100) == 2.0
    assert kl_weight(0, beta=0.7) == 0.7  # no warm-up


def test_elbo_of_a_model_batch_is_finite_and_differentiable():
    model = VAEModel(block_out_channels=(8, 16), norm_num_groups=4, latent_dim=4, likelihood="laplace")
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    out = model(x, sample_posterior=True, generator=torch.Generator().manual_seed(0))
    terms = negative_elbo(out.decoder_params, x, out.latent_dist, model.config.likelihood, beta=kl_weight(5, 1.0, 10))
    assert torch.isfinite(terms.loss) and terms.beta == 0.5
    terms.loss.backward()
    assert model.log_scale.grad is not None and model.encoder.conv_in.weight.grad.abs().sum() > 0
