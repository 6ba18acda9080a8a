"""The Space over HTTP: ``python space/app.py`` on a loopback port, every endpoint called with gradio_client.

Models are tiny ones made here (passed with ``VAE_MODEL``) plus the trained ones in ``space/models`` once they
exist. Covers every ``api_name``, every kind of bad input (a clear ``gr.Error``, and the server keeps serving)
and a short load test with concurrent clients.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import PIL.Image
import PIL.ImageDraw
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from hub_doubles import PIPELINE_CLASSES, tiny_pipeline_folder
from space_helpers import SPACE, load_app, make_model, running_space, shipped_models

from vae_hub import VAEModel, explore


API_NAMES = {
    "/sample",
    "/reconstruct",
    "/reconstruct_sketch",
    "/interpolate",
    "/traverse",
    "/latent_map",
    "/manifold",
    "/decode_point",
    "/about",
    "/diffuse",
    "/compare",
    "/text_to_image",
    "/image_to_image",
    "/inpaint",
    "/prompt_walk",
}
EXAMPLE = str(sorted((SPACE / "examples").glob("*.png"))[0])
SLIDERS = [0.0] * explore.TRAVERSE_SLIDERS


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("space_models")
    return {
        "tiny": make_model(root / "tiny", latent_dim=4),
        "tiny-2d": make_model(root / "tiny-2d", latent_dim=2, mixture=False, seed=1),
        "ldm": tiny_pipeline_folder(root / "ldm", clutter=False),
    }


@pytest.fixture(scope="module")
def models(folders) -> dict[str, str]:
    """The models' ids in the Space: a folder configured by its path goes by its name."""
    return {key: folder.name for key, folder in folders.items()}


@pytest.fixture(scope="module")
def not_ours(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unet")
    (folder / "config.json").write_text('{"_class_name": "UNet2DModel"}')
    return folder


@pytest.fixture(scope="module")
def url(folders, not_ours, tmp_path_factory):
    """The Space with the tiny models and a folder that holds another class, all configured by its owner."""
    with running_space(
        [str(f) for f in (*folders.values(), not_ours)], tmp_path_factory.mktemp("log") / "space.log"
    ) as space:
        yield space.url


def new_client(url: str, downloads: Path) -> Client:
    """A gradio_client user with its own download folder (clients sharing one race on identical files)."""
    downloads.mkdir(parents=True, exist_ok=True)
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(downloads))


