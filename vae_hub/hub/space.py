"""A self-contained Gradio Space on the Hub: its exact file set (app, ``vae_hub`` source, models, examples,
``space_config.json`` naming the Hub model to load, if any), its card, and the deploy commit."""

import json
import sys
from importlib import metadata
from pathlib import Path

from huggingface_hub import CommitOperationDelete, HfApi, SpaceCard, SpaceCardData
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..constants import SPACE_DIR
from ..loading import CONFIG_NAME, PIPELINE_INDEX_NAME, is_pipeline_folder
from ..records import read_json
from .cards import CARD_NAME, LICENSE, PROJECT_TAG, template_path
from .files import check_pipeline_folder, upload_file_list
from .push import HubError, _add_operations, _check_repo_id, _hub_errors, _refuse_public, _refuse_tokens, resolve_token


SPACE_CONFIG_NAME = "space_config.json"  # {"model_id": id | null}, read by vae_hub.explore.default_model_ids
SPACE_APP = "app.py"
SPACE_REQUIREMENTS = "requirements.txt"
SPACE_EXAMPLES = "examples"
SPACE_MODELS = "models"
SPACE_CARD_DEFAULTS = {  # front matter the Space's own README.md may override
    "title": "VAE Hub",
    "emoji": "🧥",
    "colorFrom": "indigo",
    "colorTo": "pink",
    "short_description": "Sample, encode and interpolate with a variational autoencoder",
    "license": LICENSE,
    "pinned": False,
}


def space_upload_files(space_dir=None, *, model_id: str | None = None) -> dict[str, bytes | Path]:
    """The exact file set of a Space deploy: path in the Space → bytes or the local file to upload.

    * from ``space_dir`` (default: the project's ``space/``): ``app.py``, ``examples/**`` and, without
      ``model_id``, each shipped model or pipeline under ``models/<name>/`` (its ``upload_file_list``: no
      checkpoints; a pipeline must be complete);
    * ``requirements.txt``: the Space's own, without a requirement on vae-hub itself (not on any index);
    * ``vae_hub/**/*.py``: this package's source (subpackages too), so that ``import vae_hub`` works in the Space;
    * ``space_config.json``: ``{"model_id": model_id}``, which the app offers first (``vae_hub.explore``) —
      always written, so a redeploy without ``model_id`` switches the Space back to its shipped models;
    * ``README.md``: the Space card — front matter (title, emoji, colours, ``sdk: gradio``, ``sdk_version`` = the
      installed gradio, ``python_version``, ``app_file``, ``models: [model_id]``, license) and a short body.
    """
    space_dir = Path(space_dir) if space_dir is not None else SPACE_DIR
    if not (space_dir / SPACE_APP).is_file():
        raise HubError(f"{space_dir} has no {SPACE_APP}: not a Space folder (pass --space-dir).")
    files: dict[str, bytes | Path] = {SPACE_APP: space_dir / SPACE_APP}
    files.update(_tree(space_dir / SPACE_EXAMPLES, SPACE_EXAMPLES))
    if model_id is None:
        shipped = space_dir / SPACE_MODELS
        models = sorted({p.parent for name in (CONFIG_NAME, PIPELINE_INDEX_NAME) for p in shipped.glob(f"*/{name}")})
        if not models:
            raise HubError(
                f"no shipped models under {shipped}: train them first, or pass "
                "--model-id to make the Space load a model from the Hub."
            )
        from ..text_to_image_card import upload_files as text_to_image_files  # it imports this package

        for model in models:
            index = read_json(model / PIPELINE_INDEX_NAME) if is_pipeline_folder(model) else None
            if index is None and "_class_name" not in read_json(model / CONFIG_NAME):
                continue  # not a diffusers model (the measuring mini CLIP): the Space does not show it
            if index is not None and index.get("_class_name") == "StableDiffusionPipeline":  # a plain diffusers one
                names = text_to_image_files(model)
            else:
                if index is not None:
                    check_pipeline_folder(model)  # a half-trained pipeline would break the Space at start
                names = upload_file_list(model)
            files.update({f"{SPACE_MODELS}/{model.name}/{name}": model / name for name in names})
    package = Path(__file__).resolve().parents[1]  # vae_hub
    files.update({f"vae_hub/{p.relative_to(package).as_posix()}": p for p in sorted(package.rglob("*.py"))})
    files[SPACE_REQUIREMENTS] = _space_requirements(space_dir / SPACE_REQUIREMENTS).encode("utf-8")
    files[SPACE_CONFIG_NAME] = (json.dumps({"model_id": model_id}, indent=2) + "\n").encode("utf-8")
    files[CARD_NAME] = str(_space_card(space_dir / CARD_NAME, model_id)).encode("utf-8")
    return files


