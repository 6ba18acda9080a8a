"""A Gaussian mixture prior fitted to the training codes, for samples that look like the data.

A VAE is trained with the prior p(z) = N(0, I), but the codes of the training images (the *aggregate
posterior*) rarely fill that ball evenly: they form clusters with holes in between, and a z drawn from
N(0, I) often lands in a hole and decodes to a blurry mix. Fitting a diagonal Gaussian mixture to the
posterior means of the training set and sampling from it instead ("ex-post density estimation", Ghosh et
al. 2020) keeps samples where the decoder has seen data. The mixture is stored in the model
(``VAEModel.set_mixture_prior``: buffers in the safetensors file, K in the config), so it travels with
``save_pretrained`` / ``from_pretrained`` and ``generate(prior="mixture")`` uses it.

How many components: too few smear the clusters together (samples between them again), too many memorise
single codes. ``num_components="auto"`` lets the data decide: each candidate K is fitted to 80 % of the codes
and scored by the mean log-likelihood of the other 20 % (nats per code). The smallest K whose score is within one
standard error of the best one's (the one-standard-error rule, Hastie et al.; the error of the per-code
difference) is refitted on all of them: a larger K only wins when it describes codes it has not seen clearly better.
"""

from dataclasses import dataclass

import torch
from sklearn.mixture import GaussianMixture
from tqdm.auto import tqdm

from .constants import AUTO
from .models import VAEModel


CANDIDATES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
HELD_OUT_FRACTION = 0.2
MIN_CODES_PER_COMPONENT = 10  # a candidate K needs at least this many fitting codes per component


@dataclass
class PriorChoice:
    """How the number of mixture components was chosen: ``held_out_nats`` maps each candidate K to the mean
    log-likelihood (nats per code, higher is better) of the held-out codes; empty when K was given."""

    num_components: int
    held_out_nats: dict[int, float]
    num_codes: int
    seed: int

    @property
    def method(self) -> str:
        return "held-out log-likelihood" if self.held_out_nats else "given"

    def describe(self) -> str:
        """One sentence for a model card."""
        if not self.held_out_nats:
            return f"K = {self.num_components} components, as given."
        scores = ", ".join(f"K={k}: {v:.2f}" for k, v in self.held_out_nats.items())
        return (
            f"K = {self.num_components} components, chosen from the data: each candidate was fitted to "
            f"{1 - HELD_OUT_FRACTION:.0%} of {self.num_codes:,} training codes and scored by the mean "
            f"log-likelihood of the other {HELD_OUT_FRACTION:.0%} (nats per code; {scores}); K is the smallest "
            "within one standard error of the best."
        )

    @classmethod
    def from_dict(cls, record: dict) -> "PriorChoice":
        """The inverse of ``to_dict`` (as ``training_info.json`` stores it)."""
        scores = record.get("held_out_log_likelihood_nats_per_code") or {}
        return cls(
            int(record["num_components"]),
            {int(k): float(v) for k, v in scores.items()},
            int(record.get("num_codes", 0)),
            int(record.get("seed", 0)),
        )

    def to_dict(self) -> dict:
        return {
            "num_components": self.num_components,
            "method": self.method,
            "num_codes": self.num_codes,
            "seed": self.seed,
            "held_out_log_likelihood_nats_per_code": {str(k): v for k, v in self.held_out_nats.items()},
        }


def _check_codes(codes, latent_dim: int) -> None:
    if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or codes.shape[1] != latent_dim:
        got = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"codes must be a tensor (N, latent_dim={latent_dim}), got {got}")
    if not torch.isfinite(codes).all():
        raise ValueError("codes contain NaN or infinite values")


def _mixture(num_components: int, seed: int) -> GaussianMixture:
    # "diag" matches the diagonal Gaussians the model samples from; the seed fixes k-means' initialisation
    return GaussianMixture(num_components, covariance_type="diag", random_state=seed)


