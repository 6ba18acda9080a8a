"""``ImageClassifier``: a small CNN whose penultimate layer is the project's feature space for sample quality.

FID measures generated images in the feature space of an ImageNet Inception network; that network knows nothing
of 28×28 grey clothes. This project trains its own classifier on the training split of the data it models
(``training/train_classifier.py``), ships it (``space/models/fashion-mnist-classifier``), and measures every
generator in its ``features`` (``vae_hub.evaluate_samples``): a Fréchet distance there, and the share of
class-conditional samples it assigns to the asked class.

Layout: per entry of ``channels``, ``layers_per_block`` × (3x3 conv → BatchNorm → act), then a 2x2 max-pool
(not after the last stage); global average pooling; ``Linear → act`` to ``feature_dim`` (the features);
dropout; ``Linear`` to the logits.
"""

import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.activations import ACT2CLS
from diffusers.models.modeling_utils import ModelMixin

from .loading import StrictLoadingMixin


class ImageClassifier(StrictLoadingMixin, ModelMixin, ConfigMixin):
    r"""A convolutional image classifier with a feature layer, in diffusers' format (config + safetensors).

    Args:
        in_channels: image channels (1 grayscale, 3 RGB).
        sample_size: height = width of the images it takes.
        num_classes: number of classes K.
        class_names: the K class names, indexed by class id (``None``: the ids as text).
        channels: channels of each convolution stage; the image is halved between stages.
        layers_per_block: convolutions per stage.
        feature_dim: width F of the feature layer (``features`` returns (B, F)).
        act_fn: activation, a name diffusers knows ("relu", "silu", "gelu", ...).
        dropout: dropout probability before the last layer (training only).
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        sample_size: int = 28,
        num_classes: int = 10,
        class_names: list[str] | None = None,
        channels: tuple[int, ...] = (16, 32, 64),
        layers_per_block: int = 2,
        feature_dim: int = 128,
        act_fn: str = "relu",
        dropout: float = 0.2,
    ):
        super().__init__()
        _validate_config(locals())
        layers, current = [], in_channels
        for i, c in enumerate(channels):
            for _ in range(layers_per_block):
                layers += [nn.Conv2d(current, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), ACT2CLS[act_fn]()]
                current = c
            if i < len(channels) - 1:
                layers.append(nn.MaxPool2d(2))
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.to_features = nn.Sequential(nn.Linear(current, feature_dim), ACT2CLS[act_fn]())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))

    @property
    def label_names(self) -> list[str]:
        """The class names indexed by class id (the config's, or "0", "1", ... when it has none)."""
        return list(self.config.class_names or [str(i) for i in range(self.config.num_classes)])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features (B, feature_dim) of images ``x`` (B, C, H, W) in [-1, 1]."""
        size, c = self.config.sample_size, self.config.in_channels
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, size, size):
            raise ValueError(f"expected images (B, {c}, {size}, {size}), got {tuple(x.shape)}")
        return self.to_features(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes) of images ``x`` (B, C, H, W) in [-1, 1]: ``head(features(x))``."""
        return self.head(self.features(x))


def _validate_config(cfg: dict) -> None:
    """Refuse a bad config at construction, naming the field."""

    def need(ok: bool, field: str, what: str) -> None:
        if not ok:
            raise ValueError(f"ImageClassifier config: `{field}` {what}, got {cfg[field]!r}")

    def positive_int(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value > 0

    for field in ("in_channels", "sample_size", "layers_per_block", "feature_dim"):
        need(positive_int(cfg[field]), field, "must be a positive integer")
    need(positive_int(cfg["num_classes"]) and cfg["num_classes"] >= 2, "num_classes", "must be an integer >= 2")
    names = cfg["class_names"]
    need(
        names is None
        or (
            isinstance(names, (list, tuple))
            and len(names) == cfg["num_classes"]
            and all(isinstance(n, str) for n in names)
        ),
        "class_names",
        f"must be None or {cfg['num_classes']} strings (one per class)",
    )
    stages = cfg["channels"]
    need(
        isinstance(stages, (list, tuple)) and len(stages) > 0 and all(positive_int(c) for c in stages),
        "channels",
        "must be a non-empty sequence of positive integers",
    )
    need(
        isinstance(stages, (list, tuple)) and cfg["sample_size"] >= 2 ** (len(stages) - 1),
        "sample_size",
        "must be at least 2**(len(channels) - 1) (one 2x2 pooling between stages)",
    )
    need(cfg["act_fn"] in ACT2CLS, "act_fn", f"must be one of {sorted(ACT2CLS)}")
    need(isinstance(cfg["dropout"], (int, float)) and 0 <= cfg["dropout"] < 1, "dropout", "must be in [0, 1)")
