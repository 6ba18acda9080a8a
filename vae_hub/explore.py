"""What the Space computes, as plain functions: model ids, numbers and PIL images in; PIL images, files, text out.

``space/app.py`` only lays out widgets and wires them to an ``Explorer``; all checking of user input happens
here and raises ``InputError`` with a message meant for the person using the Space (the app shows it as a
``gr.Error``). Two layers:

* functions that take a ``VAEModel`` (``sample_images``, ``reconstruct``, ``interpolate``, ...): the
  computation, unit-tested without Gradio;
* ``Explorer``: one method per Space endpoint, taking a model *id* (one the Space offers, see
  ``space_models``) as its first argument. It loads each model once and caches what the Space derives from it
  (the dimensions ordered by KL, the latent map of the model's own held-out sample).

Three kinds of model, each with its own tabs (``TABS``): a vector VAE (a code and a prior), a spatial autoencoder
(the first stage of latent diffusion, a ``SpatialVAEModel`` or diffusers' ``AutoencoderKL``: reconstruction and
interpolation between two images' latent maps) and a latent diffusion pipeline (class-conditional
sampling, watched step by step, and the comparison with a vector VAE's priors). A tab asked of a model that cannot do
its job answers, in words, what the model is and which tabs it has.
"""

import atexit
import functools
import hashlib
import inspect
import io
import json
import math
import os
import queue
import random
import re
import shutil
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch
from huggingface_hub import ModelCard

from . import likelihood as lik
from .data import data_credits
from .images import float_to_uint8, make_grid, pil_to_uint8, uint8_to_float
from .evaluate_samples import RECORD_KEY as SAMPLE_QUALITY_KEY
from .hub import MAP_SAMPLE_NAME, PIPELINE_INDEX_NAME
from .latent import dimensions_by_kl, encode_images, grid_2d, latent_channel_images, lerp, principal_directions, project, slerp
from .losses import kl_per_dimension
from .markdown import table_row
from .models import PRIORS, AnyModel, AutoencoderKLWithLikelihood, SpatialVAEModel, VAEModel, own_decoder_stages
from .pipelines import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS, LatentDiffusionPipeline
from .pipelines.schedulers import SCHEDULERS, build_scheduler
from .space_models import (
    MAX_MODEL_BYTES, InputError, Loaded, ModelLoader, checked_model_id, clip, hide_paths, hub_ids_allowed, public_ids)

# ------------------------------------------------------------------------------------------------ limits
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


# ------------------------------------------------------------------------------------------------ checks
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
        raise InputError(" ".join(problems) + f" Both coordinates must be numbers from {-MAX_PLANE_COORD:g} to {MAX_PLANE_COORD:g}.")
    return point[0], point[1]


def new_seed() -> int:
    """A fresh random seed for the "new seed" button."""
    return random.randint(0, MAX_SEED)


# ------------------------------------------------------------------------------------------------ display
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


# ------------------------------------------------------------------------------------------------ sampling
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


# ------------------------------------------------------------------------------------------------ inputs
def prepare_image(image: PIL.Image.Image | None, model: VAEModel, dark_background: bool = True) -> tuple[torch.Tensor, list[str]]:
    """A user's image → the model's input, uint8 (1, C, S, S), and notes on what was changed.

    Colour ↔ grey is converted, transparency flattened onto black, a non-square image centre-cropped, the
    size changed to the model's. If the image's border is light but the model's images have a dark
    background (``dark_background``; Fashion-MNIST is white-on-black) or the other way round, it is inverted.
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
        raise InputError(f"The image is {w}×{h} px, far from square: crop it to the object (at most {MAX_ASPECT:g}:1).")
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
    border = torch.cat([x[..., :2, :].flatten(), x[..., -2:, :].flatten(), x[..., :, :2].flatten(), x[..., :, -2:].flatten()])
    if (border.float().mean() < 128) != dark_background:
        x = 255 - x
        notes.append(f"inverted: the model's images have a {'dark' if dark_background else 'light'} background")
    return x, notes


def check_side(width: int, height: int, max_side: int, what: str = "image") -> None:
    """An ``InputError`` if a ``width``×``height`` image is larger than ``max_side`` px on a side."""
    if max(width, height) > max_side:
        raise InputError(f"The {what} is too large ({width}×{height} px): at most {max_side} px per side, please shrink it.")


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
        raise InputError(f"The {what} is not an image this Space can read: use a PNG, JPEG, WebP or GIF file.") from err
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


# ------------------------------------------------------------------------------------------------ reconstruction
@dataclass
class Reconstruction:
    """What the Reconstruct tab shows, in widget order (``astuple``)."""

    input: PIL.Image.Image  # the image as the model sees it, enlarged
    reconstruction: PIL.Image.Image  # decode(μ(x)), enlarged
    posterior: PIL.Image.Image  # chart of the posterior mean ± std per dimension
    code: dict  # {"mean": [...], "std": [...], "kl_nats": [...]}: the posterior, per dimension
    summary: str  # markdown: the numbers and any conversion notes

    def astuple(self) -> tuple:
        return self.input, self.reconstruction, self.posterior, self.code, self.summary


POSTERIOR_RANGE = 5.0  # the chart's y axis: ± this many prior standard deviations


@functools.lru_cache(maxsize=8)
def _posterior_axes(d: int) -> tuple[PIL.Image.Image, tuple[float, float, float, float]]:
    """The chart's empty axes for D dimensions (matplotlib, ~0.1 s) and their plot area in pixels, drawn once."""
    fig = _figure(720, 300)
    ax = fig.add_axes([0.08, 0.17, 0.9, 0.72])
    ax.axhspan(-1, 1, color="#e8e8f0", zorder=0)
    ax.axhline(0, color="#999", lw=0.8, zorder=1)
    ax.set_xlim(-0.7, d - 0.3)
    ax.set_ylim(-POSTERIOR_RANGE, POSTERIOR_RANGE)
    ax.set_xticks(range(d) if d <= 40 else range(0, d, math.ceil(d / 40)))
    ax.tick_params(labelsize=8)
    ax.set_xlabel("latent dimension (colour: KL to the prior, brighter = more information; band: prior ±1 std)", fontsize=9)
    ax.set_title("posterior q(z | x): mean ± std of each dimension", fontsize=10)
    image = _figure_to_pil(fig)
    x0, y0, x1, y1 = ax.get_window_extent().extents
    return image, (x0, image.height - y1, x1, image.height - y0)


def posterior_chart(mean: np.ndarray, std: np.ndarray, kl: np.ndarray) -> PIL.Image.Image:
    """Per-dimension posterior mean ± std (D,) over the prior's ±1 band, coloured by KL (nats).

    The points are drawn with PIL onto cached axes: a figure per request would cost ~0.1 s of CPU. A mean
    beyond the axis is drawn as a triangle at its edge, pointing the way it went.
    """
    from matplotlib import colormaps

    d = len(mean)
    base, (left, top, right, bottom) = _posterior_axes(d)
    image = base.copy()
    draw = PIL.ImageDraw.Draw(image)
    colours = colormaps["viridis"](np.clip(kl / max(float(kl.max()), 1e-6), 0, 1) * 0.85)

    def y_px(v: float) -> float:
        return top + (POSTERIOR_RANGE - np.clip(v, -POSTERIOR_RANGE, POSTERIOR_RANGE)) / (2 * POSTERIOR_RANGE) * (bottom - top)

    for j in range(d):
        colour = tuple(int(255 * c) for c in colours[j][:3])
        x = left + (j + 0.7) / d * (right - left)
        lo, hi, m = y_px(mean[j] - std[j]), y_px(mean[j] + std[j]), y_px(mean[j])
        draw.line((x, lo, x, hi), fill=colour, width=2)
        for cap in (lo, hi):
            draw.line((x - 4, cap, x + 4, cap), fill=colour, width=2)
        if abs(mean[j]) > POSTERIOR_RANGE:
            tip, back = (m - 7, m + 2) if mean[j] > 0 else (m + 7, m - 2)
            draw.polygon([(x, tip), (x - 6, back), (x + 6, back)], fill=colour)
        else:
            draw.ellipse((x - 4, m - 4, x + 4, m + 4), fill=colour)
    return image


