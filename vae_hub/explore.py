"""What the Space computes, as plain functions: model ids, numbers and PIL images in; PIL images, files, text out.

``space/app.py`` only lays out widgets and wires them to an ``Explorer``; all checking of user input happens
here and raises ``InputError`` with a message meant for the person using the Space (the app shows it as a
``gr.Error``). Two layers:

* functions that take a ``VAEModel`` (``sample_images``, ``reconstruct``, ``interpolate``, ...): the
  computation, unit-tested without Gradio;
* ``Explorer``: one method per Space endpoint, taking a model *id* (a shipped model's name, a local folder or
  a Hub repo id) as its first argument. It loads each model once and caches what the Space derives from it
  (the dimensions ordered by KL, the latent map of the shipped test-set sample).
"""

import functools
import hashlib
import io
import json
import math
import os
import random
import re
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from . import likelihood as lik
from .images import make_grid, pil_to_uint8, uint8_to_float
from .latent import dimensions_by_kl, encode_images, grid_2d, lerp, principal_directions, project, slerp
from .losses import kl_per_dimension
from .models import PRIORS, VAEModel

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
MAX_PLANE_COORD = 100.0  # |x|, |y| of a point on the latent map
DISPLAY_WIDTH = 768  # grids are enlarged (nearest neighbour) to about this many pixels
MANIFOLD_WIDTH = 540  # the manifold grid, as wide as the latent map's plot area
INTERPOLATIONS = ("slerp", "lerp")
SOURCES = ("seeds", "images")
STARTS = ("origin", "image")


class InputError(ValueError):
    """A problem with what the user sent; the message says what was wrong and what to do instead."""


