"""The vae-hub Space: explore a variational autoencoder's latent space in the browser or through the API.

Widgets only: every computation and every check of the input is in ``vae_hub.explore``; how API callers meet the
Space (parameter names, shares of the queue, one line for a refused or malformed call) in ``vae_hub.space_api``.
Models come from ``VAEModel.from_pretrained``: the folders in ``models/`` beside this file, ``VAE_MODEL``
(comma-separated Hub ids or folders), the ``model_id`` of ``space_config.json`` (written by ``vae-hub
deploy-space``), and, only if ``VAE_HUB_SPACE_HUB_IDS=1``, any Hub repo id typed into the model box
(``vae_hub.space_models`` says what is checked). Run ``python space/app.py``;
``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT`` choose the address.
"""

import base64
import contextlib
import functools
import inspect
import io
import logging
import os
import signal
import sys
import traceback
from pathlib import Path


HERE = Path(__file__).resolve().parent
if not (HERE / "vae_hub").is_dir() and (HERE.parent / "vae_hub").is_dir():
    sys.path.insert(0, str(HERE.parent))  # a checkout (space/ beside vae_hub/), not a deployed Space

import gradio as gr  # noqa: E402
import PIL.Image  # noqa: E402

from vae_hub import explore, space_api  # noqa: E402
from vae_hub.explore import Explorer  # noqa: E402
from vae_hub.pipelines import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS  # noqa: E402
from vae_hub.space_api import refuse  # noqa: E402


log = logging.getLogger("vae_hub.space")
EXAMPLES_LABEL = "Examples: Fashion-MNIST test images (converted to the model's format)"
EMOJI_EXAMPLES_LABEL = "Examples: emoji test images, Twemoji (CC-BY 4.0) and Noto (Apache-2.0)"

CSS = """
.pixelated img, .pixelated canvas { image-rendering: pixelated; }
.pixelated img { object-fit: contain; max-width: 100%; }
#header { text-align: center; margin-bottom: 0.2em; }
#header h1 { margin-bottom: 0.1em; }
.help { font-size: 0.92em; opacity: 0.85; }
"""
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="violet", neutral_hue="slate")
# The sketchpad opens in draw mode: Gradio's editor starts with no tool selected (a stroke did nothing until the
# brush was found), so select its brush once each time the sketchpad appears (tabs render their content late).
DRAW_MODE_JS = """
() => {
  const arm = () => {
    const pad = document.querySelector('#sketchpad');
    const brush = pad && pad.querySelector("button[aria-label='Brush']");
    if (brush && !pad.dataset.drawMode) { pad.dataset.drawMode = 'on'; brush.click(); }
  };
  new MutationObserver(arm).observe(document.body, {childList: true, subtree: true});
  arm();
}
"""
# Uploads: Gradio refuses bigger files while they arrive, before anything is decoded. Every other request body
# (a JSON call holds a few numbers and file references) is bounded by the server too, before it is read: 413.
MAX_UPLOAD_BYTES = 10 * 2**20
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 2**20  # an upload's form fields and boundaries fit in the extra MiB


def launch_options() -> dict:
    """The keyword arguments of ``Blocks.launch`` (a fresh dict each time: Gradio writes into ``app_kwargs``)."""
    return {
        "theme": THEME,
        "css": CSS,
        "js": DRAW_MODE_JS,
        "show_error": True,
        "max_file_size": MAX_UPLOAD_BYTES,
        "app_kwargs": {"max_body_size": MAX_BODY_BYTES, **space_api.app_options()},
    }


# Every event that runs the network joins one first-in-first-out group with as many workers as a Space has
# cores: requests of all kinds wait in arrival order instead of per-endpoint lines, and no more threads fight
# for the cores (and the GIL the server itself needs) than can run: it cut the 16-user tail latency
# (benchmarks/RESULTS.md).
MODEL = {"concurrency_id": "model", "concurrency_limit": 2}
# Each share of the queue (the MODEL group's requests; the cheap ones: a model's description, its About) holds this
# many: ≥ 64, so sixteen users each with a few pending requests never see "busy" (space_api.Admission).
QUEUE_SIZE = 128
# A fair share of the queue: a browser tab has at most a handful of requests in flight; an address may be a
# classroom behind one router. Four addresses at their limit fill the queue; one client never does.
PER_SESSION, PER_ADDRESS = 8, 32
SLIDER_NAMES = [f"slider_{i + 1}" for i in range(explore.TRAVERSE_SLIDERS)]  # /traverse's offsets, by rank
MAX_PENDING_SKETCHES = 64  # sketches sent as blobs and not yet used
MAX_TRACE_FRAMES, MAX_LOG_CHARS = 12, 4000  # an unexpected error's log entry

INTRO = """
<div id="header">

# 🧥 vae-hub · latent space explorer

A **variational autoencoder** squeezes each image into a short code *z* (its *latent*) and learns to draw images
back from codes. Sample new images from the prior, see what the model makes of your drawing, walk between codes,
turn single dimensions, and look at the whole map of the latent space. Then the road to Stable Diffusion: a **latent
diffusion pipeline** denoises the latents of a spatial autoencoder, class by class, and you can watch it (**Diffuse**)
and set its samples beside the VAE's (**Compare**). The description next to the model box says what the chosen model
is, what it was trained on and which tabs it has.
</div>
"""


