"""Rebuild the Space's shipped data from the Fashion-MNIST test split (MIT license): run from the repo root.

    python space/make_examples.py [DATASET]   # DATASET defaults to ../shared/datasets/fashion_mnist

Writes ``space/examples/<class>_<row>.png`` (the first 3 test images of each class: pick-an-example inputs)
and ``space/examples/latent_map_sample.npz`` (200 test images per class, picked with seed 0, for the latent
map): ``images`` uint8 (N, 1, 28, 28), ``labels`` int64 (N,), ``class_names`` (10,), ``source`` (text).
"""

import re
import sys
from pathlib import Path

import numpy as np
import PIL.Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vae_hub.data import load_split  # noqa: E402

EXAMPLES_PER_CLASS, MAP_PER_CLASS = 3, 200


def main(dataset: str = "../shared/datasets/fashion_mnist") -> None:
    out = Path(__file__).resolve().parent / "examples"
    out.mkdir(exist_ok=True)
    test = load_split(dataset, "test", resolution=28, channels=1, progress=False)
    images, labels, names = test.images.numpy(), test.labels.numpy(), test.label_names
    rng = np.random.default_rng(0)
    picked = []
    for k, name in enumerate(names):
        rows = np.flatnonzero(labels == k)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        for row in rows[:EXAMPLES_PER_CLASS]:
            PIL.Image.fromarray(images[row, 0]).save(out / f"{slug}_{row}.png")
        picked.append(rng.choice(rows, MAP_PER_CLASS, replace=False))
    rows = np.sort(np.concatenate(picked))
    np.savez_compressed(
        out / "latent_map_sample.npz", images=images[rows], labels=labels[rows].astype(np.int64),
        class_names=np.array(names), source=np.array(f"Fashion-MNIST test split, rows {MAP_PER_CLASS}/class, seed 0"),
    )
    print(f"wrote {EXAMPLES_PER_CLASS * len(names)} examples and a map sample of {len(rows)} images to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