# ------------------------------------------------------------------------------------------------ checks
def check_int(value, name: str, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi], or an ``InputError`` naming ``name`` and the range."""
    try:
        number = float(value)
        ok = number.is_integer() and lo <= number <= hi
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}.")
    return int(number)


def check_float(value, name: str, lo: float, hi: float) -> float:
    """``value`` as a finite float in [lo, hi], or an ``InputError``."""
    try:
        number = float(value)
        ok = math.isfinite(number) and lo <= number <= hi
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"{name} must be a number from {lo:g} to {hi:g}, got {value!r}.")
    return number


def check_choice(value, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}; got {value!r}.")
    return value


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
    if max(w, h) > MAX_SIDE:
        raise InputError(f"The image is too large ({w}×{h} px): at most {MAX_SIDE} px per side, please shrink it.")
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise InputError(f"The image is {w}×{h} px, far from square: crop it to the object (at most {MAX_ASPECT:g}:1).")
    cfg, notes = model.config, []
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        if image.convert("RGBA").getchannel("A").getextrema()[1] == 0:
            raise InputError("The image is fully transparent: there is nothing to reconstruct.")
        notes.append("transparency flattened onto black")
    colour = image.mode not in ("L", "LA", "1", "I", "I;16", "F")
    if colour and cfg.in_channels == 1:
        notes.append("converted to greyscale")
    if w != h:
        notes.append(f"centre-cropped from {w}×{h}")
    if min(w, h) != cfg.sample_size:
        notes.append(f"resized to {cfg.sample_size}×{cfg.sample_size}")
    x = pil_to_uint8([image], cfg.sample_size, cfg.in_channels)
    border = torch.cat([x[..., :2, :].flatten(), x[..., -2:, :].flatten(), x[..., :, :2].flatten(), x[..., :, -2:].flatten()])
    if (border.float().mean() < 128) != dark_background:
        x = 255 - x
        notes.append(f"inverted: the model's images have a {'dark' if dark_background else 'light'} background")
    return x, notes


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
def reconstruct(model: VAEModel, x_uint8: torch.Tensor, notes: list[str] = ()) -> Reconstruction:
    """Encode uint8 (1, C, S, S), decode the posterior mean; report −log p(x | z = μ) and the KL, in nats."""
    x = uint8_to_float(x_uint8)
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

    def png(self, image: PIL.Image.Image) -> str:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)  # 2.5× faster than the default, files ~20 % larger
        return self._write(buffer.getvalue(), ".png")

    def gif(self, frames: torch.Tensor, frame_ms: int = 120) -> str:
        """Float frames (T, C, H, W) in [-1, 1] → an animated GIF that plays forward then back, enlarged to
        about 224 px with nearest neighbour."""
        scale = max(1, 224 // frames.shape[-1])
        pil = [make_grid(f[None], nrow=1, padding=0, scale=scale) for f in frames]
        loop = pil + pil[-2:0:-1]
        buffer = io.BytesIO()
        # optimize=False: Pillow's palette optimisation took 3× the time of the whole encode, for the same file size
        loop[0].save(buffer, format="GIF", save_all=True, append_images=loop[1:], duration=frame_ms, loop=0,
                     optimize=False)
        return self._write(buffer.getvalue(), ".gif")


# ------------------------------------------------------------------------------------------------ interpolation
@torch.inference_mode()
def interpolate(model: VAEModel, z0: torch.Tensor, z1: torch.Tensor, method: str, steps: int, files: OutputFiles) -> tuple[PIL.Image.Image, str]:
    """Decode the lerp/slerp path between codes z0, z1 (D,) → (strip image, path of an animated GIF)."""
    check_choice(method, "Interpolation", INTERPOLATIONS)
    steps = check_int(steps, "Steps", *STEPS_RANGE)
    path = (slerp if method == "slerp" else lerp)(z0, z1, steps)
    frames = model.decode(path).sample
    return show(frames, nrow=steps, width=1024), files.gif(frames)


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
@dataclass
class MapSample:
    """The small labelled test-set sample shipped with the Space: uint8 images (N, C, H, W), labels (N,)."""

    images: torch.Tensor
    labels: np.ndarray
    class_names: list[str]
    source: str = ""

    @classmethod
    def load(cls, path: str | Path) -> "MapSample":
        with np.load(path) as data:
            return cls(
                torch.from_numpy(data["images"]), data["labels"], [str(c) for c in data["class_names"]],
                str(data["source"]) if "source" in data else "",
            )

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
    image: PIL.Image.Image | None = None  # the rendered scatter plot
    axes_px: tuple[float, float, float, float] = (0, 0, 0, 0)  # plot area in image pixels: left, top, right, bottom

    def code(self, x: float, y: float) -> torch.Tensor:
        return self.center + x * self.directions[0] + y * self.directions[1]

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
    latent_map = LatentMap(coords, sample.labels, sample.class_names, center, directions, box, names, description)
    latent_map.image, latent_map.axes_px = _render_map(latent_map)
    return latent_map


def _render_map(m: LatentMap) -> tuple[PIL.Image.Image, tuple[float, float, float, float]]:
    from matplotlib import colormaps

    width, height = 820, 620
    fig = _figure(width, height)
    side = 540  # square plot area, in pixels, so the manifold grid lines up with it
    ax = fig.add_axes([60 / width, 50 / height, side / width, side / height])
    colours = colormaps["tab10"]
    for k, name in enumerate(m.class_names):
        pts = m.coords[m.labels == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=7, color=colours(k % 10), alpha=0.75, linewidths=0, label=name)
    ax.set_xlim(m.box[0], m.box[1])
    ax.set_ylim(m.box[2], m.box[3])
    ax.set_xlabel(m.axis_names[0], fontsize=9)
    ax.set_ylabel(m.axis_names[1], fontsize=9)
    ax.tick_params(labelsize=8)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9, markerscale=2.5, frameon=False, title="class")
    ax.set_title(f"{len(m.coords)} test images, coloured by class — click to decode a point", fontsize=10)
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
def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def default_model_ids(space_dir: Path, env: dict | None = None) -> tuple[list[str], dict[str, Path]]:
    """The models a Space offers, in order: ids from ``VAE_MODEL`` (comma-separated), the ``model_id`` of
    ``space_config.json`` (written by ``vae-hub deploy-space --model-id``), then the folders under
    ``models/`` that hold a ``VAEModel`` (shipped, by folder name; not the sample-quality classifier or a
    pipeline). Returns (ids, {shipped name: folder})."""
    env = os.environ if env is None else env
    shipped = {p.name: p for p in sorted((space_dir / "models").glob("*"))
               if _read_json(p / "config.json").get("_class_name") == VAEModel.__name__}
    ids = [s.strip() for s in env.get("VAE_MODEL", "").split(",") if s.strip()]
    configured = _read_json(space_dir / "space_config.json").get("model_id")
    if isinstance(configured, str) and configured.strip():
        ids.append(configured.strip())
    ids += list(shipped)
    return list(dict.fromkeys(ids)), shipped


@dataclass
class ModelEntry:
    """A loaded model and what the Space derives from it (computed once, on first use)."""

    model_id: str
    source: str  # the local folder or Hub repo id it was loaded from
    model: VAEModel
    sample: MapSample
    _cache: dict = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)  # re-entrant: the manifold needs the map

    def _once(self, name: str, compute):
        with self._lock:  # concurrent first requests wait for one computation instead of repeating it
            if name not in self._cache:
                self._cache[name] = compute()
            return self._cache[name]

    @property
    def kl(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(order (D,), kl (D,)): dimensions by decreasing KL on the map sample, in nats."""
        return self._once("kl", lambda: dimensions_by_kl(self.model, self.sample.for_model(self.model)))

    @property
    def slider_dims(self) -> list[tuple[int, float]]:
        """(dimension, KL) for the traversal sliders: the most active dimensions, at least one."""
        order, kl = self.kl
        dims = [(int(j), float(kl[j])) for j in order[:TRAVERSE_SLIDERS]]
        return [dk for dk in dims if dk[1] > ACTIVE_KL_NATS] or dims[:1]

    @property
    def latent_map(self) -> LatentMap:
        return self._once("map", lambda: build_latent_map(self.model, self.sample))

    @property
    def dark_background(self) -> bool:
        """Whether the model's images have a dark border (Fashion-MNIST: yes), judged from prior samples."""

        def compute() -> bool:
            with torch.inference_mode():
                x = self.model.generate(16, generator=torch.Generator().manual_seed(0))
            return bool(torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], -1).mean() < 0)

        return self._once("dark", compute)


