"""The latent map: a model's own held-out sample (``MapSample``), its codes on a plane, the decoded manifold."""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch

from ..images import pil_to_uint8
from ..latent import encode_images, grid_2d, principal_directions, project
from ..models import VAEModel
from .checks import MANIFOLD_RANGE, MANIFOLD_WIDTH, check_int
from .display import _figure, _figure_to_pil, show


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
    def from_images(
        cls,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        class_names: list[str] | None,
        source: str,
        per_class: int = 200,
        seed: int = 0,
    ) -> "MapSample":
        """Up to ``per_class`` images of each class (``MAP_SAMPLE_MAX_IMAGES`` in all), picked with ``seed``."""
        gen = torch.Generator().manual_seed(seed)
        if labels is None or not class_names or len(class_names) > MAP_SAMPLE_MAX_CLASSES:
            rows = torch.randperm(len(images), generator=gen)[:MAP_SAMPLE_MAX_IMAGES]
            labels, class_names = torch.zeros(len(images), dtype=torch.long), []
        else:
            per_class = min(per_class, MAP_SAMPLE_MAX_IMAGES // len(class_names))
            rows = torch.cat(
                [
                    (labels == k)
                    .nonzero()
                    .flatten()[torch.randperm(int((labels == k).sum()), generator=gen)[:per_class]]
                    for k in range(len(class_names))
                ]
            )
        rows = rows.sort().values
        return cls(images[rows].clone(), labels[rows].numpy().astype(np.int64), list(class_names), source)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path,
            images=self.images.numpy(),
            labels=self.labels,
            class_names=np.array(self.class_names, dtype=str),
            source=np.array(self.source),
        )

    @classmethod
    def load(cls, path: str | Path) -> "MapSample":
        """Read and check a sample file; a ``ValueError`` says what is wrong with it (it may come from any Hub
        repo)."""
        if Path(path).stat().st_size > MAP_SAMPLE_MAX_BYTES:
            raise ValueError(f"it is larger than {MAP_SAMPLE_MAX_BYTES // 2**20} MB")
        try:
            with np.load(path, allow_pickle=False) as data:
                images, labels = data["images"], data["labels"]
                names = [str(c) for c in data["class_names"]] if "class_names" in data else []
                source = str(data["source"]) if "source" in data else ""
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"it is not a readable .npz with images and labels ({type(err).__name__})") from err
        if (
            images.dtype != np.uint8
            or images.ndim != 4
            or images.shape[1] not in (1, 3)
            or not 0 < len(images) <= MAP_SAMPLE_MAX_IMAGES
        ):
            raise ValueError(
                f"its images must be uint8 (N ≤ {MAP_SAMPLE_MAX_IMAGES}, 1 or 3, H, W), "
                f"got {images.dtype} {images.shape}"
            )
        if (
            labels.shape != (len(images),)
            or labels.dtype.kind not in "iu"
            or len(names) > MAP_SAMPLE_MAX_CLASSES
            or (len(labels) and (labels.min() < 0 or labels.max() >= max(len(names), 1)))
        ):
            raise ValueError(
                f"its labels must be one class index per image, below its {len(names)} class names "
                f"(at most {MAP_SAMPLE_MAX_CLASSES})"
            )
        return cls(torch.from_numpy(images), labels.astype(np.int64), names, source[:200])

    def for_model(self, model: VAEModel) -> torch.Tensor:
        """The images in the model's format (channels, size), converted like uploads if they differ."""
        cfg = model.config
        if tuple(self.images.shape[1:]) == (cfg.in_channels, cfg.sample_size, cfg.sample_size):
            return self.images
        pils = [
            PIL.Image.fromarray(im[0].numpy() if im.shape[0] == 1 else im.permute(1, 2, 0).numpy())
            for im in self.images
        ]
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
    title = (
        f"{n} held-out images" + (", coloured by class" if sample.class_names else "") + " — click to decode a point"
    )
    latent_map = LatentMap(
        coords, sample.labels, sample.class_names, center, directions, box, names, description, title
    )
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
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            s=7,
            color=colours(k % colours.N),
            alpha=0.75,
            linewidths=0,
            label=m.class_names[k] if m.class_names else None,
        )
    ax.set_xlim(m.box[0], m.box[1])
    ax.set_ylim(m.box[2], m.box[3])
    ax.set_xlabel(m.axis_names[0], fontsize=9)
    ax.set_ylabel(m.axis_names[1], fontsize=9)
    ax.tick_params(labelsize=8)
    if m.class_names:
        ax.legend(
            loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=9, markerscale=2.5, frameon=False, title="class"
        )
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
