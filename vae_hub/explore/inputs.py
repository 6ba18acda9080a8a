"""A visitor's images (uploads, image files, sketches) checked and made into a model's input."""

import warnings

import numpy as np
import PIL.Image
import torch

from ..images import pil_to_uint8
from ..models import VAEModel
from ..space_models import InputError
from .checks import MAX_ASPECT, MAX_SIDE, MAX_SKETCH_SIDE, MIN_SIDE


def prepare_image(
    image: PIL.Image.Image | None, model: VAEModel, dark_background: bool = True, invert: bool = True
) -> tuple[torch.Tensor, list[str]]:
    """A user's image → the model's input, uint8 (1, C, S, S), and notes on what was changed.

    Colour ↔ grey is converted, transparency flattened onto black, a non-square image centre-cropped, the
    size changed to the model's. If the image's border is light but the model's images have a dark
    background (``dark_background``; Fashion-MNIST is white-on-black) or the other way round, it is inverted
    (unless ``invert`` is false: a text-to-image model takes any picture as it is).
    Refused with an ``InputError``: no image, smaller than 8 px, larger than 4096 px, more than 2:1, fully
    transparent.
    """
    if image is None:
        raise InputError("No image: upload one, draw one or pick an example.")
    if not isinstance(image, PIL.Image.Image):
        raise InputError(f"Expected an image, got {type(image).__name__}.")
    w, h = image.size
    if min(w, h) < MIN_SIDE:
        raise InputError(f"The image is too small ({w}×{h} px): it needs at least {MIN_SIDE}×{MIN_SIDE} px.")
    check_side(w, h, MAX_SIDE)
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise InputError(
            f"The image is {w}×{h} px, far from square: crop it to the object (at most {MAX_ASPECT:g}:1)."
        )
    cfg, notes = model.config, []
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        if image.convert("RGBA").getchannel("A").getextrema()[1] == 0:
            raise InputError("The image is fully transparent: there is nothing to reconstruct.")
        notes.append(f"transparency flattened onto {'black' if dark_background else 'white'}")
    colour = image.mode not in ("L", "LA", "1", "I", "I;16", "F")
    if colour and cfg.in_channels == 1:
        notes.append("converted to greyscale")
    if w != h:
        notes.append(f"centre-cropped from {w}×{h}")
    if min(w, h) != cfg.sample_size:
        notes.append(f"resized to {cfg.sample_size}×{cfg.sample_size}")
    x = pil_to_uint8([image], cfg.sample_size, cfg.in_channels, background=0 if dark_background else 255)
    border = torch.cat(
        [x[..., :2, :].flatten(), x[..., -2:, :].flatten(), x[..., :, :2].flatten(), x[..., :, -2:].flatten()]
    )
    if invert and (border.float().mean() < 128) != dark_background:
        x = 255 - x
        notes.append(f"inverted: the model's images have a {'dark' if dark_background else 'light'} background")
    return x, notes


def check_side(width: int, height: int, max_side: int, what: str = "image") -> None:
    """An ``InputError`` if a ``width``×``height`` image is larger than ``max_side`` px on a side."""
    if max(width, height) > max_side:
        raise InputError(
            f"The {what} is too large ({width}×{height} px): at most {max_side} px per side, please shrink it."
        )


def check_image_file(file, max_side: int = MAX_SIDE, what: str = "image") -> None:
    """Refuse, from its header alone (nothing decoded), a file that is not an image or is too large.

    ``file``: a path or a binary file object. Raises ``InputError`` naming the problem.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(file) as image:
                width, height = image.size
    except PIL.Image.DecompressionBombError as err:  # declared above 179 M pixels: refused by Pillow itself
        raise InputError(f"The {what} is far too large: at most {max_side} px per side, please shrink it.") from err
    except (OSError, ValueError, SyntaxError) as err:  # not an image Pillow knows, or a broken one
        raise InputError(
            f"The {what} is not an image this Space can read: use a PNG, JPEG, WebP or GIF file."
        ) from err
    check_side(width, height, max_side, what)


def sketch_to_image(sketch: dict | None, margin: float = 0.04) -> PIL.Image.Image:
    """A ``gr.Sketchpad`` value → a greyscale image of the drawing, bright strokes on black, cropped square.

    The sketch's ``composite`` is RGBA. On a transparent canvas the strokes' alpha is their intensity, so
    any brush colour becomes white on black, like the training data. On an opaque canvas (Gradio 6 paints
    it white) a pixel's intensity is its distance in brightness from the background (the median of the
    border), so black strokes on white also become white on black. The drawing is cropped to its bounding
    box and centred in a square with a small ``margin`` (a fraction of its size), as Fashion-MNIST's
    objects fill their frame. Raises ``InputError`` for an empty sketch.
    """
    composite = sketch.get("composite") if isinstance(sketch, dict) else None
    if composite is None:
        raise InputError("The sketchpad is empty: draw something first.")
    if not isinstance(composite, PIL.Image.Image):
        composite = PIL.Image.fromarray(np.asarray(composite))
    check_side(*composite.size, MAX_SKETCH_SIDE, "sketch")  # before any pixel is touched
    rgba = composite.convert("RGBA")
    alpha = rgba.getchannel("A")
    if alpha.getextrema()[0] < 255:
        ink = alpha
    else:
        grey = np.asarray(rgba.convert("L"), dtype=np.int16)
        background = np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]]))
        ink = PIL.Image.fromarray(np.abs(grey - background).astype(np.uint8))
    box = ink.point(lambda v: 255 if v > 8 else 0).getbbox()  # ignore faint anti-aliasing noise
    if box is None:
        raise InputError("The sketchpad is empty: draw something first.")
    ink = ink.crop(box)
    side = round(max(ink.size) * (1 + 2 * margin))
    square = PIL.Image.new("L", (side, side), 0)
    square.paste(ink, ((side - ink.width) // 2, (side - ink.height) // 2))
    return square