@torch.inference_mode()
def reconstruct(model: AnyModel, x_uint8: torch.Tensor, notes: list[str] = ()) -> Reconstruction:
    """Encode uint8 (1, C, S, S), decode the posterior mean; report −log p(x | z = μ) and the KL, in nats.

    A spatial model's third picture is its latent map, channel by channel, as a diffusion model sees it."""
    x = uint8_to_float(x_uint8)
    if isinstance(model, MAP_MODELS):
        return reconstruct_spatial(model, x, notes)
    posterior = model.encode(x).latent_dist
    mu = posterior.mean.flatten(1)
    params = model.decode_params(mu)
    rec = -lik.log_prob(params, x, model.config.likelihood)[0].item()
    kl_dims = kl_per_dimension(posterior)[0]
    kl = kl_dims.sum().item()
    mean, std, kl_np = mu[0].numpy(), posterior.std.flatten(1)[0].numpy(), kl_dims.numpy()
    summary = (
        f"**−log p(x | z = μ)** {rec:.1f} nats · **KL(q ‖ p)** {kl:.1f} nats · **total** {rec + kl:.1f} nats "
        f"({model.config.likelihood} likelihood) · {int((kl_np > ACTIVE_KL_NATS).sum())}/{len(kl_np)} dimensions "
        "carry information"
    )
    if notes:
        summary += "\n\nInput: " + "; ".join(notes) + "."
    return Reconstruction(
        input=show(x, nrow=1, width=336),
        reconstruction=show(lik.mean(params, model.config.likelihood), nrow=1, width=336),
        posterior=posterior_chart(mean, std, kl_np),
        code={"mean": mean.round(4).tolist(), "std": std.round(4).tolist(), "kl_nats": kl_np.round(4).tolist()},
        summary=summary,
    )


def reconstruct_spatial(model: SpatialVAEModel | AutoencoderKLWithLikelihood, x: torch.Tensor, notes: list[str] = ()) -> Reconstruction:
    """``reconstruct`` for a ``SpatialVAEModel``: the latent channels (scaled and shifted as a diffusion model
    sees them, ±3 std from black to white) instead of the per-dimension chart."""
    posterior = model.encode(x).latent_dist
    params = model.decode_params(posterior.mean)
    rec = -lik.log_prob(params, x, model.config.likelihood)[0].item()
    kl = posterior.kl()[0].item()
    cfg = model.config
    scaled = (posterior.mean[0] - (cfg.shift_factor or 0.0)) * cfg.scaling_factor  # (C, h, w)
    maps = latent_channel_images(posterior.mean, cfg.scaling_factor, cfg.shift_factor)
    shape = "×".join(map(str, model.latent_shape))
    summary = (
        f"**−log p(x | z = μ)** {rec:.1f} nats · **KL(q ‖ p)** {kl:.1f} nats ({cfg.likelihood} likelihood) · "
        f"latents {shape}: the {cfg.latent_channels} small images are what a diffusion model sees, "
        f"(z − shift) × scaling factor {cfg.scaling_factor:.3g}"
    )
    if notes:
        summary += "\n\nInput: " + "; ".join(notes) + "."
    return Reconstruction(
        input=show(x, nrow=1, width=336),
        reconstruction=show(lik.mean(params, cfg.likelihood), nrow=1, width=336),
        posterior=show(maps, nrow=cfg.latent_channels, width=720),
        code={"shape": list(model.latent_shape), "channel_mean": scaled.flatten(1).mean(1).round(decimals=4).tolist(),
              "channel_std": scaled.flatten(1).std(1).round(decimals=4).tolist(), "kl_nats": round(kl, 4)},
        summary=summary,
    )


# ------------------------------------------------------------------------------------------------ output files
class OutputFiles:
    """Finished output files (PNG, GIF) in one folder: named by content, written atomically, the newest kept.

    Why the Space returns files and not PIL images: Gradio caches a returned PIL image by writing its bytes,
    non-atomically, to a path named by their hash, so two identical answers at once (many users pressing
    Sample with the default seed) can serve a half-written file; a returned file is copied atomically.
    Every ``prune_every`` writes, all but the newest ``keep`` files are deleted.
    """

    def __init__(self, folder: str | Path, keep: int = 1024, prune_every: int = 64):
        self.folder, self.keep, self.prune_every = Path(folder), keep, prune_every
        self._writes = 0
        self._lock = threading.Lock()

    @classmethod
    def temporary(cls, prefix: str = "vae_hub_space_", **kwargs) -> "OutputFiles":
        """Output files in a new temporary folder, removed when Python exits normally (``atexit``; the Space
        makes SIGTERM a normal exit)."""
        folder = Path(tempfile.mkdtemp(prefix=prefix))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        return cls(folder, **kwargs)

    def _write(self, data: bytes, suffix: str) -> str:
        path = self.folder / f"{hashlib.sha1(data).hexdigest()[:20]}{suffix}"
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{threading.get_ident()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)  # atomic: a concurrent identical request never sees half a file
        else:
            path.touch()  # recently used: keep it
        with self._lock:
            self._writes += 1
            prune = self._writes % self.prune_every == 0
        if prune:
            self.prune()
        return str(path)

    def prune(self) -> None:
        def age(p: Path) -> float:
            try:
                return p.stat().st_mtime
            except FileNotFoundError:  # pruned by a concurrent call
                return 0.0

        for old in sorted(self.folder.glob("*.*"), key=age)[: -self.keep or None]:
            old.unlink(missing_ok=True)

    def copy(self, path: Path) -> str:
        """A copy of a file (a model card's figure) among the output files, named by its content."""
        return self._write(path.read_bytes(), path.suffix.lower())

    def png(self, image: PIL.Image.Image) -> str:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)  # 2.5× faster than the default, files ~20 % larger
        return self._write(buffer.getvalue(), ".png")

    def gif(self, frames: torch.Tensor, frame_ms: int = 120) -> str:
        """Float frames (T, C, H, W) in [-1, 1] → an animated GIF that plays forward then back, enlarged to
        about 224 px with nearest neighbour."""
        scale = max(1, 224 // frames.shape[-1])
        pil = [make_grid(f[None], nrow=1, padding=0, scale=scale) for f in frames]
        return self.animation(pil + pil[-2:0:-1], frame_ms)

    def animation(self, images: list[PIL.Image.Image], frame_ms: int | list[int] = 120) -> str:
        """Images of one size → an animated GIF that loops, each shown ``frame_ms`` (one number, or one per image)."""
        buffer = io.BytesIO()
        # optimize=False: Pillow's palette optimisation took 3× the time of the whole encode, for the same file size
        images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0,
                       optimize=False)
        return self._write(buffer.getvalue(), ".gif")


# ------------------------------------------------------------------------------------------------ interpolation
@torch.inference_mode()
def interpolate(model: AnyModel, z0: torch.Tensor, z1: torch.Tensor, method: str, steps: int,
                files: OutputFiles) -> tuple[PIL.Image.Image, str]:
    """Decode the lerp/slerp path between codes z0, z1 (D,) or latent maps (C, h, w), the map taken as one vector,
    → (strip image, path of an animated GIF)."""
    check_choice(method, "Interpolation", INTERPOLATIONS)
    steps = check_int(steps, "Steps", *STEPS_RANGE)
    path = (slerp if method == "slerp" else lerp)(z0.flatten(), z1.flatten(), steps)
    frames = model.decode(path.view(steps, *z0.shape)).sample
    return show(frames, nrow=steps, width=1024), files.gif(frames)


# ------------------------------------------------------------------------------------------------ diffusion
def pipeline_defaults(pipe: LatentDiffusionPipeline) -> tuple[int, float]:
    """(steps, guidance scale) of the pipeline's ``__call__`` defaults: what ``evaluate_samples`` measures by default."""
    parameters = inspect.signature(type(pipe).__call__).parameters
    return parameters["num_inference_steps"].default, float(parameters["guidance_scale"].default)


def class_labels(pipe: LatentDiffusionPipeline, label, n: int, seed: int) -> list[int] | None:
    """The class of each of ``n`` images: ``label`` (a class name, case-insensitive) for all, or for ``ANY_CLASS``
    a random class each, drawn with ``seed``; None for an unconditional pipeline. An ``InputError`` names the choices."""
    if pipe.num_classes == 0 and label == ANY_CLASS:
        return None
    if label == ANY_CLASS:
        return torch.randint(pipe.num_classes, (n,), generator=torch.Generator().manual_seed(seed)).tolist()
    try:
        if not isinstance(label, str):
            raise ValueError(label)
        (label_id,) = pipe.get_label_ids(label)
    except ValueError:
        raise InputError(f"Class must be one of {', '.join([ANY_CLASS, *pipe.class_names])}; got {clip(label)}.") from None
    return [label_id] * n


def private_copy(pipe: LatentDiffusionPipeline, scheduler: str | None) -> LatentDiffusionPipeline:
    """A pipeline for one request: the shared VAE and UNet (read only), its own ``scheduler`` (one of
    ``SCHEDULERS``, or None for the pipeline's own class; configured from the pipeline's) and its own sampling
    state, so concurrent requests never meet."""
    if scheduler is None:
        own_scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    else:
        own_scheduler = build_scheduler(check_choice(scheduler, "Scheduler", tuple(SCHEDULERS)), pipe.scheduler.config)
    own = type(pipe)(pipe.vae, pipe.unet, own_scheduler, id2label=pipe.config.id2label)
    own.set_progress_bar_config(disable=True)
    return own


