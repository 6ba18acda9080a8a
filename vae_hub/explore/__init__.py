"""What the Space computes, as plain functions: model ids, numbers and PIL images in; PIL images, files, text out.

``space/app.py`` only lays out widgets and wires them to an ``Explorer``; all checking of user input happens
here and raises ``InputError`` with a message meant for the person using the Space (the app shows it as a
``gr.Error``). Which module holds what:

* ``checks``: the limits on a request and the checks of its numbers and choices; ``inputs``: uploads, image files
  and sketches made into a model's input; ``display``: grids and figures for the widgets; ``files``: the output
  files (``OutputFiles``);
* the computation, on a model, unit-tested without Gradio: ``vector`` (prior samples, interpolation, traversal),
  ``reconstruction``, ``latent_map`` (a model's held-out sample on a plane, the manifold), ``diffusion``
  (sampling a pipeline step by step, the measured sample quality), ``text_to_image`` (a ``StableDiffusionPipeline``:
  prompt to image, image to image, inpainting, prompt walks), ``streaming`` (sampling in a worker thread that hands
  over previews), ``about`` (the About tab's markdown);
* ``cores``: how many CPU threads each request's torch work gets (``share_cores``, called once when the Space starts);
* ``kinds``: the four kinds of model (a vector VAE, a spatial autoencoder, a latent diffusion pipeline, a
  text-to-image pipeline), the tabs
  of each (``TABS``) and the models a Space folder offers; ``entry``: ``ModelEntry``, a loaded model and what the
  Space derives from it, computed once;
* ``explorer``: ``Explorer``, one method per Space endpoint, taking a model id (one the Space offers, see
  ``space_models``) first. A tab asked of a model that cannot do its job answers, in words, what the model is
  and which tabs it has.
"""

from ..pipelines.schedulers import SCHEDULERS
from ..space_models import InputError
from .checks import (
    ACTIVE_KL_NATS,
    ANY_CLASS,
    DIFFUSE_IMAGES,
    DIFFUSE_STEPS,
    DISPLAY_WIDTH,
    GIF_WIDTH,
    INTERPOLATIONS,
    MANIFOLD_RANGE,
    MANIFOLD_WIDTH,
    MAX_GUIDANCE,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_SIDE,
    MAX_SKETCH_SIDE,
    MAX_TEMPERATURE,
    SOURCES,
    STARTS,
    STEPS_RANGE,
    TRAVERSE_RANGE,
    TRAVERSE_SLIDERS,
    check_choice,
    check_float,
    check_int,
    check_point,
    new_seed,
)
from .cores import available_cores, share_cores
from .diffusion import class_labels, denoise, pipeline_defaults, private_copy
from .display import display_scale, show
from .entry import ModelEntry
from .explorer import Explorer
from .files import OutputFiles
from .inputs import check_image_file, prepare_image, sketch_to_image
from .kinds import TABS, default_model_ids
from .latent_map import MapSample, manifold
from .reconstruction import POSTERIOR_RANGE, _posterior_axes, posterior_chart, reconstruct
from .text_to_image import MAX_PROMPT_CHARS, MAX_T2I_GUIDANCE, T2I_IMAGES, T2I_STEPS, WALK_FRAMES
from .vector import interpolate, sample_images, traverse


__all__ = [
    "ACTIVE_KL_NATS",
    "ANY_CLASS",
    "DIFFUSE_IMAGES",
    "DIFFUSE_STEPS",
    "DISPLAY_WIDTH",
    "GIF_WIDTH",
    "INTERPOLATIONS",
    "MANIFOLD_RANGE",
    "MANIFOLD_WIDTH",
    "MAX_GUIDANCE",
    "MAX_PROMPT_CHARS",
    "MAX_SAMPLES",
    "MAX_SEED",
    "MAX_SIDE",
    "MAX_SKETCH_SIDE",
    "MAX_T2I_GUIDANCE",
    "MAX_TEMPERATURE",
    "POSTERIOR_RANGE",
    "SCHEDULERS",
    "SOURCES",
    "STARTS",
    "STEPS_RANGE",
    "T2I_IMAGES",
    "T2I_STEPS",
    "TABS",
    "TRAVERSE_RANGE",
    "TRAVERSE_SLIDERS",
    "WALK_FRAMES",
    "Explorer",
    "InputError",
    "MapSample",
    "ModelEntry",
    "OutputFiles",
    "_posterior_axes",
    "available_cores",
    "check_choice",
    "check_float",
    "check_image_file",
    "check_int",
    "check_point",
    "class_labels",
    "default_model_ids",
    "denoise",
    "display_scale",
    "interpolate",
    "manifold",
    "new_seed",
    "pipeline_defaults",
    "posterior_chart",
    "prepare_image",
    "private_copy",
    "reconstruct",
    "sample_images",
    "share_cores",
    "show",
    "sketch_to_image",
    "traverse",
]