class Explorer:
    """The Space's endpoints: each method takes a model id first and returns the values of its output widgets.

    Model ids are a shipped model's name, a local folder or a Hub repo id; models load on first use with
    ``VAEModel.from_pretrained`` and the ``max_models`` most recently used stay in memory.
    """

    def __init__(self, model_ids: list[str], shipped: dict[str, Path], sample: MapSample, files: OutputFiles | None = None,
                 max_models: int = 4):
        self.model_ids, self.shipped, self.map_sample, self.max_models = model_ids, shipped, sample, max_models
        self.files = files or OutputFiles(Path(tempfile.mkdtemp(prefix="vae_hub_space_")))
        self._entries: OrderedDict[str, ModelEntry] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    @classmethod
    def from_space_dir(cls, space_dir: str | Path, env: dict | None = None) -> "Explorer":
        """The Explorer of a Space folder: models as ``default_model_ids`` finds them, the shipped map sample."""
        space_dir = Path(space_dir)
        ids, shipped = default_model_ids(space_dir, env)
        return cls(ids, shipped, MapSample.load(space_dir / "examples" / "latent_map_sample.npz"))

    def local_folders(self) -> list[str]:
        """The model folders on this machine that the Space offers (their files may be served: card figures)."""
        folders = [str(p) for p in self.shipped.values()]
        return folders + [str(Path(m).resolve()) for m in self.model_ids if m not in self.shipped and Path(m).is_dir()]

    @property
    def default_model(self) -> str | None:
        return self.model_ids[0] if self.model_ids else None

    # -------------------------------------------------------------------------------- loading
    def _source(self, model_id: str) -> str:
        if model_id in self.shipped:
            return str(self.shipped[model_id])
        path = Path(model_id).expanduser()
        if path.is_dir():
            return str(path.resolve())
        if model_id.startswith((".", "/", "~")) or model_id.count("/") > 1:
            raise InputError(f"There is no model folder at {model_id!r}.")
        try:
            validate_repo_id(model_id)
        except HFValidationError as err:
            raise InputError(f"{model_id!r} is not a shipped model, a local folder or a Hub repo id (user/name).") from err
        return model_id

    def entry(self, model_id) -> ModelEntry:
        """The loaded model for ``model_id`` (loading it on first use), or an ``InputError`` saying why not."""
        if not isinstance(model_id, str) or not model_id.strip():
            raise InputError("Choose a model: a name from the list, a Hub repo id (user/name) or a local folder.")
        model_id = model_id.strip()
        with self._lock:
            if model_id in self._entries:
                self._entries.move_to_end(model_id)
                return self._entries[model_id]
            loading = self._loading.setdefault(model_id, threading.Lock())
        with loading:  # one load per id, however many requests ask for it at once
            with self._lock:
                if model_id in self._entries:
                    return self._entries[model_id]
            source = self._source(model_id)
            try:
                model = VAEModel.from_pretrained(source).eval().requires_grad_(False)
            except Exception as err:  # whatever from_pretrained raises, the user needs its message
                message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise InputError(f"Cannot load model {model_id!r}: {message}") from err
            entry = ModelEntry(model_id, source, model, self.map_sample)
            with self._lock:
                self._entries[model_id] = entry
                while len(self._entries) > self.max_models:
                    self._entries.popitem(last=False)
                self._loading.pop(model_id, None)
        return entry

    def warm(self, model_id) -> str | None:
        """Load a model and compute what the Space derives from it now, so the first visitor does not wait.
        Returns the problem, if there is one, instead of raising: the Space still starts and shows it."""
        try:
            entry = self.entry(model_id)
            entry.kl, entry.latent_map, entry.dark_background  # noqa: B018 (computed and cached on access)
        except InputError as err:
            return str(err)
        return None

    # -------------------------------------------------------------------------------- endpoints
    def sample(self, model_id, n=16, seed=0, temperature=1.0, prior="standard") -> PIL.Image.Image:
        """/sample → the grid of ``n`` samples."""
        return sample_images(self.entry(model_id).model, n, seed, temperature, prior)

    def reconstruct(self, model_id, image) -> tuple:
        """/reconstruct → (input as the model sees it, reconstruction, posterior chart, code, summary)."""
        entry = self.entry(model_id)
        x, notes = prepare_image(image, entry.model, entry.dark_background)
        return reconstruct(entry.model, x, notes).astuple()

    def reconstruct_sketch(self, model_id, sketch) -> tuple:
        """/reconstruct_sketch: the same for a ``gr.Sketchpad`` value (strokes become white on black)."""
        entry = self.entry(model_id)
        x, notes = prepare_image(sketch_to_image(sketch), entry.model, entry.dark_background)
        return reconstruct(entry.model, x, notes).astuple()

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
        check_choice(source, "Interpolate between", SOURCES)
        z0, z1 = (self._code(entry, source, im, s, w) for im, s, w in ((image_a, seed_a, "A"), (image_b, seed_b, "B")))
        return interpolate(entry.model, z0, z1, method, steps, self.files)

    def slider_updates(self, model_id) -> list[dict]:
        """Settings for this model of the ``TRAVERSE_SLIDERS`` sliders (label, visibility, value 0), then of
        the sweep selector (its maximum is the number of visible sliders)."""
        dims = self.entry(model_id).slider_dims
        shown = [{"label": f"z{d}  ·  KL {kl:.2f} nats", "visible": True, "value": 0.0} for d, kl in dims]
        hidden = [{"visible": False, "value": 0.0}] * (TRAVERSE_SLIDERS - len(dims))
        return shown + hidden + [{"maximum": max(len(dims), 2), "value": 1, "interactive": len(dims) > 1}]

    def traverse(self, model_id, start="origin", image=None, sweep=1, *offsets) -> tuple:
        """/traverse → (decoded image, sweep row). Offsets move the sliders' dimensions from the start code
        (the origin, or the image's posterior mean); ``sweep`` is the 1-based slider whose dimension is swept."""
        entry = self.entry(model_id)
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

    def latent_map(self, model_id) -> tuple[PIL.Image.Image, str]:
        """/latent_map → (scatter plot of the test sample's codes, a description of the plane)."""
        m = self.entry(model_id).latent_map
        return m.image, m.description

    def manifold(self, model_id, n=15) -> PIL.Image.Image:
        """/manifold → the decoded n×n grid over the latent map's plane (computed once per model and n: every
        visitor's page shows it)."""
        entry = self.entry(model_id)
        n = check_int(n, "Grid size", *MANIFOLD_RANGE)
        return entry._once(f"manifold-{n}", lambda: manifold(entry.model, entry.latent_map, n))

    def decode_point(self, model_id, x=0.0, y=0.0) -> tuple[PIL.Image.Image, PIL.Image.Image]:
        """/decode_point → (decoded code at plane point (x, y), the scatter plot marked there)."""
        entry = self.entry(model_id)
        x = check_float(x, "x", -MAX_PLANE_COORD, MAX_PLANE_COORD)
        y = check_float(y, "y", -MAX_PLANE_COORD, MAX_PLANE_COORD)
        m = entry.latent_map
        with torch.inference_mode():
            image = entry.model.decode(m.code(x, y)[None]).sample
        return show(image, nrow=1, width=336), mark_point(m, x, y)

    def map_click(self, model_id, px: float, py: float) -> tuple[float, float]:
        """A click on the latent map image at pixel (px, py) → the plane point (x, y) under it."""
        return self.entry(model_id).latent_map.map_pixel_to_plane(px, py)

    def manifold_click(self, model_id, px: float, py: float, n) -> tuple[float, float]:
        """A click on the n×n manifold image at pixel (px, py) → the plane point of that grid cell."""
        entry = self.entry(model_id)
        n = check_int(n, "Grid size", *MANIFOLD_RANGE)
        side = n * entry.model.config.sample_size
        return entry.latent_map.manifold_pixel_to_plane(px, py, side * display_scale(side, MANIFOLD_WIDTH), n)

    def status(self, model_id) -> str:
        """One markdown line describing the loaded model (and loading it, so errors show here first)."""
        entry = self.entry(model_id)
        cfg = entry.model.config
        mixture = f"mixture prior ({cfg.prior_components} components)" if cfg.prior_components else "no mixture prior"
        return (f"**{entry.model_id}** · {cfg.in_channels}×{cfg.sample_size}×{cfg.sample_size} images · "
                f"{cfg.latent_dim}-D latent · {cfg.likelihood} likelihood · {mixture}")

    def about(self, model_id) -> str:
        """/about → markdown: the model, its numbers, how it was trained, its card, the data."""
        entry = self.entry(model_id)
        return about_markdown(entry, self.map_sample)


