"""What the models' ``from_pretrained`` refuses to load, and why (no Hub publishing code here).

* ``check_model_folder``: the folder or repo must hold a ``config.json`` naming the class being loaded, and (by
  default) safetensors weights: the single file, a sharded checkpoint's index, each with an optional variant
  (``diffusion_pytorch_model.fp16.safetensors``, ``diffusion_pytorch_model.safetensors.index.fp16.json``).
* ``check_model_size``: the size a config implies (parameters and buffers, counted on the meta device, so
  nothing is allocated) must stay under a limit — a config is a lever on the loader's memory.
* ``StrictLoadingMixin``: diffusers' ``ModelMixin.from_pretrained`` with both checks first, and no missing,
  unexpected or mismatched keys afterwards.
* The names of a saved folder's files and ``is_pipeline_folder``: what publishing (``vae_hub.hub``) and the Space
  (``vae_hub.space_models``, ``vae_hub.explore``) both read.
"""

import os
from collections.abc import Callable
from pathlib import Path

import torch
from diffusers.schedulers.scheduling_utils import SCHEDULER_CONFIG_NAME
from diffusers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFETENSORS_WEIGHTS_NAME
from diffusers.utils import WEIGHTS_NAME as PICKLE_WEIGHTS_NAME
from diffusers.utils.hub_utils import _add_variant
from huggingface_hub import _CACHED_NO_EXIST, HfApi, try_to_load_from_cache


CONFIG_NAME = "config.json"
WEIGHTS_NAME = SAFETENSORS_WEIGHTS_NAME
PICKLE_INDEX_NAME = "diffusion_pytorch_model.bin.index.json"
MAP_SAMPLE_NAME = "latent_map_sample.npz"  # held-out images for the Space's latent map (vae_hub.explore.MapSample)
PIPELINE_INDEX_NAME = "model_index.json"
PIPELINE_COMPONENT_FILES = {
    "vae": (CONFIG_NAME, WEIGHTS_NAME),
    "unet": (CONFIG_NAME, WEIGHTS_NAME),
    "scheduler": (SCHEDULER_CONFIG_NAME,),
}
# 2 GiB of float32: far above any model of this project (the flagship is 3 MB), far below what hurts a server.
MAX_MODEL_BYTES = int(os.environ.get("VAE_HUB_MAX_MODEL_BYTES", 2 * 2**30))

_LOAD_CONFIG_KWARGS = ("cache_dir", "force_download", "proxies", "token", "local_files_only", "revision", "subfolder")


def is_pipeline_folder(folder) -> bool:
    """Whether ``folder`` is a saved pipeline (it has a ``model_index.json``) rather than a single model."""
    return (Path(folder) / PIPELINE_INDEX_NAME).is_file()


def check_model_folder(cls, pretrained_model_name_or_path, **kwargs) -> dict:
    """Refuse, with a message naming the problem, what ``cls.from_pretrained`` must not load; return the config.

    * a folder or repo without ``config.json``, or whose config names another class (an ``AutoencoderKL``
      folder would otherwise load with random weights);
    * a config that fails the class's own validation, or implies a model above ``max_model_bytes``
      (``check_model_size``), before any weights are read or downloaded;
    * with ``use_safetensors=True`` (our default), a folder or repo holding only a pickle checkpoint.
    """
    where = str(pretrained_model_name_or_path)[:200] + (
        f" (subfolder {kwargs['subfolder']!r})" if kwargs.get("subfolder") else ""
    )
    try:
        config = cls.load_config(
            pretrained_model_name_or_path, **{k: kwargs[k] for k in _LOAD_CONFIG_KWARGS if k in kwargs}
        )
    except EnvironmentError as err:
        raise EnvironmentError(
            f"cannot load a {cls.__name__} from {where}: cannot read its {CONFIG_NAME} ({err})"
        ) from err
    found = config.get("_class_name")
    if found != cls.__name__:
        raise ValueError(
            f"{where} holds a {found or 'config without _class_name'}, not a {cls.__name__}: refusing to load it "
            f"(its weights would not fit and the model would be silently random)."
        )
    check_model_size(cls, config, kwargs.get("max_model_bytes", MAX_MODEL_BYTES))
    variant = kwargs.get("variant")
    if kwargs.get("use_safetensors") and not any(
        _has_file(pretrained_model_name_or_path, _add_variant(name, variant), kwargs, unknown=True)
        for name in (WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)
    ):
        pickle = any(
            _has_file(pretrained_model_name_or_path, _add_variant(name, variant), kwargs, unknown=False)
            for name in (PICKLE_WEIGHTS_NAME, PICKLE_INDEX_NAME)
        )
        raise EnvironmentError(
            missing_safetensors_message(where, os.path.isdir(pretrained_model_name_or_path), variant, pickle)
        )
    return config


