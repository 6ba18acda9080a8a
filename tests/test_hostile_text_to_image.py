"""The hostile input families of test_hostile.py applied to the text-to-image endpoints of a running Space (a tiny
random StableDiffusionPipeline configured by its folder): each is refused in one line in the Space's words, from
the header for huge images, with no server path, and the server's memory stays where it was."""

import re

import PIL.Image
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from space_helpers import running_space
from test_hostile import MiB, blank_png, rss
from tiny import tiny_stable_diffusion


CAPTIONS = [
    f"{c} {s}, {st} style" for c in ("red", "green", "blue") for s in ("disc", "square") for st in ("flat", "noto")
]
SETTINGS = [2, 2.0, 0, "DPM-Solver++"]  # steps, guidance, seed, scheduler
OUT_OF_RANGE = r"Value -?\d+(\.\d+)? is (greater|less) than (maximum|minimum) value"  # a slider's own words


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-t2i")
    folder = tiny_stable_diffusion(root / "tiny-sd", CAPTIONS)
    with running_space([str(folder)], root / "space.log") as running:
        yield running


@pytest.fixture(scope="module")
def client(space, tmp_path_factory):
    client = Client(
        space.url, verbose=False, analytics_enabled=False, download_files=str(tmp_path_factory.mktemp("downloads"))
    )
    yield client
    client.close()


def refusal(client: Client, *args, api_name: str) -> str:
    with pytest.raises(AppError) as refused:
        client.predict(*args, api_name=api_name)
    answer = str(refused.value)
    assert "Traceback" not in answer and "/tmp" not in answer and "object at 0x" not in answer
    return answer


def editor(path) -> dict:
    return {"background": handle_file(str(path)), "layers": [], "composite": None}


def test_each_endpoint_works_then_refuses_hostile_input_in_words(space, client, tmp_path):
    image = tmp_path / "small.png"
    PIL.Image.new("RGB", (24, 24), (200, 30, 30)).save(image)
    huge = blank_png(tmp_path / "huge.png", 10_000, 10_000)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    client.predict("tiny-sd", "red disc", "", 2, *SETTINGS, api_name="/text_to_image")  # warm, and it works
    client.predict("tiny-sd", "red disc", "blue square", 3, 0, None, 2, 2.0, "Euler", api_name="/prompt_walk")
    before = rss(space.pid)
    cases = [
        (("/etc/passwd", "red disc", "", 2, *SETTINGS), "/text_to_image", "is not one of this Space's models"),
        (("tiny-sd", "x" * 10_000, "", 2, *SETTINGS), "/text_to_image", "at most 300"),
        (
            ("tiny-sd", "red disc", "", 10**9, *SETTINGS),
            "/text_to_image",
            f"Number of images must be a whole number|{OUT_OF_RANGE}",
        ),
        (
            ("tiny-sd", "red disc", "", 2, 10**6, 2.0, 0, "DDIM"),
            "/text_to_image",
            f"Steps must be a whole number|{OUT_OF_RANGE}",
        ),
        (
            ("tiny-sd", "red disc", "", 2, 2, 1e9, 0, "DDIM"),
            "/text_to_image",
            f"Guidance must be a number|{OUT_OF_RANGE}",
        ),
        (
            ("tiny-sd", "red disc", "", 2, 2, 2.0, -1, "DDIM"),
            "/text_to_image",
            f"Seed must be a whole number|{OUT_OF_RANGE}",
        ),
        (
            ("tiny-sd", handle_file(str(huge)), "red", "", 0.6, *SETTINGS),
            "/image_to_image",
            r"image is too large \(10000×10000 px\)",
        ),
        (
            ("tiny-sd", handle_file(str(text)), "red", "", 0.6, *SETTINGS),
            "/image_to_image",
            "not an image this Space can read",
        ),
        (
            ("tiny-sd", handle_file(str(image)), "red", "", 7.0, *SETTINGS),
            "/image_to_image",
            f"Strength must be|{OUT_OF_RANGE}",
        ),
        (("tiny-sd", editor(huge), "red", "", *SETTINGS), "/inpaint", r"image is too large \(10000×10000 px\)"),
        (("tiny-sd", editor(image), "red", "", *SETTINGS), "/inpaint", "The mask is empty"),
        (
            ("tiny-sd", "red", "blue", 10**6, 0, None, 2, 2.0, "DDIM"),
            "/prompt_walk",
            f"Frames must be a whole number|{OUT_OF_RANGE}",
        ),
    ]
    for _ in range(2):
        for args, api_name, message in cases:
            assert re.search(message, refusal(client, *args, api_name=api_name)), (api_name, args[:3])
    assert rss(space.pid) - before < 64 * MiB