# ------------------------------------------------------------------------------------------------ about
def _model_file(source: str, name: str) -> Path | None:
    """A file of a model folder or Hub repo, or None when it has none (or the Hub cannot be reached)."""
    path = Path(source) / name
    if path.is_file():
        return path
    if Path(source).is_dir():
        return None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(source, name))
    except Exception:  # absent, private, offline: the About tab just shows less
        return None


def card_with_image_links(text: str, source: str) -> str:
    """Point a card's relative image links (``![samples](samples.png)``) where a browser can fetch them: the
    Hub's ``resolve`` URL for a repo, Gradio's file route for a local folder (listed in ``allowed_paths``)."""
    folder = Path(source)
    base = f"/gradio_api/file={folder.resolve()}/" if folder.is_dir() else f"https://huggingface.co/{source}/resolve/main/"
    return re.sub(r"(!\[[^\]]*\]\()(?![a-z]+:|/|#)([^)\s]+)\)", lambda m: f"{m.group(1)}{base}{m.group(2)})", text)


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
    ("mse", "MSE (pixels in [−1, 1])", ""),
    ("active_units", "active units", ""),
    ("images_per_second", "evaluation speed", "images/s"),
)


def about_markdown(entry: ModelEntry, sample: MapSample) -> str:
    """The About tab: architecture, test metrics (``metrics.json``), training (``training_info.json``), card."""
    cfg, model = entry.model.config, entry.model
    params = sum(p.numel() for p in model.parameters())
    prior = f"{cfg.prior_components}-component Gaussian mixture fitted to the training codes" if cfg.prior_components else "none (standard N(0, I) only)"
    lines = [
        f"## {entry.model_id}",
        f"Loaded from `{entry.source}`.",
        "",
        "| | this model |",
        "|---|---|",
        f"| images | {cfg.in_channels} channel{'s' if cfg.in_channels > 1 else ''}, {cfg.sample_size}×{cfg.sample_size} px |",
        f"| latent | {cfg.latent_dim} dimensions, prior N(0, I) |",
        f"| mixture prior | {prior} |",
        f"| likelihood | {cfg.likelihood} |",
        f"| encoder / decoder | conv, channels {tuple(cfg.block_out_channels)}, {cfg.layers_per_block} residual block(s) per stage |",
        f"| parameters | {params / 1e6:.2f} M |",
        f"| scaling factor | {cfg.scaling_factor:g} |",
    ]
    metrics_file = _model_file(entry.source, "metrics.json")
    metrics = _read_json(metrics_file) if metrics_file else {}
    if metrics:
        lines += ["", f"### Test-set numbers ({metrics.get('dataset', '?')}, split {metrics.get('split', '?')}, "
                      f"{metrics.get('num_images', '?')} images)", "", "| metric | value |", "|---|---|"]
        for key, name, unit in METRIC_ROWS:
            value = metrics.get(key)
            if value is not None:
                shown = f"{value:.4g}" if isinstance(value, float) else str(value)
                lines.append(f"| {name} | {shown} {unit} |")
        if metrics.get("likelihood_note"):
            lines += ["", f"*{metrics['likelihood_note']}*"]
    info_file = _model_file(entry.source, "training_info.json")
    info = _read_json(info_file) if info_file else {}
    if info:
        lines += ["", "### Training", ""]
        for key, name in (("dataset_name", "dataset"), ("num_train_images", "training images"), ("epochs", "epochs"),
                          ("steps", "steps"), ("train_batch_size", "batch size"), ("learning_rate", "learning rate"),
                          ("hardware", "hardware"), ("mixed_precision", "precision"), ("wall_time_seconds", "wall time (s)")):
            if info.get(key) is not None:
                lines.append(f"- **{name}**: {info[key]}")
        if info.get("command"):
            lines += ["", f"```\n{info['command']}\n```"]
    lines += [
        "", "### Data shown here",
        f"The examples and the latent-map sample ({len(sample.labels)} images, {sample.source or 'shipped with the Space'}) "
        "come from the **test split of Fashion-MNIST** (Xiao, Rasul & Vollgraf 2017, MIT license): images the "
        "model never trained on.",
    ]
    card_file = _model_file(entry.source, "README.md")
    if card_file:
        card = card_with_image_links(_strip_front_matter(card_file.read_text()), entry.source)
        lines += ["", "---", "", "### Model card", "", card]
    return "\n".join(lines)