def denoise(pipe: LatentDiffusionPipeline, labels: list[int] | None, n: int, steps: int, guidance: float, seed: int,
            scheduler: str | None, previews: int = PREVIEWS) -> Iterator[tuple[int, torch.Tensor]]:
    """Sample with the pipeline's own ``__call__`` on a ``private_copy``, watching it: yields (step, images) with the
    decoded x0 prediction (B, C, H, W) in [-1, 1] after every ``steps / previews`` steps, then (steps, the final
    images). ``labels``: one class id per image (``class_labels``), or None for ``n`` unconditional images.

    The sampling loop runs in a worker thread and hands its previews over a queue; when the consumer stops early
    (``close()``: a visitor left), the pipeline is interrupted at its next step, so no abandoned request keeps a core.
    """
    own = private_copy(pipe, scheduler)
    every = math.ceil(steps / previews) if previews else steps + 1
    handed = queue.Queue()
    stop = threading.Event()

    def on_step(p, i, t, tensors):
        if stop.is_set():
            p._interrupt = True  # the pipeline's documented way to stop (see its __call__)
        elif (i + 1) % every == 0 and i + 1 < steps:
            handed.put((i + 1, p.decode_latents(tensors["pred_original_sample"]).clamp(-1, 1)))
        return {}

    def run() -> None:
        try:
            with torch.inference_mode():
                latents = own(labels, num_images_per_class=n if labels is None else 1, num_inference_steps=steps,
                              guidance_scale=guidance, generator=torch.Generator().manual_seed(seed), output_type="latent",
                              callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["pred_original_sample"]).images
                handed.put((steps, own.decode_latents(latents).clamp(-1, 1)))
        except BaseException as err:  # handed to the consumer, raised there
            handed.put(err)

    worker = threading.Thread(target=run, name="diffuse", daemon=True)
    worker.start()
    try:
        while True:
            item = handed.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if item[0] == steps:
                return
    finally:
        stop.set()
        worker.join()


def quality_records(entry: "ModelEntry", **setting) -> list[dict]:
    """The model's own measured sample quality (``metrics.json`` "sample_quality", written by ``python -m
    vae_hub.evaluate_samples --record``): the records with a Fréchet distance whose fields match ``setting``
    (e.g. ``kind="vae", prior="mixture"``)."""
    return [r for r in entry.sample_quality if all(r.get(k) == v for k, v in setting.items())]


def quality_record(entry: "ModelEntry", **setting) -> dict | None:
    """Of the ``quality_records`` for ``setting``, the one with the most samples; None if there is none."""
    return max(quality_records(entry, **setting), key=lambda r: r.get("num_samples") or 0, default=None)


def quality_caption(what: str, record: dict | None) -> str:
    """A short caption (a gallery cuts long ones): ``what`` and its measured Fréchet distance (FD, lower is better)
    and, for a pipeline, class match."""
    if record is None:
        return f"{what} · not measured"
    match = record.get("class_match")
    return f"{what} · FD {record['frechet_distance']:.2f}" + (f" · class match {match:.1%}" if isinstance(match, float) else "")


COMPARE_NOTE = ("Measured by `python -m vae_hub.evaluate_samples --record` and read from each model's `metrics.json`: the "
                "Fréchet distance (FD) between the features a classifier sees in the samples and in real test images "
                "(lower is closer), and how often that classifier sees the class that was asked for (class match). "
                "\"not measured\": the model has no record for these settings.")


def same_data(a: str, b: str) -> bool:
    """Whether two recorded dataset names are the same data: a Hub id and a local copy by its folder's name
    ("zalando-datasets/fashion_mnist", "fashion-mnist") match, case, "-" and "_" aside."""
    def key(name: str) -> str:
        return re.sub(r"[-_\s]", "", name.rsplit("/", 1)[-1].lower())

    return key(a) == key(b)


def different_data_note(vae: "ModelEntry", pipe: "ModelEntry") -> str | None:
    """A line for /compare when the two models' records name different training data (None if same or unknown)."""
    if vae.dataset and pipe.dataset and not same_data(vae.dataset, pipe.dataset):
        return (f"**Different training data:** {vae.model_id} was trained on {vae.dataset}, {pipe.model_id} on "
                f"{pipe.dataset}: their samples and numbers do not compare like for like.")
    return None


def quality_table(rows: list[tuple[str, str, str, dict | None]]) -> str:
    """Markdown: one row per (column, model id, settings, record or None), the full numbers behind the captions."""
    lines = ["| | model | settings | FD ↓ | class match ↑ | samples |", "|---|---|---|---|---|---|"]
    for what, model_id, settings, record in rows:
        record = record or {}
        fd, match, count = (record.get(k) for k in ("frechet_distance", "class_match", "num_samples"))
        lines.append(table_row(what, model_id, settings, f"{fd:.2f}" if fd is not None else "not measured",
                               f"{match:.1%}" if isinstance(match, float) else "–",
                               f"{count:,}" if isinstance(count, int) else "–"))
    return "\n".join(lines + ["", COMPARE_NOTE])


# ------------------------------------------------------------------------------------------------ traversal
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


# ------------------------------------------------------------------------------------------------ latent map
MAP_SAMPLE_MAX_IMAGES = 5000
MAP_SAMPLE_MAX_BYTES = 32 * 2**20  # of the file: a Hub repo's sample is read by a public Space
MAP_SAMPLE_MAX_CLASSES = 20


@dataclass
class MapSample:
    """A small sample of a model's held-out images for its latent map: uint8 images (N, C, H, W), labels (N,)
    indexing ``class_names`` (all 0 and no names for unlabelled data), and where they come from, in words."""

    images: torch.Tensor
    labels: np.ndarray
    class_names: list[str]
    source: str = ""

    @classmethod
    def from_images(cls, images: torch.Tensor, labels: torch.Tensor | None, class_names: list[str] | None, source: str,
                    per_class: int = 200, seed: int = 0) -> "MapSample":
        """Up to ``per_class`` images of each class (``MAP_SAMPLE_MAX_IMAGES`` in all), picked with ``seed``."""
        gen = torch.Generator().manual_seed(seed)
        if labels is None or not class_names or len(class_names) > MAP_SAMPLE_MAX_CLASSES:
            rows = torch.randperm(len(images), generator=gen)[:MAP_SAMPLE_MAX_IMAGES]
            labels, class_names = torch.zeros(len(images), dtype=torch.long), []
        else:
            per_class = min(per_class, MAP_SAMPLE_MAX_IMAGES // len(class_names))
            rows = torch.cat([(labels == k).nonzero().flatten()[torch.randperm(int((labels == k).sum()), generator=gen)[:per_class]]
                              for k in range(len(class_names))])
        rows = rows.sort().values
        return cls(images[rows].clone(), labels[rows].numpy().astype(np.int64), list(class_names), source)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, images=self.images.numpy(), labels=self.labels, class_names=np.array(self.class_names, dtype=str),
                            source=np.array(self.source))

    @classmethod
    def load(cls, path: str | Path) -> "MapSample":
        """Read and check a sample file; a ``ValueError`` says what is wrong with it (it may come from any Hub repo)."""
        if Path(path).stat().st_size > MAP_SAMPLE_MAX_BYTES:
            raise ValueError(f"it is larger than {MAP_SAMPLE_MAX_BYTES // 2**20} MB")
        try:
            with np.load(path, allow_pickle=False) as data:
                images, labels = data["images"], data["labels"]
                names = [str(c) for c in data["class_names"]] if "class_names" in data else []
                source = str(data["source"]) if "source" in data else ""
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"it is not a readable .npz with images and labels ({type(err).__name__})") from err
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3) or not 0 < len(images) <= MAP_SAMPLE_MAX_IMAGES:
            raise ValueError(f"its images must be uint8 (N ≤ {MAP_SAMPLE_MAX_IMAGES}, 1 or 3, H, W), got {images.dtype} {images.shape}")
        if labels.shape != (len(images),) or labels.dtype.kind not in "iu" or len(names) > MAP_SAMPLE_MAX_CLASSES or (
                len(labels) and (labels.min() < 0 or labels.max() >= max(len(names), 1))):
            raise ValueError(f"its labels must be one class index per image, below its {len(names)} class names "
                             f"(at most {MAP_SAMPLE_MAX_CLASSES})")
        return cls(torch.from_numpy(images), labels.astype(np.int64), names, source[:200])

    def for_model(self, model: VAEModel) -> torch.Tensor:
        """The images in the model's format (channels, size), converted like uploads if they differ."""
        cfg = model.config
        if tuple(self.images.shape[1:]) == (cfg.in_channels, cfg.sample_size, cfg.sample_size):
            return self.images
        pils = [PIL.Image.fromarray(im[0].numpy() if im.shape[0] == 1 else im.permute(1, 2, 0).numpy()) for im in self.images]
        return pil_to_uint8(pils, cfg.sample_size, cfg.in_channels)


