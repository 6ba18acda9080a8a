"""Publishing a saved model or pipeline folder to the Hub: the exact file set, its dry run, and one commit.

Every Hub call goes through an injectable ``HfApi`` (tests pass a test double), takes the token explicitly, and
turns the Hub's failures into one ``HubError`` whose message says what happened and what to do.
"""

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
from diffusers import AutoencoderKL
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id

from .. import remote_code
from ..description import CARD_MARKER, METRICS_NAME, TRAINING_INFO_NAME
from ..loading import CONFIG_NAME, PIPELINE_INDEX_NAME, check_model_folder, is_pipeline_folder
from ..models import AutoencoderKLWithLikelihood, model_class
from ..records import public_record, read_json
from .cards import CARD_NAME
from .files import PIPELINE_CLASS, PIPELINE_LOADER, check_pipeline_folder, pipeline_code_files, upload_file_list
from .model_card import build_card


# What a Hugging Face token looks like, to refuse uploading a file that holds one (whoever's it is).
_TOKEN_PATTERN = re.compile(rb"\bhf_[A-Za-z0-9]{30,}")
_TEXT_SUFFIXES = (".json", ".md", ".txt", ".py", ".yaml", ".yml", ".cfg", ".toml")


class HubError(RuntimeError):
    """A Hub operation failed or was refused; the message says why and what to do. Nothing local was changed."""


def resolve_token(token: str | None = None) -> str:
    """The token to use: ``token`` if given, else ``HF_TOKEN``, else the login cache (``hf auth login``)."""
    token = token or get_token()
    if not token:
        raise HubError("no Hugging Face token: pass --token, set HF_TOKEN, or log in with `hf auth login`.")
    return token


def push_files(folder, repo_id: str) -> dict[str, bytes | Path]:
    """The exact file set a push of ``folder`` to ``repo_id`` commits: path in the repo → bytes or local file.

    ``upload_file_list(folder)``, with what the repo needs to load without vae-hub installed (see
    ``vae_hub.remote_code``): a model's ``config.json`` gets ``auto_map`` and the generated modeling file goes
    beside it; a pipeline's ``pipeline.py`` is the generated pipeline code, and a vae-hub VAE gets the modeling
    file in ``vae/``, named after the library ``model_index.json`` names for it. A ``README.md`` that vae-hub
    generated for another repo id (or for none) is replaced by a card regenerated for ``repo_id``, a missing one by a
    new card; a hand-written one goes up as it is. Nothing is written to ``folder``.

    Raises:
        ValueError / OSError: ``folder`` is not a saved model or a complete saved pipeline.
    """
    folder = Path(folder)
    files: dict[str, bytes | Path] = {name: folder / name for name in upload_file_list(folder)}
    for name in (TRAINING_INFO_NAME, METRICS_NAME):  # the records, without the paths of the machine that wrote them
        if name in files:
            files[name] = _json_bytes(public_record(read_json(folder / name)))
    if is_pipeline_folder(folder):
        index = check_pipeline_folder(folder)
        index = {**index, "_class_name": [PIPELINE_LOADER, PIPELINE_CLASS]}
        pipeline_file, *vae_file = pipeline_code_files(index)
        files[pipeline_file] = remote_code.pipeline_code(PIPELINE_CLASS).encode("utf-8")
        if vae_file:
            files[vae_file[0]] = remote_code.model_code(index["vae"][1]).encode("utf-8")
            # the VAE loads on its own too, as a pushed VAE does: AutoModel.from_pretrained(repo, subfolder="vae",
            # trust_remote_code=True) reads auto_map from model_index.json (a repo with one) and the code from vae/
            vae_code = {
                f"vae/{name}": code
                for name, code in _with_remote_code(
                    folder / "vae", index["vae"][1], remote_code.MODEL_CODE_FILE
                ).items()
            }
            files.update(vae_code)
            index["auto_map"] = json.loads(vae_code[f"vae/{CONFIG_NAME}"])["auto_map"]
        files[PIPELINE_INDEX_NAME] = _json_bytes(index)
    elif (cls := model_class(folder)) is AutoencoderKLWithLikelihood:  # diffusers' own class: no code to carry
        check_model_folder(AutoencoderKL, folder, use_safetensors=True)
    else:
        check_model_folder(cls, folder, use_safetensors=True)
        files.update(_with_remote_code(folder, cls.__name__, remote_code.MODEL_CODE_FILE))
    card = _card_for_push(folder, repo_id)
    if card is not None:
        files[CARD_NAME] = card
    return files


def _with_remote_code(folder: Path, class_name: str, code_file: str) -> dict[str, bytes]:
    """A model's ``config.json`` with ``auto_map`` pointing at ``code_file``, and that generated file."""
    config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    config["auto_map"] = {remote_code.AUTO_CLASS: f"{Path(code_file).stem}.{class_name}"}
    return {CONFIG_NAME: _json_bytes(config), code_file: remote_code.model_code(class_name).encode("utf-8")}


def _json_bytes(data: dict) -> bytes:
    """JSON as diffusers writes its configs (indent 2, sorted keys, final newline)."""
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def write_push_files(folder, repo_id: str, out_dir) -> list[str]:
    """A dry run of ``push_to_hub``: write into ``out_dir`` exactly the files (names and bytes) the commit would
    upload, and upload nothing (no token needed). Returns their paths in the repo.

    ``out_dir`` must not exist or be empty, so that it holds the commit and nothing else. The same checks run as
    for a push (a file holding a token is refused), before anything is written.
    """
    _check_repo_id(repo_id)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise HubError(
            f"--dry-run {out_dir}: not an empty folder; give a new or empty one, so that it holds exactly "
            "what the commit would upload."
        )
    files = push_files(folder, repo_id)
    _refuse_tokens(files, token=get_token())
    for path_in_repo, content in files.items():
        target = out_dir / path_in_repo
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.read_bytes())
    return list(files)


