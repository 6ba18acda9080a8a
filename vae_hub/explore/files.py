"""``OutputFiles``: the finished PNG and GIF files the Space returns."""

import atexit
import hashlib
import io
import os
import shutil
import tempfile
import threading
from pathlib import Path

import PIL.Image
import torch

from ..images import make_grid


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
        """Images of one size → an animated GIF that loops, each shown ``frame_ms`` (one number, or one per
        image)."""
        buffer = io.BytesIO()
        # Colour frames get their 256-colour palettes by fast octree: Pillow's default median cut took 15–25× as
        # long (five 268-px frames of four RGB previews: 0.8–1.0 s against 0.04–0.06 s on a loaded 2-core machine),
        # a large share of /text_to_image's cost over the bare pipeline call.
        images = [
            im.quantize(256, method=PIL.Image.Quantize.FASTOCTREE, dither=PIL.Image.Dither.NONE)
            if im.mode == "RGB"
            else im
            for im in images
        ]
        # optimize=False: Pillow's palette optimisation took 3× the time of the whole encode, for the same file size
        images[0].save(
            buffer, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0, optimize=False
        )
        return self._write(buffer.getvalue(), ".gif")
