"""Operations on a VAE's latent space: encode many images, interpolate, traverse, grids, projections.

Latents are vector codes: one code is a (D,) tensor, a batch is (N, D) (``VAEModel``'s convention); encoding and
the scaling factor also serve ``SpatialVAEModel``, whose codes are maps (N, C, h, w).
Every function here returns codes; decode them with ``model.decode(z).sample``. Nothing here knows about
files, the Hub or Gradio — the Space (``vae_hub.explore``) and training call these functions.
"""

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from .images import uint8_to_float
from .losses import kl_per_dimension
from .models import SpatialVAEModel, VAEModel


# Below this angle (radians) two directions count as parallel (slerp = lerp), above π minus it as antiparallel.
_PARALLEL_EPS = 1e-4


# ---------------------------------------------------------------------------------------------- paths
def _fractions(steps: int, like: torch.Tensor) -> torch.Tensor:
    """``steps`` evenly spaced t in [0, 1], shape (steps, 1), dtype/device of ``like``."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (the two endpoints), got {steps}")
    return torch.linspace(0.0, 1.0, steps, dtype=like.dtype, device=like.device)[:, None]


def _check_pair(z0: torch.Tensor, z1: torch.Tensor) -> None:
    if z0.ndim != 1 or z0.shape != z1.shape:
        raise ValueError(f"expected two codes of the same shape (D,), got {tuple(z0.shape)} and {tuple(z1.shape)}")


def lerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Straight line from ``z0`` to ``z1`` (both (D,)): (steps, D), z(t) = (1 − t)·z0 + t·z1, t = 0 … 1."""
    _check_pair(z0, z1)
    t = _fractions(steps, z0)
    path = (1.0 - t) * z0 + t * z1
    path[0], path[-1] = z0, z1  # exact endpoints, whatever the rounding
    return path


def slerp(z0: torch.Tensor, z1: torch.Tensor, steps: int) -> torch.Tensor:
    """Spherical interpolation from ``z0`` to ``z1`` (both (D,)): (steps, D).

    The direction turns at constant angular speed along the great circle through ẑ0 and ẑ1 while the norm
    goes linearly from ‖z0‖ to ‖z1‖, so for equal-norm endpoints every point keeps that norm. Under a
    N(0, I) prior, codes concentrate near the sphere of radius √D; the straight line (``lerp``) cuts
    through its low-norm interior, which decodes to blurry "average" images, and slerp stays on the shell.

    Degenerate cases: a zero endpoint, or (nearly) parallel directions, give ``lerp``; antiparallel
    directions have no unique great circle, so the path turns through a fixed direction orthogonal to z0
    (the coordinate axis least aligned with it, orthogonalised), which makes the result deterministic.
    """
    _check_pair(z0, z1)
    t = _fractions(steps, z0)
    n0, n1 = z0.norm(), z1.norm()
    if n0 == 0 or n1 == 0:
        return lerp(z0, z1, steps)
    u0, u1 = z0 / n0, z1 / n1
    theta = torch.arccos((u0 @ u1).clamp(-1.0, 1.0))
    if theta < _PARALLEL_EPS:
        return lerp(z0, z1, steps)
    if theta > math.pi - _PARALLEL_EPS:
        axis = torch.zeros_like(u0)
        axis[u0.abs().argmin()] = 1.0
        v = axis - (axis @ u0) * u0
        v = v / v.norm()
        directions = torch.cos(t * theta) * u0 + torch.sin(t * theta) * v
    else:
        directions = (torch.sin((1.0 - t) * theta) * u0 + torch.sin(t * theta) * u1) / torch.sin(theta)
    path = ((1.0 - t) * n0 + t * n1) * directions
    path[0], path[-1] = z0, z1
    return path