@pytest.fixture(scope="module")
def client(url, tmp_path_factory):
    client = new_client(url, tmp_path_factory.mktemp("downloads"))
    yield client
    client.close()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Upload files, good and bad."""
    root = tmp_path_factory.mktemp("uploads")

    def save(name, image):
        image.save(root / name)
        return str(root / name)

    stroke = PIL.Image.new("RGBA", (280, 280), (0, 0, 0, 0))
    PIL.ImageDraw.Draw(stroke).line((80, 60, 200, 220), fill=(0, 0, 0, 255), width=20)
    rgb = PIL.Image.new("RGB", (64, 64), (250, 250, 250))
    PIL.ImageDraw.Draw(rgb).ellipse((12, 8, 52, 56), fill=(200, 30, 30))
    return {
        "stroke": save("stroke.png", stroke),
        "rgb": save("rgb.png", rgb),
        "tiny": save("tiny.png", PIL.Image.new("L", (5, 5), 128)),
        "huge": save("huge.png", PIL.Image.new("L", (4100, 2100))),
        "wide": save("wide.png", PIL.Image.new("L", (300, 60), 128)),
        "transparent": save("transparent.png", PIL.Image.new("RGBA", (28, 28), (255, 255, 255, 0))),
        "blank_sketch": save("blank.png", PIL.Image.new("RGBA", (280, 280), (255, 255, 255, 255))),
    }


def size_of(path: str) -> tuple[int, int]:
    with PIL.Image.open(path) as image:
        return image.size


def pixels(path: str) -> bytes:
    with PIL.Image.open(path) as image:
        return image.tobytes()


def test_every_api_name_is_served(client):
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == API_NAMES


def documented_value(parameter: dict):
    """A value of the type that the API page documents for a parameter, from its default: a choice as the string
    the page shows, an int, a float with a fraction."""
    documented, default = parameter["python_type"]["type"], parameter["parameter_default"]
    if documented.startswith("Literal["):
        return str(default)
    return {"int": int, "float": lambda v: v + 0.25}.get(documented, lambda v: v)(default)


def test_every_endpoint_takes_the_names_and_types_its_api_page_documents(client, images):
    """Issue 29, item 5: each endpoint called with every parameter by its documented name, each value of its
    documented type (/traverse's sliders were param_4 … param_13, its sweep refused '1', and "Images", documented
    as a float, refused 36.25)."""
    prompt = "red heart, twemoji style"  # the text-to-image endpoints' prompts default to empty: refused
    files = {
        "image": handle_file(EXAMPLE),
        "prompt": prompt,
        "prompt_a": prompt,
        "prompt_b": prompt,
        "sketch": {"background": None, "layers": [], "composite": handle_file(images["stroke"])},
        "editor": {
            "background": handle_file(images["stroke"]),
            "layers": [handle_file(images["stroke"])],
            "composite": None,
        },
        "seed_b": 1,
    }
    for api_name, info in client.view_api(print_info=False, return_format="dict")["named_endpoints"].items():
        kwargs = {
            p["parameter_name"]: files.get(p["parameter_name"]) or documented_value(p) for p in info["parameters"]
        }
        assert client.predict(**kwargs, api_name=api_name), api_name


SHIPPED = shipped_models() or [
    pytest.param("shipped", marks=pytest.mark.skip(reason="no trained models in space/models yet"))
]


@pytest.mark.parametrize("which", ["tiny", "tiny-2d", *SHIPPED])
def test_every_endpoint(client, models, images, which):
    model = models.get(which, which)
    config = (
        {"sample_size": 28, "in_channels": 1} if which in models else VAEModel.load_config(SPACE / "models" / which)
    )
    size = config["sample_size"]

    grid = client.predict(model, 9, 1, 1.0, "standard", api_name="/sample")
    cells = 3 * (size + 2) + 2
    assert size_of(grid) == (cells * explore.display_scale(cells),) * 2
    assert pixels(client.predict(model, 9, 2, 1.0, "standard", api_name="/sample")) != pixels(grid)
    assert pixels(client.predict(model, 9, 1, 0.5, "standard", api_name="/sample")) != pixels(grid)

    seen, recon, posterior, code, summary = client.predict(model, handle_file(EXAMPLE), api_name="/reconstruct")
    shown = (size + 4) * explore.display_scale(size + 4, 336)
    assert size_of(seen) == size_of(recon) == (shown, shown) and size_of(posterior) == (720, 300)
    assert "nats" in summary and len(code["mean"]) == len(code["std"]) > 0
    other = client.predict(model, handle_file(images["rgb"]), api_name="/reconstruct")
    assert pixels(other[1]) != pixels(recon)
    assert ("converted to greyscale" in other[4]) == (config["in_channels"] == 1)  # a colour model takes it as it is

    sketch = {"background": None, "layers": [], "composite": handle_file(images["stroke"])}
    drawn = client.predict(model, sketch, api_name="/reconstruct_sketch")
    assert size_of(drawn[0]) == (shown, shown) and pixels(drawn[1]) != pixels(recon)

    strip, gif = client.predict(model, "seeds", None, None, 0, 1, "slerp", 6, api_name="/interpolate")
    with PIL.Image.open(gif) as animation:
        assert animation.n_frames == 2 * 6 - 2
    assert size_of(strip)[0] > 5 * size_of(strip)[1]
    from_images = client.predict(
        model, "images", handle_file(EXAMPLE), handle_file(images["rgb"]), 0, 0, "lerp", 6, api_name="/interpolate"
    )
    assert pixels(from_images[0]) != pixels(strip)

    decoded, row = client.predict(model, "origin", None, 1, *SLIDERS, api_name="/traverse")
    assert size_of(decoded) == (shown, shown) and size_of(row)[0] > 5 * size_of(row)[1]
    moved = client.predict(model, "origin", None, 1, 2.0, *SLIDERS[1:], api_name="/traverse")
    assert pixels(moved[0]) != pixels(decoded)
    from_image = client.predict(model, "image", handle_file(EXAMPLE), 1, *SLIDERS, api_name="/traverse")
    assert pixels(from_image[0]) != pixels(decoded)

    scatter, description = client.predict(model, api_name="/latent_map")
    assert size_of(scatter) == (820, 620) and ("2-D" in description or "principal" in description)
    grid7 = client.predict(model, 7, api_name="/manifold")
    assert size_of(grid7) == (7 * size * explore.display_scale(7 * size, explore.MANIFOLD_WIDTH),) * 2
    point, marked = client.predict(model, 0.1, -0.1, api_name="/decode_point")
    assert size_of(point) == (shown, shown) and pixels(marked) != pixels(scatter)
    assert pixels(client.predict(model, -0.1, 0.1, api_name="/decode_point")[0]) != pixels(point)

    about = client.predict(model, api_name="/about")
    assert "latent" in about and "Fashion-MNIST" in about


def test_diffuse_streams_previews_then_the_grid_and_gif(client, models):
    job = client.submit(models["ldm"], "Trouser", 4, 6, 4.0, 0, "DDIM", api_name="/diffuse")
    preview, grid, gif = job.result(timeout=120)
    streamed = job.outputs()
    assert len(streamed) == 3 and all(
        out[1] is None and out[2] is None for out in streamed[:-1]
    )  # after 2, 4; the end
    assert pixels(streamed[0][0]) != pixels(grid) and pixels(preview) == pixels(grid)
    with PIL.Image.open(gif) as animation:
        assert animation.n_frames == 3
    again = client.predict(models["ldm"], "Trouser", 4, 6, 4.0, 0, "DDIM", api_name="/diffuse")
    assert pixels(again[1]) == pixels(grid)  # seeded
    for other in (
        ("Trouser", 4, 6, 4.0, 0, "Euler"),
        ("any", 4, 6, 4.0, 0, "DDIM"),
        ("Trouser", 4, 6, 4.0, 1, "DDIM"),
    ):
        assert pixels(client.predict(models["ldm"], *other, api_name="/diffuse")[1]) != pixels(grid)
    about = client.predict(models["ldm"], api_name="/about")
    assert f"{len(PIPELINE_CLASSES)} classes" in about and "Sample quality" in about


def test_compare_side_by_side(client, models):
    columns, table = client.predict(models["tiny"], models["ldm"], 4, 0, api_name="/compare")
    assert [c["caption"] for c in columns] == [
        "N(0, I) prior · not measured",
        "mixture prior · not measured",
        "diffusion · not measured",
    ]  # the tiny pipeline: guidance 3 only
    assert len({pixels(c["image"]) for c in columns}) == 3 and "| diffusion |" in table


def test_mixture_prior(client, models):
    standard = client.predict(models["tiny"], 4, 0, 1.0, "standard", api_name="/sample")
    assert pixels(client.predict(models["tiny"], 4, 0, 1.0, "mixture", api_name="/sample")) != pixels(standard)
    with pytest.raises(AppError, match="no fitted mixture prior"):
        client.predict(models["tiny-2d"], 4, 0, 1.0, "mixture", api_name="/sample")


# Gradio checks sliders, bounded numbers and radio choices itself before our code runs; either message is clear.
LOW, HIGH, CHOICE = (
    r"Value -?[\d.e+]+ is less than minimum value",
    r"Value [\d.e+]+ is greater than maximum value",
    "not in the list of choices",
)
BAD_INPUTS = [
    ("/sample", ("{m}", 0, 0, 1.0, "standard"), LOW),
    ("/sample", ("{m}", 65, 0, 1.0, "standard"), HIGH),
    ("/sample", ("{m}", 4, -1, 1.0, "standard"), LOW),
    ("/sample", ("{m}", 4, 0, 9.0, "standard"), HIGH),
    ("/sample", ("{m}", 4, 0, 1.0, "cauchy"), CHOICE),
    ("/reconstruct", ("{m}", None), "No image"),
    ("/reconstruct", ("{m}", "@tiny"), "too small"),
    ("/reconstruct", ("{m}", "@huge"), "too large"),
    ("/reconstruct", ("{m}", "@wide"), "far from square"),
    ("/reconstruct", ("{m}", "@transparent"), "fully transparent"),
    ("/reconstruct_sketch", ("{m}", None), "sketchpad is empty"),
    ("/reconstruct_sketch", ("{m}", {"background": None, "layers": [], "composite": None}), "sketchpad is empty"),
    (
        "/reconstruct_sketch",
        ("{m}", {"background": None, "layers": [], "composite": "@blank_sketch"}),
        "sketchpad is empty",
    ),
    ("/interpolate", ("{m}", "images", None, None, 0, 1, "slerp", 5), "Image A is missing"),
    ("/interpolate", ("{m}", "seeds", None, None, 0, 1, "slerp", 1), LOW),
    ("/interpolate", ("{m}", "seeds", None, None, 0, 1, "spline", 5), CHOICE),
    ("/traverse", ("{m}", "origin", None, 1, 9.0, *SLIDERS[1:]), HIGH),
    ("/traverse", ("{m}", "image", None, 1, *SLIDERS), "no image was given"),
    ("/traverse", ("{m}", "origin", None, 50, *SLIDERS), CHOICE),  # the sweep is chosen among the shown sliders
    ("/traverse", ("{m-2d}", "origin", None, 3, *SLIDERS), "Swept slider must be a whole number from 1 to"),
    ("/manifold", ("{m}", 100), HIGH),
    ("/decode_point", ("{m}", 1e9, 0.0), "x must be a number from -100 to 100"),
    ("/sample", ("/no/such/model", 4, 0, 1.0, "standard"), "'/no/such/model' is not one of this Space's models"),
    ("/sample", ("not a model id!", 4, 0, 1.0, "standard"), "not one of this Space's models"),
    ("/sample", ("nobody/no-such-vae", 4, 0, 1.0, "standard"), "not one of this Space's models"),
    ("/about", ("{notours}",), "holds a UNet2DModel, not a VAEModel"),
    ("/latent_map", ("",), "Choose a model"),
    (
        "/diffuse",
        ("{ldm}", "Cardigan", 4, 5, 4.0, 0, "DDIM"),
        "Class must be one of any, T-shirt/top, Trouser, Sneaker",
    ),
    ("/diffuse", ("{ldm}", "any", 4, 0, 4.0, 0, "DDIM"), LOW),
    ("/diffuse", ("{ldm}", "any", 4, 101, 4.0, 0, "DDIM"), HIGH),
    ("/diffuse", ("{ldm}", "any", 4, 5, 15.5, 0, "DDIM"), HIGH),
    ("/diffuse", ("{ldm}", "any", 37, 5, 4.0, 0, "DDIM"), HIGH),
    ("/diffuse", ("{ldm}", "any", 4, 5, 4.0, 0, "PNDM"), CHOICE),
    ("/diffuse", ("{m}", "any", 4, 5, 4.0, 0, "DDIM"), "is a vector VAE: .* so it has no diffusion sampling"),
    ("/compare", ("{ldm}", "{ldm}", 4, 0), "is a latent diffusion pipeline: .* so it has no prior samples to compare"),
    ("/sample", ("{ldm}", 4, 0, 1.0, "standard"), "is a latent diffusion pipeline: .* Try Diffuse or Compare"),
]


@pytest.mark.parametrize(
    "api_name, args, message", BAD_INPUTS, ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(BAD_INPUTS)]
)
def test_bad_input_is_a_clear_error_and_the_server_keeps_serving(
    client, models, images, not_ours, api_name, args, message
):
    def resolve(value):
        if isinstance(value, str) and value.startswith("@"):
            return handle_file(images[value[1:]])
        if isinstance(value, str):
            return value.replace("{m-2d}", models["tiny-2d"]).format(
                m=models["tiny"], notours=not_ours.name, ldm=models["ldm"]
            )
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    with pytest.raises(AppError, match=message):
        client.predict(*[resolve(a) for a in args], api_name=api_name)
    assert "latent" in client.predict(models["tiny"], api_name="/about")  # still serving


def test_concurrent_clients_varied_requests(url, models, tmp_path):
    """8 users at once, 5 different requests each (of 6 kinds): no errors, and each answer matches its request."""
    requests = [
        lambda c, i: c.predict(models["tiny"], 1 + i % 16, i, 1.0, "standard", api_name="/sample"),
        lambda c, i: c.predict(models["tiny-2d"], "seeds", None, None, i, i + 1, "lerp", 4, api_name="/interpolate")[
            0
        ],
        lambda c, i: c.predict(models["tiny"], "origin", None, 1, (i % 8) / 2, *SLIDERS[1:], api_name="/traverse")[0],
        lambda c, i: c.predict(models["tiny-2d"], i / 40, -i / 40, api_name="/decode_point")[0],
        lambda c, i: c.predict(models["tiny"], 3 + i % 5, api_name="/manifold"),
        lambda c, i: c.predict(
            models["ldm"], "any", 1 + i % 4, 3, 4.0, i, list(explore.SCHEDULERS)[i % 3], api_name="/diffuse"
        )[1],
    ]

    def user(u: int) -> list[str]:
        client = new_client(url, tmp_path / f"user{u}")
        try:
            return [requests[(u + k) % len(requests)](client, u * 5 + k) for k in range(5)]
        finally:
            client.close()

    with ThreadPoolExecutor(8) as pool:
        results = [path for paths in pool.map(user, range(8)) for path in paths]
    assert len(results) == 40 and all(Path(p).is_file() for p in results)
    assert len({pixels(p) for p in results}) > 30  # different requests, different images


def test_many_users_same_default_request(url, models, tmp_path):
    """16 users press Sample with the default seed at the same moment: all succeed with the same image."""
    clients = [new_client(url, tmp_path / f"user{u}") for u in range(16)]
    barrier = threading.Barrier(16)

    def press(client: Client) -> bytes:
        barrier.wait()
        return pixels(client.predict(models["tiny"], 36, 0, 1.0, "standard", api_name="/sample"))

    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(press, clients))
    finally:
        for client in clients:
            client.close()
    assert len(results) == 16 and len(set(results)) == 1


def test_deployed_layout_finds_its_files_beside_app_py(tmp_path, models, folders):
    """Deployed, app.py sits at the Space root with examples/ and space_config.json (``vae-hub deploy-space``)
    beside it: it must find them relative to its own file, and the configured model comes first."""
    import json
    import shutil

    import gradio as gr

    shutil.copy(SPACE / "app.py", tmp_path / "app.py")
    shutil.copytree(SPACE / "examples", tmp_path / "examples")
    (tmp_path / "space_config.json").write_text(json.dumps({"model_id": str(folders["tiny-2d"])}))
    app = load_app(tmp_path / "app.py")
    assert app.HERE == tmp_path
    demo = app.build_demo()
    dropdown = next(b for b in demo.blocks.values() if isinstance(b, gr.Dropdown) and b.label == "Model")
    assert dropdown.value == models["tiny-2d"]
    assert demo._queue.max_size >= 64
    # every endpoint that runs the network waits in one first-in-first-out line with two workers
    runs_model = {
        "sample",
        "reconstruct",
        "reconstruct_sketch",
        "interpolate",
        "traverse",
        "decode_point",
        "manifold",
        "latent_map",
        "diffuse",
        "compare",
    }
    lines = {
        fn.api_name: (fn.concurrency_id, fn.concurrency_limit) for fn in demo.fns.values() if fn.api_name in runs_model
    }
    assert lines == dict.fromkeys(runs_model, ("model", 2))


def test_sigterm_removes_the_output_folder(tmp_path, monkeypatch):
    """Issue 29: the Space's output folder (``vae_hub_space_*`` in the temp folder) is gone after SIGTERM."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    model = make_model(tmp_path / "tiny")
    with running_space([str(model)], tmp_path / "space.log"):
        [folder] = (tmp_path / "tmp").glob("vae_hub_space_*")
        (folder / "an-output.png").write_bytes(b"png")  # not empty, as after a visitor's requests
    # running_space has sent SIGTERM and waited for the process to end
    assert not list((tmp_path / "tmp").glob("vae_hub_space_*")), (tmp_path / "space.log").read_text()[-2000:]