def endpoint(fn, files: explore.OutputFiles):
    """Wrap an ``Explorer`` method for Gradio: images go out as finished PNG files (``OutputFiles`` says why),
    ``InputError`` messages as a ``gr.Error``; anything unexpected is logged (traceback cut short) and answered
    with a message that holds no internals. A generator (a streamed endpoint) stays one: each value it yields is
    sent as it comes, and closing it (the visitor left) closes ``fn``'s."""

    def as_files(value):
        if isinstance(value, PIL.Image.Image):
            return files.png(value)
        return type(value)(as_files(v) for v in value) if isinstance(value, (tuple, list)) else value

    @contextlib.contextmanager
    def answered():
        try:
            yield
        except explore.InputError as err:
            raise refuse(fn.__name__, err) from err
        except gr.Error:
            raise
        except Exception as err:  # a bug: log it, tell the user, keep serving
            trace = "".join(traceback.format_exception(type(err), err, err.__traceback__, limit=MAX_TRACE_FRAMES))
            log.error("%s failed:\n%s", fn.__name__, trace[-MAX_LOG_CHARS:])
            raise gr.Error(
                "Something went wrong on the server (it has been logged). Please try other inputs.",
                print_exception=False,
            ) from err

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def streamed(*args, **kwargs):
            with answered(), contextlib.closing(fn(*args, **kwargs)) as values:
                for value in values:
                    yield as_files(value)

        return streamed

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with answered():
            return as_files(fn(*args, **kwargs))

    return wrapped


def image_parts(payload, component) -> list:
    """The image files of a ``gr.Image`` or ``gr.Sketchpad`` payload: paths, bytes or data URLs."""
    if payload is None:
        return []
    if hasattr(payload, "composite"):  # an editor value; the browser may have sent its images as blobs first
        cached = component.blob_storage.get(payload.id) if payload.id else None
        value = cached or payload
        return [p for p in (value.background, *value.layers, value.composite) if p is not None]
    return [payload]


def open_part(part):
    """Something ``PIL.Image.open`` reads lazily: a path, or the bytes of a blob or a data URL."""
    if isinstance(part, (bytes, bytearray)):
        return io.BytesIO(part)
    if part.url and part.url.startswith("data:"):
        return io.BytesIO(base64.b64decode(part.url.partition(",")[2], validate=False))
    return part.path


def check_before_decoding(component, max_side: int, what: str):
    """Make a Gradio image input refuse a file that is not an image, or declares more than ``max_side`` px on a
    side, from its header, before Gradio decodes it (an upload is converted, a sketch flattened layer by layer);
    the sketchpad's blob store is kept small. Returns the component."""
    preprocess = component.preprocess

    def checked(payload):
        try:
            for part in image_parts(payload, component):
                explore.check_image_file(open_part(part), max_side, what)
        except explore.InputError as err:
            raise refuse(f"{what} upload", err) from err
        return preprocess(payload)

    component.preprocess = checked
    if hasattr(component, "blob_storage"):
        accept = component.accept_blobs

        def accept_blobs(data):
            # each blob is bounded by max_file_size; a layer index sizes a list, and unused blobs would pile up
            if str(data.data.get("index") or 0) not in ("0", "null") or len(data.files) != 1:
                raise gr.Error("This sketchpad has one layer.", print_exception=False)
            while len(component.blob_storage) >= MAX_PENDING_SKETCHES:
                component.blob_storage.pop(next(iter(component.blob_storage)))
            return accept(data)

        accept_blobs._is_server_fn = True
        component.accept_blobs = accept_blobs
    return component


def unless_empty(fn, outputs: int):
    """For automatic triggers (an image changed, a stroke drawn): do nothing while the input is empty."""

    def wrapped(model_id, value, *rest):
        empty = value is None or (isinstance(value, dict) and value.get("composite") is None)
        return [gr.skip()] * outputs if empty else fn(model_id, value, *rest)

    return wrapped


def pixel_image(label: str, height: int | None = None, **kwargs) -> gr.Image:
    """An output image shown crisp (nearest-neighbour), saved as PNG, never lossy WebP."""
    return gr.Image(
        label=label,
        type="pil",
        format="png",
        interactive=False,
        height=height,
        elem_classes=["pixelated"],
        buttons=["download", "fullscreen"],
        **kwargs,
    )


def whole_slider(minimum: int, maximum: int, value: int, label: str, **kwargs) -> gr.Slider:
    """A slider of whole numbers, read and documented by the API as an ``int`` (a float slider's 3.5 would be
    refused by the endpoint whose API page says it takes a float)."""
    return gr.Slider(minimum, maximum, value=value, step=1, precision=0, label=label, **kwargs)


def upload_image(label: str, **kwargs) -> gr.Image:
    image = gr.Image(
        label=label,
        type="pil",
        image_mode=None,
        sources=["upload", "clipboard"],
        height=220,
        elem_classes=["pixelated"],
        **kwargs,
    )
    return check_before_decoding(image, explore.MAX_SIDE, "image")


def tab_id(label: str) -> str:
    """The id of a top-level tab ("Latent map" → "latent_map")."""
    return label.lower().replace(" ", "_")


def tab_visibility(shown: bool) -> bool | str:
    """A top-level tab's ``visible``: "hidden" rather than False. A tab made invisible with False is taken off
    the page, and Gradio 6's tab bar then kept showing it whenever the open tab stayed open (About open, a
    pipeline chosen: Sample, Reconstruct … stayed in the bar); a "hidden" tab leaves the bar every time, also
    when it is the selected one and another is selected in the same update."""
    return True if shown else "hidden"


