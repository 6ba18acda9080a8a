"""The model cards: templates shipped as package data, one per kind, rendering ``vae_hub.description``'s rows; the
shipped models' cards re-render from their folders unchanged; the Space's About shows the same rows, with the same
labels, and does not repeat the card it shows."""

import fnmatch
from importlib.resources import files
from pathlib import Path

import pytest
import tomllib
import torch
from hub_doubles import tiny_model_folder, tiny_pipeline_folder
from huggingface_hub import ModelCard

from vae_hub import SpatialVAEModel, hub
from vae_hub.description import CARD_MARKER, describe_model, describe_pipeline
from vae_hub.explore import Explorer
from vae_hub.markdown import table_row
from vae_hub.models import model_class
from vae_hub.text_to_image_card import build_card as build_text_to_image_card


ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "space" / "models"
TEMPLATES = files("vae_hub") / "templates"
KINDS = ("vae", "spatial_vae", "latent_diffusion", "autoencoder_kl", "text_to_image", "space")
SECTIONS = ("sample_quality", "training", "remote_code")


def test_card_templates_are_package_data():
    """Each template the card code names is in the installed package and matched by pyproject's package-data."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["vae_hub"]
    names = [f"templates/{kind}.md" for kind in KINDS] + [f"templates/sections/{name}.md" for name in SECTIONS]
    for name in names:
        assert files("vae_hub").joinpath(name).is_file(), name
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), f"{name} is not shipped in the wheel"


def test_one_template_per_kind_with_no_branch_on_the_kind():
    for template in TEMPLATES.iterdir():
        if template.name.endswith(".md"):
            assert "spatial %}" not in template.read_text(encoding="utf-8"), template.name


def shipped_card_folders() -> list[Path]:
    """The shipped folders whose README vae-hub wrote (not the measuring CLIP's or the classifier's)."""
    return sorted(p.parent for p in SHIPPED.glob("*/README.md") if CARD_MARKER.search(p.read_text()))


@pytest.mark.parametrize("folder", shipped_card_folders(), ids=lambda p: p.name)
def test_shipped_cards_re_render_unchanged(folder):
    """The card built from a shipped folder's files is its README, byte for byte (the dataset id a card was built
    with is in its metadata: ``vae-hub card --dataset_id``)."""
    shipped = (folder / "README.md").read_text(encoding="utf-8")
    if "text-to-image" in (ModelCard(shipped).data.tags or []):
        card = build_text_to_image_card(folder)
    else:
        datasets = ModelCard(shipped).data.datasets
        card = hub.build_card(folder, dataset_id=datasets[0] if datasets else None)
    assert str(card).strip() == shipped.strip()


def test_shipped_cards_cover_every_kind_of_template():
    kinds = {ModelCard((folder / "README.md").read_text()).data.library_name for folder in shipped_card_folders()}
    assert len(shipped_card_folders()) >= 5 and kinds == {"vae-hub", "diffusers"}


def spatial_folder(folder: Path) -> Path:
    torch.manual_seed(0)
    SpatialVAEModel(
        block_out_channels=(8, 16), norm_num_groups=4, latent_channels=2, sample_size=12, scaling_factor=0.5
    ).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("make", [tiny_model_folder, spatial_folder], ids=["vector", "spatial"])
def test_a_card_rendered_from_its_template_shows_the_descriptions_rows(tmp_path, make):
    """Every row of ``describe_model`` (architecture, metrics, training) stands in the card as a table row."""
    folder = make(tmp_path / "model")
    text = str(hub.build_card(folder, "org/model"))
    model = model_class(folder).from_pretrained(folder)
    description = describe_model(
        folder,
        model,
        "[zalando-datasets/fashion_mnist](https://huggingface.co/datasets/zalando-datasets/fashion_mnist)",
    )
    rows = description.architecture + description.training + [(r["label"], r["text"]) for r in description.metrics]
    assert len(rows) >= 7
    for label, value in rows:
        assert table_row(label, value) in text
    kind = "spatial KL autoencoder" if isinstance(model, SpatialVAEModel) else "variational autoencoder"
    assert f"A **{kind}**" in text


# ------------------------------------------------------------------------------------------------ the Space's About
def description_rows(folder: Path) -> list[tuple]:
    """Every table row of a folder's description, as its card renders it (quality rows with their four cells)."""
    if (folder / "model_index.json").is_file():
        description = describe_pipeline(folder, None)
    else:
        description = describe_model(folder, model_class(folder).from_pretrained(folder), None)
    quality = [(r["label"], r["fd"], r["match"], r["n"]) for r in description.quality["quality_rows"]]
    return (
        description.architecture
        + description.training
        + quality
        + [(r["label"], r["text"]) for r in description.metrics]
    )


