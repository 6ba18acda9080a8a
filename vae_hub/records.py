"""How a model's records (``training_info.json``, ``metrics.json``) name things where others read them.

A record written on a training machine holds that machine's paths (``/home/me/data/mnist``) and Hub ids
(``zalando-datasets/fashion_mnist``) side by side. A card, an upload or the Space shows an absolute path by its last
part (``public_name``, ``shareable_command``), links a Hub id (``reference``) and shows anything else as it was
recorded.
"""

import json
import os
import shlex
from pathlib import Path

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id


HUB_URL = "https://huggingface.co/"
DATASETS_URL = "https://huggingface.co/datasets/"


def read_json(path: Path) -> dict:
    """The JSON object in ``path``, or ``{}`` when the (optional) file is absent."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def public_name(name: str) -> str:
    """A recorded model, dataset or folder as an uploaded file shows it: an absolute (or ``~``) path by its last
    part (``/home/me/data/mnist`` → ``mnist``), anything else (a Hub id, a relative path) as it is."""
    local = os.path.isabs(name) or name.startswith("~")
    return Path(name).name if local and Path(name).name else name


def public_record(data):
    """A JSON record (``training_info.json``, ``metrics.json``) as a push uploads it: every recorded path by its
    last part (``public_name``), every ``command`` as ``shareable_command`` writes it; the rest unchanged."""
    if isinstance(data, dict):
        return {
            k: shareable_command(v) if k == "command" and isinstance(v, str) else public_record(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [public_record(v) for v in data]
    return public_name(data) if isinstance(data, str) else data


def shareable_command(command: str | None) -> str | None:
    """A recorded command as a card shows it: an absolute path (``--output_dir /home/me/runs/vae``, or after
    ``=``) becomes its last part, so a card names no folder of the machine it was trained on; relative paths and
    everything else stay as they were run."""
    if not command:
        return command
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: not a command line we wrote; show it as it is
        return command

    def short(word: str) -> str:
        flag, equals, value = word.partition("=") if word.startswith("--") else ("", "", word)
        return flag + equals + Path(value).name if os.path.isabs(value) and Path(value).name else word

    return shlex.join(short(w) for w in words)


def hub_id(name: str | None) -> str | None:
    """``name`` if it can be a Hub repo id, ``None`` for a local path (the metadata can only link Hub ids)."""
    if not name or os.path.exists(name) or name.startswith((".", "~")):
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def reference(name: str | None, hub_url: str | None = None) -> str | None:
    """Markdown for a model, dataset or folder: a link when ``name`` is a Hub id and ``hub_url`` is given, else code
    (a local folder by its name only: ``public_name``)."""
    if not name:
        return None
    return f"[{name}]({hub_url}{name})" if hub_url and hub_id(name) else f"`{public_name(name)}`"