@dataclass
class LatentMap:
    """Codes of the map sample on a plane: the model's own 2-D latent, else the codes' first two principal axes.

    A point (x, y) of the plane is the code ``center + x·directions[0] + y·directions[1]``.
    """

    coords: np.ndarray  # (N, 2)
    labels: np.ndarray  # (N,)
    class_names: list[str]
    center: torch.Tensor  # (D,)
    directions: torch.Tensor  # (2, D)
    box: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max shown
    axis_names: tuple[str, str]
    description: str
    title: str
    image: PIL.Image.Image | None = None  # the rendered scatter plot
    axes_px: tuple[float, float, float, float] = (0, 0, 0, 0)  # plot area in image pixels: left, top, right, bottom

    def code(self, x: float, y: float) -> torch.Tensor:
        return self.center + x * self.directions[0] + y * self.directions[1]

    def rounded(self, x: float, y: float) -> tuple[float, float]:
        """(x, y) to a thousandth of the box's width (a click is not more precise than that), for display."""
        decimals = max(0, 3 - math.floor(math.log10(self.box[1] - self.box[0])))
        return round(x, decimals), round(y, decimals)

    def map_pixel_to_plane(self, px: float, py: float) -> tuple[float, float]:
        """A click on the scatter image (pixels, origin top-left) → plane coordinates, clamped to the box."""
        left, top, right, bottom = self.axes_px
        fx, fy = np.clip((px - left) / (right - left), 0, 1), np.clip((py - top) / (bottom - top), 0, 1)
        x0, x1, y0, y1 = self.box
        return float(x0 + fx * (x1 - x0)), float(y1 - fy * (y1 - y0))

    def manifold_pixel_to_plane(self, px: float, py: float, width: int, n: int) -> tuple[float, float]:
        """A click on an n×n manifold image of ``width`` px → the plane coordinates of that cell's code."""
        col, row = (int(np.clip(p / width * n, 0, n - 1)) for p in (px, py))
        x0, x1, y0, y1 = self.box
        return float(x0 + col * (x1 - x0) / (n - 1)), float(y1 - row * (y1 - y0) / (n - 1))


def build_latent_map(model: VAEModel, sample: MapSample) -> LatentMap:
    """Encode the sample (posterior means) and place it on a plane; render the scatter plot."""
    codes = encode_images(model, sample.for_model(model))
    d = codes.shape[1]
    if d <= 2:
        center, directions = torch.zeros(d), torch.eye(2, d)  # a 1-D latent gets a flat second axis
        names = ("z₀", "z₁" if d == 2 else "(unused)")
        description = f"The model's own {d}-D latent space: no projection."
    else:
        center, directions, variances = principal_directions(codes, k=2)
        share = (variances / codes.var(0).sum()).tolist()
        names = (f"PC 1 ({share[0]:.0%} of variance)", f"PC 2 ({share[1]:.0%})")
        description = (
            f"A {d}-D latent space projected on the plane of its two principal axes through the mean code; "
            f"this plane holds {sum(share):.0%} of the codes' variance, so the manifold shows only a slice."
        )
    coords = project(codes, directions, center).numpy()
    lo, hi = np.percentile(coords, 1, axis=0), np.percentile(coords, 99, axis=0)
    mid, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2 * 1.15, 1e-3)  # square box: square manifold cells
    box = (mid[0] - half, mid[0] + half, mid[1] - half, mid[1] + half)
    n, source = len(coords), f" ({sample.source})" if sample.source else ""
    description = f"The codes of {n} held-out images{source}. " + description
    title = f"{n} held-out images" + (", coloured by class" if sample.class_names else "") + " — click to decode a point"
    latent_map = LatentMap(coords, sample.labels, sample.class_names, center, directions, box, names, description, title)
    latent_map.image, latent_map.axes_px = _render_map(latent_map)
    return latent_map


def _render_map(m: LatentMap) -> tuple[PIL.Image.Image, tuple[float, float, float, float]]:
    from matplotlib import colormaps

    width, height = 820, 620
    fig = _figure(width, height)
    side = 540  # square plot area, in pixels, so the manifold grid lines up with it
    ax = fig.add_axes([60 / width, 50 / height, side / width, side / height])
    colours = colormaps["tab10" if len(m.class_names) <= 10 else "tab20"]
    for k in range(max(len(m.class_names), 1)):  # unlabelled: one class, no legend
        pts = m.coords[m.labels == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=7, color=colours(k % colours.N), alpha=0.75, linewidths=0,
                   label=m.class_names[k] if m.class_names else None)
    ax.set_xlim(m.box[0], m.box[1])
    ax.set_ylim(m.box[2], m.box[3])
    ax.set_xlabel(m.axis_names[0], fontsize=9)
    ax.set_ylabel(m.axis_names[1], fontsize=9)
    ax.tick_params(labelsize=8)
    if m.class_names:
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9, markerscale=2.5, frameon=False, title="class")
    ax.set_title(m.title, fontsize=10)
    image = _figure_to_pil(fig)
    x0, y0, x1, y1 = ax.get_window_extent().extents  # display pixels, origin bottom-left
    return image, (x0, height - y1, x1, height - y0)


def mark_point(m: LatentMap, x: float, y: float) -> PIL.Image.Image:
    """The scatter plot with a crosshair at plane point (x, y) (at the plot's edge for a point outside it)."""
    image = m.image.copy()
    left, top, right, bottom = m.axes_px
    x0, x1, y0, y1 = m.box
    px = float(np.clip(left + (x - x0) / (x1 - x0) * (right - left), left, right))
    py = float(np.clip(top + (y1 - y) / (y1 - y0) * (bottom - top), top, bottom))
    draw = PIL.ImageDraw.Draw(image)
    for r, colour, w in ((11, "white", 5), (11, "black", 2)):
        draw.ellipse((px - r, py - r, px + r, py + r), outline=colour, width=w)
        draw.line((px - 2 * r, py, px - r, py), fill=colour, width=w)
        draw.line((px + r, py, px + 2 * r, py), fill=colour, width=w)
        draw.line((px, py - 2 * r, px, py - r), fill=colour, width=w)
        draw.line((px, py + r, px, py + 2 * r), fill=colour, width=w)
    return image


@torch.inference_mode()
def manifold(model: VAEModel, m: LatentMap, n: int = 15) -> PIL.Image.Image:
    """Decode an n×n grid over the map's box (row-major, top row = largest y) → one image without gaps."""
    n = check_int(n, "Grid size", *MANIFOLD_RANGE)
    codes = grid_2d(m.center, directions=m.directions, extent=m.box, n=n)
    return show(model.decode(codes).sample, nrow=n, padding=0, width=MANIFOLD_WIDTH)


# ------------------------------------------------------------------------------------------------ models
def data_name(recorded: str) -> str:
    """A dataset as a record names it, fit to show: a Hub id as is, a local folder by its name only (the path of
    the machine that trained the model is nobody's business)."""
    return (Path(recorded).name if Path(recorded).is_absolute() or recorded.startswith(".") else recorded)[:200]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


# The kinds of model the Space shows, in the order it offers them, and the tabs (endpoints) of each.
KINDS = ("vector", "pipeline", "spatial")
KIND_NAMES = {"vector": "a vector VAE", "pipeline": "a latent diffusion pipeline",
              "spatial": "a spatial autoencoder (the first stage of latent diffusion)"}
TABS = {"vector": ("Sample", "Reconstruct", "Interpolate", "Traverse", "Latent map", "Compare", "About"),
        "pipeline": ("Diffuse", "Compare", "About"), "spatial": ("Reconstruct", "Interpolate", "About")}
MAP_MODELS = (SpatialVAEModel, AutoencoderKLWithLikelihood)  # the "spatial" kind: latents are maps, no prior
FOLDER_KINDS = {"VAEModel": "vector", "SpatialVAEModel": "spatial", "AutoencoderKL": "spatial"}  # config _class_name


def folder_kind(folder: Path) -> str | None:
    """The kind (``KINDS``) of a saved model or pipeline folder, from its config alone; None for anything else."""
    if (folder / PIPELINE_INDEX_NAME).is_file():
        return "pipeline"
    return FOLDER_KINDS.get(_read_json(folder / "config.json").get("_class_name"))