def choose_num_components(
    codes: torch.Tensor, candidates: tuple[int, ...] = CANDIDATES, seed: int = 0, progress: bool = False
) -> PriorChoice:
    """The smallest K among ``candidates`` whose mixture predicts held-out codes (N, D) as well as the best one,
    within one standard error; same codes and seed, same K.

    The codes are split once with ``seed`` (a fraction ``HELD_OUT_FRACTION`` held out); candidates with fewer
    than ``MIN_CODES_PER_COMPONENT`` fitting codes per component are skipped (K = 1 is always tried). ``progress``
    shows a bar over the candidates, weighted by K (a fit costs about K times a K = 1 fit), with the time left.
    """
    n = codes.shape[0]
    if n < 2:
        raise ValueError(f"choosing the number of components needs at least 2 codes, got {n}")
    data = codes.detach().double().cpu()[torch.randperm(n, generator=torch.Generator().manual_seed(seed))].numpy()
    held = max(1, round(n * HELD_OUT_FRACTION))
    fit, held_out = data[held:], data[:held]
    tried = sorted({k for k in candidates if k * MIN_CODES_PER_COMPONENT <= len(fit)} | {1})
    per_code = {}
    with tqdm(total=sum(tried), desc=f"mixture prior: K in {tried}", unit="K", disable=not progress) as bar:
        for k in tried:
            bar.set_postfix(fitting=f"K={k}")
            per_code[k] = torch.from_numpy(_mixture(k, seed).fit(fit).score_samples(held_out))
            bar.update(k)
    scores = {k: v.mean().item() for k, v in per_code.items()}
    best = per_code[max(tried, key=scores.get)]
    standard_error = {k: ((best - v).std() / len(v) ** 0.5).item() if len(v) > 1 else 0.0 for k, v in per_code.items()}
    chosen = min(k for k in tried if (best - per_code[k]).mean().item() <= standard_error[k])
    return PriorChoice(chosen, scores, n, seed)


def fit_mixture_prior(
    model: VAEModel,
    codes: torch.Tensor,
    num_components: int | str = AUTO,
    seed: int = 0,
    candidates: tuple[int, ...] = CANDIDATES,
    progress: bool = False,
) -> PriorChoice:
    """Fit a K-component diagonal Gaussian mixture to ``codes`` and store it in ``model``.

    Args:
        model: the VAE whose prior to set; its config gets ``prior_components = K``.
        codes: posterior means of the training images, (N, latent_dim) — e.g. ``encode(x).latent_dist.mean``
            flattened to (N, latent_dim), collected in batches (``vae_hub.latent.encode_images``).
        num_components: K between 1 and N, or ``"auto"``: chosen among ``candidates`` by the held-out
            log-likelihood of the codes (``choose_num_components``).
        seed: seeds the held-out split and scikit-learn's k-means initialisation: same codes and seed, same mixture.
        progress: a progress bar over the candidates of ``"auto"`` (``choose_num_components``).

    Returns:
        ``PriorChoice``: K and, for ``"auto"``, the held-out score of every candidate.

    Raises:
        ValueError: when ``codes`` is not a finite (N, latent_dim) tensor or K is neither ``"auto"`` nor in [1, N].
    """
    _check_codes(codes, model.config.latent_dim)
    n = codes.shape[0]
    if num_components == AUTO:
        choice = choose_num_components(codes, candidates, seed, progress)
    elif isinstance(num_components, bool) or not isinstance(num_components, int) or not 1 <= num_components <= n:
        raise ValueError(
            f"num_components must be 'auto' or an integer between 1 and the number of codes ({n}), got {num_components!r}"
        )
    else:
        choice = PriorChoice(num_components, {}, n, seed)
    gmm = _mixture(choice.num_components, seed).fit(codes.detach().double().cpu().numpy())  # float64 for EM
    model.set_mixture_prior(
        means=torch.from_numpy(gmm.means_),
        log_vars=torch.from_numpy(gmm.covariances_).log(),  # (K, D) per-dimension variances for "diag"
        log_weights=torch.from_numpy(gmm.weights_).log(),
    )
    return choice
