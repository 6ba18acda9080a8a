"""vae_hub.data: loading any image dataset layout, finding its columns and splits, decoding once or streaming."""

import datasets
import PIL.Image
import pytest
import torch
from datasets_util import CLASS_NAMES, make_images, write_hub_dataset, write_image_folder

from vae_hub.data import (
    DataError,
    StreamingImages,
    decode_images,
    find_image_column,
    find_label_column,
    infer_image_format,
    load_image_dataset,
    load_split,
    select_splits,
)
from vae_hub.images import pil_to_uint8


def in_memory(n: int = 8, size: int = 8, channels: int = 1, **extra_columns) -> datasets.Dataset:
    images, labels = make_images(n, size, channels)
    features = {"image": datasets.Image(), "label": datasets.ClassLabel(names=list(CLASS_NAMES))}
    columns = {"image": images, "label": labels}
    for name, (values, feature) in extra_columns.items():
        columns[name], features[name] = values, feature
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


# ---------------------------------------------------------------------------------------------- loading layouts
@pytest.mark.parametrize("readme", [True, False], ids=["configs-block", "default-layout"])
def test_load_hub_layout_gives_train_and_test_with_image_and_classlabel(tmp_path, readme):
    root = write_hub_dataset(tmp_path / "ds", n_train=12, n_test=4, readme=readme)
    loaded = load_image_dataset(str(root), cache_dir=str(tmp_path / "cache"))
    assert {k: len(v) for k, v in loaded.items()} == {"train": 12, "test": 4}
    assert isinstance(loaded["train"].features["image"], datasets.Image)
    assert loaded["train"].features["label"].names == list(CLASS_NAMES)


