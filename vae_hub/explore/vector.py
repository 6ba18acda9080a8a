"""Decoding codes: samples of the prior, the path between two codes, moves along a code's dimensions."""

import PIL.Image
import torch

from ..latent import lerp, slerp
from ..models import PRIORS, AnyModel, VAEModel
from ..space_models import InputError
from .checks import (
    INTERPOLATIONS,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_TEMPERATURE,
    STEPS_RANGE,
    SWEEP_STEPS,
    TRAVERSE_RANGE,
    check_choice,
    check_float,
    check_int,
)
from .display import show
from .files import OutputFiles


@torch.inference_mode()
def sample_images(
    model: VAEModel, n: int = 16, seed: int = 0, temperature: float = 1.0, prior: str = "standard"
) -> PIL.Image.Image:
    """Decode ``n`` codes from the prior (standard N(0, T²I) or the model's fitted mixture) → one grid image."""
    n = check_int(n, "Number of images", 1, MAX_SAMPLES)
    seed = check_int(seed, "Seed", 0, MAX_SEED)
    temperature = check_float(temperature, "Temperature", 0.0, MAX_TEMPERATURE)
    check_choice(prior, "Prior", PRIORS)
    if prior == "mixture" and model.config.prior_components == 0:
        raise InputError("This model has no fitted mixture prior: choose the standard prior.")
    x = model.generate(n, generator=torch.Generator().manual_seed(seed), temperature=temperature, prior=prior)
    return show(x)


@torch.inference_mode()
def interpolate(
    model: AnyModel, z0: torch.Tensor, z1: torch.Tensor, method: str, steps: int, files: OutputFiles
) -> tuple[PIL.Image.Image, str]:
    """Decode the lerp/slerp path between codes z0, z1 (D,) or latent maps (C, h, w), the map taken as one vector,
    → (strip image, path of an animated GIF)."""
    check_choice(method, "Interpolation", INTERPOLATIONS)
    steps = check_int(steps, "Steps", *STEPS_RANGE)
    path = (slerp if method == "slerp" else lerp)(z0.flatten(), z1.flatten(), steps)
    frames = model.decode(path.view(steps, *z0.shape)).sample
    return show(frames, nrow=steps, width=1024), files.gif(frames)


@torch.inference_mode()
def traverse(
    model: VAEModel, base: torch.Tensor, dims: list[int], offsets: list[float], sweep: int
) -> tuple[PIL.Image.Image, PIL.Image.Image]:
    """Decode ``base`` (D,) moved by ``offsets[i]`` along dimension ``dims[i]``, and sweep ``dims[sweep]``.

    Returns the decoded image and a row of ``SWEEP_STEPS`` images where the swept dimension's offset goes
    from −TRAVERSE_RANGE to +TRAVERSE_RANGE, the other offsets as given.
    """
    z = base.clone()
    for d, offset in zip(dims, offsets):
        z[d] += offset
    row = z.repeat(SWEEP_STEPS, 1)
    row[:, dims[sweep]] = base[dims[sweep]] + torch.linspace(-TRAVERSE_RANGE, TRAVERSE_RANGE, SWEEP_STEPS)
    images = model.decode(torch.cat([z[None], row])).sample
    return show(images[:1], nrow=1, width=336), show(images[1:], nrow=SWEEP_STEPS, width=1024)