def default_model_ids(space_dir: Path, env: dict | None = None) -> tuple[list[str], dict[str, Path]]:
    """The models a Space offers, in order: ids from ``VAE_MODEL`` (comma-separated), the ``model_id`` of
    ``space_config.json`` (written by ``vae-hub deploy-space --model-id``), then the folders under
    ``models/`` that hold a ``VAEModel``, a ``LatentDiffusionPipeline`` or a ``SpatialVAEModel`` (shipped, by folder
    name, in that order; not the sample-quality classifier). Returns (ids, {shipped name: folder})."""
    env = os.environ if env is None else env
    kinds = {p.name: folder_kind(p) for p in (space_dir / "models").glob("*")}
    # vector VAEs first (the Space opens on the first), then pipelines; the spatial autoencoder only reconstructs
    offered = sorted((n for n in kinds if kinds[n]), key=lambda n: (KINDS.index(kinds[n]), n))
    shipped = {name: space_dir / "models" / name for name in offered}
    ids = [s.strip() for s in env.get("VAE_MODEL", "").split(",") if s.strip()]
    configured = _read_json(space_dir / "space_config.json").get("model_id")
    if isinstance(configured, str) and configured.strip():
        ids.append(configured.strip())
    ids += list(shipped)
    return list(dict.fromkeys(ids)), shipped


@dataclass
class ModelEntry:
    """A loaded model and what the Space derives from it (computed once, on first use), all from the model's own
    files: its latent-map sample (``MAP_SAMPLE_NAME``), its card's dataset, its size and channels."""

    model_id: str
    loaded: Loaded  # the model, its files on this machine, where it came from
    _cache: dict = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)  # re-entrant: the manifold needs the map

    @property
    def model(self) -> VAEModel | SpatialVAEModel | LatentDiffusionPipeline:
        return self.loaded.model

    @property
    def kind(self) -> str:
        """"vector", "spatial" or "pipeline" (``KINDS``): which tabs the model has (``TABS``)."""
        if isinstance(self.model, LatentDiffusionPipeline):
            return "pipeline"
        return "spatial" if isinstance(self.model, MAP_MODELS) else "vector"

    @property
    def spatial(self) -> bool:
        return self.kind == "spatial"

    def cannot(self, view: str, instead: str) -> InputError:
        """The answer to a tab asked of a model that cannot do it: what the model is, why it has no ``view``, its own
        tabs, and (``instead``) the kind of model to choose."""
        why = {"vector": "it has a code and a prior, not a denoiser",
               "spatial": f"its latents are a {'×'.join(map(str, getattr(self.model, 'latent_shape', ())))} map with no "
                          "prior to sample from",
               "pipeline": "it draws images of its classes from noise, step by step, and has no code of its own to "
                           "encode into or move through"}[self.kind]
        *others, last = [t for t in TABS[self.kind] if t != "About"]
        tabs = f"{', '.join(others)} or {last}" if others else last
        return InputError(f"{self.model_id} is {KIND_NAMES[self.kind]}: {why}, so it has no {view}. Try {tabs}, or "
                          f"choose {instead}.")

    def require_vector(self, view: str) -> VAEModel:
        """The model, if it has a vector code and a prior (what ``view`` needs); else an ``InputError`` in words."""
        if self.kind != "vector":
            raise self.cannot(view, "a vector VAE")
        return self.model

    def require_autoencoder(self, view: str) -> VAEModel | SpatialVAEModel:
        """The model, if it encodes and decodes images (a vector VAE or a spatial autoencoder)."""
        if self.kind == "pipeline":
            raise self.cannot(view, "a VAE")
        return self.model

    def require_pipeline(self, view: str) -> LatentDiffusionPipeline:
        """The model, if it is a latent diffusion pipeline (what ``view`` needs); else an ``InputError`` in words."""
        if self.kind != "pipeline":
            raise self.cannot(view, "a diffusion pipeline")
        return self.model

    def _once(self, name: str, compute):
        with self._lock:  # concurrent first requests wait for one computation instead of repeating it
            if name not in self._cache:
                self._cache[name] = compute()
            return self._cache[name]

    @property
    def sample_quality(self) -> list[dict]:
        """The records of ``metrics.json`` "sample_quality" that hold a Fréchet distance (read once, not per request)."""
        def compute() -> list[dict]:
            metrics = _model_file(self, "metrics.json")
            records = (_read_json(metrics) if metrics else {}).get(SAMPLE_QUALITY_KEY)
            return [r for r in (records.values() if isinstance(records, dict) else ())
                    if isinstance(r, dict) and isinstance(r.get("frechet_distance"), (int, float))]

        return self._once("sample_quality", compute)

    @property
    def sample(self) -> MapSample | None:
        """The model's own latent-map sample, or None (``sample_problem`` says why)."""
        return self._map_sample[0]

    @property
    def sample_problem(self) -> str:
        """Why the model has no latent map, in words for the person using the Space ("" when it has one)."""
        return self._map_sample[1]

    @property
    def _map_sample(self) -> tuple[MapSample | None, str]:
        def compute() -> tuple[MapSample | None, str]:
            path = _model_file(self, MAP_SAMPLE_NAME)
            if path is None:
                return None, (f"this model ships no sample of its held-out images ({MAP_SAMPLE_NAME}, written by "
                              "training/train_vae.py), so it has no latent map")
            try:
                return MapSample.load(path), ""
            except ValueError as err:
                return None, f"this model's {MAP_SAMPLE_NAME} cannot be used: {err}"

        return self._once("sample", compute)

    @property
    def dataset(self) -> str | None:
        """The training data the model's own files name: its card's ``datasets`` (a Hub id), else the record of
        ``training_info.json`` or ``metrics.json`` (a local folder by its name only: no paths of another machine)."""

        def compute() -> str | None:
            card = _model_file(self, "README.md")
            try:
                datasets = ModelCard.load(card).data.datasets if card else None
            except Exception:  # a card without metadata, or none at all: the records below may still say
                datasets = None
            if datasets:
                return str(datasets[0] if isinstance(datasets, list) else datasets)[:200]
            for name, key in (("training_info.json", "dataset_name"), ("metrics.json", "dataset")):
                path = _model_file(self, name)
                value = _read_json(path).get(key) if path else None
                if isinstance(value, str) and value:
                    return data_name(value)
            return None

        return self._once("dataset", compute)

    @property
    def data_credits(self) -> str | None:
        """The training data's credits from ``training_info.json`` (``--dataset_credit``, the dataset's licence)."""
        def compute() -> str | None:
            info = _model_file(self, "training_info.json")
            return data_credits(_read_json(info)) if info else None

        return self._once("credits", compute)

    @property
    def kl(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(order (D,), kl (D,)): dimensions by decreasing KL in nats, on the model's map sample, or (without
        one) on 256 of its own prior samples."""

        def compute():
            if self.sample is not None:
                images = self.sample.for_model(self.model)
            else:
                with torch.inference_mode():
                    images = float_to_uint8(self.model.generate(256, generator=torch.Generator().manual_seed(0)))
            return dimensions_by_kl(self.model, images)

        return self._once("kl", compute)

    @property
    def slider_dims(self) -> list[tuple[int, float]]:
        """(dimension, KL) for the traversal sliders: the most active dimensions, at least one."""
        order, kl = self.kl
        dims = [(int(j), float(kl[j])) for j in order[:TRAVERSE_SLIDERS]]
        return [dk for dk in dims if dk[1] > ACTIVE_KL_NATS] or dims[:1]

    @property
    def latent_map(self) -> LatentMap | None:
        """The map of the model's own sample; None when it has none."""
        return self._once("map", lambda: build_latent_map(self.model, self.sample) if self.sample else None)

    def require_map(self) -> LatentMap:
        self.require_vector("latent map")
        if self.latent_map is None:
            raise InputError(f"No latent map: {self.sample_problem}.")
        return self.latent_map

    @property
    def dark_background(self) -> bool:
        """Whether the model's images have a dark border (Fashion-MNIST: yes), judged from prior samples (a spatial
        model: from the decoded mean latent map, the shift)."""

        def compute() -> bool:
            with torch.inference_mode():
                if self.spatial:
                    shift = self.model.config.shift_factor or 0.0
                    x = self.model.decode(torch.full((1, *self.model.latent_shape), float(shift))).sample
                else:
                    x = self.model.generate(16, generator=torch.Generator().manual_seed(0))
            return bool(torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], -1).mean() < 0)

        return self._once("dark", compute)


