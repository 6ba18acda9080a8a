"""How a vae-hub pipeline (``LatentDiffusionPipeline``) is saved and loaded: ``PipelineLoadingMixin``.

Every component, the vae included, loads through diffusers' own component loader (``DiffusionPipeline
.from_pretrained``): its variant handling, its logging and its errors apply to all of them. diffusers can do so because
vae-hub registers itself as a library whose classes a ``model_index.json`` may name, as diffusers and transformers are
(``vae_hub.models`` does it on import): a saved folder names its vae ``["vae_hub", "SpatialVAEModel"]`` and diffusers
imports ``vae_hub`` to resolve it.

The pipeline class itself lives outside diffusers, so a saved folder also holds ``pipeline.py``, one line importing
it, and ``model_index.json`` names it as diffusers' custom pipelines do (``"_class_name": ["pipeline",
"LatentDiffusionPipeline"]``): ``DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`` then loads it
with vae-hub installed. The class reads that entry as its own name, so it never runs the file; it likewise reads a
vae-hub component (``["vae_hub", ...]``, or ``["vae_hub.models.spatial_vae", ...]`` as folders saved before the
registration name it) as the installed class, not as the code file a pushed repo carries for loading without
vae-hub.
"""

import json
import os
from pathlib import Path

from diffusers.pipelines.pipeline_loading_utils import LOADABLE_CLASSES
from huggingface_hub import snapshot_download


_LIBRARY = "vae_hub"  # the name model_index.json gives vae-hub, registered by vae_hub.models
_INSTALLED = "vae_hub.models"  # where diffusers' loader finds the installed classes (in sys.modules, no code file)
LOADER_MODULE = "pipeline"  # pipeline.py in a saved folder, for DiffusionPipeline.from_pretrained
# The import line is kept off the start of a source line: diffusers scans a remote pipeline file's text (strings
# included) for imports, and would warn that vae_hub is missing when the bundled copy of this module is loaded.
LOADER_SOURCE = (
    '''"""Lets diffusers' DiffusionPipeline.from_pretrained(..., trust_remote_code=True) load this folder.

The pipeline is vae-hub's (pip install vae-hub); this file only imports it.
"""

'''
    "from vae_hub.pipelines.latent_diffusion import LatentDiffusionPipeline  # noqa: F401\n"
)


class PipelineLoadingMixin:
    """``save_pretrained``, ``model_index.json`` and Hub downloads of a vae-hub ``DiffusionPipeline`` (list it first)."""

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        safe_serialization: bool = True,
        variant: str | None = None,
        max_shard_size: int | str | None = None,
        push_to_hub: bool = False,
        **kwargs,
    ) -> None:
        """diffusers' ``DiffusionPipeline.save_pretrained`` (model_index.json, one folder per component, each saved
        with ``safe_serialization``, ``variant`` and ``max_shard_size``) plus the ``pipeline.py`` loader."""
        Path(save_directory).mkdir(parents=True, exist_ok=True)
        (Path(save_directory) / f"{LOADER_MODULE}.py").write_text(LOADER_SOURCE)  # before a push uploads the folder
        super().save_pretrained(
            save_directory,
            safe_serialization=safe_serialization,
            variant=variant,
            max_shard_size=max_shard_size,
            push_to_hub=push_to_hub,
            **kwargs,
        )

    def to_json_string(self) -> str:
        """model_index.json, naming the class through the folder's loader file (see the module docstring)."""
        config = json.loads(super().to_json_string())
        config["_class_name"] = [LOADER_MODULE, type(self).__name__]
        config.pop("_name_or_path", None)  # where a loaded pipeline came from (a local path) is not part of it
        return json.dumps(config, indent=2, sort_keys=True) + "\n"

    @classmethod
    def _dict_from_json_file(cls, json_file: str | os.PathLike) -> dict:
        config = super()._dict_from_json_file(json_file)
        if config.get("_class_name") == [LOADER_MODULE, cls.__name__]:  # our own folder: no need to run its loader
            config["_class_name"] = cls.__name__
        registered = LOADABLE_CLASSES.get(_LIBRARY)  # None where vae-hub is not installed (a bundled copy)
        if registered is None:
            return config
        for name, value in config.items():
            if not (isinstance(value, list) and len(value) == 2 and str(value[0]).split(".")[0] == _LIBRARY):
                continue
            if value[1] not in registered:  # diffusers would fail obscurely on it
                raise ValueError(
                    f"model_index.json: the {name}, {value[0]}.{value[1]}, is not a model class of "
                    f"vae-hub ({', '.join(registered)})"
                )
            # The installed package, never the code file a pushed repo carries for loading without vae-hub
            # (vae/vae_hub.py): diffusers' loader prefers a component's file named after its library to the library.
            config[name] = [_INSTALLED, value[1]]
        return config

    @classmethod
    def download(cls, pretrained_model_name: str, **kwargs) -> str:
        """The pipeline's files of a Hub repo (configs and safetensors weights; cached), as a local folder.

        A pushed repo also carries code for loading without vae-hub (``pipeline.py``, ``vae/vae_hub.py``: see
        ``vae_hub.remote_code``). diffusers' own ``download`` would fetch it, and its loader would then insist on
        running that file (``trust_remote_code``) where the installed vae-hub is at hand; this class leaves it out.
        """
        return snapshot_download(
            pretrained_model_name,
            cache_dir=kwargs.get("cache_dir"),
            revision=kwargs.get("revision"),
            token=kwargs.get("token"),
            force_download=kwargs.get("force_download", False),
            local_files_only=kwargs.get("local_files_only", False),
            allow_patterns=["model_index.json", "*/*.json", "*/*.safetensors"],
        )
