"""One path for the data: any Hub image dataset (or local folder) → uint8 images (N, C, H, W), decoded once.

    load_image_dataset(name | folder) ──▶ DatasetDict ──▶ find_image_column / find_label_column
                                                     └─▶ decode_images(split) ──▶ ImageTensor (uint8, labels)

Small datasets (MNIST-like) are decoded and transformed once into a uint8 tensor that training indexes per batch;
larger ones are read batch by batch through ``StreamingImages`` (a map-style dataset for a DataLoader with workers).
Both take the same conversion path, ``vae_hub.images.pil_to_uint8``. Errors here are ``DataError``: one line that
names the dataset, column or row at fault.
"""

import io
from dataclasses import dataclass
from pathlib import Path

import datasets
import PIL.Image
import torch
from tqdm.auto import tqdm

from .images import pil_to_uint8


class DataError(ValueError):
    """A dataset that cannot be used, with a message naming what is wrong."""


@dataclass
class ImageTensor:
    """Decoded images of one split.

    Attributes:
        images: uint8 (N, C, H, W).
        labels: int64 (N,) class ids, or None when the dataset has no label column.
        label_names: class names indexed by label id, or None.
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    label_names: list[str] | None = None


def load_image_dataset(
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    train_data_dir: str | None = None,
    cache_dir: str | None = None,
) -> datasets.DatasetDict:
    """``datasets.load_dataset`` of a Hub id or local folder in the Hub layout, or an image folder."""
    if bool(dataset_name) == bool(train_data_dir):
        raise DataError("give exactly one of --dataset_name (Hub id or folder) and --train_data_dir (image folder)")
    try:
        if dataset_name:
            loaded = datasets.load_dataset(dataset_name, dataset_config_name, cache_dir=cache_dir)
        else:
            loaded = datasets.load_dataset("imagefolder", data_dir=train_data_dir, cache_dir=cache_dir)
    except (FileNotFoundError, datasets.exceptions.DatasetsError, ConnectionError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"cannot load dataset {dataset_name or train_data_dir!r}: {first_line}") from err
    if not isinstance(loaded, datasets.DatasetDict):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


def dataset_license(dataset_name: str | None) -> str | None:
    """The licence a dataset's card declares (``license_name`` when it is ``other``), for model cards; ``None`` when
    there is no card, no licence in it, or the card cannot be read (offline, a plain image folder)."""
    from huggingface_hub import DatasetCard  # only the training scripts' records need it

    if not dataset_name:
        return None
    readme = Path(dataset_name, "README.md")
    try:
        card = DatasetCard.load(readme if readme.is_file() else dataset_name)
    except Exception:  # offline, no card, a malformed one: the record just has no licence
        return None
    license_id = card.data.get("license")
    return card.data.get("license_name") if license_id == "other" else license_id


def data_credits(training_info: dict) -> str | None:
    """The training data's credits for a card or the Space, from a ``training_info.json`` record: the
    ``--dataset_credit`` text and the licence of the dataset's card (``dataset_license``)."""
    credit, license_name = training_info.get("dataset_credit"), training_info.get("dataset_license")
    parts = [str(credit)] if credit else []
    if license_name:
        parts.append(f"dataset licence: `{license_name}`")
    return "; ".join(parts) or None


def find_image_column(dataset: datasets.Dataset, image_column: str | None = None) -> str:
    """The named column (checked to hold images) or the first column whose feature is ``datasets.Image``."""
    features = dataset.features
    image_columns = [name for name, feature in features.items() if isinstance(feature, datasets.Image)]
    if image_column is None:
        if not image_columns:
            raise DataError(f"no image column in the dataset; its columns are {list(features)} (use --image_column)")
        return image_columns[0]
    if image_column not in features:
        raise DataError(f"--image_column {image_column!r} is not a column; the columns are {list(features)}")
    if image_column not in image_columns:
        raise DataError(
            f"column {image_column!r} holds {features[image_column]!r}, not images; image columns: {image_columns}"
        )
    return image_column


def find_label_column(dataset: datasets.Dataset) -> str | None:
    """The first ``ClassLabel`` column, else an integer column named like a label, else None."""
    for name, feature in dataset.features.items():
        if isinstance(feature, datasets.ClassLabel):
            return name
    for name in ("label", "labels", "class", "target"):
        feature = dataset.features.get(name)
        if isinstance(feature, datasets.Value) and feature.dtype.startswith("int"):
            return name
    return None