class Explorer:
    """The Space's endpoints: each method takes a model id first and returns the values of its output widgets.

    Model ids are the offered ones (``model_ids``: shipped names and the owner's configured ids) and, when
    ``allow_hub``, any Hub repo id; ``space_models.ModelLoader`` resolves and loads them within bounds. The
    ``max_models`` most recently used models stay in memory.
    """

    def __init__(self, model_ids: list[str], shipped: dict[str, Path], files: OutputFiles | None = None,
                 max_models: int = 4, allow_hub: bool = False, max_model_bytes: int = MAX_MODEL_BYTES):
        model_ids, configured = public_ids(model_ids, shipped)  # a configured folder by its name, not its path
        self.model_ids, self.shipped, self.max_models = model_ids, shipped, max_models
        self.files = files or OutputFiles.temporary()
        self.loader = ModelLoader(model_ids, shipped, allow_hub, max_model_bytes, configured)
        self._entries: OrderedDict[str, ModelEntry] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}  # only while a load runs: no state per failing id

    @classmethod
    def from_space_dir(cls, space_dir: str | Path, env: dict | None = None) -> "Explorer":
        """The Explorer of a Space folder: models as ``default_model_ids`` finds them, Hub ids typed by visitors
        only if ``VAE_HUB_SPACE_HUB_IDS`` says so."""
        return cls(*default_model_ids(Path(space_dir), env), allow_hub=hub_ids_allowed(env))

    @property
    def default_model(self) -> str | None:
        return self.model_ids[0] if self.model_ids else None

    # -------------------------------------------------------------------------------- loading
    def entry(self, model_id) -> ModelEntry:
        """The loaded model for ``model_id`` (loading it on first use), or an ``InputError`` saying why not."""
        model_id = checked_model_id(model_id)
        with self._lock:
            if model_id in self._entries:
                self._entries.move_to_end(model_id)
                return self._entries[model_id]
        self.loader.raise_if_failed_recently(model_id)
        source = self.loader.source(model_id)  # refuses what is not offered before anything is stored
        with self._lock:
            loading = self._loading.setdefault(model_id, threading.Lock())
        try:
            with loading:  # one load per id, however many requests ask for it at once
                with self._lock:
                    if model_id in self._entries:
                        return self._entries[model_id]
                self.loader.raise_if_failed_recently(model_id)  # the load this request waited for failed
                try:
                    entry = ModelEntry(model_id, self.loader.load(source))
                except InputError as err:
                    self.loader.remember_failure(model_id, str(err))
                    raise
                with self._lock:
                    self._entries[model_id] = entry
                    while len(self._entries) > self.max_models:
                        self._entries.popitem(last=False)
                return entry
        finally:
            with self._lock:
                if self._loading.get(model_id) is loading:
                    del self._loading[model_id]

    def warm(self, model_id) -> str | None:
        """Load a model and compute what the Space derives from it now, so the first visitor does not wait.
        Returns the problem, if there is one, instead of raising: the Space still starts and shows it."""
        try:
            entry = self.entry(model_id)
            if entry.kind == "vector":
                entry.kl, entry.latent_map  # noqa: B018 (computed and cached on access)
            if entry.kind != "pipeline":
                entry.dark_background  # noqa: B018
        except InputError as err:
            return str(err)
        return None

    # -------------------------------------------------------------------------------- endpoints
    def sample(self, model_id, n=16, seed=0, temperature=1.0, prior="standard") -> PIL.Image.Image:
        """/sample → the grid of ``n`` samples."""
        return sample_images(self.entry(model_id).require_vector("prior samples"), n, seed, temperature, prior)

    def reconstruct(self, model_id, image) -> tuple:
        """/reconstruct → (input as the model sees it, reconstruction, posterior chart, code, summary)."""
        entry = self.entry(model_id)
        model = entry.require_autoencoder("reconstruction")
        x, notes = prepare_image(image, model, entry.dark_background)
        return reconstruct(model, x, notes).astuple()

    def reconstruct_sketch(self, model_id, sketch) -> tuple:
        """/reconstruct_sketch: the same for a ``gr.Sketchpad`` value (strokes become white on black)."""
        entry = self.entry(model_id)
        model = entry.require_autoencoder("reconstruction")
        x, notes = prepare_image(sketch_to_image(sketch), model, entry.dark_background)
        return reconstruct(model, x, notes).astuple()

    def _code(self, entry: ModelEntry, source: str, image, seed, which: str) -> torch.Tensor:
        if source == "seeds":
            seed = check_int(seed, f"Seed {which}", 0, MAX_SEED)
            return entry.model.sample_prior(1, generator=torch.Generator().manual_seed(seed))[0]
        if image is None:
            raise InputError(f"Image {which} is missing: upload or pick one, or interpolate between seeds.")
        x, _ = prepare_image(image, entry.model, entry.dark_background)
        return encode_images(entry.model, x)[0]

    def interpolate(self, model_id, source="seeds", image_a=None, image_b=None, seed_a=0, seed_b=1, method="slerp", steps=10) -> tuple:
        """/interpolate → (strip of frames, animated GIF path) between two images' codes or two prior samples."""
        entry = self.entry(model_id)
        entry.require_autoencoder("interpolation between codes")
        check_choice(source, "Interpolate between", SOURCES)
        if entry.spatial and source == "seeds":
            raise InputError(f"{entry.model_id} is {KIND_NAMES['spatial']}: it has no prior to draw codes from "
                             "seeds, so it interpolates between two images' latent maps: choose images.")
        z0, z1 = (self._code(entry, source, im, s, w) for im, s, w in ((image_a, seed_a, "A"), (image_b, seed_b, "B")))
        return interpolate(entry.model, z0, z1, method, steps, self.files)

    def slider_updates(self, model_id) -> list[dict]:
        """Settings for this model of the ``TRAVERSE_SLIDERS`` sliders (label, visibility, value 0), then of
        the sweep selector: one choice per visible slider, named as its slider (``z4``), valued by its rank."""
        entry = self.entry(model_id)
        if entry.kind != "vector":  # nothing to traverse: every slider and the sweep hidden (the tab says why when
            return [{"visible": False}] * (TRAVERSE_SLIDERS + 1)  # used); values kept: a change would run /traverse
        dims = entry.slider_dims
        shown = [{"label": f"z{d}  ·  KL {kl:.2f} nats", "visible": True, "value": 0.0} for d, kl in dims]
        hidden = [{"visible": False, "value": 0.0}] * (TRAVERSE_SLIDERS - len(dims))
        sweep = [(f"z{d}", rank + 1) for rank, (d, _) in enumerate(dims)]
        return shown + hidden + [{"choices": sweep, "value": 1, "interactive": len(dims) > 1, "visible": True}]

    def traverse(self, model_id, start="origin", image=None, sweep=1, *offsets) -> tuple:
        """/traverse → (decoded image, sweep row). Offsets move the sliders' dimensions from the start code
        (the origin, or the image's posterior mean); ``sweep`` is the 1-based slider whose dimension is swept."""
        entry = self.entry(model_id)
        entry.require_vector("latent traversal")
        check_choice(start, "Start", STARTS)
        dims = [d for d, _ in entry.slider_dims]
        if len(offsets) != TRAVERSE_SLIDERS:
            raise InputError(f"Expected {TRAVERSE_SLIDERS} slider values, got {len(offsets)}.")
        offsets = [check_float(v, f"Slider {i + 1}", -TRAVERSE_RANGE, TRAVERSE_RANGE) for i, v in enumerate(offsets)]
        sweep = check_int(sweep, "Swept slider", 1, len(dims))
        if start == "image":
            if image is None:
                raise InputError("Start is 'image' but no image was given: upload or pick one, or start at the origin.")
            x, _ = prepare_image(image, entry.model, entry.dark_background)
            base = encode_images(entry.model, x)[0]
        else:
            base = torch.zeros(entry.model.config.latent_dim)
        return traverse(entry.model, base, dims, offsets[: len(dims)], sweep - 1)

    def latent_map(self, model_id) -> tuple[PIL.Image.Image | None, str]:
        """/latent_map → (scatter plot of the codes of the model's own held-out sample, a description of the
        plane), or (None, why this model has no map)."""
        entry = self.entry(model_id)
        if entry.spatial:
            return None, ("**No latent map for this model**: it is a spatial autoencoder, whose latents are maps, "
                          "not points of a plane; its Reconstruct tab shows them.")
        if entry.kind == "pipeline":
            return None, ("**No latent map for this model**: it is a latent diffusion pipeline, which draws images "
                          "from noise step by step; its Diffuse tab shows how.")
        m = entry.latent_map
        return (m.image, m.description) if m else (None, f"**No latent map for this model**: {entry.sample_problem}.")

    def manifold(self, model_id, n=15) -> PIL.Image.Image | None:
        """/manifold → the decoded n×n grid over the latent map's plane (computed once per model and n: every
        visitor's page shows it), or None for a model without a map (``latent_map`` says why)."""
        entry = self.entry(model_id)
        n = check_int(n, "Grid size", *MANIFOLD_RANGE)
        if entry.kind != "vector" or entry.latent_map is None:
            return None
        return entry._once(f"manifold-{n}", lambda: manifold(entry.model, entry.latent_map, n))

    def decode_point(self, model_id, x=0.0, y=0.0) -> tuple[PIL.Image.Image, PIL.Image.Image]:
        """/decode_point → (decoded code at plane point (x, y), the scatter plot marked there)."""
        entry = self.entry(model_id)
        x, y = check_point(x, y)
        m = entry.require_map()
        with torch.inference_mode():
            image = entry.model.decode(m.code(x, y)[None]).sample
        return show(image, nrow=1, width=336), mark_point(m, x, y)

    def map_click(self, model_id, px: float, py: float) -> tuple[float, float]:
        """A click on the latent map image at pixel (px, py) → the plane point (x, y) under it, rounded."""
        m = self.entry(model_id).require_map()
        return m.rounded(*m.map_pixel_to_plane(px, py))

    def manifold_click(self, model_id, px: float, py: float, n) -> tuple[float, float]:
        """A click on the n×n manifold image at pixel (px, py) → the plane point of that grid cell."""
        entry = self.entry(model_id)
        n = check_int(n, "Grid size", *MANIFOLD_RANGE)
        side = n * entry.model.config.sample_size
        m = entry.require_map()
        return m.rounded(*m.manifold_pixel_to_plane(px, py, side * display_scale(side, MANIFOLD_WIDTH), n))

    def status(self, model_id) -> str:
        """One markdown line describing the loaded model (and loading it, so errors show here first)."""
        entry = self.entry(model_id)
        data = f" of `{entry.dataset}`" if entry.dataset else ""
        if entry.kind == "pipeline":
            pipe = entry.model
            vae, unet = pipe.vae.config, pipe.unet.config
            latents = f"{unet.in_channels}×{unet.sample_size}×{unet.sample_size}"
            classes = f"{pipe.num_classes} classes" if pipe.num_classes else "unconditional"
            return (f"**{entry.model_id}** · latent diffusion pipeline · {classes} · {vae.in_channels}×{vae.sample_size}×"
                    f"{vae.sample_size} images{data} from {latents} latents · Diffuse, Compare and About only")
        cfg = entry.model.config
        images = f"**{entry.model_id}** · {cfg.in_channels}×{cfg.sample_size}×{cfg.sample_size} images{data}"
        if entry.spatial:
            cls = "AutoencoderKL" if isinstance(entry.model, AutoencoderKLWithLikelihood) else "spatial autoencoder"
            return (f"{images} · {cls}, latents {'×'.join(map(str, entry.model.latent_shape))} · "
                    f"{cfg.likelihood} likelihood · Reconstruct, Interpolate and About only")
        mixture = f"mixture prior ({cfg.prior_components} components)" if cfg.prior_components else "no mixture prior"
        return (f"{images} · {cfg.latent_dim}-D latent · {cfg.likelihood} likelihood · {mixture} · "
                "Diffuse needs a diffusion pipeline")

    def problem(self, model_id) -> str:
        """The status line after a model could not be chosen: what is wrong, in words, instead of the previous
        model's description (refusals are immediate, failed loads remembered: this does not load again)."""
        try:
            return self.status(model_id)
        except InputError as err:
            return f"⚠️ {err}"

    def about(self, model_id) -> str:
        """/about → markdown: the model, its numbers, how it was trained, its card, the data."""
        entry = self.entry(model_id)
        if entry.kind == "pipeline":
            return pipeline_about_markdown(entry, self.files)
        return about_markdown(entry, self.files)

    def kind(self, model_id) -> str:
        """The kind of the model (``KINDS``), loading it."""
        return self.entry(model_id).kind

    def tabs(self, model_id) -> tuple[str, ...]:
        """The tabs (``TABS``) of the model's kind, loading it."""
        return TABS[self.kind(model_id)]

    def has_tab(self, model_id, tab: str) -> bool:
        """Whether the model does the job of ``tab`` (one of ``TABS``' names)."""
        return tab in self.tabs(model_id)

    def known_kind(self, model_id: str | None) -> str | None:
        """The kind (``KINDS``) of an offered model that is a folder on this machine, known without loading it;
        None for a Hub id (or no model)."""
        folder = self.loader.source(model_id).folder if model_id else None
        return folder_kind(folder) if folder else None

    def offered(self, kind: str) -> list[str]:
        """The offered models of ``kind`` (``KINDS``) that are folders on this machine (known without loading)."""
        return [i for i in self.model_ids if self.known_kind(i) == kind]

    def known_class_names(self, model_id: str) -> list[str]:
        """The class names of an offered pipeline folder, from its ``model_index.json`` (without loading it)."""
        folder = self.loader.source(model_id).folder
        id2label = _read_json(folder / PIPELINE_INDEX_NAME).get("id2label") if folder else None
        return [str(v) for _, v in sorted(id2label.items(), key=lambda kv: int(kv[0]))] if isinstance(id2label, dict) else []

    def class_choices(self, model_id) -> dict:
        """The settings of /diffuse's class box for this model: "any" and its class names (only "any" for a model
        that is not a pipeline, or an unconditional one)."""
        entry = self.entry(model_id)
        names = entry.model.class_names if entry.kind == "pipeline" else []
        return {"choices": [ANY_CLASS, *names], "value": ANY_CLASS, "interactive": bool(names)}

    def diffuse(self, model_id, label=ANY_CLASS, num_images=16, steps=DEFAULT_NUM_INFERENCE_STEPS,
                guidance=DEFAULT_GUIDANCE_SCALE, seed=0,
                scheduler="DPM-Solver++") -> Iterator[tuple[PIL.Image.Image, PIL.Image.Image | None, str | None]]:
        """/diffuse, streamed: yields (preview, None, None) with the decoded x0 prediction every few steps, then
        (final grid, final grid, path of the GIF of the denoising). Same inputs, same images."""
        pipe = self.entry(model_id).require_pipeline("diffusion sampling")
        n = check_int(num_images, "Number of images", *DIFFUSE_IMAGES)
        steps = check_int(steps, "Steps", *DIFFUSE_STEPS)
        guidance = check_float(guidance, "Guidance scale", 0.0, MAX_GUIDANCE)
        seed = check_int(seed, "Seed", 0, MAX_SEED)
        check_choice(scheduler, "Scheduler", tuple(SCHEDULERS))
        labels = class_labels(pipe, label, n, seed)
        frames = []
        for step, images in denoise(pipe, labels, n, steps, guidance, seed, scheduler):
            grid = show(images)
            frames.append(show(images, width=GIF_WIDTH))
            if step < steps:
                yield grid, None, None
        gif = self.files.animation(frames, [200] * (len(frames) - 1) + [1500])  # the result stays a while
        yield grid, grid, gif

    def compare(self, vae_id, pipeline_id, num_images=16, seed=0) -> tuple[list[tuple[PIL.Image.Image, str]], str]:
        """/compare → ([(grid, caption)], markdown table): ``num_images`` samples of the vector VAE's N(0, I) prior, of
        its mixture prior (if it has one) and of the pipeline (random classes, its default steps and guidance, its own
        scheduler), each captioned with its sample quality as measured by ``evaluate_samples`` (read from the models'
        metrics, not computed here); the table gives the models, settings and sample counts behind the numbers, after a
        line that says so when the two models were trained on different data."""
        vae_entry, pipe_entry = self.entry(vae_id), self.entry(pipeline_id)
        vae = vae_entry.require_vector("prior samples to compare")
        pipe = pipe_entry.require_pipeline("diffusion samples to compare")
        n = check_int(num_images, "Number of images", *DIFFUSE_IMAGES)
        seed = check_int(seed, "Seed", 0, MAX_SEED)
        columns, rows = [], []
        for prior, name in (("standard", "N(0, I) prior"), ("mixture", "mixture prior")):
            if prior == "standard" or vae.config.prior_components:
                record = quality_record(vae_entry, kind="vae", prior=prior)
                columns.append((sample_images(vae, n, seed, prior=prior), quality_caption(name, record)))
                rows.append((name, vae_entry.model_id, "temperature 1", record))
        steps, guidance = pipeline_defaults(pipe)  # with its own scheduler: as evaluate_samples measures it
        *_, (_, images) = denoise(pipe, class_labels(pipe, ANY_CLASS, n, seed), n, steps, guidance, seed, None, previews=0)
        record = quality_record(pipe_entry, kind="pipeline", num_inference_steps=steps, guidance_scale=guidance)
        columns.append((show(images), quality_caption("diffusion", record)))
        rows.append(("diffusion", pipe_entry.model_id, f"{steps} steps, guidance {guidance:g}, "
                                                        f"{type(pipe.scheduler).__name__}, random classes", record))
        note = different_data_note(vae_entry, pipe_entry)
        return columns, f"{note}\n\n{quality_table(rows)}" if note else quality_table(rows)


