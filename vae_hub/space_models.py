"""Which models a public Space loads, and how: nothing a visitor types reaches the disk or the Hub unchecked.

* Offered models: the shipped folders (by name) and the ids the Space's owner configured (``VAE_MODEL``,
  ``space_config.json``). Any other Hub repo id only when the owner opts in (``VAE_HUB_SPACE_HUB_IDS=1``). A
  path typed by a visitor is never loaded, and the answer never depends on what exists on the server.
* Bounded loading: a config is read first; its image size and the size it implies (parameters and buffers,
  ``check_model_size``, nothing allocated) must stay under ``MAX_MODEL_SIDE`` and ``VAE_HUB_SPACE_MAX_MODEL_BYTES``
  (256 MiB). A pipeline (``model_index.json``: a ``LatentDiffusionPipeline``) is checked component by component
  (its VAE as above, its UNet's config sized the same way, VAE and UNet together under the limit, a scheduler that
  diffusers has) before any weights are read, and loaded from safetensors only. A ``StableDiffusionPipeline`` folder is
  loaded with diffusers' and transformers' own classes, once its configs name them and its safetensors files fit the
  limit together. A Hub repo is looked up once (fast failure, "cannot reach the Hub"), its files are sized from
  their metadata before any download, and only the files the Space reads are downloaded.
* Bounded state: ids longer than ``MAX_ID_CHARS`` are refused before anything is stored; a failed load is
  remembered for ``FAILURE_TTL`` seconds in an LRU of at most ``MAX_FAILURES`` ids, an unreachable Hub for as long.
  ``ModelCache`` keeps the most recently used models in memory and loads each once, however many requests ask.
* Messages never hold server paths, and user input in them is cut to ``MAX_SHOWN_CHARS`` characters.
"""

import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import diffusers
from diffusers import SchedulerMixin, UNet2DModel
from diffusers.schedulers.scheduling_utils import SCHEDULER_CONFIG_NAME
from diffusers.utils import SAFE_WEIGHTS_INDEX_NAME
from huggingface_hub import constants as hub_constants
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, RepositoryNotFoundError
from huggingface_hub.utils import validate_repo_id

from .loading import (
    CONFIG_NAME,
    PIPELINE_COMPONENT_FILES,
    PIPELINE_INDEX_NAME,
    WEIGHTS_NAME,
    check_model_size,
    is_pipeline_folder,
    model_size_bytes,
)
from .models import MODEL_CLASSES, AnyModel, SpatialVAEModel
from .models.config_checks import MAX_BLOCKS_PER_STAGE, MAX_STAGES
from .models.pipeline_loading import LOADER_MODULE as PIPELINE_LOADER
from .pipelines import LatentDiffusionPipeline


MAX_ID_CHARS = 200  # a Hub repo id has at most 96; shipped names are short
MAX_SHOWN_CHARS = 60
MAX_MODEL_BYTES = int(os.environ.get("VAE_HUB_SPACE_MAX_MODEL_BYTES", 256 * 2**20))
MAX_MODEL_SIDE = 256  # a model's sample_size sizes every request's work (the latent map resizes 2,000 images to it)
MAX_SMALL_FILE_BYTES = 2**20  # config.json and the About tab's files of a Hub repo
FAILURE_TTL = 60.0  # seconds a failed load (or an unreachable Hub) is remembered
MAX_FAILURES = 256
HUB_TIMEOUT = 10.0  # seconds per Hub request
HUB_IDS_ENV = "VAE_HUB_SPACE_HUB_IDS"
PIPELINE_CLASS = LatentDiffusionPipeline.__name__  # the _class_name of a pipeline folder's model_index.json
TEXT_TO_IMAGE_CLASS = "StableDiffusionPipeline"  # a text-to-image folder's: loaded with diffusers' own classes
CARD_FILES = (
    "README.md",
    "metrics.json",
    "training_info.json",
    "latent_map_sample.npz",
)  # what the About tab and the map read
# A pipeline's files: the configs (read and checked first) and the rest (its weights), relative to its folder.
PIPELINE_FILES = (PIPELINE_INDEX_NAME, *(f"{c}/{n}" for c, names in PIPELINE_COMPONENT_FILES.items() for n in names))
PIPELINE_CONFIGS = tuple(n for n in PIPELINE_FILES if n.endswith(".json"))
SHARD = re.compile(r"diffusion_pytorch_model-\d{5}-of-\d{5}\.safetensors")
T = TypeVar("T")


