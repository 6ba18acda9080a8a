"""VAEModel: shapes and types of the diffusers-style API, sampling, reparameterization, config validation."""

import pytest
import torch
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from tiny import tiny_vae as tiny

from vae_hub.models import VAEModel, VAEOutput


LIKELIHOODS = ("bernoulli", "gaussian", "laplace")


def images(model: VAEModel, batch: int = 3, seed: int = 0) -> torch.Tensor:
    c, s = model.config.in_channels, model.config.sample_size
    return torch.rand(batch, c, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ---------------------------------------------------------------- shapes and types


@pytest.mark.parametrize(
    "channels, size, blocks, likelihood",
    [
        (1, 28, (8, 16), "bernoulli"),
        (3, 32, (8, 16), "gaussian"),
        (1, 64, (8, 8, 16), "laplace"),
        # sizes that 2**len(blocks) does not divide: padded at the input, cropped at the output
        (3, 30, (8, 16), "bernoulli"),
        (1, 27, (8, 16, 16), "gaussian"),
        (3, 5, (8, 16), "laplace"),
    ],
)
def test_encode_decode_forward_shapes(channels, size, blocks, likelihood):
    model = tiny(in_channels=channels, sample_size=size, block_out_channels=blocks, likelihood=likelihood)
    x = images(model)

    encoded = model.encode(x)
    assert isinstance(encoded, AutoencoderKLOutput)
    posterior = encoded.latent_dist
    assert isinstance(posterior, DiagonalGaussianDistribution)
    assert posterior.mean.shape == posterior.std.shape == (3, 4, 1, 1)
    assert posterior.sample().shape == (3, 4, 1, 1)

    for z in (posterior.mean.flatten(1), posterior.sample()):  # (B, D) and (B, D, 1, 1)
        decoded = model.decode(z)
        assert type(decoded) is DecoderOutput
        assert decoded.sample.shape == x.shape and decoded.sample.dtype == torch.float32

    out = model(x)
    assert isinstance(out, VAEOutput) and isinstance(out, DecoderOutput)
    assert out.sample.shape == x.shape
    assert out.latents.shape == (3, 4)
    params_per_channel = 1 if likelihood == "bernoulli" else 2
    assert out.decoder_params.shape == (3, params_per_channel * channels, size, size)
    assert isinstance(out.latent_dist, DiagonalGaussianDistribution)


def test_return_dict_false_gives_tuples():
    model = tiny()
    x = images(model)
    (posterior,) = model.encode(x, return_dict=False)
    assert isinstance(posterior, DiagonalGaussianDistribution)
    (decoded,) = model.decode(posterior.mean, return_dict=False)
    (recon,) = model(x, return_dict=False)
    assert torch.equal(decoded, recon)  # forward without sampling decodes the posterior mean
    assert torch.equal(recon, model(x).sample)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_outputs_stay_in_pixel_range(likelihood):
    model = tiny(likelihood=likelihood)
    with torch.no_grad():  # push the decoder far out so that an unbounded mean would leave [-1, 1]
        model.decoder.conv_out.bias.fill_(50.0)
        high = model.decode(torch.randn(4, 4) * 10).sample
        model.decoder.conv_out.bias.fill_(-50.0)
        low = model(images(model)).sample
    assert high.min() >= -1 and high.max() <= 1 and high.max() == 1
    assert low.min() >= -1 and low.max() <= 1 and low.min() == -1


def test_wrong_input_shapes_are_refused_clearly():
    model = tiny(in_channels=1, sample_size=28)
    for bad in (torch.zeros(2, 3, 28, 28), torch.zeros(2, 1, 32, 32), torch.zeros(2, 1, 20, 20), torch.zeros(28, 28)):
        with pytest.raises(ValueError, match=r"expected images \(B, 1, 28, 28\)"):
            model.encode(bad)
    for bad in (torch.zeros(2, 5), torch.zeros(2, 4, 2, 2), torch.zeros(2, 1, 2, 2), torch.zeros(4)):
        with pytest.raises(ValueError, match=r"expected latents \(B, 4\)"):
            model.decode(bad)


# ---------------------------------------------------------------- reparameterization and seeds


def test_posterior_sample_is_mu_plus_sigma_eps():
    model = tiny()
    posterior = model.encode(images(model)).latent_dist
    z = model.reparameterize(posterior, torch.Generator().manual_seed(7))
    eps = torch.randn(3, 4, generator=torch.Generator().manual_seed(7))
    mu, sigma = posterior.mean.flatten(1), posterior.std.flatten(1)
    torch.testing.assert_close(z, mu + sigma * eps, rtol=0, atol=0)
    # the same draw as diffusers' own DiagonalGaussianDistribution.sample with that seed
    torch.testing.assert_close(z, posterior.sample(torch.Generator().manual_seed(7)).flatten(1), rtol=0, atol=0)


def test_forward_sample_posterior_uses_the_generator():
    model = tiny(likelihood="gaussian")
    x = images(model)
    a = model(x, sample_posterior=True, generator=torch.Generator().manual_seed(1))
    b = model(x, sample_posterior=True, generator=torch.Generator().manual_seed(1))
    c = model(x, sample_posterior=True, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.latents, b.latents) and torch.equal(a.sample, b.sample)
    assert not torch.equal(a.latents, c.latents)
    assert not torch.equal(a.latents, a.latent_dist.mean.flatten(1))  # a sample, not the mean


def test_gradients_reach_the_encoder_through_the_sampled_z():
    model = tiny()
    x = images(model)
    z = model.reparameterize(model.encode(x).latent_dist, torch.Generator().manual_seed(0))
    model.decode_params(z).square().sum().backward()  # depends on the encoder only through z
    grad = model.encoder.to_moments.weight.grad
    d = model.config.latent_dim
    assert grad[:d].abs().sum() > 0  # rows producing μ
    assert grad[d:].abs().sum() > 0  # rows producing log σ²: only reachable through σ·ε
    assert model.encoder.conv_in.weight.grad.abs().sum() > 0

    model.zero_grad()
    model(x, sample_posterior=False).decoder_params.square().sum().backward()  # z = μ: σ gets no gradient
    assert model.encoder.to_moments.weight.grad[d:].abs().sum() == 0


# ---------------------------------------------------------------- generation


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_generate_shape_range_and_seeds(likelihood):
    model = tiny(in_channels=3, sample_size=30, likelihood=likelihood)
    a = model.generate(5, torch.Generator().manual_seed(0))
    b = model.generate(5, torch.Generator().manual_seed(0))
    c = model.generate(5, torch.Generator().manual_seed(1))
    assert a.shape == (5, 3, 30, 30)
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_temperature_scales_the_standard_prior():
    model = tiny()
    z1 = model.sample_prior(6, torch.Generator().manual_seed(3))
    z_half = model.sample_prior(6, torch.Generator().manual_seed(3), temperature=0.5)
    torch.testing.assert_close(z_half, 0.5 * z1)
    cold = model.generate(6, torch.Generator().manual_seed(3), temperature=0.0)
    expected = model.decode(torch.zeros(1, 4)).sample
    torch.testing.assert_close(
        cold, expected.expand_as(cold)
    )  # float32 tolerances: a batch of 6 may convolve differently
    assert not torch.equal(model.generate(6, torch.Generator().manual_seed(3)), cold)


def test_mixture_prior_sampling():
    model = tiny(latent_dim=2)
    means = torch.tensor([[10.0, 0.0], [-10.0, 5.0]])
    model.set_mixture_prior(means, torch.full((2, 2), -8.0), torch.tensor([0.25, 0.75]).log())
    assert model.config.prior_components == 2

    z = model.sample_prior(2000, torch.Generator().manual_seed(0), prior="mixture")
    nearest = torch.cdist(z, means).argmin(1)
    torch.testing.assert_close(z, means[nearest], rtol=0, atol=0.2)  # σ = e^-4 around a centre
    assert abs(nearest.float().mean().item() - 0.75) < 0.05  # the component weights are respected
    cold = model.sample_prior(50, torch.Generator().manual_seed(0), temperature=0.0, prior="mixture")
    assert ((cold == means[0]).all(1) | (cold == means[1]).all(1)).all()

    a = model.generate(4, torch.Generator().manual_seed(5), prior="mixture")
    assert torch.equal(a, model.generate(4, torch.Generator().manual_seed(5), prior="mixture"))
    assert not torch.equal(a, model.generate(4, torch.Generator().manual_seed(5)))  # standard ≠ mixture


def test_mixture_prior_errors():
    model = tiny()
    with pytest.raises(ValueError, match="no mixture prior"):
        model.generate(2, prior="mixture")
    with pytest.raises(ValueError, match="prior must be one of"):
        model.generate(2, prior="gaussian")
    with pytest.raises(ValueError, match="do not fit"):
        model.set_mixture_prior(torch.zeros(3, 5), torch.zeros(3, 5), torch.zeros(3))
    with pytest.raises(ValueError, match="do not fit"):
        model.set_mixture_prior(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(2))
    for empty in (torch.zeros(0, 4), torch.zeros(4)):  # K = 0 would save buffers that the config says are absent
        with pytest.raises(ValueError, match="with K ≥ 1"):
            model.set_mixture_prior(empty, empty, torch.zeros(len(empty)))
    assert model.config.prior_components == 0


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    "field, value",
    [
        ("in_channels", 0),
        ("in_channels", 2.0),
        ("in_channels", True),
        ("out_channels", 3),
        ("sample_size", 0),
        ("sample_size", -28),
        ("layers_per_block", 0),
        ("latent_dim", 0),
        ("latent_dim", "16"),
        ("norm_num_groups", 0),
        ("block_out_channels", ()),
        ("block_out_channels", (8, -16)),
        ("block_out_channels", (8, 10)),
        ("act_fn", "sigmoidish"),
        ("likelihood", "poisson"),
        ("likelihood_scale", 0.0),
        ("likelihood_scale", "0.1"),
        ("learn_likelihood_scale", "no"),
        ("scaling_factor", -1.0),
        ("prior_components", -1),
        ("prior_components", 1.5),
    ],
)
def test_invalid_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        VAEModel(**{"block_out_channels": (8, 16), "norm_num_groups": 4, field: value})
