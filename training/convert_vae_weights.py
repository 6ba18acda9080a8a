"""Re-save the weights of VAEModel / SpatialVAEModel folders under the names the models have since they were built
from ``encoder`` and ``decoder`` parts (issue 27). Loading converts the old names anyway (``LegacyKeysMixin``); this
writes them once, so that the files match the code. Only the safetensors file changes: the tensors are the same bytes
under new names, the config and everything else in the folder stay as they are.

    python training/convert_vae_weights.py space/models/fashion-mnist-vae space/models/fashion-mnist-ldm/vae ...
"""

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file, save_file

from vae_hub.loading import CONFIG_NAME, WEIGHTS_NAME
from vae_hub.models import SpatialVAEModel, VAEModel
from vae_hub.models.blocks import rename_legacy_keys


CLASSES = {"VAEModel": VAEModel, "SpatialVAEModel": SpatialVAEModel}


def convert_folder(folder: Path) -> bool:
    """Rename the legacy weight names of ``folder``'s safetensors file in place; False when none were left."""
    config = json.loads((folder / CONFIG_NAME).read_text())
    cls = CLASSES.get(config.get("_class_name"))
    if cls is None:
        raise SystemExit(f"{folder}: {config.get('_class_name')} is not one of {', '.join(CLASSES)}")
    path = folder / WEIGHTS_NAME
    state = load_file(path)
    if not cls.legacy_keys_in(state):
        return False
    rename_legacy_keys(state, cls._legacy_key_renames)
    expected = cls.from_config({k: v for k, v in config.items() if not k.startswith("_")}).state_dict().keys()
    if set(state) != set(expected):
        raise SystemExit(
            f"{folder}: converted names do not match {cls.__name__}: {sorted(set(state) ^ set(expected))[:10]}"
        )
    save_file(dict(sorted(state.items())), path, metadata={"format": "pt"})
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    for folder in parser.parse_args().folders:
        print(f"{folder}: {'converted' if convert_folder(folder) else 'already current'}")


if __name__ == "__main__":
    main()
