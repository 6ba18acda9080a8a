"""Save one screenshot per tab of the Space under ``space/screenshots/`` (headless Chromium via Playwright).

    python space/take_screenshots.py                  # the shipped models (space/models/*)
    python space/take_screenshots.py /path/to/model   # any VAEModel folders, comma-separated, offered first

The vector VAE's tabs show the first model offered; Diffuse and Compare show the shipped pipeline
``fashion-mnist-ldm`` (Compare beside the first vector VAE). Needs Debian's ``chromium`` and the ``playwright``
package (its own browser download is not used).
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from playwright.sync_api import sync_playwright  # noqa: E402

from space_helpers import running_space, shipped_models  # noqa: E402

PIPELINE = "fashion-mnist-ldm"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def wait_for_image(page, selector: str) -> None:
    page.wait_for_function(f"() => {{ const i = document.querySelector('{selector} img'); "
                           "return i && i.complete && i.naturalWidth > 0; }")


def main(models: list[str]) -> None:
    out = HERE / "screenshots"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, running_space(models, Path(tmp) / "space.log") as space, \
            sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            f"{tmp}/profile", executable_path=shutil.which("chromium"), args=FLAGS, headless=True,
            viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
        page = context.new_page()
        page.set_default_timeout(180_000)
        page.goto(space.url)
        page.wait_for_selector("#sample-button")

        def shot(name: str) -> None:
            time.sleep(1.5)  # let transitions finish
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            print("saved", out / f"{name}.png")

        page.click("#sample-button")
        wait_for_image(page, "#samples")
        shot("1-sample")

        page.get_by_role("tab", name="Reconstruct").first.click()
        page.wait_for_selector("#sketchpad[data-draw-mode='on']")  # the app selects the brush itself
        box = page.locator("#sketchpad canvas").first.bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        outline = [(-25, -75), (-60, -60), (-90, -10), (-65, 0), (-45, -25), (-45, 80), (45, 80), (45, -25),
                   (65, 0), (90, -10), (60, -60), (25, -75), (0, -60), (-25, -75)]  # a T-shirt
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

        page.get_by_role("tab", name="Interpolate").first.click()
        page.get_by_role("button", name="Interpolate", exact=True).click()
        time.sleep(4)
        shot("3-interpolate")

        page.get_by_role("tab", name="Traverse").first.click()
        shot("4-traverse")

        page.get_by_role("tab", name="Latent map").first.click()
        wait_for_image(page, "#latent-map")
        map_box = page.locator("#latent-map img").first.bounding_box()
        page.mouse.click(map_box["x"] + map_box["width"] * 0.45, map_box["y"] + map_box["height"] * 0.4)
        wait_for_image(page, "#decoded-point")
        shot("5-latent-map")

        page.get_by_role("tab", name="About").first.click()
        shot("8-about")

        page.get_by_label("Model", exact=True).click()
        page.locator(f"[role='option'][aria-label='{PIPELINE}']").click()
        page.wait_for_function("() => document.querySelector('#model-status')?.innerText.includes('latent diffusion')")
        page.get_by_role("tab", name="Diffuse").first.click()
        page.get_by_label("Class", exact=True).click()
        page.locator("[role='option'][aria-label='Sneaker']").click()
        page.click("#diffuse-run")
        wait_for_image(page, "#diffuse-grid")
        wait_for_image(page, "#diffuse-gif")
        shot("6-diffuse")

        page.get_by_role("tab", name="Compare").first.click()
        page.click("#compare-run")  # the pipeline chosen above, beside the first vector VAE
        page.wait_for_function("() => { const i = [...document.querySelectorAll('#compare-grid img')]; "
                               "return i.length === 3 && i.every(i => i.complete && i.naturalWidth > 0); }")
        shot("7-compare")
        context.close()


if __name__ == "__main__":
    ids = sys.argv[1].split(",") if len(sys.argv) > 1 else []
    if not ids and not shipped_models():
        sys.exit("no shipped models in space/models yet: pass model folders")
    main(ids)
