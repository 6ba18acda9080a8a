#!/usr/bin/env python
"""Train the ``ImageClassifier`` whose features measure sample quality (``python -m vae_hub.evaluate_samples``).

    python training/train_classifier.py --dataset_name zalando-datasets/fashion_mnist --output_dir fashion-classifier

Any dataset in the Hub layout with an image column and a ``ClassLabel`` column: trains on ``--train_split``,
then reports the accuracy on ``--test_split`` once, at the end (the test split never steers training). The output
folder holds the model (``config.json``, ``diffusion_pytorch_model.safetensors``), ``metrics.json`` (test accuracy,
per class, exact command, wall time) and a ``README.md`` card. Plain PyTorch on one device, seeded: the same command
on the same machine gives the same weights.
"""

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--dataset_name", required=True, help="Hub dataset id or local folder in the Hub layout.")
    p.add_argument("--dataset_config_name", default=None)
    p.add_argument("--train_split", default="train")
    p.add_argument("--test_split", default="test")
    p.add_argument("--image_column", default=None, help="Default: the first column of datasets.Image type.")
    p.add_argument("--label_column", default=None, help="Default: the first ClassLabel column.")
    p.add_argument("--resolution", type=int, default=None, help="Image size; default: the data's.")
    p.add_argument("--num_channels", type=int, default=None, choices=(1, 3), help="Default: the data's.")
    p.add_argument("--max_train_samples", type=int, default=None)
    p.add_argument("--cache_dir", default=None)
    p.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64], help="Channels of each conv stage.")
    p.add_argument("--layers_per_block", type=int, default=2)
    p.add_argument("--feature_dim", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--train_batch_size", type=int, default=128)
    p.add_argument("--num_train_epochs", type=int, default=8)
    p.add_argument("--learning_rate", type=float, default=3e-3)
    p.add_argument("--lr_warmup_steps", type=int, default=200)
    p.add_argument("--weight_decay", type=float, default=1e-4)
    p.add_argument("--random_flip", action="store_true", help="Flip training images left-right at random.")
    p.add_argument("--eval_batch_size", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="Default: cuda if available, else cpu.")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--overwrite_output_dir", action="store_true")
    args = p.parse_args(argv)
    for name in ("train_batch_size", "num_train_epochs", "layers_per_block", "feature_dim", "eval_batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    for name in ("resolution", "max_train_samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if not (math.isfinite(args.learning_rate) and 0 < args.learning_rate <= 1):
        p.error(f"--learning_rate must be in (0, 1], got {args.learning_rate}")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0) or args.lr_warmup_steps < 0:
        p.error("--weight_decay and --lr_warmup_steps must be non-negative")
    args.command = "python training/train_classifier.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    output_dir = Path(args.output_dir)
    if (output_dir / "config.json").exists() and not args.overwrite_output_dir:
        p.error(f"{output_dir} already holds a model; pass --overwrite_output_dir or choose another --output_dir")
    return args


if __name__ == "__main__":  # first, so that --help and a bad flag come back before the imports below load torch
    arguments = parse_args()

import datasets
import torch
import torch.nn.functional as F
from diffusers.optimization import get_scheduler
from tqdm.auto import tqdm

from vae_hub.classifier import ImageClassifier
from vae_hub.data import (
    DataError,
    ImageTensor,
    decode_images,
    find_image_column,
    infer_image_format,
    load_image_dataset,
)
from vae_hub.images import uint8_to_float


def load_labelled_splits(args: argparse.Namespace) -> tuple[ImageTensor, ImageTensor, list[str]]:
    """Decode the train and test splits once: uint8 images and int labels, and the class names."""
    dataset = load_image_dataset(args.dataset_name, args.dataset_config_name, cache_dir=args.cache_dir)
    for split in (args.train_split, args.test_split):
        if split not in dataset:
            raise DataError(f"dataset {args.dataset_name!r} has no split {split!r}; its splits are {list(dataset)}")
    train, test = dataset[args.train_split], dataset[args.test_split]
    if args.max_train_samples:
        train = train.shuffle(seed=args.seed).select(range(min(args.max_train_samples, len(train))))
    image_column = find_image_column(train, args.image_column)
    label_column = args.label_column or next(
        (name for name, feature in train.features.items() if isinstance(feature, datasets.ClassLabel)), None
    )
    if label_column is None:
        raise DataError(
            f"no ClassLabel column in the dataset (the classifier needs class names); its columns are "
            f"{list(train.features)}"
        )
    feature = train.features.get(label_column)
    if not isinstance(feature, datasets.ClassLabel):
        raise DataError(
            f"--label_column {label_column!r} is not a ClassLabel column; the columns are {dict(train.features)}"
        )
    data_channels, data_size = infer_image_format(train, image_column)
    size, channels = args.resolution or data_size, args.num_channels or data_channels
    decoded = [
        decode_images(split, image_column, size, channels, label_column, f"decoding {name}")
        for split, name in ((train, args.train_split), (test, args.test_split))
    ]
    return decoded[0], decoded[1], list(feature.names)


@torch.no_grad()
def evaluate(model: ImageClassifier, data: ImageTensor, batch_size: int, device: torch.device) -> dict:
    """Accuracy (overall and per class) and mean cross-entropy in nats of ``model`` on ``data``."""
    model.eval()
    predictions, loss = [], 0.0
    for images, labels in zip(data.images.split(batch_size), data.labels.split(batch_size)):
        logits = model(uint8_to_float(images.to(device)))
        loss += F.cross_entropy(logits, labels.to(device), reduction="sum").item()
        predictions.append(logits.argmax(1).cpu())
    correct = torch.cat(predictions) == data.labels
    per_class = {
        name: correct[data.labels == k].double().mean().item()
        for k, name in enumerate(model.label_names)
        if (data.labels == k).any()
    }
    return {
        "accuracy": correct.double().mean().item(),
        "cross_entropy_nats": loss / len(correct),
        "per_class_accuracy": per_class,
        "num_images": len(correct),
    }


def main(args: argparse.Namespace) -> dict:
    started = time.time()
    torch.manual_seed(args.seed)  # initialisation and dropout
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    train, test, class_names = load_labelled_splits(args)
    _, channels, size, _ = train.images.shape
    model = ImageClassifier(
        in_channels=channels,
        sample_size=size,
        num_classes=len(class_names),
        class_names=class_names,
        channels=tuple(args.channels),
        layers_per_block=args.layers_per_block,
        feature_dim=args.feature_dim,
        dropout=args.dropout,
    ).to(device)
    steps_per_epoch = len(train.images) // args.train_batch_size
    if steps_per_epoch == 0:
        raise DataError(
            f"the train split has {len(train.images)} images, fewer than one batch of "
            f"--train_batch_size {args.train_batch_size}"
        )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    total_steps = steps_per_epoch * args.num_train_epochs
    lr_scheduler = get_scheduler(
        "cosine", optimizer, num_warmup_steps=args.lr_warmup_steps, num_training_steps=total_steps
    )
    images, labels = train.images.to(device), train.labels.to(device)
    order_generator = torch.Generator().manual_seed(args.seed)
    progress = tqdm(total=total_steps, desc="steps")
    for epoch in range(args.num_train_epochs):
        model.train()
        order = torch.randperm(len(images), generator=order_generator)[: steps_per_epoch * args.train_batch_size]
        for index in order.to(device).split(args.train_batch_size):
            x = uint8_to_float(images[index])
            if args.random_flip:
                flip = torch.rand(len(x), generator=order_generator).to(device) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            loss = F.cross_entropy(model(x), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            lr_scheduler.step()
            progress.update(1)
            progress.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}", refresh=False)
    progress.close()

    metrics = evaluate(model, test, args.eval_batch_size, device)
    metrics = {
        "dataset": args.dataset_name,
        "train_split": args.train_split,
        "num_train_images": len(train.images),
        "test_split": args.test_split,
        "test_accuracy": metrics["accuracy"],
        "test_cross_entropy_nats": metrics["cross_entropy_nats"],
        "test_per_class_accuracy": metrics["per_class_accuracy"],
        "num_test_images": metrics["num_images"],
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "epochs": args.num_train_epochs,
        "seed": args.seed,
        "device": str(device),
        "wall_time_seconds": round(time.time() - started, 1),
        "command": args.command,
    }
    output_dir = Path(args.output_dir)
    model.cpu().save_pretrained(output_dir)
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (output_dir / "README.md").write_text(model_card(metrics, class_names))
    print(json.dumps(metrics, indent=2))
    return metrics


def model_card(metrics: dict, class_names: list[str]) -> str:
    """A short README.md: what the model is for, its test accuracy and the command that trained it."""
    per_class = "\n".join(f"| {name} | {acc:.1%} |" for name, acc in metrics["test_per_class_accuracy"].items())
    return f"""---
library_name: diffusers
tags: [image-classification, vae-hub, sample-quality]
---
# Feature network for sample quality

A small CNN (`vae_hub.classifier.ImageClassifier`, {metrics["num_parameters"]:,} parameters) trained on the
`{metrics["train_split"]}` split of `{metrics["dataset"]}` ({metrics["num_train_images"]:,} images, {len(class_names)}
classes). It is the project's own "Inception": `python -m vae_hub.evaluate_samples` measures generated images by a
Fréchet distance in its penultimate-layer features (`model.features(x)`, x in [-1, 1]) and by the share of
class-conditional samples it assigns to the asked class.

**Test accuracy: {metrics["test_accuracy"]:.2%}** on the {metrics["num_test_images"]:,} images of the
`{metrics["test_split"]}` split (mean cross-entropy {metrics["test_cross_entropy_nats"]:.3f} nats), measured once after
training; the test split played no part in training.

| class | test accuracy |
|---|---|
{per_class}

```python
from vae_hub.classifier import ImageClassifier
classifier = ImageClassifier.from_pretrained("space/models/fashion-mnist-classifier")
```

Trained in {metrics["wall_time_seconds"]:.0f} s on {metrics["device"]} with

```bash
{metrics["command"]}
```
"""


if __name__ == "__main__":
    try:
        main(arguments)  # parsed above, before the heavy imports
    except DataError as error:
        tqdm.write("error: " + " ".join(str(error).split()), file=sys.stderr)
        raise SystemExit(2)
