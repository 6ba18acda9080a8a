"""The measured sample quality of every model a Space offers, for the Compare tab: one table per way of measuring
(the network whose features and judgements give the numbers) and data, so that a table never sets numbers side by
side that were measured differently (a Fashion-MNIST classifier's Fréchet distance and an emoji CLIP's are not
the same scale).

The records are those ``python -m vae_hub.evaluate_samples --record`` wrote into each folder's ``metrics.json``;
they are read, never computed here, and no model is loaded to read them.
"""

from collections.abc import Iterable
from pathlib import Path

from ..evaluate_samples import RECORD_KEY, describe_setting
from ..markdown import table_row
from .diffusion import COMPARE_NOTE, quality_records
from .kinds import _read_json, data_name


TEXT_TO_IMAGE_RECORD = "text-to-image pipeline"  # a record's "kind" for a StableDiffusionPipeline folder
CLASSIFIER_KINDS = {"vae": "samples", "pipeline": "samples", "vae reconstructions": "reconstructions"}
RECOMMENDED_MARK = "★"
TEXT_TO_IMAGE_NOTE = (
    "Measured by `python -m vae_hub.evaluate_samples --clip …` on one sample per held-out caption, with the "
    "project's mini CLIP trained on the same data: the Fréchet distance (FD) between its image features of the "
    "samples and of the real test images (lower is closer; it depends on the number of images, so compare equal "
    "counts only), the CLIP score (100 × the cosine between a sample and its own caption) and R-precision (how often "
    "a sample's own caption ranks first among the rival captions: chance is 1 in their number). The real test "
    "images' own CLIP score and R-precision are the ceiling; the empty prompt (the same UNet without text) is the "
    f"floor that following the text must beat. {RECOMMENDED_MARK}: the setting the Space samples with. A vector "
    "VAE's prior samples, measured the same way on as many images, have an FD only: they follow no text."
)


def _records(folder: Path) -> list[dict]:
    """The records of a folder's ``metrics.json`` that hold a Fréchet distance, in their file's order."""
    records = _read_json(folder / "metrics.json").get(RECORD_KEY)
    return [
        r
        for r in (records.values() if isinstance(records, dict) else ())
        if isinstance(r, dict) and isinstance(r.get("frechet_distance"), (int, float))
    ]


def measured_by(record: dict) -> tuple[str, str, str] | None:
    """What makes a record's numbers comparable with another's: (way of measuring, the measuring network's name, the
    data it was measured on); None for a record of a kind the Space does not show."""
    kind = record.get("kind")
    data = data_name(str(record.get("dataset") or "unrecorded data"))
    if kind == TEXT_TO_IMAGE_RECORD or (kind in CLASSIFIER_KINDS and record.get("clip")):
        return "clip", Path(str(record.get("clip") or "an unrecorded CLIP")).name, data
    if kind in CLASSIFIER_KINDS:
        return "classifier", Path(str(record.get("classifier") or "an unrecorded classifier")).name, data
    return None


def comparable_record(entry, way: str, network: str | None, **setting) -> dict | None:
    """The model's record of ``setting`` (``diffusion.quality_records``) measured one way (``measured_by``):
    "classifier" or "clip", by the network named ``network`` (None: any); None when it has none."""
    for record in quality_records(entry, **setting):
        if (measured := measured_by(record)) and measured[0] == way and network in (None, measured[1]):
            return record
    return None


def _number(value, form: str) -> str:
    return format(value, form) if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def _classifier_row(model_id: str, record: dict) -> str:
    kind = record["kind"]
    if kind == "vae":
        what, settings = f"{record.get('prior', '?')} prior", "temperature 1"
    elif kind == "pipeline":
        what = "diffusion"
        settings = (
            f"{record.get('num_inference_steps', '?')} steps, guidance {_number(record.get('guidance_scale'), 'g')}"
        )
    else:
        what, settings = "reconstructions", f"of {record.get('images_split', '?')} images (the autoencoder's floor)"
    return table_row(
        model_id,
        what,
        settings,
        _number(record["frechet_distance"], ".2f"),
        _number(record.get("class_match"), ".1%"),
        _number(record.get("num_samples"), ","),
    )


def classifier_table(rows: list[tuple[str, dict]]) -> list[str]:
    """Markdown lines: the records of vector VAEs and latent diffusion pipelines measured with one classifier."""
    lines = ["| model | samples of | settings | FD ↓ | class match ↑ | samples |", "|---|---|---|---|---|---|"]
    return lines + [_classifier_row(model_id, record) for model_id, record in rows]


