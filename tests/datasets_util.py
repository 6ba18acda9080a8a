"""Tiny image datasets written to disk in the layouts users have: the Hub parquet layout and an image folder.

    write_hub_dataset(root)     root/data/train-00000-of-00001.parquet (+ test-...), README.md with a ``configs:``
                                block (or none: datasets' default ``data/<split>-*`` layout); ``image`` is a
                                ``datasets.Image`` column and ``label`` a ``ClassLabel``, as on the Hub.
    write_image_folder(root)    root/<class>/<i>.png, what ``--train_data_dir`` reads (datasets' imagefolder).

Images are seeded: the same arguments give the same files. Each class has its own pattern so a VAE can learn it.
"""

import io
from pathlib import Path

import datasets
import numpy as np
import PIL.Image


CLASS_NAMES = ("zero", "one", "two", "three")
README_CONFIGS = """---
configs:
- config_name: default
  data_files:
{files}
---
# tiny test dataset
"""


def make_images(n: int, size: int = 8, channels: int = 1, seed: int = 0) -> tuple[list[PIL.Image.Image], list[int]]:
    """``n`` PIL images (mode "L" or "RGB", ``size``×``size``) and their class ids: a class-dependent stripe + noise."""
    rng = np.random.default_rng(seed)
    labels = [int(i % len(CLASS_NAMES)) for i in range(n)]
    images = []
    for label in labels:
        array = rng.integers(0, 64, size=(size, size, channels), dtype=np.uint8)
        band = slice(label * size // len(CLASS_NAMES), (label + 1) * size // len(CLASS_NAMES))
        array[band] = 255 - array[band]
        images.append(PIL.Image.fromarray(array[..., 0] if channels == 1 else array))
    return images, labels


def png_bytes(image: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_hub_dataset(
    root: str | Path,
    *,
    n_train: int = 64,
    n_test: int | None = 16,
    size: int = 8,
    channels: int = 1,
    image_column: str = "image",
    label_column: str | None = "label",
    readme: bool = True,
    image_feature: bool = True,
    corrupt_rows: tuple[int, ...] = (),
    seed: int = 0,
    class_names: tuple[str, ...] = CLASS_NAMES,
    caption_column: str | None = None,
) -> Path:
    """Write a dataset in the Hub parquet layout under ``root`` and return ``root``.

    Args:
        n_test: images of the ``test`` split; None for a dataset with a train split only.
        image_column, label_column: column names (label_column None: no label column).
        readme: write a README.md whose ``configs:`` block names the files; False relies on datasets' default layout.
        image_feature: False stores the PNG bytes as a plain ``binary`` column, so the dataset has no image column.
        corrupt_rows: rows of the train split whose image bytes are not an image (for the unreadable-image error).
        class_names: the label column's ClassLabel names (the same images: stripes by class id).
        caption_column: also a column of captions by this name, "<class name> stripe, noise <k>" (k = row % 5).
    """
    root = Path(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    splits = {"train": n_train} if n_test is None else {"train": n_train, "test": n_test}
    features = {image_column: datasets.Image() if image_feature else datasets.Value("binary")}
    if label_column:
        features[label_column] = datasets.ClassLabel(names=list(class_names))
    if caption_column:
        features[caption_column] = datasets.Value("string")
    for offset, (split, n) in enumerate(splits.items()):
        images, labels = make_images(n, size, channels, seed=seed + offset)
        cells = [png_bytes(image) for image in images]
        if split == "train":
            for row in corrupt_rows:
                cells[row] = b"this is not an image"
        columns = {image_column: cells}
        if label_column:
            columns[label_column] = labels
        if caption_column:
            columns[caption_column] = [f"{class_names[label]} stripe, noise {i % 5}" for i, label in enumerate(labels)]
        table = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
        table.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    if readme:
        files = "\n".join(f"  - split: {split}\n    path: data/{split}-*" for split in splits)
        (root / "README.md").write_text(README_CONFIGS.format(files=files))
    return root


def write_image_folder(root: str | Path, *, n: int = 64, size: int = 8, channels: int = 1, seed: int = 0) -> Path:
    """Write ``n`` PNGs as ``root/<class name>/<i>.png`` (one train split, labels from the folder names)."""
    root = Path(root)
    images, labels = make_images(n, size, channels, seed)
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / CLASS_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{i}.png")
    return root