def missing_safetensors_message(where: str, local: bool, variant: str | None, pickle: bool) -> str:
    """diffusers' words for a checkpoint without the weights file asked for, then why vae-hub asks for safetensors:
    a pickle checkpoint can run arbitrary code when it is loaded."""
    wanted = _add_variant(WEIGHTS_NAME, variant)
    message = (
        f"Error no file named {wanted} found in directory {where}"
        if local
        else f"{where} does not appear to have a file named {wanted}"
    )
    message += (
        f" (nor a sharded {_add_variant(SAFE_WEIGHTS_INDEX_NAME, variant)}). vae-hub loads safetensors weights "
        "only, unless told otherwise: a pickle checkpoint (.bin) can run arbitrary code when it is loaded."
    )
    if pickle:
        message += (
            f" This one only has a pickle checkpoint ({_add_variant(PICKLE_WEIGHTS_NAME, variant)}): "
            "convert it to safetensors, or pass use_safetensors=False if you trust its source."
        )
    return message


def model_size_bytes(cls, config: dict) -> int:
    """Bytes of the parameters and buffers that ``cls(**config)`` would allocate, in its default dtype.

    The model is built on the meta device: shapes only, no memory, however large the config says it is.
    Raises the class's own ``ValueError`` for a config it refuses.
    """
    init = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.device("meta"):
        model = cls.from_config(init)
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def check_model_size(cls, config: dict, max_model_bytes: int = MAX_MODEL_BYTES) -> None:
    """Refuse a config whose model would exceed ``max_model_bytes`` (``VAE_HUB_MAX_MODEL_BYTES``, default 2 GiB)."""
    size = model_size_bytes(cls, config)
    if size > max_model_bytes:
        raise ValueError(
            f"this {cls.__name__} config implies {size / 2**20:,.0f} MiB of weights, above the limit of "
            f"{max_model_bytes / 2**20:,.0f} MiB (VAE_HUB_MAX_MODEL_BYTES): refusing to allocate it"
        )


def _has_file(path_or_repo_id, filename: str, kwargs: dict, unknown: bool) -> bool:
    """Whether the folder or repo holds ``filename``, without downloading it (it may be a large pickle).

    ``unknown`` is the answer when it cannot be told (offline and not cached, no access, ...).
    """
    subfolder = kwargs.get("subfolder") or ""
    if os.path.isdir(path_or_repo_id):
        return os.path.isfile(os.path.join(path_or_repo_id, subfolder, filename))
    path_in_repo = f"{subfolder}/{filename}" if subfolder else filename
    cached = try_to_load_from_cache(
        str(path_or_repo_id), path_in_repo, cache_dir=kwargs.get("cache_dir"), revision=kwargs.get("revision")
    )
    if isinstance(cached, str):
        return True
    if cached is _CACHED_NO_EXIST:
        return False
    if kwargs.get("local_files_only"):
        return unknown
    try:
        return HfApi(token=kwargs.get("token")).file_exists(
            str(path_or_repo_id), path_in_repo, revision=kwargs.get("revision")
        )
    except Exception:  # offline, gated, ...
        return unknown


