"""A Gaussian mixture prior fitted to the training codes, for samples that look like the data.

A VAE is trained with the prior p(z) = N(0, I), but the codes of the training images (the *aggregate
posterior*) rarely fill that ball evenly: they form clusters with holes in between, and a z drawn from
N(0, I) often lands in a hole and decodes to a blurry mix. Fitting a small diagonal Gaussian mixture to the
posterior means of the training set and sampling from it instead ("ex-post density estimation", Ghosh et
al. 2020) keeps samples where the decoder has seen data. The mixture is stored in the model
(``VAEModel.set_mixture_prior``: buffers in the safetensors file, K in the config), so it travels with
``save_pretrained`` / ``from_pretrained`` and ``generate(prior="mixture")`` uses it.
"""

import torch
from sklearn.mixture import GaussianMixture

from .models import VAEModel


def fit_mixture_prior(model: VAEModel, codes: torch.Tensor, num_components: int, seed: int = 0) -> None:
    """Fit a K-component diagonal Gaussian mixture to ``codes`` and store it in ``model``.

    Args:
        model: the VAE whose prior to set; its config gets ``prior_components = num_components``.
        codes: posterior means of the training images, (N, latent_dim) — e.g. ``encode(x).latent_dist.mean``
            flattened to (N, latent_dim), collected in batches.
        num_components: K, between 1 and N.
        seed: seeds scikit-learn's k-means initialisation: same codes and seed, same mixture.

    Raises:
        ValueError: when ``codes`` is not a finite (N, latent_dim) tensor or K is not in [1, N].
    """
    latent_dim = model.config.latent_dim
    if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or codes.shape[1] != latent_dim:
        got = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"codes must be a tensor (N, latent_dim={latent_dim}), got {got}")
    if not torch.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinite values")
    n = codes.shape[0]
    if isinstance(num_components, bool) or not isinstance(num_components, int) or not 1 <= num_components <= n:
        raise ValueError(
            f"num_components must be an integer between 1 and the number of codes ({n}), got {num_components!r}"
        )

    # float64 for EM's numerics; "diag" matches the diagonal Gaussians the model samples from
    gmm = GaussianMixture(num_components, covariance_type="diag", random_state=seed)
    gmm.fit(codes.detach().double().cpu().numpy())
    model.set_mixture_prior(
        means=torch.from_numpy(gmm.means_),
        log_vars=torch.from_numpy(gmm.covariances_).log(),  # (K, D) per-dimension variances for "diag"
        log_weights=torch.from_numpy(gmm.weights_).log(),
    )