def select_splits(
    dataset: datasets.DatasetDict, validation_split: float = 0.1, seed: int = 0
) -> tuple[datasets.Dataset, datasets.Dataset, str]:
    """(train, validation, name of the validation split): a ``test``/``validation`` split when the dataset has one,
    else ``validation_split`` of train held out with ``seed``."""
    if "train" not in dataset:
        raise DataError(f"the dataset has no 'train' split; its splits are {list(dataset)}")
    train = dataset["train"]
    if len(train) == 0:
        raise DataError("the 'train' split is empty")
    for name in ("test", "validation", "valid", "val"):
        if name in dataset and len(dataset[name]) > 0:
            return train, dataset[name], name
    if not 0 < validation_split < 1:
        raise DataError(
            f"the dataset has no test/validation split and --validation_split={validation_split} is not in (0, 1)"
        )
    try:
        parts = train.train_test_split(test_size=validation_split, seed=seed)
    except ValueError as err:  # datasets refuses a split that would leave one side empty
        raise DataError(f"holding out {validation_split} of {len(train)} images leaves an empty split") from err
    return parts["train"], parts["test"], f"train[{validation_split:g} held out]"


def captioned_rows(split: datasets.Dataset, caption_column: str) -> tuple[datasets.Dataset, list[str], int]:
    """(the rows with a caption, their captions, how many rows were dropped for an empty or missing caption)."""
    if caption_column not in split.features:
        raise DataError(f"--caption_column {caption_column!r} is not a column; the columns are {list(split.features)}")
    values = split[caption_column]
    if not all(value is None or isinstance(value, str) for value in values):
        raise DataError(f"column {caption_column!r} holds {split.features[caption_column]!r}, not captions (strings)")
    keep = [i for i, value in enumerate(values) if value is not None and value.strip()]
    if not keep:
        raise DataError(f"column {caption_column!r} has no non-empty caption")
    return split.select(keep), [values[i] for i in keep], len(values) - len(keep)


def infer_image_format(dataset: datasets.Dataset, image_column: str) -> tuple[int, int]:
    """(channels, size) of the first image: 1 for grayscale modes, else 3; size = its shorter side."""
    image = _open(dataset.cast_column(image_column, datasets.Image(decode=False))[0][image_column], 0)
    return (1 if image.mode in ("1", "L", "LA", "I", "I;16", "F") else 3), min(image.size)


def decode_images(
    dataset: datasets.Dataset,
    image_column: str,
    size: int,
    channels: int,
    label_column: str | None = None,
    desc: str = "decoding images",
    progress: bool = True,
) -> ImageTensor:
    """Decode, convert, resize and centre-crop every image of ``dataset`` once → ``ImageTensor``.

    Raises ``DataError`` naming the row of an unreadable image, or for an empty split.
    """
    if len(dataset) == 0:
        raise DataError(f"the split to decode ({desc}) is empty")
    raw = dataset.cast_column(image_column, datasets.Image(decode=False))
    images = torch.empty((len(raw), channels, size, size), dtype=torch.uint8)
    chunk = 1024
    with tqdm(total=len(raw), desc=desc, disable=not progress, unit="img") as bar:
        for start in range(0, len(raw), chunk):
            cells = raw[start : start + chunk][image_column]
            pils = [_open(cell, start + i) for i, cell in enumerate(cells)]
            images[start : start + len(pils)] = pil_to_uint8(pils, size, channels)
            bar.update(len(pils))
    labels = label_names = None
    if label_column:
        labels = torch.tensor(dataset[label_column], dtype=torch.long)
        feature = dataset.features[label_column]
        label_names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    return ImageTensor(images, labels, label_names)


def load_split(
    dataset_name: str,
    split: str,
    *,
    image_column: str | None = None,
    resolution: int,
    channels: int,
    dataset_config_name: str | None = None,
    cache_dir: str | None = None,
    max_samples: int | None = None,
    progress: bool = True,
) -> ImageTensor:
    """Load and decode one split of a dataset, e.g. for evaluation: the whole path in one call."""
    loaded = load_image_dataset(dataset_name, dataset_config_name, cache_dir=cache_dir)
    if split not in loaded:
        raise DataError(f"dataset {dataset_name!r} has no split {split!r}; its splits are {list(loaded)}")
    dataset = loaded[split]
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    column = find_image_column(dataset, image_column)
    return decode_images(
        dataset, column, resolution, channels, find_label_column(dataset), f"decoding {split}", progress
    )


class StreamingImages(torch.utils.data.Dataset):
    """Map-style view of a large split that decodes images on access (for a DataLoader with workers).

    ``dataset[i]`` → uint8 (C, size, size); the same conversion as ``decode_images``.
    """

    def __init__(self, dataset: datasets.Dataset, image_column: str, size: int, channels: int):
        self.raw = dataset.cast_column(image_column, datasets.Image(decode=False))
        self.column, self.size, self.channels = image_column, size, channels

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index: int) -> torch.Tensor:
        return pil_to_uint8([_open(self.raw[int(index)][self.column], int(index))], self.size, self.channels)[0]


def _open(cell: dict, row: int) -> PIL.Image.Image:
    """Open one undecoded ``datasets.Image`` cell ({"bytes", "path"}), naming the row if it is unreadable."""
    try:
        source = io.BytesIO(cell["bytes"]) if cell.get("bytes") else cell["path"]
        image = PIL.Image.open(source)
        image.load()
        return image
    except Exception as err:  # PIL raises several types for a broken file
        raise DataError(f"row {row}: unreadable image ({type(err).__name__}: {err})") from err