FOLDERS = {
    "vector": lambda p: tiny_model_folder(p, clutter=False),
    "spatial": spatial_folder,
    "pipeline": lambda p: tiny_pipeline_folder(p, clutter=False),
}


@pytest.mark.parametrize("kind", FOLDERS)
def test_about_and_the_card_show_the_same_rows_with_the_same_labels(tmp_path, kind):
    """A folder without a card: About renders its description itself, each row as the card renders it."""
    folder = FOLDERS[kind](tmp_path / kind)
    about = Explorer([str(folder)], {}).about(folder.name)
    card = str(hub.build_card(folder))
    rows = description_rows(folder)
    assert len(rows) >= 5
    for row in rows:
        assert table_row(*row) in card and table_row(*row) in about, row
    assert "### Model card" not in about  # it has none


@pytest.mark.parametrize("kind", FOLDERS)
def test_about_shows_a_vae_hub_card_below_what_is_specific_to_the_space_and_does_not_repeat_it(tmp_path, kind):
    folder = FOLDERS[kind](tmp_path / kind)
    hub.write_model_card(folder)
    about = Explorer([str(folder)], {}).about(folder.name)
    space_part, card_part = about.split("### Model card")
    for row in description_rows(folder):
        assert table_row(*row) not in space_part and card_part.count(table_row(*row)) == 1, row
    assert f"## {folder.name}\n" in space_part and "license: apache-2.0" not in about  # the card without metadata


def test_metric_labels_are_the_cards_in_both_places(tmp_path):
    """The measure named "Negative ELBO" in the card is not "−ELBO" in the Space."""
    folder = tiny_model_folder(tmp_path / "vector", clutter=False)
    about = Explorer([str(folder)], {}).about(folder.name)
    for label in ("Negative ELBO", "Reconstruction term", "KL to the prior", "MSE of reconstructions"):
        assert f"| {label}" in about and f"| {label}" in str(hub.build_card(folder))
    assert "−ELBO" not in about and "importance-weighted NLL |" not in about


def test_about_shows_records_of_another_shape_without_failing(tmp_path):
    """A Hub repo's records are anyone's: About says it cannot read them and still shows the rest."""
    folder = tiny_model_folder(tmp_path / "odd", clutter=False)
    (folder / "metrics.json").write_text('{"negative_elbo_nats": "lots", "likelihood": 3}')
    (folder / "training_info.json").write_text('{"wall_time_seconds": "a while"}')
    about = Explorer([str(folder)], {}).about(folder.name)
    assert "could not be read" in about and "### Data shown here" in about
    (folder / "training_info.json").write_text("{not json")
    assert "could not be read" in Explorer([str(folder)], {}).about(folder.name)


def test_a_vae_measured_with_a_mini_clip_says_so_in_its_card(tmp_path):
    """A vector VAE's prior measured like a text-to-image pipeline (``evaluate_samples --clip``): its rows say so,
    and the card explains the CLIP's measure, not a classifier's (which measured none of them)."""
    import json

    folder = tiny_model_folder(tmp_path / "model")
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["sample_quality"] = {
        "standard_prior_clip": {
            "kind": "vae",
            "prior": "standard",
            "frechet_distance": 14.25,
            "num_samples": 756,
            "clip": "space/models/emoji-clip",
            "split": "test",
        }
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    card = hub.build_card(folder, "org/model")
    text = str(card)
    assert table_row("this model, N(0, I) prior, mini CLIP", "14.25", "—", "756") in text
    assert (
        "image features of the mini CLIP `space/models/emoji-clip`" in text
        and "classifier" not in text.split("## Sample")[1]
    )
    [result] = [r for r in card.data.eval_results if r.metric_type == "frechet_distance"]
    assert result.metric_name.startswith("Fréchet distance, mini CLIP image features")
