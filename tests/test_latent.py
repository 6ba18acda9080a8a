"""vae_hub.latent against closed forms, on tiny models and data made here."""

import math

import pytest
import torch
from tiny import tiny_vae

from vae_hub.images import uint8_to_float
from vae_hub.latent import (
    compute_scaling_factor,
    dimensions_by_kl,
    encode_images,
    grid_2d,
    lerp,
    principal_directions,
    project,
    slerp,
    traverse,
)
from vae_hub.losses import kl_per_dimension


@pytest.fixture(scope="module")
def model():
    return tiny_vae(sample_size=12, latent_dim=5).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randint(0, 256, (13, 1, 12, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def test_lerp_endpoints_and_midpoint():
    z0, z1 = torch.randn(6), torch.randn(6)
    path = lerp(z0, z1, 5)
    assert path.shape == (5, 6)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    torch.testing.assert_close(path[2], (z0 + z1) / 2)
    # evenly spaced along the line
    torch.testing.assert_close(path.diff(dim=0), ((z1 - z0) / 4).expand(4, 6))


def test_slerp_keeps_norm_and_is_uniform_in_angle():
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(8, generator=g), torch.randn(8, generator=g)
    z0, z1 = 3 * u / u.norm(), 3 * v / v.norm()
    path = slerp(z0, z1, 7)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    torch.testing.assert_close(path.norm(dim=1), torch.full((7,), 3.0))
    cos = (path[:-1] * path[1:]).sum(1) / 9.0
    total = math.acos(float(z0 @ z1) / 9.0)
    torch.testing.assert_close(torch.arccos(cos.clamp(-1, 1)), torch.full((6,), total / 6), atol=1e-4, rtol=0)
    # unequal norms: the norm goes linearly
    path = slerp(z0, 2 * z1, 5)
    torch.testing.assert_close(path.norm(dim=1), torch.linspace(3.0, 6.0, 5))


def test_slerp_parallel_antiparallel_and_zero():
    z = torch.tensor([1.0, 2.0, 2.0])
    torch.testing.assert_close(slerp(z, 2 * z, 5), lerp(z, 2 * z, 5))
    torch.testing.assert_close(slerp(torch.zeros(3), z, 4), lerp(torch.zeros(3), z, 4))
    path = slerp(z, -z, 5)
    assert torch.isfinite(path).all()
    torch.testing.assert_close(path.norm(dim=1), torch.full((5,), 3.0))
    torch.testing.assert_close(path[2] @ z, torch.tensor(0.0), atol=1e-5, rtol=0)  # a quarter turn at t = 1/2
    assert torch.equal(path[-1], -z)
    torch.testing.assert_close(slerp(z, -z, 5), path)  # deterministic


def test_paths_reject_bad_input():
    with pytest.raises(ValueError, match="steps"):
        lerp(torch.zeros(3), torch.ones(3), 1)
    with pytest.raises(ValueError, match="same shape"):
        slerp(torch.zeros(3), torch.ones(4), 3)


def test_traverse():
    z = torch.arange(4.0)
    codes = traverse(z, 2, [-1.0, 0.5, 7.0])
    assert codes.shape == (3, 4)
    assert torch.equal(codes[:, 2], torch.tensor([-1.0, 0.5, 7.0]))
    assert torch.equal(codes[:, [0, 1, 3]], z[[0, 1, 3]].expand(3, 3))
    with pytest.raises(ValueError, match="dim"):
        traverse(z, 4, [0.0])


def test_grid_over_dims_reads_like_a_plot():
    grid = grid_2d(None, dims=(1, 3), extent=2.0, n=3, latent_dim=4).view(3, 3, 4)
    assert torch.equal(grid[..., [0, 2]], torch.zeros(3, 3, 2))
    assert torch.equal(grid[0, :, 1], torch.tensor([-2.0, 0.0, 2.0]))  # x grows to the right
    assert torch.equal(grid[:, 0, 3], torch.tensor([2.0, 0.0, -2.0]))  # y grows upwards
    center = torch.tensor([1.0, 1.0, 1.0, 1.0])
    boxed = grid_2d(center, dims=(0, 1), extent=(0.0, 1.0, -1.0, 0.0), n=2)
    torch.testing.assert_close(boxed[:, :2], torch.tensor([[1.0, 1.0], [2.0, 1.0], [1.0, 0.0], [2.0, 0.0]]))


def test_grid_over_directions_spans_the_plane():
    directions = torch.tensor([[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    center = torch.tensor([1.0, -1.0, 0.5])
    grid = grid_2d(center, directions=directions, extent=1.5, n=4)
    coords = project(grid, directions, center)
    xs = torch.linspace(-1.5, 1.5, 4)
    torch.testing.assert_close(coords[:, 0], xs.repeat(4))
    torch.testing.assert_close(coords[:, 1], xs.flip(0).repeat_interleave(4))
    with pytest.raises(ValueError, match="exactly one"):
        grid_2d(center, dims=(0, 1), directions=directions)
    with pytest.raises(ValueError, match="two different"):
        grid_2d(center, dims=(1, 1))


def test_principal_directions_recover_a_known_direction():
    g = torch.Generator().manual_seed(0)
    true = torch.tensor([1.0, 2.0, -2.0, 0.0, 0.0]) / 3.0
    codes = 5.0 * torch.randn(4000, 1, generator=g) * true + 0.1 * torch.randn(4000, 5, generator=g) + 7.0
    mean, directions, variances = principal_directions(codes, k=2)
    torch.testing.assert_close(mean, torch.full((5,), 7.0), atol=0.3, rtol=0)
    torch.testing.assert_close(directions[0], -true, atol=0.01, rtol=0)  # sign: largest entry (−2/3 · −1) positive
    torch.testing.assert_close(directions @ directions.T, torch.eye(2), atol=1e-5, rtol=0)
    assert variances[0] == pytest.approx(25.0, rel=0.1) and variances[1] == pytest.approx(0.01, rel=0.3)
    coords = project(codes, directions, mean)
    torch.testing.assert_close(coords.var(0), variances, rtol=1e-4, atol=1e-6)


def test_encode_images_batched_equals_one_shot(model, images):
    one_shot = model.encode(uint8_to_float(images)).latent_dist.mean.flatten(1)
    batched = encode_images(model, images, batch_size=4)
    assert batched.shape == (13, 5)
    torch.testing.assert_close(batched, one_shot, atol=1e-5, rtol=1e-5)
    a = encode_images(model, images, batch_size=5, generator=torch.Generator().manual_seed(3), sample=True)
    b = encode_images(model, images, batch_size=5, generator=torch.Generator().manual_seed(3), sample=True)
    assert torch.equal(a, b) and not torch.allclose(a, batched)
    assert encode_images(model, images[:0]).shape == (0, 5)
    with pytest.raises(ValueError, match="model wants"):
        encode_images(model, torch.zeros(2, 3, 12, 12, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8"):
        encode_images(model, torch.zeros(2, 1, 12, 12))


def test_scaling_factor_is_inverse_std_of_posterior_samples(model, images):
    factor = compute_scaling_factor(model, images, batch_size=4, generator=torch.Generator().manual_seed(0))
    z = encode_images(model, images, batch_size=4, generator=torch.Generator().manual_seed(0), sample=True)
    assert factor == pytest.approx(1.0 / z.std().item(), rel=1e-6)


def test_dimensions_by_kl(model, images):
    order, kl = dimensions_by_kl(model, images, batch_size=6)
    expected = kl_per_dimension(model.encode(uint8_to_float(images)).latent_dist).mean(0)
    torch.testing.assert_close(kl, expected, atol=1e-5, rtol=1e-4)
    assert sorted(order.tolist()) == list(range(5))
    assert (kl[order].diff() <= 0).all()