def _setting(record: dict) -> tuple[str, int, float]:
    return (
        str(record.get("scheduler")),
        int(record.get("num_inference_steps") or 0),
        float(record.get("guidance_scale") or 0),
    )


def clip_table(rows: list[tuple[str, dict]], recommended: dict[str, tuple | None]) -> list[str]:
    """Markdown lines: records measured with one CLIP. Text-to-image records first, one row per setting (the
    recommended one marked), then each such model's references: its real images (the ceiling) and the empty prompt at
    its recommended setting (the floor), and its autoencoder's reconstructions; then vector VAEs' prior samples and
    autoencoders' reconstructions (an FD only: they follow no text)."""
    lines = ["| model | setting | FD ↓ | CLIP score ↑ | R-precision ↑ | images |", "|---|---|---|---|---|---|"]
    untexted = [(m, r) for m, r in rows if r.get("kind") != TEXT_TO_IMAGE_RECORD]
    rows = [(m, r) for m, r in rows if r.get("kind") == TEXT_TO_IMAGE_RECORD]
    for model_id, record in sorted(rows, key=lambda row: (row[0], _setting(row[1]))):
        scheduler, steps, guidance = _setting(record)
        mark = f" {RECOMMENDED_MARK}" if recommended.get(model_id) == (scheduler, steps, guidance) else ""
        lines.append(
            table_row(
                model_id,
                f"{scheduler}, {steps} steps, guidance {guidance:g}{mark}",
                _number(record["frechet_distance"], ".2f"),
                _number(record.get("clip_score"), ".1f"),
                _number(record.get("r_precision"), ".1%"),
                _number(record.get("num_images"), ","),
            )
        )
    for model_id in dict.fromkeys(model_id for model_id, _ in rows):
        own = [r for m, r in rows if m == model_id]
        best = next((r for r in own if recommended.get(model_id) == _setting(r)), own[0])
        real, empty = best.get("real_images") or {}, best.get("empty_prompt") or {}
        chance = best.get("num_candidates")
        lines.append(
            table_row(
                model_id,
                f"*real test images (the ceiling; chance: 1 in {_number(chance, 'd')})*",
                "–",
                _number(real.get("clip_score"), ".1f"),
                _number(real.get("r_precision"), ".1%"),
                _number(best.get("num_images"), ","),
            )
        )
        lines.append(
            table_row(
                model_id,
                f"*empty prompt at {_setting(best)[1]} steps (the floor)*",
                _number(empty.get("frechet_distance"), ".2f"),
                _number(empty.get("clip_score"), ".1f"),
                _number(empty.get("r_precision"), ".1%"),
                _number(best.get("num_images"), ","),
            )
        )
        lines.append(
            table_row(
                model_id,
                "*its autoencoder's reconstructions*",
                _number(best.get("reconstruction_frechet_distance"), ".2f"),
                "–",
                "–",
                "–",
            )
        )
    for model_id, record in untexted:
        what = describe_setting(record) + (" (temperature 1)" if record["kind"] == "vae" else "")
        lines.append(
            table_row(
                model_id,
                what,
                _number(record["frechet_distance"], ".2f"),
                "–",
                "–",
                _number(record.get("num_samples"), ","),
            )
        )
    return lines


def records_markdown(folders: Iterable[tuple[str, Path]], recommended: dict[str, tuple | None] | None = None) -> str:
    """Markdown for Compare: for (model id, folder) pairs, one table per ``measured_by`` group, headed by what it
    measured, each with its note; a line saying so when no model has a record. ``recommended``: each text-to-image
    model's recommended (scheduler, steps, guidance), marked in its table."""
    groups: dict[tuple[str, str, str], list[tuple[str, dict]]] = {}
    for model_id, folder in folders:
        for record in _records(folder):
            if (key := measured_by(record)) is not None:
                groups.setdefault(key, []).append((model_id, record))
    if not groups:
        return "No model of this Space has measured sample-quality records (`python -m vae_hub.evaluate_samples --record`)."
    sections = []
    for (way, network, data), rows in groups.items():
        if way == "clip":
            heading = f"#### Samples of `{data}` models, measured with the CLIP `{network}`"
            body, note = clip_table(rows, recommended or {}), TEXT_TO_IMAGE_NOTE
        else:
            heading = f"#### Samples of `{data}` models, measured with the classifier `{network}`"
            body, note = classifier_table(rows), COMPARE_NOTE
        sections.append("\n".join([heading, "", *body, "", note]))
    return "\n\n".join(sections)
