"""The About tab: where a model comes from and what the Space shows of it, then its description — its card.

A card vae-hub wrote (``CARD_MARKER``) shows the model's description (``vae_hub.description``: architecture,
evaluation, training) in its tables, so About shows that card below what is specific to the Space and does not
repeat it. For a folder without such a card, About shows the same description rows, with the card's labels, itself.
"""

import re
from collections.abc import Callable

from ..description import CARD_MARKER, QUALITY_COLUMNS, Description, describe_model, describe_pipeline
from ..markdown import table_row
from ..records import DATASETS_URL, reference
from ..space_models import Loaded
from .diffusion import pipeline_defaults
from .entry import ModelEntry, _model_file
from .files import OutputFiles
from .kinds import _read_json, data_name


CARD_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
MAX_CARD_IMAGE_BYTES = 5 * 2**20


def card_with_image_links(text: str, loaded: Loaded, files: OutputFiles) -> str:
    """Point a card's relative image links (``![samples](samples.png)``) where a browser can fetch them: the
    Hub's ``resolve`` URL for a repo; for a folder on this machine, a copy among the Space's output files (served
    by Gradio), so that no link names the model's folder. Links that leave the folder or are not small images
    are left as they are (and show nothing)."""
    folder = loaded.folder.resolve()

    def url(name: str) -> str | None:
        if loaded.source.repo_id:
            return f"https://huggingface.co/{loaded.source.repo_id}/resolve/main/{name}"
        path = (folder / name).resolve()
        if folder not in path.parents or path.suffix.lower() not in CARD_IMAGE_SUFFIXES:
            return None
        if not path.is_file() or path.stat().st_size > MAX_CARD_IMAGE_BYTES:
            return None
        return f"/gradio_api/file={files.copy(path)}"

    def link(m: re.Match) -> str:
        target = url(m.group(2))
        return f"{m.group(1)}{target})" if target else m.group(0)

    return re.sub(r"(!\[[^\]]*\]\()(?![a-z]+:|/|#)([^)\s]+)\)", link, text)


def _strip_front_matter(text: str) -> str:
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4 :].lstrip()
    return text


def evaluation_heading(split) -> str:
    """What the evaluated images were: the test split, or another held-out split (e.g. part of train)."""
    return "Test-set numbers" if split == "test" else "Numbers on held-out images"


def about_markdown(entry: ModelEntry, files: OutputFiles) -> str:
    """The About tab of a VAE or autoencoder: what the Space shows of it, then its description (its card)."""
    lines = heading_lines(entry, space_rows(entry))
    sample = entry.sample
    lines += ["", "### Data shown here"]
    if entry.spatial:
        lines.append("The Reconstruct tab shows this model's latent maps; it has no latent map or sliders.")
    elif sample is not None:
        lines.append(
            f"The latent map and the slider order use the model's own sample of {len(sample.labels)} "
            f"held-out images{f' ({sample.source})' if sample.source else ''}."
        )
    else:
        lines.append(
            f"No latent map: {entry.sample_problem}. The sliders are ordered on the model's own prior samples."
        )
    lines.append(
        "The example images to pick are Fashion-MNIST test images (MIT license) and emoji test images "
        "(Twemoji, CC-BY 4.0; Noto, Apache-2.0) shipped with the Space; like any upload, they are converted "
        "to this model's size and channels."
    )
    return "\n".join(
        lines
        + description_or_card(
            entry,
            files,
            lambda: describe_model(entry.loaded.folder, entry.model, reference(entry.dataset, DATASETS_URL)),
        )
    )


def pipeline_about_markdown(entry: ModelEntry, files: OutputFiles) -> str:
    """The About tab of a latent diffusion pipeline: the settings the Space samples with, then its description
    (its card)."""
    steps, guidance = pipeline_defaults(entry.model)
    lines = heading_lines(
        entry, [("the Space samples with", f"{steps} steps, guidance scale {guidance:g}"), *space_rows(entry)]
    )
    return "\n".join(
        lines
        + description_or_card(
            entry, files, lambda: describe_pipeline(entry.loaded.folder, reference(entry.dataset, DATASETS_URL))
        )
    )