class InputError(ValueError):
    """A problem with what the user sent; the message says what was wrong and what to do instead."""


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis where it was cut."""
    return text if len(text) <= limit else text[:limit] + "…"


def clip(value, limit: int = MAX_SHOWN_CHARS) -> str:
    """``repr(value)`` for a message, cut to about ``limit`` characters: user input can be megabytes long."""
    text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
    return text if len(text) <= limit + 2 else text[:limit] + "…'"


def hide_paths(text: str) -> str:
    """``text`` with every absolute path replaced by ``…`` (library messages name the folders they read)."""
    return re.sub(r"(?<![\w.~:/-])/[^\s'\"()\],]+", "…", text)


def hub_ids_allowed(env: dict | None = None) -> bool:
    """Whether the Space's owner lets visitors load any Hub repo id (``VAE_HUB_SPACE_HUB_IDS=1``)."""
    return (os.environ if env is None else env).get(HUB_IDS_ENV, "").strip().lower() in ("1", "true", "yes")


def checked_model_id(model_id) -> str:
    """``model_id`` stripped, or an ``InputError`` if it is not a short non-empty string."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise InputError("Choose a model from the list.")
    if len(model_id) > MAX_ID_CHARS:
        raise InputError(f"A model id has at most {MAX_ID_CHARS} characters; this one has {len(model_id):,}.")
    return model_id.strip()


def public_ids(model_ids: list[str], shipped: dict[str, Path]) -> tuple[list[str], dict[str, Path]]:
    """The ids a Space shows for its offered ``model_ids``: a folder configured by its path goes by the folder's
    base name (``/home/me/runs/mnist-ldm`` → ``mnist-ldm``; a clash gets ``-2``, ``-3``…), so no server path
    reaches the model box, the API or a heading. Returns (ids, {base name: folder})."""
    ids, configured = [], {}
    for model_id in model_ids:
        folder = Path(model_id).expanduser()
        if model_id in shipped or not folder.is_dir():
            ids.append(model_id)
            continue
        name, n = folder.resolve().name, 1
        while name in shipped or name in configured or name in model_ids:
            n += 1
            name = f"{folder.resolve().name}-{n}"
        configured[name] = folder.resolve()
        ids.append(name)
    return ids, configured


@dataclass(frozen=True)
class Source:
    """Where a model comes from: a folder on this machine (shipped or configured by the owner) or a Hub repo."""

    model_id: str
    folder: Path | None = None
    repo_id: str | None = None
    shipped: bool = False

    def describe(self) -> str:
        """Markdown for the About tab, without any server path."""
        if self.repo_id:
            return f"From the Hub: [{self.repo_id}](https://huggingface.co/{self.repo_id})."
        return "Shipped with this Space." if self.shipped else "Configured by the Space's owner."


@dataclass
class Loaded:
    model: AnyModel | LatentDiffusionPipeline
    folder: Path  # the files on this machine (a Hub repo's are in the local Hub cache), for the About tab
    source: Source


class ModelLoader:
    """Resolves model ids to sources and loads them within the limits above; remembers failures (bounded)."""

    def __init__(
        self,
        offered: list[str],
        shipped: dict[str, Path],
        allow_hub: bool = False,
        max_model_bytes: int = MAX_MODEL_BYTES,
        configured: dict[str, Path] | None = None,
    ):
        self.offered, self.shipped, self.allow_hub = set(offered), shipped, allow_hub
        self.configured = configured or {}  # the owner's folders by public id (``public_ids``)
        self.max_model_bytes = max_model_bytes
        self._failures: OrderedDict[str, tuple[float, str]] = OrderedDict()  # id → (until, message)
        self._hub_down_until = 0.0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------ which
    def source(self, model_id: str) -> Source:
        """The source of an offered model or (opt-in) a Hub repo id; an ``InputError`` for anything else."""
        if model_id in self.shipped:
            return Source(model_id, folder=Path(self.shipped[model_id]), shipped=True)
        if model_id in self.configured:  # configured by the owner: a folder on this machine, by its public id
            return Source(model_id, folder=self.configured[model_id])
        if model_id in self.offered:  # configured by the owner: a Hub repo
            return Source(model_id, repo_id=model_id)
        if not self.allow_hub:
            raise InputError(f"{clip(model_id)} is not one of this Space's models: choose one from the list.")
        try:
            validate_repo_id(model_id)
            ok = model_id.count("/") == 1
        except HFValidationError:
            ok = False
        if not ok:
            raise InputError(f"{clip(model_id)} is neither one of this Space's models nor a Hub repo id (user/name).")
        return Source(model_id, repo_id=model_id)

    # ------------------------------------------------------------------------ failures
    def raise_if_failed_recently(self, model_id: str) -> None:
        with self._lock:
            until, message = self._failures.get(model_id, (0.0, ""))
            if until > time.monotonic():
                raise InputError(message)
            self._failures.pop(model_id, None)

    def remember_failure(self, model_id: str, message: str) -> None:
        with self._lock:
            self._failures[model_id] = (time.monotonic() + FAILURE_TTL, message)
            self._failures.move_to_end(model_id)
            while len(self._failures) > MAX_FAILURES:
                self._failures.popitem(last=False)

    # ------------------------------------------------------------------------ loading
    def load(self, source: Source) -> Loaded:
        """The model of ``source``, checked before anything is allocated; an ``InputError`` says why not."""
        folder = self._download(source.repo_id) if source.repo_id else source.folder
        try:
            if (
                is_pipeline_folder(folder)
                and _small_json(Path(folder), PIPELINE_INDEX_NAME).get("_class_name") == TEXT_TO_IMAGE_CLASS
            ):
                return Loaded(self._load_text_to_image(Path(folder)), Path(folder), source)
            if is_pipeline_folder(folder):
                return Loaded(self._load_pipeline(Path(folder)), Path(folder), source)
            cls = self._checked_class(folder)
            model = cls.from_pretrained(folder, max_model_bytes=self.max_model_bytes)
        except (OSError, ValueError) as err:
            message = " ".join(str(err).replace(str(folder), source.model_id).split()) or type(err).__name__
            raise InputError(f"Cannot load model {clip(source.model_id)}: {hide_paths(message)}") from err
        return Loaded(model.eval().requires_grad_(False), Path(folder), source)

    def _check_configs(self, folder: Path) -> None:
        """Check a model's or a pipeline's configs within the limits (nothing allocated); a ``ValueError`` says why not."""
        if is_pipeline_folder(folder):
            self._checked_pipeline(folder)
        else:
            self._checked_class(folder)

    def _load_pipeline(self, folder: Path) -> LatentDiffusionPipeline:
        """A ``LatentDiffusionPipeline`` built from its checked components (no code of the folder is run)."""
        index, scheduler_class = self._checked_pipeline(folder)
        missing = [name for name in PIPELINE_FILES if not (folder / name).is_file()]
        if missing:
            raise ValueError(f"the pipeline is incomplete: {', '.join(missing)} missing")
        vae = SpatialVAEModel.from_pretrained(folder / "vae", max_model_bytes=self.max_model_bytes)
        unet = UNet2DModel.from_pretrained(folder / "unet", use_safetensors=True)
        scheduler = scheduler_class.from_pretrained(folder / "scheduler")
        pipe = LatentDiffusionPipeline(
            vae.eval().requires_grad_(False),
            unet.eval().requires_grad_(False),
            scheduler,
            id2label=index.get("id2label"),
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _load_text_to_image(self, folder: Path):
        """A diffusers ``StableDiffusionPipeline`` (no safety checker), each component checked before it is read:
        the classes its configs name, the image size, and its safetensors weights under the size limit together."""
        from diffusers import (
            AutoencoderKL,
            StableDiffusionPipeline,
            UNet2DConditionModel,
        )
        from transformers import CLIPTextModel, CLIPTokenizer

        classes = {"vae": AutoencoderKL, "text_encoder": CLIPTextModel, "unet": UNet2DConditionModel}
        weights = 0
        for name, cls in classes.items():
            config = _small_json(folder / name, CONFIG_NAME, f"{name}/")
            found = config.get("_class_name") or (config.get("architectures") or [None])[0]
            if found != cls.__name__:
                raise ValueError(f"its {name}/ holds a {clip(found)}, not a {cls.__name__}")
            files = list((folder / name).glob("*.safetensors"))
            if not files:
                raise ValueError(f"its {name}/ has no safetensors weights (this Space loads no pickles)")
            weights += sum(f.stat().st_size for f in files)
        side = _small_json(folder / "vae", CONFIG_NAME, "vae/").get("sample_size")
        if not isinstance(side, int) or not 1 <= side <= MAX_MODEL_SIDE:
            raise ValueError(f"its images are {clip(side)} px; this Space shows models of at most {MAX_MODEL_SIDE} px")
        if weights > self.max_model_bytes:
            raise ValueError(
                f"its weights are {weights / 2**20:,.0f} MiB, above the limit of this Space of "
                f"{self.max_model_bytes / 2**20:,.0f} MiB"
            )
        scheduler = _scheduler_class(folder).from_pretrained(folder / "scheduler")
        models = {
            name: cls.from_pretrained(folder / name, use_safetensors=True).eval().requires_grad_(False)
            for name, cls in classes.items()
        }
        pipe = StableDiffusionPipeline(
            **models,
            tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer"),
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _checked_pipeline(self, folder: Path) -> tuple[dict, type[SchedulerMixin]]:
        """A pipeline folder's ``model_index.json`` and scheduler class, once every component is what this Space
        loads and VAE and UNet together imply less than the size limit (nothing allocated)."""
        index = _small_json(folder, PIPELINE_INDEX_NAME)
        found = index.get("_class_name")
        if found not in (PIPELINE_CLASS, [PIPELINE_LOADER, PIPELINE_CLASS]):
            raise ValueError(
                f"it holds a {str(found)[:MAX_SHOWN_CHARS] if found else 'pipeline without _class_name'}, "
                f"not a {PIPELINE_CLASS}"
            )
        self._checked_class(folder / "vae", "vae/", {SpatialVAEModel.__name__: SpatialVAEModel})  # what it loads
        vae_config, unet_config = (
            _small_json(folder / "vae", CONFIG_NAME),
            _small_json(folder / "unet", CONFIG_NAME, "unet/"),
        )
        if unet_config.get("_class_name") != UNet2DModel.__name__:
            raise ValueError(f"its unet/{CONFIG_NAME} does not hold a {UNet2DModel.__name__}")
        side = unet_config.get("sample_size")
        if not isinstance(side, int) or not 1 <= side <= MAX_MODEL_SIDE:
            raise ValueError(
                f"its latents are {clip(side)} px; this Space shows models of at most {MAX_MODEL_SIDE} px"
            )
        # sizing builds the UNet on the meta device, a Python module per block: bound the blocks first (as
        # ConfigChecks does for our models), so a hostile count costs nothing
        layers, stages = unet_config.get("layers_per_block", 2), unet_config.get("block_out_channels", ())
        if not (
            isinstance(layers, int)
            and 0 < layers <= MAX_BLOCKS_PER_STAGE
            and isinstance(stages, (list, tuple))
            and len(stages) <= MAX_STAGES
        ):
            raise ValueError(
                f"its unet has more than {MAX_STAGES} stages or {MAX_BLOCKS_PER_STAGE} blocks per stage, "
                "or they are not whole numbers"
            )
        size = model_size_bytes(SpatialVAEModel, vae_config) + model_size_bytes(UNet2DModel, unet_config)
        if size > self.max_model_bytes:
            raise ValueError(
                f"its vae and unet configs imply {size / 2**20:,.0f} MiB of weights, above the limit of "
                f"this Space of {self.max_model_bytes / 2**20:,.0f} MiB: refusing to allocate them"
            )
        return index, _scheduler_class(folder)

    def _checked_class(self, folder: Path, where: str = "", classes: dict = MODEL_CLASSES):
        """The model class a folder's config names (one of ``classes``), once its image size and implied size are
        within limits (``where``: the folder's name in messages, e.g. "vae/" for a pipeline's component)."""
        config = _small_json(Path(folder), CONFIG_NAME, where)
        found = config.get("_class_name")
        cls = classes.get(found)
        if cls is None:
            raise ValueError(
                f"{'its ' + where if where else 'it'} holds a "
                f"{str(found)[:MAX_SHOWN_CHARS] if found else 'config without _class_name'}, not a "
                f"{' or '.join(classes)}{' or a ' + PIPELINE_CLASS if not where else ''}"
            )
        side = config.get("sample_size")
        if not isinstance(side, int) or not 1 <= side <= MAX_MODEL_SIDE:
            raise ValueError(
                f"its {where}images are {clip(side)} px; this Space shows models of at most {MAX_MODEL_SIDE} px"
            )
        try:
            check_model_size(cls, config, self.max_model_bytes)
        except ValueError as err:  # name the Space's own setting
            raise ValueError(str(err).replace("(VAE_HUB_MAX_MODEL_BYTES)", "of this Space")) from err
        return cls

    def _download(self, repo_id: str) -> Path:
        """A Hub repo's config, weights and About files in the local Hub cache, sized before they are fetched."""
        from huggingface_hub import HfApi, snapshot_download

        if (
            hub_constants.HF_HUB_OFFLINE
        ):  # a Space run offline (or a local test of one) loads what the Hub cache already holds
            return self._cached(repo_id)
        if self._hub_down_until > time.monotonic():
            raise InputError(
                "Cannot reach the Hub (it did not answer less than a minute ago): try again later, "
                "or choose one of this Space's models."
            )
        try:
            info = HfApi().model_info(repo_id, files_metadata=True, timeout=HUB_TIMEOUT)
            sizes = {f.rfilename: f.size or 0 for f in info.siblings or ()}
            pipeline = PIPELINE_INDEX_NAME in sizes  # as is_pipeline_folder tells them apart
            configs = PIPELINE_CONFIGS if pipeline else (CONFIG_NAME,)
            missing = [n for n in (PIPELINE_FILES if pipeline else configs) if n not in sizes]
            if missing:
                raise InputError(f"Cannot load model {clip(repo_id)}: the repo has no {', '.join(missing)}.")
            if any(sizes[n] > MAX_SMALL_FILE_BYTES for n in configs):
                raise InputError(f"Cannot load model {clip(repo_id)}: its configs are too large.")
            folder = Path(
                snapshot_download(repo_id, revision=info.sha, allow_patterns=list(configs), etag_timeout=HUB_TIMEOUT)
            )
            self._check_configs(folder)  # before the weights are downloaded
            weights = (
                [n for n in PIPELINE_FILES if n not in configs]
                if pipeline
                else [n for n in sizes if n in (WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME) or SHARD.fullmatch(n)]
            )
            # safetensors headers and an index are small; anything far beyond the config's size is not these weights
            if sum(sizes[n] for n in weights) > self.max_model_bytes * 1.05 + 2**20:
                raise InputError(
                    f"Cannot load model {clip(repo_id)}: its weights are larger than this Space's limit "
                    f"of {self.max_model_bytes / 2**20:,.0f} MiB."
                )
            small = [n for n in CARD_FILES if 0 < sizes.get(n, 0) <= MAX_SMALL_FILE_BYTES]
            snapshot_download(
                repo_id, revision=info.sha, allow_patterns=[*configs, *weights, *small], etag_timeout=HUB_TIMEOUT
            )
        except InputError:
            raise
        except (OSError, ValueError) as err:
            if isinstance(err, ValueError) and not isinstance(err, HFValidationError):  # _checked_class
                raise InputError(
                    f"Cannot load model {clip(repo_id)}: {hide_paths(' '.join(str(err).split()))}"
                ) from err
            raise self._hub_error(repo_id, err) from err
        except Exception as err:
            if not _is_network_error(err):
                raise
            raise self._hub_error(repo_id, err) from err
        return folder

    def _cached(self, repo_id: str) -> Path:
        """The repo's snapshot in the local Hub cache (``HF_HUB_OFFLINE``): no request; sized when loaded."""
        from huggingface_hub import snapshot_download

        try:
            folder = Path(snapshot_download(repo_id, local_files_only=True))
        except Exception as err:  # not cached (LocalEntryNotFoundError), or not a valid repo id
            raise InputError(
                f"Cannot load model {clip(repo_id)}: the Hub is offline here and the repo is not in "
                "the local Hub cache."
            ) from err
        self._check_configs(folder)
        return folder

    def _hub_error(self, repo_id: str, err: Exception) -> InputError:
        if isinstance(err, RepositoryNotFoundError):
            return InputError(f"There is no public model repo {clip(repo_id)} on the Hub.")
        if isinstance(err, HfHubHTTPError) and getattr(err.response, "status_code", None):
            return InputError(f"The Hub refused {clip(repo_id)} (HTTP {err.response.status_code}): try again later.")
        self._hub_down_until = time.monotonic() + FAILURE_TTL
        return InputError(
            "Cannot reach the Hub from this Space right now: try again in a minute, "
            "or choose one of this Space's models."
        )


