"""The one path between PIL images and model tensors, shared by the data pipeline, the training script and the Space.

Model tensors are float (B, C, H, W) in [-1, 1]; stored datasets are uint8 (N, C, H, W) in [0, 255]. The PIL
side (mode conversion, resize of the shorter side and centre crop) is diffusers' ``VaeImageProcessor``.
"""

import math

import numpy as np
import PIL.Image
import torch
from diffusers.image_processor import VaeImageProcessor


def image_processor(channels: int) -> VaeImageProcessor:
    """A ``VaeImageProcessor`` that converts to grayscale (``channels=1``) or RGB (``channels=3``)."""
    if channels not in (1, 3):
        raise ValueError(f"images must have 1 (grayscale) or 3 (RGB) channels, got {channels}")
    return VaeImageProcessor(
        vae_scale_factor=1, resample="lanczos", do_convert_grayscale=channels == 1, do_convert_rgb=channels == 3
    )


def pil_to_uint8(images: list[PIL.Image.Image], size: int, channels: int, background: int = 0) -> torch.Tensor:
    """Convert, resize (shorter side to ``size``) and centre-crop PIL images → uint8 tensor (N, C, size, size).

    Transparency is flattened onto ``background`` (0 black, 255 white): the training data's background."""
    processor = image_processor(channels)
    arrays = []
    for image in images:
        if image.mode in ("RGBA", "LA", "P"):
            image = _flatten_alpha(image, background)
        elif image.mode.startswith("I;16"):  # 16-bit grayscale (PNG): rescale, as PIL's convert("L") clips at 255
            image = PIL.Image.fromarray((np.asarray(image, dtype=np.float32) / 257.0).round().astype(np.uint8))
        if image.size != (size, size):
            image = processor.resize(image, size, size, resize_mode="crop")
        image = processor.convert_to_rgb(image) if channels == 3 else processor.convert_to_grayscale(image)
        array = np.asarray(image, dtype=np.uint8)
        arrays.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(arrays))


def uint8_to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 (…, C, H, W) in [0, 255] → float32 in [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


def float_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float (…, C, H, W) in [-1, 1] (clamped) → uint8 in [0, 255], rounded."""
    return ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)


def pil_to_tensor(images: PIL.Image.Image | list[PIL.Image.Image], size: int, channels: int) -> torch.Tensor:
    """PIL image(s) → float model input (N, C, size, size) in [-1, 1]."""
    if isinstance(images, PIL.Image.Image):
        images = [images]
    return uint8_to_float(pil_to_uint8(images, size, channels))


def tensor_to_pil(x: torch.Tensor) -> list[PIL.Image.Image]:
    """Float images (B, C, H, W) in [-1, 1] → PIL images ("L" for one channel, "RGB" for three)."""
    array = float_to_uint8(x).permute(0, 2, 3, 1).cpu().numpy()
    return [PIL.Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in array]


def make_grid(x: torch.Tensor, nrow: int | None = None, padding: int = 2, scale: int = 1) -> PIL.Image.Image:
    """Tile float images (B, C, H, W) in [-1, 1] into one PIL image, ``nrow`` per row (default: a square).

    ``scale`` enlarges the result with nearest-neighbour so small images (28×28) stay crisp on screen.
    """
    b, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(b))
    rows = math.ceil(b / nrow)
    grid = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), 255, dtype=torch.uint8)
    images = float_to_uint8(x).cpu()
    for i in range(b):
        top, left = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[:, top : top + h, left : left + w] = images[i]
    array = grid.permute(1, 2, 0).numpy()
    image = PIL.Image.fromarray(array[..., 0] if c == 1 else array)
    return image.resize((image.width * scale, image.height * scale), PIL.Image.NEAREST) if scale > 1 else image


def _flatten_alpha(image: PIL.Image.Image, level: int = 0) -> PIL.Image.Image:
    rgba = image.convert("RGBA")
    background = PIL.Image.new("RGBA", rgba.size, (level, level, level, 255))
    return PIL.Image.alpha_composite(background, rgba).convert("RGB")
