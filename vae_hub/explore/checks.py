"""The Space's limits on what a request may ask, and the checks of its numbers and choices: each raises
an ``InputError`` whose message is meant for the person using the Space."""

import math
import random

from ..space_models import InputError, clip


MAX_SAMPLES = 64
MAX_SEED = 2**31 - 1
MAX_TEMPERATURE = 2.0
STEPS_RANGE = (2, 32)  # interpolation frames
MANIFOLD_RANGE = (3, 25)  # manifold grid points per side
TRAVERSE_SLIDERS = 10  # fixed: an endpoint's signature cannot change with the model
TRAVERSE_RANGE = 4.0  # a slider moves its dimension by up to ± this many prior standard deviations
SWEEP_STEPS = 11
ACTIVE_KL_NATS = 0.01  # a dimension whose average KL is below this carries no information
MIN_SIDE, MAX_SIDE, MAX_ASPECT = 8, 4096, 2.0  # accepted uploads, in pixels
MAX_SKETCH_SIDE = 2048  # a 280 px canvas exported on a screen of up to 7 device pixels per CSS pixel
MAX_PLANE_COORD = 100.0  # |x|, |y| of a point on the latent map
DISPLAY_WIDTH = 768  # grids are enlarged (nearest neighbour) to about this many pixels
MANIFOLD_WIDTH = 540  # the manifold grid, as wide as the latent map's plot area
INTERPOLATIONS = ("slerp", "lerp")
DIFFUSE_IMAGES = (1, 36)
DIFFUSE_STEPS = (1, 100)
MAX_GUIDANCE = 15.0
# decoded x0 predictions streamed per /diffuse request (every ceil(steps / PREVIEWS) steps): also the GIF's frames.
# Each decodes the whole batch with the VAE: five cost a 16-image request at the default 20 steps ~1.19x the bare
# pipeline call (ten, at 25 steps: 1.44x; benchmarks/RESULTS.md).
PREVIEWS = 5
GIF_WIDTH = 384  # the denoising GIF's grids, in pixels
ANY_CLASS = "any"  # /diffuse's label for "each image a random class"
SOURCES = ("seeds", "images")
STARTS = ("origin", "image")


def check_int(value, name: str, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi], or an ``InputError`` naming ``name`` and the range."""
    try:
        number = float(value)
        ok = number.is_integer() and lo <= number <= hi
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"{name} must be a whole number from {lo} to {hi}, got {clip(value)}.")
    return int(number)


def check_float(value, name: str, lo: float, hi: float) -> float:
    """``value`` as a finite float in [lo, hi], or an ``InputError``."""
    try:
        number = float(value)
        ok = math.isfinite(number) and lo <= number <= hi
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"{name} must be a number from {lo:g} to {hi:g}, got {clip(value)}.")
    return number


def check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}; got {clip(value)}.")
    return value


def check_point(x, y) -> tuple[float, float]:
    """A point of the latent map's plane; one ``InputError`` naming every coordinate that is wrong."""
    problems, point = [], []
    for name, value in (("x", x), ("y", y)):
        try:
            point.append(check_float(value, name, -MAX_PLANE_COORD, MAX_PLANE_COORD))
        except InputError as err:
            problems.append(f"{name} is empty." if value is None else str(err))
    if problems:
        raise InputError(
            " ".join(problems) + f" Both coordinates must be numbers from {-MAX_PLANE_COORD:g} to {MAX_PLANE_COORD:g}."
        )
    return point[0], point[1]


def new_seed() -> int:
    """A fresh random seed for the "new seed" button."""
    return random.randint(0, MAX_SEED)