def fit_tabs(own: tuple[str, ...], open_tab: str, labels: list[str]) -> tuple[str, list[bool]]:
    """(the tab to show, whether each of ``labels`` is enabled) for a model whose tabs are ``own``: the open tab
    if the model has it, else the model's first; a tab it cannot use is not shown (never an error for a click, and
    thirteen views in all would not fit one row)."""
    return (open_tab if open_tab in own else own[0]), [label in own for label in labels]


EXAMPLE_PROMPTS = [  # the first two are test captions the shipped model never saw; their parts it did
    ["lady beetle, noto style"],
    ["sailboat, twemoji style"],
    ["red heart, twemoji style"],
    ["grinning face, noto style"],
    ["flag: Japan, twemoji style"],
    ["woman farmer: medium-light skin tone, noto style"],
]


def sampler_controls(defaults: dict) -> list:
    """Steps, guidance, seed (with a new-seed button) and scheduler of a text-to-image view, at the model's
    recommended settings: [steps, guidance, seed, scheduler]."""
    steps = gr.Slider(*explore.T2I_STEPS, value=defaults["steps"], step=1, precision=0, label="Steps")
    guidance = gr.Slider(
        0.0,
        explore.MAX_T2I_GUIDANCE,
        value=defaults["guidance"],
        step=0.5,
        label="Guidance scale",
        info="above 1: classifier-free guidance towards the prompt (and away from the negative one)",
    )
    with gr.Row(equal_height=True):
        seed = gr.Number(value=0, precision=0, minimum=0, maximum=explore.MAX_SEED, label="Seed", scale=3)
        gr.Button("🎲 New seed", scale=2).click(explore.new_seed, outputs=seed, queue=False, api_visibility="private")
    scheduler = gr.Radio(list(explore.SCHEDULERS), value=defaults["scheduler"], label="Scheduler")
    return [steps, guidance, seed, scheduler]


def prompt_boxes(prompt_label: str = "Prompt") -> tuple[gr.Textbox, gr.Textbox]:
    prompt = gr.Textbox(
        label=prompt_label, max_length=explore.MAX_PROMPT_CHARS, placeholder="red heart, twemoji style"
    )
    negative = gr.Textbox(label="Negative prompt", max_length=explore.MAX_PROMPT_CHARS, placeholder="(optional)")
    return prompt, negative