def traverse(z: torch.Tensor, dim: int, values: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Copies of the code ``z`` (D,) with coordinate ``dim`` set to each of ``values`` (V,): (V, D)."""
    if z.ndim != 1:
        raise ValueError(f"expected one code of shape (D,), got {tuple(z.shape)}")
    if not -z.shape[0] <= dim < z.shape[0]:
        raise ValueError(f"dim must be in [0, {z.shape[0]}), got {dim}")
    codes = z.repeat(len(values), 1)
    codes[:, dim] = torch.as_tensor(values, dtype=z.dtype, device=z.device)
    return codes


def grid_2d(
    center: torch.Tensor | None,
    dims: tuple[int, int] | None = None,
    directions: torch.Tensor | None = None,
    extent: float | tuple[float, float, float, float] = 3.0,
    n: int = 15,
    latent_dim: int | None = None,
) -> torch.Tensor:
    """An n×n grid of codes over a plane through ``center``: (n·n, D), row-major, top row first.

    The plane is spanned either by two coordinate axes ``dims=(i, j)`` or by two ``directions`` (2, D)
    (e.g. from ``principal_directions``). Grid point (row r, column c) is
    ``center + x_c·a + y_r·b`` with x increasing left to right and y *decreasing* top to bottom, so the
    decoded grid reads like a plot with the y axis pointing up.

    Args:
        center: (D,) code at the plane's origin; None means the prior's mean, the zero code.
        dims / directions: exactly one of them.
        extent: half-width ``e`` (x, y ∈ [−e, e]) or the box ``(x_min, x_max, y_min, y_max)``.
        n: points per side (≥ 2).
        latent_dim: D, needed only when neither ``center`` nor ``directions`` gives it.
    """
    if (dims is None) == (directions is None):
        raise ValueError("pass exactly one of dims=(i, j) or directions=(2, D)")
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}")
    if directions is not None:
        if directions.ndim != 2 or directions.shape[0] != 2:
            raise ValueError(f"directions must have shape (2, D), got {tuple(directions.shape)}")
        latent_dim = directions.shape[1]
    elif center is not None:
        latent_dim = center.shape[0]
    if latent_dim is None:
        raise ValueError("latent_dim is needed when center is None and dims are given")
    like = directions if directions is not None else center
    kw = {"dtype": like.dtype, "device": like.device} if like is not None else {"dtype": torch.float32}
    if center is None:
        center = torch.zeros(latent_dim, **kw)
    if center.shape != (latent_dim,):
        raise ValueError(f"center must have shape ({latent_dim},), got {tuple(center.shape)}")
    if directions is None:
        i, j = dims
        if not (0 <= i < latent_dim and 0 <= j < latent_dim) or i == j:
            raise ValueError(f"dims must be two different indices in [0, {latent_dim}), got {dims}")
        directions = torch.zeros(2, latent_dim, **kw)
        directions[0, i] = directions[1, j] = 1.0
    x_min, x_max, y_min, y_max = (-extent, extent, -extent, extent) if isinstance(extent, (int, float)) else extent
    xs = torch.linspace(x_min, x_max, n, **kw)
    ys = torch.linspace(y_max, y_min, n, **kw)
    coords = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], dim=-1).reshape(-1, 2)  # (n·n, [x, y])
    return center + coords @ directions


# ---------------------------------------------------------------------------------------------- projections
def principal_directions(codes: torch.Tensor, k: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PCA of codes (N, D): the ``k`` directions of largest variance.

    Returns:
        ``(mean (D,), directions (k, D), variances (k,))``: orthonormal directions in order of decreasing
        variance, each signed so that its largest-magnitude entry is positive (deterministic), and the
        variance of the codes along each.
    """
    if codes.ndim != 2 or not 1 <= k <= min(codes.shape):
        raise ValueError(f"need codes (N, D) with 1 <= k <= min(N, D), got {tuple(codes.shape)} and k={k}")
    codes = codes.float()
    mean = codes.mean(0)
    _, s, vh = torch.linalg.svd(codes - mean, full_matrices=False)
    directions = vh[:k]
    signs = directions.gather(1, directions.abs().argmax(1, keepdim=True)).sign()
    variances = s[:k] ** 2 / max(codes.shape[0] - 1, 1)
    return mean, directions * signs, variances


def project(codes: torch.Tensor, directions: torch.Tensor, center: torch.Tensor | None = None) -> torch.Tensor:
    """Coordinates of codes (N, D) along orthonormal ``directions`` (k, D) around ``center`` (D,): (N, k)."""
    return (codes if center is None else codes - center) @ directions.T


# ---------------------------------------------------------------------------------------------- encoding
def _posteriors(
    model: VAEModel | SpatialVAEModel, images_uint8: torch.Tensor | np.ndarray, batch_size: int
) -> Iterator[DiagonalGaussianDistribution]:
    """q(z | x) batch by batch for uint8 images (N, C, H, W): only one batch of floats lives at a time."""
    images = torch.as_tensor(images_uint8)
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    cfg = model.config
    if images.shape[1:] != (cfg.in_channels, cfg.sample_size, cfg.sample_size):
        raise ValueError(
            f"images are {tuple(images.shape[1:])}, the model wants ({cfg.in_channels}, {cfg.sample_size}, {cfg.sample_size})"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            batch = uint8_to_float(images[start : start + batch_size]).to(model.device, model.dtype)
            yield model.encode(batch).latent_dist


def encode_images(
    model: VAEModel | SpatialVAEModel,
    images_uint8: torch.Tensor | np.ndarray,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    sample: bool = False,
) -> torch.Tensor:
    """Codes of uint8 images (N, C, H, W): posterior means μ(x), or samples z ~ q(z | x) with ``sample=True``.

    Runs in batches of ``batch_size`` without gradients, so memory stays bounded for any N.
    Returns float32 (N, *model.latent_shape) on the CPU: (N, D) for a ``VAEModel``, (N, C, h, w) for a
    ``SpatialVAEModel``.
    """
    codes = []
    for posterior in _posteriors(model, images_uint8, batch_size):
        z = model.reparameterize(posterior, generator) if sample else posterior.mean
        codes.append(z.float().cpu().view(-1, *model.latent_shape))
    if not codes:
        return torch.zeros(0, *model.latent_shape)
    return torch.cat(codes)


def compute_scaling_factor(
    model: VAEModel | SpatialVAEModel,
    images_uint8: torch.Tensor | np.ndarray,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
) -> float:
    """``1 / std`` of posterior samples z ~ q(z | x) over all images and dimensions.

    This is how Stable Diffusion's ``scaling_factor`` (0.18215) was measured: multiply latents by it and
    a downstream model (e.g. a latent diffusion model) sees unit-variance inputs. It is stored in
    ``config.scaling_factor`` of either model; ``encode``/``decode`` never apply it.
    """
    z = encode_images(model, images_uint8, batch_size, generator, sample=True)
    if z.numel() < 2:
        raise ValueError("need at least two latent values to measure a standard deviation")
    return float(1.0 / z.std())


def dimensions_by_kl(
    model: VAEModel, images_uint8: torch.Tensor | np.ndarray, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent dimensions ordered by how much information they carry.

    Returns:
        ``(order (D,), kl (D,))``: ``kl[j]`` is KL(q(z_j | x) ‖ N(0, 1)) averaged over the images, in nats;
        ``order`` lists dimension indices by decreasing ``kl``. Dimensions with KL ≈ 0 are inactive
        (posterior collapse): the decoder ignores them.
    """
    total, count = torch.zeros(model.config.latent_dim, dtype=torch.float64), 0
    for posterior in _posteriors(model, images_uint8, batch_size):
        kl = kl_per_dimension(posterior).double().cpu()
        total += kl.sum(0)
        count += kl.shape[0]
    if count == 0:
        raise ValueError("need at least one image to measure the KL per dimension")
    kl = (total / count).float()
    return torch.argsort(kl, descending=True, stable=True), kl


def latent_channel_images(
    latents: torch.Tensor, scaling_factor: float, shift_factor: float | None = None, clip: float = 3.0
) -> torch.Tensor:
    """A spatial model's latent maps as grey images — what a diffusion model sees.

    Args:
        latents: (B, C, h, w) from ``SpatialVAEModel.encode``.
        scaling_factor, shift_factor: the model's; the maps are shown as ``(z − shift) · scaling_factor``, which has
            unit variance over the training set.
        clip: ± this many standard deviations map to black and white.

    Returns:
        (B·C, 1, h, w) in [-1, 1]: image 0's channels, then image 1's, ... (a grid with ``nrow=C`` puts one image
        per row).
    """
    if latents.ndim != 4:
        raise ValueError(f"expected latent maps (B, C, h, w), got {tuple(latents.shape)}")
    scaled = (latents.float() - (shift_factor or 0.0)) * scaling_factor
    return (scaled / clip).clamp(-1, 1).flatten(0, 1)[:, None]
