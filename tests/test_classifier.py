"""vae_hub.classifier and training/train_classifier.py: shapes, config checks, strict loading, a tiny training run."""

import json
import sys
from pathlib import Path

import pytest
import torch
from datasets_util import CLASS_NAMES, write_hub_dataset

from vae_hub.classifier import ImageClassifier
from vae_hub.models import VAEModel


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
import train_classifier  # noqa: E402


def tiny_classifier(**overrides) -> ImageClassifier:
    torch.manual_seed(0)
    config = {
        "sample_size": 8,
        "num_classes": 4,
        "class_names": list(CLASS_NAMES),
        "channels": (4, 8),
        "layers_per_block": 1,
        "feature_dim": 6,
    }
    return ImageClassifier(**{**config, **overrides}).eval()


def test_logits_and_features_have_their_shapes():
    model = tiny_classifier()
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    features = model.features(x)
    assert features.shape == (5, 6)
    torch.testing.assert_close(model(x), model.head(features))
    assert model(x).shape == (5, 4)
    assert model.label_names == list(CLASS_NAMES)
    assert tiny_classifier(class_names=None).label_names == ["0", "1", "2", "3"]


def test_rgb_and_odd_sizes_work():
    model = tiny_classifier(in_channels=3, sample_size=7, channels=(4, 8, 8))
    assert model(torch.zeros(2, 3, 7, 7)).shape == (2, 4)


def test_images_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"expected images \(B, 1, 8, 8\), got \(2, 1, 9, 9\)"):
        tiny_classifier()(torch.zeros(2, 1, 9, 9))


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"num_classes": 1, "class_names": None}, "num_classes"),
        ({"class_names": ["a", "b"]}, "class_names"),
        ({"channels": ()}, "channels"),
        ({"channels": (4, 8, 8, 8, 8)}, "sample_size"),  # four 2x2 poolings of an 8x8 image
        ({"act_fn": "nope"}, "act_fn"),
        ({"dropout": 1.0}, "dropout"),
        ({"feature_dim": 0}, "feature_dim"),
    ],
)
def test_bad_configs_are_refused_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"`{field}`"):
        tiny_classifier(**overrides)


def test_save_and_load_round_trip_is_strict(tmp_path):
    model = tiny_classifier()
    model.save_pretrained(tmp_path / "classifier")
    loaded = ImageClassifier.from_pretrained(tmp_path / "classifier").eval()
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    torch.testing.assert_close(loaded.features(x), model.features(x))
    assert loaded.config.class_names == list(CLASS_NAMES)
    VAEModel(block_out_channels=(8,), norm_num_groups=4, latent_dim=2, sample_size=8).save_pretrained(tmp_path / "vae")
    with pytest.raises(ValueError, match="holds a VAEModel, not a ImageClassifier"):
        ImageClassifier.from_pretrained(tmp_path / "vae")


# ---------------------------------------------------------------- the training script
def train_argv(data, output, *extra) -> list[str]:
    return [
        "--dataset_name",
        str(data),
        "--output_dir",
        str(output),
        "--cache_dir",
        str(output.parent / "cache"),
        "--channels",
        "4",
        "8",
        "--layers_per_block",
        "1",
        "--feature_dim",
        "8",
        "--train_batch_size",
        "16",
        "--num_train_epochs",
        "20",
        "--lr_warmup_steps",
        "2",
        "--learning_rate",
        "1e-2",
        "--seed",
        "1",
        *extra,
    ]


def test_training_learns_the_classes_and_writes_model_metrics_and_card(tmp_path, capsys):
    data = write_hub_dataset(tmp_path / "data", n_train=96, n_test=32)
    metrics = train_classifier.main(train_classifier.parse_args(train_argv(data, tmp_path / "out", "--random_flip")))
    out = tmp_path / "out"
    written = json.loads((out / "metrics.json").read_text())
    assert written == metrics
    assert metrics["test_accuracy"] >= 0.9  # class = which horizontal band is bright; left-right flips keep it
    assert set(metrics["test_per_class_accuracy"]) == set(CLASS_NAMES)
    assert (metrics["num_train_images"], metrics["num_test_images"]) == (96, 32)
    assert metrics["command"].startswith("python training/train_classifier.py ")
    model = ImageClassifier.from_pretrained(out)
    assert (model.config.num_classes, model.config.sample_size, model.config.class_names) == (4, 8, list(CLASS_NAMES))
    card = (out / "README.md").read_text()
    assert f"{metrics['test_accuracy']:.2%}" in card and metrics["command"] in card


def test_same_seed_gives_the_same_weights(tmp_path):
    data = write_hub_dataset(tmp_path / "data", n_train=48, n_test=8)
    for name in ("a", "b"):
        train_classifier.main(
            train_classifier.parse_args(train_argv(data, tmp_path / name, "--num_train_epochs", "1"))
        )
    a, b = (ImageClassifier.from_pretrained(tmp_path / name) for name in ("a", "b"))
    for (key, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), key


def test_a_dataset_without_class_labels_is_refused(tmp_path):
    data = write_hub_dataset(tmp_path / "data", label_column=None)
    with pytest.raises(train_classifier.DataError, match="no ClassLabel column"):
        train_classifier.main(train_classifier.parse_args(train_argv(data, tmp_path / "out")))
    with pytest.raises(train_classifier.DataError, match="no split 'validation'"):
        train_classifier.main(
            train_classifier.parse_args(train_argv(data, tmp_path / "out", "--test_split", "validation"))
        )


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--learning_rate", "1e3"], "--learning_rate"),
        (["--num_train_epochs", "0"], "--num_train_epochs"),
        (["--num_train_epoch", "3"], "unrecognized arguments"),
    ],  # no abbreviations
)
def test_bad_flags_are_one_line_errors(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        train_classifier.parse_args(train_argv(tmp_path, tmp_path / "out", *extra))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_an_existing_model_is_not_overwritten(tmp_path, capsys):
    tiny_classifier().save_pretrained(tmp_path / "out")
    with pytest.raises(SystemExit):
        train_classifier.parse_args(train_argv(tmp_path, tmp_path / "out"))
    assert "already holds a model" in capsys.readouterr().err