def space_rows(entry: ModelEntry) -> list[tuple[str, str]]:
    """What the Space owes the training data of the images it shows: its credits, where recorded."""
    return [("data credits", credits)] if (credits := entry.data_credits) else []


def heading_lines(entry: ModelEntry, rows: list[tuple[str, str]]) -> list[str]:
    """The model's id, where it comes from and ``rows`` about it in this Space."""
    lines = [f"## {entry.model_id}", entry.loaded.source.describe()]
    if rows:
        lines += ["", "| | in this Space |", "|---|---|", *(table_row(key, value) for key, value in rows)]
    return lines


def description_or_card(entry: ModelEntry, files: OutputFiles, describe: Callable[[], Description]) -> list[str]:
    """The model's card; before it, unless vae-hub wrote that card (``CARD_MARKER``: its tables are the rows of
    ``describe()``), the description's tables with the card's labels."""
    card = _model_file(entry, "README.md")
    if card is not None and CARD_MARKER.search(card.read_text(encoding="utf-8")):
        return card_lines(entry, files)
    try:
        lines = description_lines(entry, describe())
    except (ValueError, TypeError, KeyError, AttributeError):  # a record someone else wrote, in another shape
        lines = ["", "Its records (`metrics.json`, `training_info.json`) could not be read."]
    return lines + card_lines(entry, files)


def description_lines(entry: ModelEntry, description: Description) -> list[str]:
    """``description`` as tables under the headings its card has (model, evaluation, sample quality, training)."""
    lines = table_lines("Model", ("", ""), description.architecture)
    if description.metrics:
        metrics_file = _model_file(entry, "metrics.json")
        metrics = _read_json(metrics_file) if metrics_file else {}
        split = metrics.get("split", "?")
        lines += table_lines(
            f"{evaluation_heading(split)} ({data_name(str(metrics.get('dataset', '?')))}, split "
            f"{split}, {metrics.get('num_images', '?')} images)",
            ("Metric", "Value"),
            [(row["label"], row["text"]) for row in description.metrics],
        )
        if metrics.get("likelihood_note"):
            lines += ["", f"*{metrics['likelihood_note']}*"]
    lines += table_lines(
        "Sample quality",
        QUALITY_COLUMNS,
        [(row["label"], row["fd"], row["match"], row["n"]) for row in description.quality["quality_rows"]],
    )
    return lines + table_lines("Training", ("", ""), description.training)


def table_lines(heading: str, columns: tuple[str, ...], rows: list[tuple]) -> list[str]:
    """A section with one table, or nothing without ``rows``."""
    if not rows:
        return []
    return [
        "",
        f"### {heading}",
        "",
        table_row(*columns),
        "|" + "---|" * len(columns),
        *(table_row(*row) for row in rows),
    ]


def card_lines(entry: ModelEntry, files: OutputFiles) -> list[str]:
    """The model's card (``README.md``) without its metadata, its figures linked where a browser can fetch them."""
    card_file = _model_file(entry, "README.md")
    if not card_file:
        return []
    card = card_with_image_links(_strip_front_matter(card_file.read_text()), entry.loaded, files)
    return ["", "---", "", "### Model card", "", card]


def text_to_image_about_markdown(entry: ModelEntry, files: OutputFiles) -> str:
    """The About tab of a text-to-image pipeline: what the Space uses of it (the settings it recommends, its
    vocabulary), the credits of its training data, then its card (which has the architecture, numbers and training)."""
    from ..credits import dataset_readme, training_data_credits
    from .text_to_image import recommended_setting

    pipe = entry.model
    info = _read_json(entry.loaded.folder / "training_info.json")
    credits = training_data_credits(info, dataset_readme(info.get("dataset_name")))
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    lines = heading_lines(
        entry,
        [
            ("generates", f"RGB {size}×{size} px images from text"),
            ("the Space samples with", recommended_setting(entry).describe()),
            (
                "vocabulary",
                f"{len(pipe.tokenizer):,} tokens learned from the training captions; prompts are cut at "
                f"{pipe.tokenizer.model_max_length} tokens",
            ),
            ("trained on", f"`{entry.dataset}`" if entry.dataset else "not recorded"),
            ("data credits", "; ".join(credits) if credits else "not recorded: check the data's licence"),
        ],
    )
    return "\n".join(lines + card_lines(entry, files))