class ModelCache(Generic[T]):
    """The models in memory: each loaded once by ``loader``, however many requests ask for it at once, and the
    ``max_models`` most recently used kept. ``wrap(model_id, loaded)`` is what is kept of a model (the Space's
    ``ModelEntry``, which caches what is derived from it)."""

    def __init__(self, loader: ModelLoader, max_models: int, wrap: Callable[[str, Loaded], T]):
        self.loader, self.max_models, self.wrap = loader, max_models, wrap
        self._entries: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}  # only while a load runs: no state per failing id

    def get(self, model_id) -> T:
        """The loaded model for ``model_id`` (loading it on first use), or an ``InputError`` saying why not."""
        model_id = checked_model_id(model_id)
        with self._lock:
            if model_id in self._entries:
                self._entries.move_to_end(model_id)
                return self._entries[model_id]
        self.loader.raise_if_failed_recently(model_id)
        source = self.loader.source(model_id)  # refuses what is not offered before anything is stored
        with self._lock:
            loading = self._loading.setdefault(model_id, threading.Lock())
        try:
            with loading:  # one load per id, however many requests ask for it at once
                with self._lock:
                    if model_id in self._entries:
                        return self._entries[model_id]
                self.loader.raise_if_failed_recently(model_id)  # the load this request waited for failed
                try:
                    entry = self.wrap(model_id, self.loader.load(source))
                except InputError as err:
                    self.loader.remember_failure(model_id, str(err))
                    raise
                with self._lock:
                    self._entries[model_id] = entry
                    while len(self._entries) > self.max_models:
                        self._entries.popitem(last=False)
                return entry
        finally:
            with self._lock:
                if self._loading.get(model_id) is loading:
                    del self._loading[model_id]


