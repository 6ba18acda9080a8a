"""Everything that touches files and the Hugging Face Hub: loading checks, model cards, push, Space deploy."""

import os

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
PICKLE_WEIGHTS_NAME = "diffusion_pytorch_model.bin"

_LOAD_CONFIG_KWARGS = ("cache_dir", "force_download", "proxies", "token", "local_files_only", "revision", "subfolder")


def check_model_folder(cls, pretrained_model_name_or_path, **kwargs) -> None:
    """Refuse, with a message naming the problem, what ``cls.from_pretrained`` must not load.

    * a folder or repo without ``config.json``, or whose config names another class (an ``AutoencoderKL``
      folder would otherwise load with random weights);
    * with ``use_safetensors=True`` (our default), a folder or repo holding only a pickle checkpoint.
    """
    where = str(pretrained_model_name_or_path)
    try:
        config = cls.load_config(pretrained_model_name_or_path, **{k: kwargs[k] for k in _LOAD_CONFIG_KWARGS if k in kwargs})
    except EnvironmentError as err:
        raise EnvironmentError(f"{where} is not a {cls.__name__} model: cannot read its {CONFIG_NAME} ({err})") from err
    found = config.get("_class_name")
    if found != cls.__name__:
        raise ValueError(
            f"{where} holds a {found or 'config without _class_name'}, not a {cls.__name__}: refusing to load it "
            f"(its weights would not fit and the model would be silently random)."
        )
    if kwargs.get("use_safetensors") and not _has_file(pretrained_model_name_or_path, WEIGHTS_NAME, kwargs):
        pickle = _has_file(pretrained_model_name_or_path, PICKLE_WEIGHTS_NAME, kwargs)
        raise EnvironmentError(
            f"{where} has no {WEIGHTS_NAME}"
            + (f"; it only has a pickle checkpoint ({PICKLE_WEIGHTS_NAME}), which can run arbitrary code when "
               "loaded. Convert it, or pass use_safetensors=False if you trust its source." if pickle else ".")
        )


def _has_file(path_or_repo_id, filename: str, kwargs: dict) -> bool:
    subfolder = kwargs.get("subfolder") or ""
    if os.path.isdir(path_or_repo_id):
        return os.path.isfile(os.path.join(path_or_repo_id, subfolder, filename))
    try:
        hf_hub_download(
            str(path_or_repo_id), filename, subfolder=subfolder or None, revision=kwargs.get("revision"),
            cache_dir=kwargs.get("cache_dir"), token=kwargs.get("token"),
            local_files_only=kwargs.get("local_files_only", False),
        )
        return True
    except EntryNotFoundError:
        return False
    except Exception:  # offline and not cached, etc.: let diffusers' own loader report it
        return True