# ------------------------------------------------------------------------------------------------ about
def _model_file(entry: ModelEntry, name: str) -> Path | None:
    """A file of the model's folder (a Hub repo's About files are downloaded with it), or None."""
    path = entry.loaded.folder / name
    return path if path.is_file() else None


CARD_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
MAX_CARD_IMAGE_BYTES = 5 * 2**20


def card_with_image_links(text: str, loaded: Loaded, files: OutputFiles) -> str:
    """Point a card's relative image links (``![samples](samples.png)``) where a browser can fetch them: the
    Hub's ``resolve`` URL for a repo; for a folder on this machine, a copy among the Space's output files (served
    by Gradio), so that no link names the model's folder. Links that leave the folder or are not small images
    are left as they are (and show nothing)."""
    folder = loaded.folder.resolve()

    def url(name: str) -> str | None:
        if loaded.source.repo_id:
            return f"https://huggingface.co/{loaded.source.repo_id}/resolve/main/{name}"
        path = (folder / name).resolve()
        if folder not in path.parents or path.suffix.lower() not in CARD_IMAGE_SUFFIXES:
            return None
        if not path.is_file() or path.stat().st_size > MAX_CARD_IMAGE_BYTES:
            return None
        return f"/gradio_api/file={files.copy(path)}"

    def link(m: re.Match) -> str:
        target = url(m.group(2))
        return f"{m.group(1)}{target})" if target else m.group(0)

    return re.sub(r"(!\[[^\]]*\]\()(?![a-z]+:|/|#)([^)\s]+)\)", link, text)


