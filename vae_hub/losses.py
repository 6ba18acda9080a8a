"""The VAE objective: the negative ELBO, term by term.

    −ELBO(x) = E_q(z|x)[−log p(x | z)]  +  KL(q(z | x) ‖ N(0, I))
               └── reconstruction ──┘    └──────── KL ────────┘

Units: nats per image — each term is summed over pixels (reconstruction) or latent dimensions (KL) and
then averaged over the images of the batch. The reconstruction term uses the likelihood named in the
model config (``vae_hub.likelihood``); with one posterior sample it is an unbiased estimate of the
expectation.
"""

from dataclasses import dataclass

import torch
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from . import likelihood as lik


@dataclass
class ELBOTerms:
    """Loss terms, each a scalar tensor in nats per image (batch mean).

    Attributes:
        loss: what to minimise: reconstruction + β·(KL with free bits), β already warmed up.
        reconstruction: −log p(x | z), the negative log-likelihood of the batch under the decoder.
        kl: KL(q(z | x) ‖ N(0, I)) summed over latent dimensions, without β or free bits.
        negative_elbo: reconstruction + kl — the honest bound, whatever β is.
        beta: the KL weight used for ``loss`` at this step.
    """

    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    negative_elbo: torch.Tensor
    beta: float


def kl_per_dimension(posterior: DiagonalGaussianDistribution) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − 1 − log σ²) for each latent dimension, shape (B, latent_dim).

    Summed over dimensions this equals ``posterior.kl()``; kept per dimension for free bits and for
    counting active units.
    """
    mu, var, logvar = posterior.mean.flatten(1), posterior.var.flatten(1), posterior.logvar.flatten(1)
    return 0.5 * (mu.pow(2) + var - 1.0 - logvar)


def kl_weight(step: int, beta: float = 1.0, warmup_steps: int = 0) -> float:
    """β after linear KL warm-up: rises from 0 to ``beta`` over ``warmup_steps`` optimisation steps."""
    if warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / warmup_steps)


def negative_elbo(
    decoder_params: torch.Tensor,
    x: torch.Tensor,
    posterior: DiagonalGaussianDistribution,
    likelihood: str,
    beta: float = 1.0,
    free_bits: float = 0.0,
) -> ELBOTerms:
    """The (β-weighted) negative ELBO of a batch, in nats per image.

    Args:
        decoder_params: ``VAEOutput.decoder_params`` for a posterior sample z ~ q(z | x).
        x: the images (B, C, H, W) in [-1, 1].
        posterior: ``VAEOutput.latent_dist``, q(z | x).
        likelihood: the model's ``config.likelihood``.
        beta: KL weight (β-VAE; 1 gives the ELBO). Pass ``kl_weight(step, ...)`` for a warm-up.
        free_bits: nats per latent dimension below which the KL is not penalised (Kingma et al. 2016):
            the optimised KL of dimension j is max(free_bits, batch-mean KL_j). 0 turns it off.

    Returns:
        ``ELBOTerms`` with scalar tensors (reconstruction, kl and negative_elbo are never β-weighted).
    """
    reconstruction = -lik.log_prob(decoder_params, x, likelihood).mean()
    kl_dims = kl_per_dimension(posterior).float()
    kl = kl_dims.sum(dim=1).mean()
    penalised = kl_dims.mean(dim=0).clamp(min=free_bits).sum() if free_bits > 0 else kl
    return ELBOTerms(
        loss=reconstruction + beta * penalised,
        reconstruction=reconstruction,
        kl=kl,
        negative_elbo=reconstruction + kl,
        beta=beta,
    )
