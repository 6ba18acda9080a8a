"""Save one screenshot per tab of the Space under ``space/screenshots/`` (headless Chromium via Playwright).

    python space/take_screenshots.py                  # the shipped models (space/models/*)
    python space/take_screenshots.py /path/to/model   # any VAEModel folders, comma-separated, offered first
    python space/take_screenshots.py --text_to_image  # only the emoji tabs (9-text-to-image.png … 14-compare-emoji.png)

The vector VAE's tabs show the first model offered; Diffuse and Compare show the shipped pipeline
``fashion-mnist-ldm`` (Compare beside the first vector VAE, above every model's measured records); Text to image,
Image to image, Inpaint, Prompt walk and a second About show the shipped miniature Stable Diffusion ``emoji-sd``, and a
second Compare sets it beside the vector VAE of the same data, ``emoji-vector-vae``. Needs Debian's ``chromium`` and the ``playwright``
package (its own browser download is not used).
"""

import functools
import shutil
import sys
import tempfile
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from space_helpers import running_space, select_tab, shipped_models  # noqa: E402


PIPELINE = "fashion-mnist-ldm"
TEXT_TO_IMAGE = "emoji-sd"
EMOJI_VECTOR_VAE = "emoji-vector-vae"
EMOJI = HERE / "examples" / "emoji"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_for_image(page, selector: str) -> None:
    page.wait_for_function(
        f"() => {{ const i = document.querySelector('{selector} img'); "
        "return i && i.complete && i.naturalWidth > 0; }"
    )


def choose_model(page, name: str, status: str, own_tab: str, other_tab: str = "Sample") -> None:
    """Pick ``name`` in the model box and wait until its description (containing ``status``) and its tabs are
    shown: ``own_tab`` in the bar, ``other_tab``, which it does not have, gone (they follow the description in an
    update of their own, which would undo a tab opened before it)."""
    page.get_by_label("Model", exact=True).click()
    page.locator(f"[role='option'][aria-label='{name}']").click()
    page.wait_for_function(f"() => document.querySelector('#model-status')?.innerText.includes('{status}')")
    for tab, shown in ((own_tab, "true"), (other_tab, "false")):
        page.wait_for_function(
            f"() => [...document.querySelectorAll('[role=tab]')].some(t => t.innerText.trim() === '{tab}') === {shown}"
        )


def open_tab(page, name: str, shown: str) -> None:
    """Open the top-level tab ``name`` and wait for its element ``shown``."""
    select_tab(page, name)
    page.locator(shown).wait_for(state="visible")


def fill_prompt(page, prompt: str) -> None:
    page.get_by_label("Prompt", exact=True).locator("visible=true").first.fill(prompt)  # the open tab's


def text_to_image_shots(page, shot) -> None:
    """The text-to-image views of the shipped ``emoji-sd``, each run once, and its About."""
    choose_model(page, TEXT_TO_IMAGE, "text-to-image", "Prompt walk")

    open_tab(page, "Text to image", "#t2i-run")
    fill_prompt(page, "red heart, twemoji style")
    page.click("#t2i-run")
    wait_for_image(page, "#t2i-grid")
    wait_for_image(page, "#t2i-gif")
    shot("9-text-to-image")

    open_tab(page, "Image to image", "#i2i-run")
    page.locator("#i2i-image input[type=file]").set_input_files(str(EMOJI / "yellow-heart-twemoji-style.png"))
    wait_for_image(page, "#i2i-image")
    fill_prompt(page, "green heart, noto style")
    page.click("#i2i-run")
    wait_for_image(page, "#i2i-result")
    shot("10-image-to-image")

    open_tab(page, "Inpaint", "#inpaint-run")
    image_tool, upload = (page.locator(f"#inpaint-editor button[aria-label='{n}']") for n in ("Image", "Upload"))
    image_tool.wait_for()
    if not upload.is_visible():  # the editor's image tool holds its upload button
        image_tool.click()
    with page.expect_file_chooser() as chooser:
        upload.click()
    chooser.value.set_files(str(EMOJI / "grinning-cat-twemoji-style.png"))
    page.wait_for_function(
        "() => { const t = document.querySelector('#inpaint-editor').innerText; "
        "return /\\d+%/.test(t) && !t.includes('Upload an image'); }"
    )
    box = page.locator("#inpaint-editor canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 25, cy + 45)  # paint over the cat's mouth (the brush is a third of a 72-px emoji wide)
    page.mouse.down()
    page.mouse.move(cx + 25, cy + 45, steps=6)
    page.mouse.up()
    fill_prompt(page, "grinning cat, twemoji style")
    page.click("#inpaint-run")
    page.wait_for_function("() => document.querySelector('#inpaint-note')?.innerText.includes('Redrew')")
    wait_for_image(page, "#inpaint-result")
    shot("11-inpaint")

    open_tab(page, "Prompt walk", "#walk-run")  # its prompts are filled in: red heart → blue heart
    page.click("#walk-run")
    wait_for_image(page, "#walk-strip")
    wait_for_image(page, "#walk-gif")
    shot("12-prompt-walk")

    open_tab(page, "About", "#about")
    page.wait_for_function(f"() => document.querySelector('#about')?.innerText.includes('{TEXT_TO_IMAGE}')")
    shot("13-about-emoji-sd")


def compare_emoji_shot(page, shot) -> None:
    """Compare with the emoji pair: the vector VAE chosen, and beside it the pipeline of its data."""
    choose_model(page, EMOJI_VECTOR_VAE, "-D latent", "Latent map", "Prompt walk")
    for attempt in range(5):  # a late update of the model choice may re-select another tab: open Compare again
        open_tab(page, "Compare", "#compare-run")
        try:  # choosing the VAE set the pipeline of its data beside it (a tab's widgets exist once it is open)
            page.wait_for_function(
                f"() => document.querySelector('#compare-pipeline input')?.value === '{TEXT_TO_IMAGE}'",
                timeout=20_000,
            )
            break
        except PlaywrightTimeout:
            if attempt == 4:
                raise
    page.click("#compare-run")
    page.wait_for_function(
        "() => { const i = [...document.querySelectorAll('#compare-grid img')]; "
        "return i.length === 3 && i.every(i => i.complete && i.naturalWidth > 0); }"
    )
    shot("14-compare-emoji")


def main(models: list[str], text_to_image_only: bool = False) -> None:
    out = HERE / "screenshots"
    out.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_space(models, Path(tmp) / "space.log") as space,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            f"{tmp}/profile",
            executable_path=shutil.which("chromium"),
            args=FLAGS,
            headless=True,
            viewport={"width": 1440, "height": 1000},
            device_scale_factor=1,
        )
        page = context.new_page()
        page.set_default_timeout(180_000)
        page.goto(space.url)
        page.wait_for_selector("#sample-button")
        shot = functools.partial(save_shot, page, out)
        try:
            if not text_to_image_only:
                vae_and_pipeline_shots(page, shot)
            text_to_image_shots(page, shot)
            compare_emoji_shot(page, shot)
        except Exception:
            failed = Path(tempfile.gettempdir()) / "vae-hub-screenshot-failed.png"
            page.screenshot(path=str(failed), full_page=True)
            print(f"failed: the page as it was is {failed}", file=sys.stderr)
            raise
        context.close()