def text_to_image_views(ex: Explorer, view, emoji: list[str]) -> dict:
    """The four text-to-image tabs' widgets (``view`` opens a top-level tab). Returns their inputs and outputs by
    endpoint, and the hidden model box the API defaults to."""
    offered = ex.offered("text-to-image")
    defaults = {"steps": 50, "guidance": 7.5, "scheduler": "DPM-Solver++"}
    if offered:
        with contextlib.suppress(explore.InputError):  # a broken model says so when chosen; the page still opens
            defaults = ex.text_to_image_defaults(offered[0])
    views = {}
    with view("Text to image"):
        # the model box's text-to-image model (these tabs are shown for such models only); the API's default is one
        t2i_model = gr.Dropdown(
            offered, value=offered[0] if offered else None, allow_custom_value=True, label="model_id", visible=False
        )
        gr.Markdown(
            "Type what to draw. The pipeline starts from noise in its autoencoder's latent space and removes a "
            "little at each step, steered by the prompt's text embedding; the left image shows what it "
            "currently thinks the result is. It knows only the words of emoji names (the note under the "
            "result says which of yours it never learned).",
            elem_classes=["help"],
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                prompt, negative = prompt_boxes()
                gr.Examples(
                    EXAMPLE_PROMPTS, inputs=prompt, label="Example prompts (the first two were never trained on)"
                )
                n = gr.Slider(*explore.T2I_IMAGES, value=4, step=1, precision=0, label="Images")
                controls = sampler_controls(defaults)
                button = gr.Button("Draw", variant="primary", elem_id="t2i-run")
            with gr.Column(scale=2):
                with gr.Row():
                    preview = pixel_image("Denoising: the current guess", height=360, elem_id="t2i-preview")
                    result = pixel_image("Result", height=360, elem_id="t2i-grid")
                note = gr.Markdown(elem_id="t2i-note")
                gif = gr.Image(
                    label="The denoising as an animation (GIF)",
                    type="filepath",
                    interactive=False,
                    height=260,
                    elem_classes=["pixelated"],
                    buttons=["download"],
                    elem_id="t2i-gif",
                )
        views["text_to_image"] = (button, [t2i_model, prompt, negative, n, *controls], [preview, result, gif, note])
    with view("Image to image"):
        gr.Markdown(
            "SDEdit: your picture is noised part of the way (*strength*: 0 keeps it, 1 starts from pure noise), "
            "then denoised towards the prompt. Left: the noised starting point, as the autoencoder decodes it.",
            elem_classes=["help"],
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                image = upload_image("Start from", elem_id="i2i-image")
                gr.Examples(emoji, inputs=image, examples_per_page=16, label=EMOJI_EXAMPLES_LABEL)
                prompt, negative = prompt_boxes()
                strength = gr.Slider(0.05, 1.0, value=0.6, step=0.05, label="Strength")
                controls = sampler_controls(defaults)
                button = gr.Button("Redraw", variant="primary", elem_id="i2i-run")
            with gr.Column(scale=2):
                with gr.Row():
                    start = pixel_image("Noised start", height=300, elem_id="i2i-start")
                    redrawn = pixel_image("Result", height=300, elem_id="i2i-result")
                i2i_note = gr.Markdown(elem_id="i2i-note")
        views["image_to_image"] = (
            button,
            [t2i_model, image, prompt, negative, strength, *controls],
            [start, redrawn, i2i_note],
        )
    with view("Inpaint"):
        gr.Markdown(
            "Upload or pick an image, paint over the part to redraw, and say what should be there. Only the "
            "painted part changes (up to the autoencoder's own error: the note says how much).",
            elem_classes=["help"],
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                editor = gr.ImageEditor(
                    label="Paint the part to redraw",
                    type="pil",
                    image_mode="RGBA",
                    sources=["upload", "clipboard"],
                    transforms=(),
                    layers=False,
                    height=320,
                    brush=gr.Brush(default_size=24, colors=["#ff00ff"], color_mode="fixed"),
                    elem_id="inpaint-editor",
                )
                check_before_decoding(editor, explore.MAX_SIDE, "image")
                gr.Examples(emoji, inputs=editor, examples_per_page=16, label=EMOJI_EXAMPLES_LABEL)
                prompt, negative = prompt_boxes()
                controls = sampler_controls(defaults)
                button = gr.Button("Inpaint", variant="primary", elem_id="inpaint-run")
            with gr.Column(scale=2):
                inpainted = pixel_image("Result", height=320, elem_id="inpaint-result")
                inpaint_note = gr.Markdown(elem_id="inpaint-note")
        views["inpaint"] = (button, [t2i_model, editor, prompt, negative, *controls], [inpainted, inpaint_note])
    with view("Prompt walk"):
        gr.Markdown(
            "One fixed noise, the text embedding moved along a great circle (slerp) from prompt A to prompt B; "
            "with a second seed, the noise moves too.",
            elem_classes=["help"],
        )
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                prompt_a = gr.Textbox(
                    label="Prompt A", max_length=explore.MAX_PROMPT_CHARS, value="red heart, twemoji style"
                )
                prompt_b = gr.Textbox(
                    label="Prompt B", max_length=explore.MAX_PROMPT_CHARS, value="blue heart, twemoji style"
                )
                frames = gr.Slider(
                    *explore.WALK_FRAMES, value=8, step=1, precision=0, label="Frames", elem_id="walk-frames"
                )
                steps, guidance, seed, scheduler = sampler_controls(defaults)
                # text, not a number box: Gradio shows an empty number box as 0, which would walk the noise to seed 0
                seed_b = gr.Textbox(
                    label="Seed B (optional: walk the noise too)",
                    placeholder="empty: the same noise in every frame",
                    max_length=20,
                )
                button = gr.Button("Walk", variant="primary", elem_id="walk-run")
            with gr.Column(scale=2):
                strip = pixel_image("Frames", elem_id="walk-strip")
                walk_gif = gr.Image(
                    label="The walk as an animation (GIF)",
                    type="filepath",
                    interactive=False,
                    height=260,
                    elem_classes=["pixelated"],
                    buttons=["download"],
                    elem_id="walk-gif",
                )
        views["prompt_walk"] = (
            button,
            [t2i_model, prompt_a, prompt_b, frames, seed, seed_b, steps, guidance, scheduler],
            [strip, walk_gif],
        )
    return {"model": t2i_model, "views": views}


def build_demo(ex: Explorer | None = None) -> gr.Blocks:
    """The Blocks app for an ``Explorer`` (default: this Space folder's models and data), queue configured."""
    ex = ex or Explorer.from_space_dir(HERE)
    examples = sorted(str(p) for p in (HERE / "examples").glob("*.png"))  # the Space's, whatever the model
    emoji = sorted(str(p) for p in (HERE / "examples" / "emoji").glob("*.png"))  # for the RGB models

    with gr.Blocks(title="vae-hub · latent space explorer", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Row(equal_height=True):
            model = gr.Dropdown(
                choices=ex.model_ids,
                value=ex.default_model,
                allow_custom_value=True,
                scale=3,
                label="Model",
                info="One of this Space's models"
                + (", or type a Hub repo id (user/name) and press Enter." if ex.loader.allow_hub else "."),
            )
            with gr.Column(scale=2, min_width=320):  # on a phone: below the box, not squeezed into a narrow column
                status = gr.Markdown(elem_classes=["help"], elem_id="model-status")

        # Each view is shown only for the models that can do its job; the page opens on the first model's first.
        own = explore.TABS[ex.known_kind(ex.default_model) or "vector"]
        views = {}  # label → gr.Tab

        def view(label: str) -> gr.Tab:
            views[label] = gr.Tab(label, id=tab_id(label), visible=tab_visibility(label in own))
            return views[label]

        with gr.Tabs(selected=tab_id(own[0])) as tabs:
            # ---------------------------------------------------------------- Sample
            with view("Sample"):
                gr.Markdown(
                    "Draw codes from the prior and decode them. *Temperature* scales the spread around "
                    "the prior's centre: low is safe and blurry, high is varied and odd. The *mixture* prior "
                    "samples where the training images' codes actually are.",
                    elem_classes=["help"],
                )
                with gr.Row():
                    with gr.Column(scale=1, min_width=260):
                        n = whole_slider(1, explore.MAX_SAMPLES, 36, "Images")
                        with gr.Row(equal_height=True):
                            seed = gr.Number(
                                value=0, precision=0, minimum=0, maximum=explore.MAX_SEED, label="Seed", scale=3
                            )
                            new_seed = gr.Button("🎲 New seed", scale=2)
                        temperature = gr.Slider(
                            0.0, explore.MAX_TEMPERATURE, value=1.0, step=0.05, label="Temperature"
                        )
                        prior = gr.Radio(
                            ["standard", "mixture"],
                            value="standard",
                            label="Prior",
                            info="standard N(0, I), or the Gaussian mixture fitted to the training codes",
                        )
                        sample_btn = gr.Button("Sample", variant="primary", elem_id="sample-button")
                    with gr.Column(scale=2):
                        samples = pixel_image("Samples", height=560, elem_id="samples")

            # ---------------------------------------------------------------- Reconstruct
            with view("Reconstruct"):
                gr.Markdown(
                    "Encode an image to its posterior q(z | x), decode the mean code. Draw one (any colour; "
                    "strokes become the model's foreground), upload a picture or pick an example: it is "
                    "converted to the model's size and channels, shown left.",
                    elem_classes=["help"],
                )
                with gr.Row():
                    with gr.Column(scale=1, min_width=300):
                        with gr.Tabs():
                            with gr.Tab("Draw"):
                                sketch = gr.Sketchpad(
                                    label="Draw here",
                                    type="pil",
                                    image_mode="RGBA",
                                    format="png",
                                    canvas_size=(280, 280),
                                    brush=gr.Brush(default_size=10, colors=["#000000"], color_mode="fixed"),
                                    layers=False,
                                    transforms=(),
                                    elem_id="sketchpad",
                                )
                                check_before_decoding(sketch, explore.MAX_SKETCH_SIDE, "sketch")
                                sketch_btn = gr.Button("Reconstruct drawing", variant="primary")
                            with gr.Tab("Upload or pick"):
                                rec_image = upload_image("Image")
                                rec_btn = gr.Button("Reconstruct", variant="primary")
                                gr.Examples(examples, inputs=rec_image, examples_per_page=30, label=EXAMPLES_LABEL)
                                gr.Examples(emoji, inputs=rec_image, examples_per_page=16, label=EMOJI_EXAMPLES_LABEL)
                    with gr.Column(scale=2):
                        with gr.Row():
                            seen = pixel_image("Input as the model sees it", height=300)
                            recon = pixel_image("Reconstruction", height=300, elem_id="reconstruction")
                        rec_summary = gr.Markdown()
                        posterior = gr.Image(
                            label="Posterior q(z | x)",
                            type="pil",
                            format="png",
                            interactive=False,
                            buttons=["download"],
                        )
                        with gr.Accordion("Posterior code (JSON)", open=False):
                            code = gr.JSON(label="mean, std and KL (nats) per dimension")
                rec_outputs = [seen, recon, posterior, code, rec_summary]

            # ---------------------------------------------------------------- Interpolate
            with view("Interpolate"):
                gr.Markdown(
                    "Walk in a straight line (**lerp**) or along the sphere where prior samples live (**slerp**) "
                    "between the codes of two images or two prior samples (a spatial autoencoder has no "
                    "prior: between two images' latent maps).",
                    elem_classes=["help"],
                )
                with gr.Row():
                    with gr.Column(scale=1, min_width=300):
                        source = gr.Radio(list(explore.SOURCES), value="seeds", label="Between")
                        with gr.Row() as seed_row:
                            seed_a = gr.Number(
                                value=0, precision=0, minimum=0, maximum=explore.MAX_SEED, label="Seed A"
                            )
                            seed_b = gr.Number(
                                value=1, precision=0, minimum=0, maximum=explore.MAX_SEED, label="Seed B"
                            )
                        with gr.Row(visible=False) as image_row:
                            with gr.Column(min_width=120):
                                image_a = upload_image("Image A")
                                gr.Examples(examples[::3], inputs=image_a, label="A", examples_per_page=10)
                                gr.Examples(
                                    emoji[::2],
                                    inputs=image_a,
                                    label="A: emoji (Twemoji CC-BY 4.0, Noto Apache-2.0)",
                                    examples_per_page=8,
                                )
                            with gr.Column(min_width=120):
                                image_b = upload_image("Image B")
                                gr.Examples(examples[1::3], inputs=image_b, label="B", examples_per_page=10)
                                gr.Examples(emoji[1::2], inputs=image_b, label="B: emoji", examples_per_page=8)
                        method = gr.Radio(list(explore.INTERPOLATIONS), value="slerp", label="Path")
                        steps = whole_slider(*explore.STEPS_RANGE, 10, "Frames")
                        interp_btn = gr.Button("Interpolate", variant="primary")
                    with gr.Column(scale=2):
                        strip = pixel_image("Frames", height=200)
                        gif = gr.Image(
                            label="Animation (GIF, download with ⬇)",
                            type="filepath",
                            interactive=False,
                            height=300,
                            elem_classes=["pixelated"],
                            buttons=["download"],
                        )

            # ---------------------------------------------------------------- Traverse
            with view("Traverse"):
                gr.Markdown(
                    "Each slider moves one latent dimension (z4 is dimension 4) away from the start code, in "
                    "prior standard deviations. Sliders are bound to the most informative dimensions (largest "
                    "KL on the model's own held-out sample, or on its prior samples when it ships none); "
                    "dimensions the model does not use are hidden.",
                    elem_classes=["help"],
                )
                with gr.Row():
                    with gr.Column(scale=1, min_width=280):
                        start = gr.Radio(list(explore.STARTS), value="origin", label="Start from")
                        trav_image = upload_image("Start image")
                        gr.Examples(examples, inputs=trav_image, examples_per_page=10, label=EXAMPLES_LABEL)
                    with gr.Column(scale=2):
                        sliders = [None] * explore.TRAVERSE_SLIDERS  # index = rank of the dimension by KL
                        with gr.Row():
                            for column in range(2):  # ranks 1, 3, 5, … left; 2, 4, 6, … right
                                with gr.Column(min_width=200):
                                    for i in range(column, explore.TRAVERSE_SLIDERS, 2):
                                        sliders[i] = gr.Slider(
                                            -explore.TRAVERSE_RANGE,
                                            explore.TRAVERSE_RANGE,
                                            value=0.0,
                                            step=0.1,
                                            label=f"slider {i + 1}",
                                        )
                        sweep = gr.Dropdown(
                            [(f"slider {i + 1}", i + 1) for i in range(explore.TRAVERSE_SLIDERS)],
                            value=1,
                            label="Dimension to sweep",
                            elem_id="sweep",
                        )
                    with gr.Column(scale=1, min_width=220):
                        traversed = pixel_image("Decoded", height=300)
                sweep_row = pixel_image("Sweep of one dimension (−4 … +4 std, other sliders as set)", height=140)

            # ---------------------------------------------------------------- Latent map
            with view("Latent map"):
                map_desc = gr.Markdown(elem_classes=["help"])
                with gr.Row():
                    with gr.Column(scale=5):
                        scatter = gr.Image(
                            label="Codes of held-out images",
                            show_label=False,
                            type="pil",
                            format="png",
                            interactive=False,
                            buttons=["download", "fullscreen"],
                            elem_id="latent-map",
                        )
                    with gr.Column(scale=4):
                        manifold = pixel_image(
                            "Decoded grid over the same plane (click a cell)", height=460, elem_id="latent-map-grid"
                        )
                        grid_n = whole_slider(*explore.MANIFOLD_RANGE, 15, "Grid points per side", elem_id="grid-n")
                    with gr.Column(scale=2, min_width=200):
                        point = pixel_image("Decoded point", height=220, elem_id="decoded-point")
                        with gr.Row():
                            point_x = gr.Number(value=0.0, label="x", min_width=80, elem_id="point-x")
                            point_y = gr.Number(value=0.0, label="y", min_width=80, elem_id="point-y")
                        point_btn = gr.Button("Decode point")

            # ---------------------------------------------------------------- Diffuse
            with view("Diffuse"):
                gr.Markdown(
                    "A latent diffusion pipeline starts from noise in its autoencoder's latent space and removes "
                    "a little of it at each step, guided towards the class you choose (its *text prompt*). The "
                    "left image shows, every few steps, what the model currently thinks the final images are "
                    "(its x₀ prediction, decoded). *Guidance* above 1 pushes harder towards the class.",
                    elem_classes=["help"],
                )
                with gr.Row():
                    with gr.Column(scale=1, min_width=260):
                        pipelines = ex.offered("pipeline")
                        # the model box's pipeline (this tab is enabled for pipelines only); the API's default is one
                        diffuse_model = gr.Dropdown(
                            pipelines,
                            value=pipelines[0] if pipelines else None,
                            allow_custom_value=True,
                            label="model_id",
                            visible=False,
                        )
                        classes = [explore.ANY_CLASS, *(ex.known_class_names(pipelines[0]) if pipelines else [])]
                        label = gr.Dropdown(
                            classes,
                            value=explore.ANY_CLASS,
                            allow_custom_value=True,
                            label="Class",
                            info='"any": each image a random class',
                            elem_id="diffuse-label",
                        )
                        diffuse_n = whole_slider(*explore.DIFFUSE_IMAGES, 16, "Images")
                        diffuse_steps = whole_slider(*explore.DIFFUSE_STEPS, DEFAULT_NUM_INFERENCE_STEPS, "Steps")
                        guidance = gr.Slider(
                            0.0, explore.MAX_GUIDANCE, value=DEFAULT_GUIDANCE_SCALE, step=0.5, label="Guidance scale"
                        )
                        with gr.Row(equal_height=True):
                            diffuse_seed = gr.Number(
                                value=0, precision=0, minimum=0, maximum=explore.MAX_SEED, label="Seed", scale=3
                            )
                            diffuse_new_seed = gr.Button("🎲 New seed", scale=2)
                        scheduler = gr.Radio(list(explore.SCHEDULERS), value="DPM-Solver++", label="Scheduler")
                        diffuse_btn = gr.Button("Diffuse", variant="primary", elem_id="diffuse-run")
                    with gr.Column(scale=2):
                        with gr.Row():
                            preview = pixel_image(
                                "Denoising: the current guess of the final images",
                                height=400,
                                elem_id="diffuse-preview",
                            )
                            diffused = pixel_image("Result", height=400, elem_id="diffuse-grid")
                        diffuse_gif = gr.Image(
                            label="The denoising as an animation (GIF, download with ⬇)",
                            type="filepath",
                            interactive=False,
                            height=300,
                            elem_classes=["pixelated"],
                            buttons=["download"],
                            elem_id="diffuse-gif",
                        )

            # ---------------------------------------------------------------- Compare
            with view("Compare"):
                vectors, drawers = ex.offered("vector"), pipelines + ex.offered("text-to-image")
                side_by_side = bool(vectors and drawers)  # a Space without a vector VAE has no such pair
                gr.Markdown(
                    "The same number of images from a vector VAE's N(0, I) prior, its mixture prior and a "
                    "diffusion pipeline: a class-conditional one draws random classes at its default steps and "
                    "guidance; a text-to-image one draws the prompt (blank: its validation prompts in turn) at its "
                    "recommended setting. Each caption gives the quality measured on many samples, the same way "
                    "for both models (the table below says how).",
                    elem_classes=["help"],
                    visible=side_by_side,
                )
                with gr.Row(equal_height=True, visible=side_by_side):
                    compare_vae = gr.Dropdown(
                        vectors,
                        value=vectors[0] if vectors else None,
                        allow_custom_value=True,
                        label="Vector VAE",
                        elem_id="compare-vae",
                    )
                    compare_pipe = gr.Dropdown(
                        drawers,
                        value=drawers[0] if drawers else None,
                        allow_custom_value=True,
                        label="Diffusion pipeline",
                        elem_id="compare-pipeline",
                    )
                    compare_n = whole_slider(*explore.DIFFUSE_IMAGES, 16, "Images per column")
                    compare_seed = gr.Number(value=0, precision=0, minimum=0, maximum=explore.MAX_SEED, label="Seed")
                    compare_prompt = gr.Textbox(
                        "",  # a default: API clients of the older four-argument /compare need not send it
                        label="Prompt (text-to-image pipelines)",
                        placeholder="blank: its validation prompts in turn",
                        max_length=explore.MAX_PROMPT_CHARS,
                        elem_id="compare-prompt",
                    )
                    compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-run")
                compared = gr.Gallery(
                    label="Side by side",
                    columns=3,
                    object_fit="contain",
                    height=520,
                    elem_classes=["pixelated"],
                    elem_id="compare-grid",
                    visible=side_by_side,
                )
                compared_numbers = gr.Markdown(elem_id="compare-numbers")
                gr.Markdown(
                    "### Every model's measured sample quality\n\nOne table per way of measuring and data: "
                    "numbers measured differently (another classifier or CLIP, other images) are never set "
                    "side by side.\n\n" + ex.measured_records(),
                    elem_id="compare-records",
                )

            t2i = text_to_image_views(ex, view, emoji)

            # ---------------------------------------------------------------- About
            with view("About"):
                about = gr.Markdown(elem_id="about")

        # ==================================================================== events
        run = functools.partial(endpoint, files=ex.files)
        new_seed.click(explore.new_seed, outputs=seed, queue=False, api_visibility="private")
        diffuse_new_seed.click(explore.new_seed, outputs=diffuse_seed, queue=False, api_visibility="private")
        gr.on(
            [sample_btn.click, seed.submit],
            run(ex.sample),
            [model, n, seed, temperature, prior],
            samples,
            api_name="sample",
            **MODEL,
        )

        # progress, and an error, show on the input: a refused image leaves the last reconstruction as it was
        rec_btn.click(
            run(ex.reconstruct),
            [model, rec_image],
            rec_outputs,
            api_name="reconstruct",
            show_progress_on=rec_image,
            **MODEL,
        )
        rec_image.change(
            run(unless_empty(ex.reconstruct, 5)),
            [model, rec_image],
            rec_outputs,
            api_visibility="private",
            show_progress_on=rec_image,
            **MODEL,
        )
        sketch_btn.click(
            run(ex.reconstruct_sketch),
            [model, sketch],
            rec_outputs,
            api_name="reconstruct_sketch",
            show_progress_on=sketch,
            **MODEL,
        )
        sketch.input(
            run(unless_empty(ex.reconstruct_sketch, 5)),
            [model, sketch],
            rec_outputs,
            api_visibility="private",
            trigger_mode="always_last",
            show_progress="hidden",
            **MODEL,
        )

        source.change(
            lambda s: (gr.update(visible=s == "seeds"), gr.update(visible=s == "images")),
            source,
            [seed_row, image_row],
            queue=False,
            api_visibility="private",
        )
        interp_btn.click(
            run(ex.interpolate),
            [model, source, image_a, image_b, seed_a, seed_b, method, steps],
            [strip, gif],
            api_name="interpolate",
            **MODEL,
        )

        trav_inputs = [model, start, trav_image, sweep, *sliders]
        # the API names each slider (its value would be documented as param_4 … param_13: ``*offsets``)
        traverse = space_api.with_parameter_names(run(ex.traverse), SLIDER_NAMES, default=0.0)
        gr.on(
            [s.change for s in sliders] + [start.change, sweep.change, trav_image.change],
            traverse,
            trav_inputs,
            [traversed, sweep_row],
            api_name="traverse",
            trigger_mode="always_last",
            show_progress="hidden",
            **MODEL,
        )

        def map_click(model_id, evt: gr.SelectData):  # evt.index: the clicked pixel (x, y)
            return ex.map_click(model_id, *evt.index)

        def manifold_click(model_id, n, evt: gr.SelectData):
            return ex.manifold_click(model_id, *evt.index, n)

        # progress, and an error, show on the coordinates: a wrong one leaves the map and the last decoded point as they were
        point_btn.click(
            run(ex.decode_point),
            [model, point_x, point_y],
            [point, scatter],
            api_name="decode_point",
            show_progress_on=[point_x, point_y],
            **MODEL,
        )
        scatter.select(run(map_click), [model], [point_x, point_y], api_visibility="private").success(
            run(ex.decode_point), [model, point_x, point_y], [point, scatter], api_visibility="private", **MODEL
        )
        manifold.select(run(manifold_click), [model, grid_n], [point_x, point_y], api_visibility="private").success(
            run(ex.decode_point), [model, point_x, point_y], [point, scatter], api_visibility="private", **MODEL
        )
        # change: a drag, and a number typed into the box (Enter or leaving it); release alone missed the typing
        grid_n.change(
            run(ex.manifold), [model, grid_n], manifold, api_name="manifold", trigger_mode="always_last", **MODEL
        )

        diffuse_btn.click(
            run(ex.diffuse),
            [diffuse_model, label, diffuse_n, diffuse_steps, guidance, diffuse_seed, scheduler],
            [preview, diffused, diffuse_gif],
            api_name="diffuse",
            **MODEL,
        )
        compare_btn.click(
            run(ex.compare),
            [compare_vae, compare_pipe, compare_n, compare_seed, compare_prompt],
            [compared, compared_numbers],
            api_name="compare",
            **MODEL,
        )

        for api_name, (button, inputs, outputs) in t2i["views"].items():
            button.click(run(getattr(ex, api_name)), inputs, outputs, api_name=api_name, **MODEL)

        # The open tab (by name), kept so that choosing a model leaves it open when the model has it.
        def opened(evt: gr.SelectData) -> str:
            return evt.value  # the tab's label

        tab = gr.State(own[0])
        tabs.select(opened, None, tab, queue=False, api_visibility="private")

        def compare_partner(model_id):
            partner = ex.compare_partner(model_id) if ex.kind(model_id) == "vector" else None
            return partner or gr.skip()

        def fit_views(model_id, open_tab):
            # one update: the tabs shown and the one selected change together (a second update re-selected the
            # tab the server last chose, undoing a visitor's click made in between)
            selected, enabled = fit_tabs(ex.tabs(model_id), open_tab, list(views))
            return [
                *(gr.Tab(visible=tab_visibility(e)) for e in enabled),
                gr.Tabs(selected=tab_id(selected)),
                selected,
            ]

        # A model is chosen (or the page opens): describe it, then refresh everything that depends on it.
        # (loading may download from the Hub: it waits on the network, so it stays out of the MODEL group)
        chosen = gr.on([demo.load, model.change], run(ex.status), model, status, api_visibility="private")
        chosen.failure(ex.problem, model, status, queue=False, api_visibility="private")  # not the last model's text
        chosen.success(run(fit_views), [model, tab], [*views.values(), tabs, tab], api_visibility="private")
        chosen.success(run(lambda m: gr.update(**ex.class_choices(m))), model, label, api_visibility="private")
        chosen.success(
            run(
                lambda m: [
                    m if ex.kind(m) == "vector" else gr.skip(),
                    m if ex.kind(m) in ("pipeline", "text-to-image") else compare_partner(m),
                    m if ex.kind(m) == "pipeline" else gr.skip(),
                    m if ex.kind(m) == "text-to-image" else gr.skip(),
                ]
            ),
            model,
            [compare_vae, compare_pipe, diffuse_model, t2i["model"]],
            api_visibility="private",
        )  # Compare (a vector VAE with a pipeline of its data), Diffuse and the text-to-image views take it
        chosen.success(
            run(lambda m: [gr.update(**u) for u in ex.slider_updates(m)]),
            model,
            [*sliders, sweep],
            api_visibility="private",
        ).success(
            run(lambda m, *rest: ex.traverse(m, *rest) if ex.has_tab(m, "Traverse") else [gr.skip()] * 2),
            trav_inputs,
            [traversed, sweep_row],
            api_visibility="private",
            **MODEL,
        )
        chosen.success(run(ex.latent_map), model, [scatter, map_desc], api_name="latent_map", **MODEL).success(
            run(ex.manifold), [model, grid_n], manifold, api_visibility="private", **MODEL
        )
        chosen.success(run(ex.about), model, about, api_name="about")

    # Gradio recomputes its monitoring summary (a pandas group-by over up to 10 000 past events) after every
    # event unless told otherwise, read when the queue is made: several ms of CPU per request. 100 is fresh enough.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")
    # status_update_rate: queue positions go out once a second, not to every waiting user after every finished job
    demo.queue(status_update_rate=1.0, max_size=2 * QUEUE_SIZE, default_concurrency_limit=4)
    space_api.Admission(demo._queue, PER_SESSION, PER_ADDRESS, QUEUE_SIZE, heavy=MODEL["concurrency_id"])
    space_api.plain_input_errors(demo)
    space_api.plain_call_errors(demo)
    return demo


def stop_on_sigterm() -> None:
    """Make SIGTERM (a container or service stopping) end the Space as Ctrl-C does: Gradio closes the server,
    ``launch`` returns and exit handlers run, removing the output folder (``OutputFiles.temporary``)."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    stop_on_sigterm()
    explore.share_cores(MODEL["concurrency_limit"])  # before any model is loaded: see vae_hub/explore/cores.py
    explorer = Explorer.from_space_dir(HERE)
    if explorer.default_model and (problem := explorer.warm(explorer.default_model)):
        log.warning("the default model is not usable: %s", problem)
    # The output folder first: Gradio checks every file it serves against these paths in order, resolving each.
    allowed = [str(explorer.files.folder)]  # card figures are copied there: no model folder is served
    build_demo(explorer).launch(**launch_options(), allowed_paths=allowed)
