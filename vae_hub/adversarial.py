"""The optional adversarial term of latent diffusion's autoencoder training (Esser et al. 2021, Rombach et al. 2022).

A PatchGAN discriminator, trained from scratch, scores overlapping patches of an image as real or reconstructed. The
autoencoder adds ``λ · (−mean D(x̂))`` to its loss, where the adaptive weight

    λ = disc_weight · ‖∇_w reconstruction‖ / (‖∇_w generator loss‖ + 1e-4),   w = the decoder's last layer

keeps the adversarial gradient on the scale of the reconstruction gradient whatever the units of either loss. The
discriminator minimises the hinge loss  mean(relu(1 − D(x))) + mean(relu(1 + D(x̂))).

Nothing here is part of a shipped model: the discriminator lives in the training state (checkpoints) only.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchDiscriminator(nn.Module):
    """Convolutional PatchGAN: images (B, C, H, W) in [-1, 1] → a map of real/fake logits (B, 1, h, w).

    ``num_layers`` stride-2 4×4 convolutions (channels doubling from ``channels``, capped at 8×) with GroupNorm and
    LeakyReLU(0.2), then a stride-1 convolution to one logit per patch. Small images keep a map of at least 1×1.
    """

    def __init__(self, in_channels: int, channels: int = 32, num_layers: int = 2, groups: int = 8):
        super().__init__()
        layers, c = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)], channels
        for i in range(1, num_layers):
            c_out = channels * min(2**i, 8)
            layers += [
                nn.Conv2d(c, c_out, 4, stride=2, padding=1),
                nn.GroupNorm(min(groups, c_out), c_out),
                nn.LeakyReLU(0.2),
            ]
            c = c_out
        layers.append(nn.Conv2d(c, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """mean(relu(1 − D(x))) + mean(relu(1 + D(x̂))): zero once real patches score ≥ 1 and fakes ≤ −1."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """−mean D(x̂): the autoencoder's adversarial loss (hinge GAN's generator side)."""
    return -fake_logits.mean()


def adaptive_weight(
    reconstruction: torch.Tensor, adversarial: torch.Tensor, last_layer: torch.Tensor, max_weight: float = 1e4
) -> torch.Tensor:
    """‖∇ reconstruction‖ / (‖∇ adversarial‖ + 1e-4) at ``last_layer``, clamped to [0, max_weight], detached.

    Both losses must still have their graphs (the gradients are taken with ``retain_graph=True``).
    """
    (rec_grad,) = torch.autograd.grad(reconstruction, last_layer, retain_graph=True)
    (adv_grad,) = torch.autograd.grad(adversarial, last_layer, retain_graph=True)
    return (rec_grad.norm() / (adv_grad.norm() + 1e-4)).clamp(0.0, max_weight).detach()
