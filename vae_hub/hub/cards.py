"""What every card vae-hub writes shares: its templates (``vae_hub/templates/*.md``, shipped as package data), its
names, training data, licence and figures. (The marker that says vae-hub wrote a card, its first line, is
``vae_hub.description.CARD_MARKER``: the Space reads it too.)

A card is ``ModelCard.from_template(card_data, template_path=template_path("vae"), ...)``, as diffusers renders
its ``model_card_template.md``: one template per kind of model. Sections that several kinds share
(``templates/sections/*.md``) are rendered first and passed in whole (``render_section``).
"""

from pathlib import Path

import jinja2

from ..description import QUALITY_COLUMNS, count
from ..markdown import table_cell
from ..records import DATASETS_URL, hub_id, reference, shareable_command


TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
CARD_NAME = "README.md"
LICENSE = "apache-2.0"
PROJECT_TAG = "vae-hub"
FIGURE_CAPTIONS = {  # the known figures, in the order a card shows them
    "samples.png": "Samples: latents drawn from the prior N(0, I) and decoded (the decoder's mean image).",
    "mixture_samples.png": "Samples of the mixture prior fitted to the training codes (where real images encode to), "
    "decoded.",
    "reconstructions.png": "Reconstructions: held-out images (left of each pair) and their reconstructions from "
    "the posterior mean (right).",
    "latents.png": "Latent maps of held-out images, one row per image, one small image per latent channel, scaled "
    "by the scaling factor as a diffusion model sees them (±3 standard deviations from black to white).",
    "loss_curve.png": "Training curve.",
}


def template_path(kind: str) -> str:
    """The card template of ``kind`` (``"vae"``, ``"spatial_vae"``, ``"latent_diffusion"``, ...), for
    ``ModelCard.from_template(template_path=...)``."""
    return str(TEMPLATES / f"{kind}.md")


def render_section(name: str, **values) -> str:
    """A shared section (``templates/sections/<name>.md``) rendered with ``values``; every table cell goes through
    ``table_cell`` (a ``|`` in a value would split its row)."""
    text = (TEMPLATES / "sections" / f"{name}.md").read_text(encoding="utf-8")
    return jinja2.Template(text).render(cell=table_cell, quality_columns=QUALITY_COLUMNS, **values)


NOTES_NAME = "NOTES.md"  # written by a person who looked at the grids: the card's "What the grids show"


def folder_notes(folder: Path) -> str | None:
    """The text of the folder's ``NOTES.md``, stripped, or None when it has none."""
    notes = Path(folder) / NOTES_NAME
    return notes.read_text(encoding="utf-8").strip() if notes.is_file() else None


def figures(folder: Path) -> list[Path]:
    """Top-level PNGs: the known grids first (samples, reconstructions, loss curve), then the rest by name."""
    order = list(FIGURE_CAPTIONS)
    pngs = [p for p in folder.glob("*.png") if p.is_file()]
    return sorted(pngs, key=lambda p: (order.index(p.name) if p.name in order else len(order), p.name))


def figure_entries(folder: Path, captions: dict[str, str]) -> list[dict]:
    """The card's figures: file, alt text and caption (``captions``, else one made from the file name)."""
    return [
        {
            "file": p.name,
            "alt": p.stem.replace("_", " "),
            "caption": captions.get(p.name, p.stem.replace("_", " ").capitalize() + "."),
        }
        for p in figures(folder)
    ]


def card_names(folder: Path, repo_id: str | None) -> dict:
    """The names a card uses: ``repo_id``, ``name`` (the repo's, else the folder's) and ``model_ref`` (what its
    snippets load: the repo id, else a placeholder)."""
    name = repo_id.split("/")[-1] if repo_id else folder.resolve().name
    return {"repo_id": repo_id, "name": name, "model_ref": repo_id or f"<your-namespace>/{name}"}


def training_data(dataset_id: str | None, info: dict, metrics: dict) -> tuple[str | None, str | None, str | None]:
    """A model's training data as its card names it: the Hub id (``dataset_id``, else the training record's, else
    the recorded name when it is one), a label for the model-index (the Hub id or a folder's name), and markdown."""
    recorded = info.get("dataset_name") or metrics.get("dataset")
    dataset_id = dataset_id or info.get("dataset_id") or hub_id(recorded)
    label = dataset_id or (Path(recorded).name if recorded else None)
    return dataset_id, label, reference(dataset_id, DATASETS_URL) or reference(label)


def evaluation_values(metrics: dict, rows: list[dict]) -> dict:
    """What a model card's evaluation section shows of ``metrics.json``, besides its ``rows`` (``metric_rows``)."""
    return {
        "metric_rows": rows,
        "split": metrics.get("split"),
        "num_images": count(metrics.get("num_images")),
        "likelihood_note": metrics.get("likelihood_note", ""),
        "eval_command": shareable_command(metrics.get("command")),
    }
