"""Rebuild the Space's shipped data from the Fashion-MNIST test split (MIT license): run from the repo root.

    python space/make_examples.py [DATASET]   # DATASET defaults to ../shared/datasets/fashion_mnist

Writes ``space/examples/<class>_<row>.png`` (the first 3 test images of each class: pick-an-example inputs)
and, into each shipped model folder (both were trained on Fashion-MNIST), its ``latent_map_sample.npz``: 200
test images per class picked with seed 0 (``vae_hub.explore.MapSample``), the model's own latent-map sample.
"""

import re
import sys
from pathlib import Path

import PIL.Image


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vae_hub.data import load_split  # noqa: E402
from vae_hub.explore import MapSample  # noqa: E402
from vae_hub.hub import MAP_SAMPLE_NAME  # noqa: E402


EXAMPLES_PER_CLASS, MAP_PER_CLASS = 3, 200


def main(dataset: str = "../shared/datasets/fashion_mnist") -> None:
    here = Path(__file__).resolve().parent
    out = here / "examples"
    out.mkdir(exist_ok=True)
    test = load_split(dataset, "test", resolution=28, channels=1, progress=False)
    for k, name in enumerate(test.label_names):
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        for row in (test.labels == k).nonzero().flatten()[:EXAMPLES_PER_CLASS].tolist():
            PIL.Image.fromarray(test.images[row, 0].numpy()).save(out / f"{slug}_{row}.png")
    sample = MapSample.from_images(
        test.images, test.labels, test.label_names, "Fashion-MNIST test split", per_class=MAP_PER_CLASS, seed=0
    )
    for model in sorted(p.parent for p in (here / "models").glob("*/config.json")):
        sample.save(model / MAP_SAMPLE_NAME)
        print(f"wrote {model / MAP_SAMPLE_NAME} ({len(sample.labels)} images)")
    print(f"wrote {EXAMPLES_PER_CLASS * len(test.label_names)} examples to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