def _strip_front_matter(text: str) -> str:
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4 :].lstrip()
    return text


METRIC_ROWS = (
    ("negative_elbo_nats", "−ELBO", "nats"),
    ("iw_nll_nats", "importance-weighted NLL", "nats"),
    ("reconstruction_nats", "reconstruction −log p(x | z)", "nats"),
    ("kl_nats", "KL(q(z | x) ‖ p(z))", "nats"),
    ("bits_per_dim", "bits/dim", ""),
    ("psnr_db", "PSNR", "dB"),
    ("mse", "MSE (pixels in [0, 1])", ""),  # as vae_hub.evaluate computes it and the card says
    ("active_units", "active units", ""),
    ("images_per_second", "evaluation speed", "images/s"),
)


def evaluation_heading(split) -> str:
    """What the evaluated images were: the test split, or another held-out split (e.g. part of train)."""
    return "Test-set numbers" if split == "test" else "Numbers on held-out images"


def about_markdown(entry: ModelEntry, files: OutputFiles) -> str:
    """The About tab: architecture, held-out metrics (``metrics.json``), training (``training_info.json``), the
    data the tabs show, the card. Every table cell goes through ``table_row`` (a ``|`` would split it)."""
    cfg, model = entry.model.config, entry.model
    params = sum(p.numel() for p in model.parameters())
    if entry.spatial:
        latent_rows = [table_row("latents", f"a {'×'.join(map(str, model.latent_shape))} map (spatial autoencoder: "
                                            "the first stage of latent diffusion), no prior to sample from")]
    else:
        prior = (f"{cfg.prior_components}-component Gaussian mixture fitted to the training codes"
                 if cfg.prior_components else "none (standard N(0, I) only)")
        latent_rows = [table_row("latent", f"{cfg.latent_dim} dimensions, prior N(0, I)"), table_row("mixture prior", prior)]
    lines = [
        f"## {entry.model_id}",
        entry.loaded.source.describe(),
        "",
        "| | this model |",
        "|---|---|",
        table_row("images", f"{cfg.in_channels} channel{'s' if cfg.in_channels > 1 else ''}, {cfg.sample_size}×{cfg.sample_size} px"),
        table_row("trained on", f"`{entry.dataset}`" if entry.dataset else "not recorded"),
        *([table_row("data credits", credits)] if (credits := entry.data_credits) else []),
        *latent_rows,
        table_row("likelihood", cfg.likelihood),
        table_row("encoder / decoder", f"conv, channels {tuple(cfg.block_out_channels)}, {cfg.layers_per_block} residual "
                                      f"block(s) per stage{own_decoder_stages(cfg)}"),
        table_row("parameters", f"{params / 1e6:.2f} M"),
        table_row("scaling factor", f"{cfg.scaling_factor:g}"),
    ]
    metrics_file = _model_file(entry, "metrics.json")
    metrics = _read_json(metrics_file) if metrics_file else {}
    if metrics:
        split = metrics.get("split", "?")
        lines += ["", f"### {evaluation_heading(split)} ({data_name(str(metrics.get('dataset', '?')))}, split {split}, "
                      f"{metrics.get('num_images', '?')} images)", "", "| metric | value |", "|---|---|"]
        for key, name, unit in METRIC_ROWS:
            value = metrics.get(key)
            if value is not None:
                shown = f"{value:.4g}" if isinstance(value, float) else str(value)
                lines.append(table_row(name, f"{shown} {unit}".strip()))
        if metrics.get("likelihood_note"):
            lines += ["", f"*{metrics['likelihood_note']}*"]
    lines += training_lines(entry)
    sample = entry.sample
    lines += ["", "### Data shown here"]
    if entry.spatial:
        lines.append("The Reconstruct tab shows this model's latent maps; it has no latent map or sliders.")
    elif sample is not None:
        lines.append(f"The latent map and the slider order use the model's own sample of {len(sample.labels)} held-out "
                     f"images{f' ({sample.source})' if sample.source else ''}.")
    else:
        lines.append(f"No latent map: {entry.sample_problem}. The sliders are ordered on the model's own prior samples.")
    lines.append("The example images to pick are Fashion-MNIST test images (MIT license) and emoji test images "
                 "(Twemoji, CC-BY 4.0; Noto, Apache-2.0) shipped with the Space; like any upload, they are converted "
                 "to this model's size and channels.")
    return "\n".join(lines + card_lines(entry, files))


def training_lines(entry: ModelEntry) -> list[str]:
    """The About tab's "Training" section, from the model's ``training_info.json`` (none without one)."""
    info_file = _model_file(entry, "training_info.json")
    info = _read_json(info_file) if info_file else {}
    if not info:
        return []
    lines = ["", "### Training", ""]
    for key, name in (("dataset_name", "dataset"), ("num_train_images", "training images"), ("epochs", "epochs"),
                      ("steps", "steps"), ("train_batch_size", "batch size"), ("learning_rate", "learning rate"),
                      ("hardware", "hardware"), ("mixed_precision", "precision"), ("wall_time_seconds", "wall time (s)")):
        if info.get(key) is not None:
            lines.append(f"- **{name}**: {data_name(str(info[key])) if key == 'dataset_name' else info[key]}")
    if info.get("command"):  # the folders of the machine that trained it are nobody's business
        lines += ["", f"```\n{hide_paths(info['command'])}\n```"]
    return lines


def card_lines(entry: ModelEntry, files: OutputFiles) -> list[str]:
    """The model's card (``README.md``) without its metadata, its figures linked where a browser can fetch them."""
    card_file = _model_file(entry, "README.md")
    if not card_file:
        return []
    card = card_with_image_links(_strip_front_matter(card_file.read_text()), entry.loaded, files)
    return ["", "---", "", "### Model card", "", card]


def pipeline_about_markdown(entry: ModelEntry, files: OutputFiles) -> str:
    """The About tab of a latent diffusion pipeline: its parts, its measured sample quality (``metrics.json``),
    training, the card."""
    pipe = entry.model
    vae, unet = pipe.vae.config, pipe.unet.config
    params = sum(p.numel() for p in pipe.unet.parameters())
    steps, guidance = pipeline_defaults(pipe)
    lines = [
        f"## {entry.model_id}",
        entry.loaded.source.describe(),
        "",
        "| | this pipeline |",
        "|---|---|",
        table_row("generates", f"{vae.in_channels} channel{'s' if vae.in_channels > 1 else ''}, {vae.sample_size}×"
                               f"{vae.sample_size} px images"),
        table_row("classes", ", ".join(pipe.class_names) if pipe.num_classes else "none (unconditional)"),
        table_row("trained on", f"`{entry.dataset}`" if entry.dataset else "not recorded"),
        *([table_row("data credits", credits)] if (credits := entry.data_credits) else []),
        table_row("autoencoder", f"{type(pipe.vae).__name__}, latents {'×'.join(map(str, pipe.vae.latent_shape))}, "
                                 f"scaling factor {vae.scaling_factor:.4g}"),
        table_row("denoiser", f"UNet2DModel, channels {tuple(unet.block_out_channels)}, {params / 1e6:.2f} M parameters"),
        table_row("scheduler", f"{type(pipe.scheduler).__name__}, {pipe.scheduler.config.prediction_type} prediction"),
        table_row("defaults", f"{steps} steps, guidance scale {guidance:g}"),
    ]
    rows = sorted(quality_records(entry, kind="pipeline"),
                  key=lambda r: (r.get("num_inference_steps") or 0, r.get("guidance_scale") or 0))
    if rows:
        lines += ["", "### Sample quality (measured by `python -m vae_hub.evaluate_samples`)", "",
                  "| steps | guidance | Fréchet distance ↓ | class match ↑ | samples |", "|---|---|---|---|---|"]
        for r in rows:
            match = f"{r['class_match']:.1%}" if isinstance(r.get("class_match"), (int, float)) else "–"
            lines.append(table_row(r.get("num_inference_steps", "?"), r.get("guidance_scale", "?"),
                                   f"{r['frechet_distance']:.2f}", match, r.get("num_samples", "?")))
    return "\n".join(lines + training_lines(entry) + card_lines(entry, files))