def save_shot(page, out: Path, name: str) -> None:
    time.sleep(1.5)  # let transitions finish
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    print("saved", out / f"{name}.png")


def vae_and_pipeline_shots(page, shot) -> None:
    """The vector VAE's tabs (the first model offered), then Diffuse and Compare of the shipped pipeline."""
    page.click("#sample-button")
    wait_for_image(page, "#samples")
    shot("1-sample")

    select_tab(page, "Reconstruct")
    page.wait_for_selector("#sketchpad[data-draw-mode='on']")  # the app selects the brush itself
    box = page.locator("#sketchpad canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    outline = [
        (-25, -75),
        (-60, -60),
        (-90, -10),
        (-65, 0),
        (-45, -25),
        (-45, 80),
        (45, 80),
        (45, -25),
        (65, 0),
        (90, -10),
        (60, -60),
        (25, -75),
        (0, -60),
        (-25, -75),
    ]  # a T-shirt
    page.mouse.move(cx + outline[0][0], cy + outline[0][1])
    page.mouse.down()
    for dx, dy in outline[1:]:
        page.mouse.move(cx + dx, cy + dy, steps=6)
    page.mouse.up()
    page.get_by_role("button", name="Reconstruct drawing").click()
    wait_for_image(page, "#reconstruction")
    # the click's progress shows on the sketchpad (a timer over a blank canvas) until its answer arrives
    page.wait_for_function(r"() => !/\d\.\ds/.test(document.querySelector('#sketchpad').innerText)")
    shot("2-reconstruct")

    select_tab(page, "Interpolate")
    page.get_by_role("button", name="Interpolate", exact=True).click()
    time.sleep(4)
    shot("3-interpolate")

    select_tab(page, "Traverse")
    shot("4-traverse")

    select_tab(page, "Latent map")
    wait_for_image(page, "#latent-map")
    map_box = page.locator("#latent-map img").first.bounding_box()
    page.mouse.click(map_box["x"] + map_box["width"] * 0.45, map_box["y"] + map_box["height"] * 0.4)
    wait_for_image(page, "#decoded-point")
    shot("5-latent-map")

    select_tab(page, "About")
    shot("8-about")

    choose_model(page, PIPELINE, "latent diffusion", "Diffuse")
    open_tab(page, "Diffuse", "#diffuse-run")
    page.get_by_label("Class", exact=True).locator("visible=true").first.click()  # the Diffuse tab's
    page.locator("[role='option'][aria-label='Sneaker']").click()
    page.click("#diffuse-run")
    wait_for_image(page, "#diffuse-grid")
    wait_for_image(page, "#diffuse-gif")
    shot("6-diffuse")

    open_tab(page, "Compare", "#compare-run")
    page.click("#compare-run")  # the pipeline chosen above, beside the first vector VAE
    page.wait_for_function(
        "() => { const i = [...document.querySelectorAll('#compare-grid img')]; "
        "return i.length === 3 && i.every(i => i.complete && i.naturalWidth > 0); }"
    )
    shot("7-compare")


if __name__ == "__main__":
    only = "--text_to_image" in sys.argv[1:]
    given = [a for a in sys.argv[1:] if a != "--text_to_image"]
    ids = given[0].split(",") if given else []
    if not ids and not shipped_models():
        sys.exit("no shipped models in space/models yet: pass model folders")
    main(ids, only)