def _scheduler_class(folder: Path) -> type[SchedulerMixin]:
    """The diffusers scheduler class a pipeline folder's ``scheduler/`` names (a ``ValueError`` for anything else)."""
    name = _small_json(folder / "scheduler", SCHEDULER_CONFIG_NAME, "scheduler/").get("_class_name")
    scheduler_class = getattr(diffusers, name, None) if isinstance(name, str) else None
    if not (isinstance(scheduler_class, type) and issubclass(scheduler_class, SchedulerMixin)):
        raise ValueError(f"its scheduler {clip(name)} is not one of diffusers' schedulers")
    return scheduler_class


def _small_json(folder: Path, name: str, where: str = "") -> dict:
    """A small JSON object file of a model folder; a ``ValueError`` naming it (as ``where`` + ``name``) otherwise."""
    path = folder / name
    if not path.is_file():
        raise ValueError(f"it has no {where}{name}")
    if path.stat().st_size > MAX_SMALL_FILE_BYTES:
        raise ValueError(f"its {where}{name} is larger than {MAX_SMALL_FILE_BYTES // 1024} kB")
    try:
        config = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"its {where}{name} is not valid JSON") from err
    if not isinstance(config, dict):
        raise ValueError(f"its {where}{name} is not a JSON object")
    return config


def _is_network_error(err: Exception) -> bool:
    """DNS failure, connection refused, timeout: huggingface_hub lets its HTTP library's transport errors through."""
    return any(c.__name__ in ("TransportError", "TimeoutException") for c in type(err).__mro__)