def strict_from_pretrained(cls, load, pretrained_model_name_or_path, **kwargs):
    """``load(pretrained_model_name_or_path, **kwargs)`` (a diffusers ``from_pretrained`` of ``cls``) made safe and
    strict: ``check_model_folder`` first, safetensors only unless ``use_safetensors=False``, and a ``ValueError``
    when any weight is missing, unexpected or of another shape (diffusers would fill it with random values)."""
    kwargs.setdefault("use_safetensors", True)
    want_info = kwargs.pop("output_loading_info", False)
    max_model_bytes = kwargs.pop("max_model_bytes", MAX_MODEL_BYTES)
    if kwargs.get("subfolder") and os.path.isdir(pretrained_model_name_or_path):
        # diffusers takes a local folder's weights from its root when there are some, even with `subfolder`
        pretrained_model_name_or_path = os.path.join(pretrained_model_name_or_path, kwargs.pop("subfolder"))
    check_model_folder(cls, pretrained_model_name_or_path, max_model_bytes=max_model_bytes, **kwargs)
    model, info = load(pretrained_model_name_or_path, output_loading_info=True, **kwargs)
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:
        legacy = getattr(cls, "legacy_keys_in", lambda keys: [])(bad.get("unexpected_keys", ()))
        hint = (
            f" (names such as {legacy[0]!r} are those of an older vae-hub, whose single-file checkpoints are "
            "converted when loaded, sharded ones not: re-save it unsharded with that version, or run "
            "training/convert_vae_weights.py on a single-file copy)"
            if legacy
            else ""
        )
        raise ValueError(
            f"{str(pretrained_model_name_or_path)[:200]}: weights do not match {cls.__name__}: {bad}{hint}"
        )
    return (model, info) if want_info else model


class StrictLoadingMixin:
    """``from_pretrained`` made safe and strict, for a ``ModelMixin`` subclass (list this mixin first).

    safetensors only unless ``use_safetensors=False`` is passed (no pickles by default); the folder's
    ``config.json`` must name this class and imply a model under ``max_model_bytes``; the weights (single file,
    sharded, any ``variant``) must match the model exactly — diffusers would otherwise fill missing keys with
    random values silently. ``save_pretrained`` writes the weights with the usual file mode. A config's ``auto_map``
    (written by a push, for loading without vae-hub) is ignored.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        return strict_from_pretrained(cls, super().from_pretrained, pretrained_model_name_or_path, **kwargs)

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        is_main_process: bool = True,
        save_function: Callable | None = None,
        safe_serialization: bool = True,
        variant: str | None = None,
        max_shard_size: int | str = "10GB",
        push_to_hub: bool = False,
        **kwargs,
    ) -> None:
        """diffusers' ``ModelMixin.save_pretrained``, with its signature: a pipeline's ``save_pretrained`` passes
        ``safe_serialization``, ``variant`` and ``max_shard_size`` only to a component that names them.

        The weights get the file mode every other output gets (0644 under the usual umask): safetensors writes them
        through a private temporary file (0600). The config's ``_name_or_path`` (where diffusers loaded the model
        from) keeps only the last part of an absolute path: a fine-tuned model would otherwise carry a folder of the
        training machine into every push."""
        origin = self.config.get("_name_or_path")
        if isinstance(origin, (str, os.PathLike)) and os.path.isabs(origin):
            self.register_to_config(_name_or_path=Path(origin).name)
        super().save_pretrained(
            save_directory,
            is_main_process=is_main_process,
            save_function=save_function,
            safe_serialization=safe_serialization,
            variant=variant,
            max_shard_size=max_shard_size,
            push_to_hub=push_to_hub,
            **kwargs,
        )
        umask = os.umask(0)
        os.umask(umask)
        for weights in Path(save_directory).glob("*.safetensors"):
            weights.chmod(0o666 & ~umask)

    @classmethod
    def extract_init_dict(cls, config_dict, **kwargs):
        # A pushed config's ``auto_map`` tells diffusers' AutoModel where the repo's own code is
        # (vae_hub.remote_code): metadata, not a constructor argument to warn about.
        config_dict = {k: v for k, v in config_dict.items() if k != "auto_map"}
        return super().extract_init_dict(config_dict, **kwargs)