def deploy_space(
    space_id: str,
    *,
    model_id: str | None = None,
    private: bool = False,
    token: str | None = None,
    api: HfApi | None = None,
    space_dir=None,
) -> str:
    """Create or update the Gradio Space ``space_id`` with ``space_upload_files`` in one commit; return its URL.

    With ``model_id`` the Space loads that Hub model (``space_config.json``, ``models:`` in its card) and ships no
    weights; without, it ships the models under ``space_dir/models``. The same commit deletes the Space's files
    that are not in the new set (an old ``models/`` folder, a module ``vae_hub`` no longer has), so the Space
    holds exactly what was tested. Errors as for ``push_to_hub``.
    """
    _check_repo_id(space_id)
    if model_id is not None:
        _check_repo_id(model_id)
    token = resolve_token(token)
    files = space_upload_files(space_dir, model_id=model_id)
    _refuse_tokens(files, token)
    operations = _add_operations(files)
    api = api or HfApi()
    with _hub_errors(space_id, "space"):
        api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True, token=token)
        _refuse_public(api, space_id, "space", private, token)
        uploaded = {op.path_in_repo for op in operations}
        stale = [
            CommitOperationDelete(path_in_repo=path)
            for path in api.list_repo_files(space_id, repo_type="space", token=token)
            if path not in uploaded and path != ".gitattributes"
        ]
        commit = api.create_commit(
            space_id,
            operations + stale,
            repo_type="space",
            token=token,
            commit_message=f"Deploy the vae-hub Space ({model_id or 'shipped models'})",
        )
    return commit.commit_url


def _tree(folder: Path, prefix: str) -> dict[str, Path]:
    """Every file under ``folder`` (recursively, skipping hidden files and caches) as ``prefix/relative path``."""
    return {
        f"{prefix}/{p.relative_to(folder).as_posix()}": p
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts)
    }


def _space_requirements(path: Path) -> str:
    """The Space's requirements without vae-hub itself (its source is uploaded instead; it is on no index).

    A gradio pin must match the ``sdk_version`` the card declares (the installed gradio), or the Space would run
    another gradio than the one tested.
    """
    if not path.is_file():
        raise HubError(f"{path} is missing: the Space needs its requirements.")
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec.startswith(("-e", ".", "/")) or _requirement_name(spec) == PROJECT_TAG:
            continue  # vae-hub itself, by name or as a local install
        if _requirement_name(spec) == "gradio" and not Requirement(spec).specifier.contains(
            metadata.version("gradio")
        ):
            raise HubError(
                f"{path} asks for {spec} but the installed gradio (the Space's sdk_version) is "
                f"{metadata.version('gradio')}: make them agree."
            )
        kept.append(line)
    return "\n".join(kept).strip() + "\n"


def _requirement_name(spec: str) -> str | None:
    try:
        return canonicalize_name(Requirement(spec).name) if spec else None
    except InvalidRequirement:
        return None


def _space_card(path: Path, model_id: str | None) -> SpaceCard:
    """The Space's README: its own (if ``space/README.md`` exists) or a default, with the deploy's front matter."""
    if path.is_file():
        card = SpaceCard.load(path)
    else:
        card = SpaceCard.from_template(SpaceCardData(), template_path=template_path("space"), model_id=model_id)
    data = card.data
    for key, value in SPACE_CARD_DEFAULTS.items():
        if data.get(key) is None:
            data[key] = value
    data.sdk, data.sdk_version, data.app_file = "gradio", metadata.version("gradio"), SPACE_APP
    data.python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    data.models = [model_id] if model_id else None
    data.tags = sorted(set(data.tags or []) | {PROJECT_TAG, "vae"})
    return card