def push_to_hub(
    folder,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    api: HfApi | None = None,
) -> str:
    """Upload a saved model or pipeline folder to the Hub model repo ``repo_id`` in one commit; return its URL.

    Creates the repo if needed (``private`` for a new repo) and, with ``revision``, the branch. The files are
    ``push_files(folder, repo_id)`` (``write_push_files`` writes them locally instead). Nothing is written to
    ``folder``.

    Raises:
        HubError: no token; a file to upload holds a token; ``private`` but the existing repo is public;
            offline, unauthorised, forbidden, or a name clash on the Hub.
        ValueError / OSError: ``folder`` is not a saved ``VAEModel``/``SpatialVAEModel`` or a complete
            ``LatentDiffusionPipeline`` — checked before any Hub call.
    """
    folder = Path(folder)
    _check_repo_id(repo_id)
    files = push_files(folder, repo_id)
    token = resolve_token(token)
    _refuse_tokens(files, token)
    operations = _add_operations(files)
    what = PIPELINE_CLASS if is_pipeline_folder(folder) else model_class(folder).__name__
    api = api or HfApi()
    with _hub_errors(repo_id, "model"):
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True, token=token)
        _refuse_public(api, repo_id, "model", private, token)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True, token=token)
        commit = api.create_commit(
            repo_id,
            operations,
            repo_type="model",
            revision=revision,
            token=token,
            commit_message=commit_message or f"Upload {what} from {folder.resolve().name} with vae-hub",
        )
    return commit.commit_url


def _card_for_push(folder: Path, repo_id: str) -> bytes | None:
    """The card to upload instead of ``folder/README.md``, or ``None`` to upload that file as it is.

    A hand-written README (no vae-hub marker) or one generated for ``repo_id`` goes up unchanged; a card
    generated for another id or none is regenerated for ``repo_id`` (keeping its dataset link), so the snippet
    on the Hub loads the right repo.
    """
    path = folder / CARD_NAME
    dataset_id = None
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        marker = CARD_MARKER.search(text)
        if marker is None or marker.group(1) == repo_id:
            return None
        datasets = ModelCard(text).data.datasets
        dataset_id = datasets[0] if datasets else None
    return str(build_card(folder, repo_id, dataset_id=dataset_id)).encode("utf-8")


def _refuse_tokens(contents: dict[str, bytes | Path], token: str | None) -> None:
    """Refuse to publish any content that holds ``token`` or anything that looks like a Hugging Face token."""
    for path_in_repo, content in contents.items():
        data = content if isinstance(content, bytes) else content.read_bytes()
        looks_like_one = path_in_repo.endswith(_TEXT_SUFFIXES) and _TOKEN_PATTERN.search(data)
        if (token and token.encode() in data) or looks_like_one:
            raise HubError(
                f"{path_in_repo} contains a Hugging Face token: refusing to upload it. Remove the token "
                "from the file (tokens belong in HF_TOKEN or the login cache) and retry."
            )


def _add_operations(files: dict[str, bytes | Path]) -> list[CommitOperationAdd]:
    return [
        CommitOperationAdd(path_in_repo=p, path_or_fileobj=c if isinstance(c, bytes) else str(c))
        for p, c in files.items()
    ]


def _check_repo_id(repo_id: str) -> None:
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise HubError(f"invalid repo id {repo_id!r}: {err}") from None
    if "/" not in repo_id:
        raise HubError(
            f"invalid repo id {repo_id!r}: expected ORG/NAME (your user name or an organisation, then the name)."
        )


def _refuse_public(api: HfApi, repo_id: str, repo_type: str, private: bool, token: str) -> None:
    """``create_repo(private=True)`` leaves an existing public repo public: check, and refuse to publish."""
    if private and not api.repo_info(repo_id, repo_type=repo_type, token=token).private:
        raise HubError(
            f"{repo_id} already exists and is public: refusing a private upload into it. Make it private "
            f"in its settings on the Hub, or choose another repo id."
        )


@contextmanager
def _hub_errors(repo_id: str, repo_type: str) -> Iterator[None]:
    """Turn the Hub's failures into one ``HubError`` saying what happened and what to do."""
    what = f"the Space {repo_id}" if repo_type == "space" else repo_id
    try:
        yield
    except (OfflineModeIsEnabled, httpx2.TransportError) as err:
        raise HubError(
            f"cannot reach the Hugging Face Hub ({type(err).__name__}: {err}). Check the network "
            "connection and that HF_HUB_OFFLINE is not set, then retry. Nothing was uploaded."
        ) from err
    except HfHubHTTPError as err:
        status = err.response.status_code
        reason = {
            401: "unauthorised: the Hub rejected the token (from --token, HF_TOKEN or the login cache). Log in "
            "again with `hf auth login` or pass a valid token with write access",
            403: f"forbidden: the token may not write to {what} (a namespace you cannot write to, or a read-only "
            "token)",
            404: f"{what} was not found, or the token cannot see it",
            409: f"name clash: {what} conflicts with an existing repository, branch or operation",
        }.get(status, f"the Hub refused the request for {what} (HTTP {status})")
        detail = f" Hub says: {err.server_message}" if err.server_message else ""
        raise HubError(f"{reason}.{detail} Nothing was uploaded.") from err