def test_load_image_folder_labels_from_folder_names(tmp_path):
    root = write_image_folder(tmp_path / "folder", n=8, channels=3)
    loaded = load_image_dataset(train_data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    assert list(loaded) == ["train"] and len(loaded["train"]) == 8
    assert find_image_column(loaded["train"]) == "image"
    assert sorted(loaded["train"].features["label"].names) == sorted(CLASS_NAMES)


def test_load_unknown_path_is_a_data_error_naming_it(tmp_path):
    with pytest.raises(DataError, match="cannot load dataset .*no-such-folder"):
        load_image_dataset(str(tmp_path / "no-such-folder"), cache_dir=str(tmp_path / "cache"))


@pytest.mark.parametrize("kwargs", [{}, {"dataset_name": "a", "train_data_dir": "b"}])
def test_load_needs_exactly_one_source(kwargs):
    with pytest.raises(DataError, match="exactly one"):
        load_image_dataset(**kwargs)


# ---------------------------------------------------------------------------------------------- columns
def test_find_image_column_default_is_first_image_feature():
    ds = in_memory(4, pixels=([PIL.Image.new("L", (8, 8))] * 4, datasets.Image()))
    assert find_image_column(ds) == "image"
    assert find_image_column(ds, "pixels") == "pixels"


def test_find_image_column_other_name(tmp_path):
    root = write_hub_dataset(tmp_path / "ds", n_train=4, n_test=None, image_column="img")
    train = load_image_dataset(str(root), cache_dir=str(tmp_path / "cache"))["train"]
    assert find_image_column(train) == "img"


def test_missing_column_lists_the_columns():
    with pytest.raises(DataError, match=r"'nope' is not a column.*\['image', 'label'\]"):
        find_image_column(in_memory(4), "nope")


def test_non_image_column_is_refused_with_the_image_columns():
    with pytest.raises(DataError, match=r"'label' holds .*not images; image columns: \['image'\]"):
        find_image_column(in_memory(4), "label")


def test_no_image_column_lists_the_columns(tmp_path):
    root = write_hub_dataset(tmp_path / "ds", n_train=4, n_test=None, image_column="pixels", image_feature=False)
    train = load_image_dataset(str(root), cache_dir=str(tmp_path / "cache"))["train"]
    with pytest.raises(DataError, match=r"no image column.*\['pixels', 'label'\].*--image_column"):
        find_image_column(train)


def test_find_label_column():
    assert find_label_column(in_memory(4)) == "label"
    ints = datasets.Dataset.from_dict(
        {"image": [PIL.Image.new("L", (4, 4))] * 2, "target": [0, 1]},
        features=datasets.Features({"image": datasets.Image(), "target": datasets.Value("int64")}),
    )
    assert find_label_column(ints) == "target"
    assert find_label_column(in_memory(4).remove_columns("label")) is None


# ---------------------------------------------------------------------------------------------- splits
def test_select_splits_prefers_test_then_validation():
    train, test, val = in_memory(8), in_memory(3), in_memory(2)
    assert select_splits(datasets.DatasetDict(train=train, test=test, validation=val))[1:] == (test, "test")
    assert select_splits(datasets.DatasetDict(train=train, validation=val))[1:] == (val, "validation")


def test_select_splits_holds_out_a_seeded_fraction_without_test_split():
    full = in_memory(40)
    train, held, name = select_splits(datasets.DatasetDict(train=full), validation_split=0.25, seed=3)
    assert (len(train), len(held), name) == (30, 10, "train[0.25 held out]")
    again = select_splits(datasets.DatasetDict(train=full), validation_split=0.25, seed=3)[1]
    assert held["label"] == again["label"] and held["image"][0].tobytes() == again["image"][0].tobytes()


def test_select_splits_ignores_an_empty_test_split():
    train, held, name = select_splits(datasets.DatasetDict(train=in_memory(10), test=in_memory(0)), 0.2)
    assert (len(train), len(held)) == (8, 2) and name.startswith("train[")


@pytest.mark.parametrize(
    "splits, fraction, message",
    [
        ({"test": 4}, 0.1, "no 'train' split; its splits are \\['test'\\]"),
        ({"train": 0}, 0.1, "'train' split is empty"),
        ({"train": 8}, 1.5, "--validation_split=1.5 is not in \\(0, 1\\)"),
        ({"train": 1}, 0.1, "holding out 0.1 of 1 images leaves an empty split"),
    ],
)
def test_select_splits_errors(splits, fraction, message):
    dataset = datasets.DatasetDict({name: in_memory(n) for name, n in splits.items()})
    with pytest.raises(DataError, match=message):
        select_splits(dataset, fraction)


def test_empty_split_on_disk_is_an_error_naming_the_split(tmp_path):
    root = write_hub_dataset(tmp_path / "ds", n_train=0, n_test=4)
    with pytest.raises(DataError, match='"train"'):
        load_image_dataset(str(root), cache_dir=str(tmp_path / "cache"))


# ---------------------------------------------------------------------------------------------- decoding
@pytest.mark.parametrize("channels", [1, 3])
def test_decode_equals_the_one_conversion_path(channels):
    ds = in_memory(6, size=10, channels=channels)
    decoded = decode_images(ds, "image", size=8, channels=channels, label_column="label", progress=False)
    assert decoded.images.dtype == torch.uint8 and decoded.images.shape == (6, channels, 8, 8)
    assert torch.equal(decoded.images, pil_to_uint8(list(ds["image"]), 8, channels))
    assert decoded.labels.tolist() == ds["label"] and decoded.label_names == list(CLASS_NAMES)


def test_decode_converts_between_grayscale_and_rgb():
    rgb = decode_images(in_memory(2, channels=1), "image", 8, 3, progress=False).images
    gray = decode_images(in_memory(2, channels=1), "image", 8, 1, progress=False).images
    assert rgb.shape == (2, 3, 8, 8) and torch.equal(rgb[:, 0], gray[:, 0]) and torch.equal(rgb[:, 1], rgb[:, 2])


def test_infer_image_format_channels_and_shorter_side():
    assert infer_image_format(in_memory(2, size=12, channels=1), "image") == (1, 12)
    assert infer_image_format(in_memory(2, size=8, channels=3), "image") == (3, 8)
    wide = datasets.Dataset.from_dict(
        {"image": [PIL.Image.new("RGBA", (20, 14))]}, features=datasets.Features({"image": datasets.Image()})
    )
    assert infer_image_format(wide, "image") == (3, 14)


def test_unreadable_image_names_the_row(tmp_path):
    root = write_hub_dataset(tmp_path / "ds", n_train=12, n_test=4, corrupt_rows=(7,))
    train = load_image_dataset(str(root), cache_dir=str(tmp_path / "cache"))["train"]
    with pytest.raises(DataError, match=r"^row 7: unreadable image"):
        decode_images(train, "image", 8, 1, progress=False)
    with pytest.raises(DataError, match=r"^row 7: unreadable image"):
        StreamingImages(train, "image", 8, 1)[7]


def test_decode_empty_split_is_an_error():
    with pytest.raises(DataError, match="empty"):
        decode_images(in_memory(0), "image", 8, 1, progress=False)


def test_streaming_equals_in_memory_decode_also_through_a_worker():
    ds = in_memory(10, size=12, channels=3)
    decoded = decode_images(ds, "image", 8, 3, progress=False).images
    streamed = StreamingImages(ds, "image", 8, 3)
    assert len(streamed) == 10
    assert torch.equal(torch.stack([streamed[i] for i in range(10)]), decoded)
    order = [torch.tensor([3, 1, 4]), torch.tensor([0, 9])]  # the training loop's index batches
    loader = torch.utils.data.DataLoader(streamed, batch_sampler=order, num_workers=1)
    assert [b.tolist() for b in loader] == [decoded[i].tolist() for i in order]


def test_load_split_decodes_one_split(tmp_path):
    root = write_hub_dataset(tmp_path / "ds", n_train=8, n_test=6, size=12, channels=3)
    split = load_split(
        str(root), "test", resolution=8, channels=1, max_samples=4, progress=False, cache_dir=str(tmp_path / "cache")
    )
    images, labels = make_images(6, 12, 3, seed=1)  # write_hub_dataset seeds the test split with seed + 1
    assert torch.equal(split.images, pil_to_uint8(images[:4], 8, 1)) and split.labels.tolist() == labels[:4]
    with pytest.raises(DataError, match=r"no split 'validation'; its splits are \['train', 'test'\]"):
        load_split(str(root), "validation", resolution=8, channels=1, cache_dir=str(tmp_path / "cache"))
