"""Images for the widgets: grids enlarged to a display width, matplotlib figures drawn without pyplot."""

import math

import numpy as np
import PIL.Image
import torch

from ..images import make_grid
from .checks import DISPLAY_WIDTH


def display_scale(grid_width: int, width: int = DISPLAY_WIDTH) -> int:
    """The integer enlargement that brings a ``grid_width``-px image closest to, not above, ``width`` px (1–16)."""
    return max(1, min(16, width // grid_width))


def show(x: torch.Tensor, nrow: int | None = None, padding: int = 2, width: int = DISPLAY_WIDTH) -> PIL.Image.Image:
    """Float images (B, C, H, W) in [-1, 1] → one grid, enlarged with nearest neighbour to about ``width`` px."""
    b, _, _, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(b))
    return make_grid(x, nrow=nrow, padding=padding, scale=display_scale(nrow * (w + padding) + padding, width))


def _figure_to_pil(fig) -> PIL.Image.Image:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return PIL.Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")


def _figure(width_px: int, height_px: int, dpi: int = 100):
    """A matplotlib Figure without pyplot (pyplot keeps global state and is not thread-safe)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
