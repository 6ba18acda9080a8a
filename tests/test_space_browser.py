"""The Space in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

The Space serves a tiny RGB 48×48 model "of coloured shapes" first (so every text and view must come from that
model, not from Fashion-MNIST), a grey 28×28 one and a tiny latent diffusion pipeline. Opens the page, clicks Sample
and waits for the image, draws on the sketchpad without looking for its brush and waits for the reconstruction,
checks what a person reads (the About tables, the sweep choices, rounded clicks, the description on a phone-sized
screen, a tab the chosen model cannot do), watches /diffuse stream its previews before the grid and offer its GIF,
and /compare caption its three columns, saving screenshots under pytest's tmp dir. Playwright's own browser download is not used:
it drives the system Chromium (``executable_path``). Where Chromium or Playwright is missing the test skips
and says why, unless ``VAE_HUB_REQUIRE_BROWSER=1`` (set by CI), which makes that a failure.
"""

import importlib.util
import io
import json
import os
import shutil

import PIL.Image
import pytest
import torch
from hub_doubles import tiny_pipeline_folder
from space_helpers import make_coloured_model, make_model, running_space, select_tab
from tiny import tiny_stable_diffusion

from vae_hub import explore
from vae_hub.pipelines import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 120_000  # generous: a loaded 2-core machine renders slowly; a broken page still fails


def _chromium() -> str:
    """Path of the system Chromium and an importable Playwright, or a skip (a failure when required)."""
    problem = None
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        problem = "Chromium is not installed (Debian: apt-get install chromium)"
    if problem is None and importlib.util.find_spec("playwright") is None:
        problem = "the playwright package is not installed (pip install playwright; no browser download needed)"
    if problem:
        if os.environ.get("VAE_HUB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"VAE_HUB_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    return path


@pytest.fixture(scope="module")
def browser_space(tmp_path_factory):
    """(Space URL, Playwright browser context factory) for the module."""
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("browser")
    models = [
        make_coloured_model(root / "shapes"),
        make_model(root / "tiny", latent_dim=4),
        tiny_pipeline_folder(root / "ldm", clutter=False),
        tiny_stable_diffusion(root / "tiny-sd", ["red disc, flat style", "blue square, noto style"]),
    ]
    record_quality(
        models[1],
        {
            "standard_prior": {"kind": "vae", "prior": "standard", "frechet_distance": 8.62},
            "mixture_prior": {"kind": "vae", "prior": "mixture", "frechet_distance": 5.54},
        },
    )
    record_quality(
        models[2],
        {
            "at_the_defaults": {
                "kind": "pipeline",
                "num_inference_steps": DEFAULT_NUM_INFERENCE_STEPS,
                "guidance_scale": DEFAULT_GUIDANCE_SCALE,
                "frechet_distance": 1.45,
                "class_match": 0.918,
            }
        },
    )
    with running_space([str(m) for m in models], root / "space.log") as space, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield space.url, browser
        finally:
            browser.close()


def record_quality(folder, records: dict) -> None:
    """Add sample-quality records (as ``evaluate_samples --record`` writes them) to a model's metrics.json."""
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["sample_quality"] = {**metrics.get("sample_quality", {}), **records}
    (folder / "metrics.json").write_text(json.dumps(metrics))


def open_page(browser_space, width: int = 1400, height: int = 1000):
    url, browser = browser_space
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url, timeout=TIMEOUT_MS)
    page.wait_for_selector("#sample-button")
    return page


@pytest.fixture(scope="module")
def page(browser_space):
    page = open_page(browser_space)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


def _image_source(page, selector: str) -> str | None:
    image = page.locator(f"{selector} img")
    return image.first.get_attribute("src") if image.count() else None


def test_sample_shows_an_image(page, shots):
    before = _image_source(page, "#samples")
    page.click("#sample-button")
    page.wait_for_function(
        "before => { const i = document.querySelector('#samples img'); return i && i.src !== before && i.complete && i.naturalWidth > 0; }",
        arg=before or "",
    )
    size = page.eval_on_selector("#samples img", "i => [i.naturalWidth, i.naturalHeight]")
    assert size[0] > 100 and size[0] == size[1]  # the 6×6 grid, enlarged
    page.screenshot(path=str(shots / "sample.png"), full_page=True)
    assert (shots / "sample.png").stat().st_size > 10_000


def test_the_page_describes_the_model_in_hand(page):
    page.wait_for_function("() => document.querySelector('#model-status')?.innerText.includes('48×48')")
    status = page.locator("#model-status").inner_text()
    assert "3×48×48 images of someone/coloured-shapes" in status
    text = page.locator("body").inner_text()
    assert "28×28" not in text and "clothes" not in text


def test_drawing_is_reconstructed(page, shots):
    select_tab(page, "Reconstruct")
    label = page.locator("#sketchpad [data-testid='block-label']").first
    assert label.inner_text().strip() == "Draw here"
    assert label.evaluate("e => e.scrollWidth <= e.clientWidth && e.getBoundingClientRect().width > 0")  # not cut off
    # no tool to find first: the sketchpad opens in draw mode
    page.wait_for_selector("#sketchpad[data-draw-mode='on']")
    box = page.locator("#sketchpad canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx - 50, cy - 70)
    page.mouse.down()
    for dx, dy in ((50, -70), (50, 70), (-50, 70), (-50, -70)):
        page.mouse.move(cx + dx, cy + dy, steps=8)
    page.mouse.up()
    page.get_by_role("button", name="Reconstruct drawing").click()
    page.wait_for_function(
        "() => { const i = document.querySelector('#reconstruction img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    assert page.eval_on_selector("#reconstruction img", "i => i.naturalWidth") == 312  # 48 px + padding, ×6
    page.screenshot(path=str(shots / "reconstruct.png"), full_page=True)
    assert (shots / "reconstruct.png").stat().st_size > 10_000


def test_clicking_the_latent_map_decodes_that_point(page, shots):
    select_tab(page, "Latent map")
    page.wait_for_function(
        "() => { const i = document.querySelector('#latent-map img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    box = page.locator("#latent-map img").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5)
    page.wait_for_function(
        "() => { const i = document.querySelector('#decoded-point img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    x = page.locator("#point-x input").input_value()
    assert float(x) != 0.0  # the click's plane coordinate
    assert len(x.split(".")[-1]) <= 6, x  # rounded, not 16 digits
    page.screenshot(path=str(shots / "latent_map.png"), full_page=True)


def test_a_wrong_map_coordinate_keeps_the_map_and_says_what_was_wrong(page, shots):
    """Issue 15: the error is said in words (a toast naming both coordinates) and shown on the coordinates; the
    scatter plot and the last decoded point stay as they were, with no error badge over them."""
    select_tab(page, "Latent map")
    page.wait_for_function(
        "() => { const i = document.querySelector('#latent-map img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    scatter, point = _image_source(page, "#latent-map"), _image_source(page, "#decoded-point")
    page.locator("#point-x input").fill("1000")
    page.locator("#point-y input").fill("")
    page.get_by_role("button", name="Decode point").click()
    page.get_by_text("x must be a number from -100 to 100").first.wait_for()
    assert page.get_by_text("y is empty").count() > 0
    page.screenshot(path=str(shots / "wrong_point.png"), full_page=True)
    assert _image_source(page, "#latent-map") == scatter and _image_source(page, "#decoded-point") == point
    for result in ("#latent-map", "#decoded-point"):
        assert page.locator(f"{result} .error").count() == 0, f"an error badge over {result}"


def test_a_refused_upload_keeps_the_last_reconstruction(page, shots, tmp_path):
    """Issue 15: after a good reconstruction, a refused upload (5×5 px) is explained in words and the last
    reconstruction stays, with no error badge over it."""
    import PIL.Image

    select_tab(page, "Reconstruct")
    page.wait_for_function(
        "() => { const i = document.querySelector('#reconstruction img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    before = _image_source(page, "#reconstruction")
    page.get_by_role("tab", name="Upload or pick").click()
    PIL.Image.new("L", (5, 5), 128).save(tmp_path / "tiny.png")
    page.locator("input[type=file]").last.set_input_files(str(tmp_path / "tiny.png"))
    page.get_by_text("The image is too small (5×5 px)").first.wait_for()
    page.screenshot(path=str(shots / "refused_upload.png"), full_page=True)
    assert _image_source(page, "#reconstruction") == before
    assert page.locator("#reconstruction .error").count() == 0


def test_grid_size_typed_and_entered_redraws_the_manifold(page):
    select_tab(page, "Latent map")
    manifold = "#latent-map-grid img"
    page.wait_for_function(f"() => document.querySelector('{manifold}')?.naturalWidth > 0")
    before = page.eval_on_selector(manifold, "i => i.src")
    box = page.locator("#grid-n input[type='number']")
    box.fill("5")
    box.press("Enter")
    page.wait_for_function(f"b => document.querySelector('{manifold}').src !== b", arg=before)
    page.wait_for_function(f"() => document.querySelector('{manifold}').naturalWidth === 5 * 48 * 2")


def test_sweep_choices_are_named_as_the_sliders(page):
    select_tab(page, "Traverse")
    sliders = [t.split()[0] for t in page.locator("[data-testid='block-info']").all_inner_texts() if t.startswith("z")]
    assert page.locator("#sweep input").input_value() == "z1"  # the most informative dimension of this model
    page.locator("#sweep input").click()
    options = page.locator("#sweep [role='option']").evaluate_all("os => os.map(o => o.getAttribute('aria-label'))")
    page.keyboard.press("Escape")
    assert len(sliders) == 3 and options[0] == "z1" and sorted(options) == sorted(sliders)  # the labels shown


def test_about_tables_keep_their_columns(page):
    select_tab(page, "About")
    page.wait_for_selector("#about table")
    rows = page.eval_on_selector_all("#about table tr", "rs => rs.map(r => Array.from(r.children, c => c.innerText))")
    assert rows and all(len(r) == 2 for r in rows)
    cells = dict(rows)
    assert cells["Reconstruction term"] == "100.00 nats" and cells["KL to the prior"] == "23.46 nats"


def choose(page, box: str, value: str) -> None:
    """Open the dropdown labelled ``box`` and pick the option ``value`` (a configured folder goes by its name)."""
    page.get_by_label(box, exact=True).click()
    page.locator(f"[role='option'][aria-label='{value}']").first.click()


def toasts(page) -> list[str]:
    return page.locator("[data-testid='toast-body']").all_inner_texts()


def close_toasts(page) -> None:
    from playwright.sync_api import Error as PlaywrightError

    for close in page.locator("[data-testid='toast-close']").all():
        try:
            close.click(timeout=5_000)
        except PlaywrightError:  # it closed itself meanwhile (toasts time out)
            pass


@pytest.fixture
def fresh_page(browser_space):
    """A page of its own: no toasts or open dropdowns of earlier tests, the first model chosen by the page itself."""
    page = open_page(browser_space)
    yield page
    page.context.close()


def wait_for_tab(page, name: str, shown: bool) -> None:
    """Wait until the top-level tab ``name`` is shown (or hidden): the model's tabs arrive in an update after its
    status, so they are waited for, never read at once."""
    page.wait_for_function(
        f"() => [...document.querySelectorAll('[role=tab]')].some(t => t.innerText.trim() === "
        f"{json.dumps(name)}) === {'true' if shown else 'false'}"
    )


def test_choosing_a_model_while_a_tab_both_have_is_open_hides_the_tabs_it_lacks(fresh_page):
    """About open, a pipeline chosen: About stays open and the vector VAE's tabs leave the bar (with Gradio's
    visible=False they stayed: ``app.tab_visibility``)."""
    page = fresh_page
    page.wait_for_function("() => document.querySelector('#model-status')?.innerText.includes('48×48')")
    select_tab(page, "About")
    choose(page, "Model", "ldm")
    wait_for_tab(page, "Diffuse", shown=True)
    wait_for_tab(page, "Sample", shown=False)
    tabs = page.eval_on_selector_all("[role=tab]", "ts => ts.map(t => [t.innerText.trim(), t.ariaSelected])")
    assert dict(tabs) == {"Diffuse": "false", "Compare": "false", "About": "true"}


def test_the_tabs_the_chosen_model_cannot_do_are_hidden_and_no_error_shows(fresh_page, shots):
    page = fresh_page
    page.wait_for_function("() => document.querySelector('#model-status')?.innerText.includes('48×48')")
    assert "Diffuse needs a diffusion pipeline" in page.locator("#model-status").inner_text()
    wait_for_tab(page, "Diffuse", shown=False)
    wait_for_tab(page, "Text to image", shown=False)
    wait_for_tab(page, "Sample", shown=True)
    tabs = page.eval_on_selector_all("[role=tab]", "ts => ts.map(t => t.innerText.trim())")
    assert list(dict.fromkeys(tabs)) == list(
        explore.TABS["vector"]
    )  # (Gradio may list a tab twice: its overflow menu)
    assert not toasts(page)
    page.screenshot(path=str(shots / "vector_tabs.png"), full_page=True)


# Every change of the preview's and the result's image, in order: [[preview src, result src], …]
WATCH_JS = """([preview, result]) => {
  window.diffuseSeen = [];
  const look = () => {
    const now = [preview, result].map(s => document.querySelector(s + ' img')?.src ?? null);
    const last = window.diffuseSeen[window.diffuseSeen.length - 1];
    if (!last || last[0] !== now[0] || last[1] !== now[1]) window.diffuseSeen.push(now);
  };
  look();
  new MutationObserver(look).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ['src']});
}"""


def test_diffuse_streams_previews_before_the_grid_and_offers_the_gif(fresh_page, shots):
    page = fresh_page
    page.wait_for_function("() => document.querySelector('#model-status')?.innerText.includes('48×48')")
    choose(page, "Model", "ldm")  # a pipeline: its Diffuse tab opens
    page.wait_for_function(
        "() => document.querySelector('#model-status')?.innerText.includes('latent diffusion pipeline')"
    )
    wait_for_tab(page, "Diffuse", shown=True)
    page.locator("#diffuse-run").wait_for(state="visible")  # the open tab follows the model: Diffuse
    from playwright.sync_api import expect  # installed: the fixture skipped otherwise

    expect(page.get_by_label("Class", exact=True)).to_be_enabled()  # its choices are the pipeline's by now
    choose(page, "Class", "Sneaker")  # the pipeline's class names, filled in when it was chosen
    expect(page.get_by_label("Class", exact=True)).to_have_value("Sneaker")
    page.evaluate(WATCH_JS, ["#diffuse-preview", "#diffuse-grid"])
    page.click("#diffuse-run")
    page.wait_for_function(
        "() => { const i = document.querySelector('#diffuse-grid img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    seen = page.evaluate("window.diffuseSeen")
    assert seen[0] == [None, None]  # nothing shown before the run
    before_grid = [preview for preview, grid in seen if preview and grid is None]
    assert before_grid, f"no preview was shown before the final grid: {seen}"
    assert seen[-1][1] is not None
    width = explore.show(torch.zeros(16, 1, 12, 12)).width  # 16 images of 12 px, enlarged
    assert page.eval_on_selector("#diffuse-grid img", "i => i.naturalWidth") == width
    link = page.locator("#diffuse-gif a[download]")
    link.wait_for()
    assert link.get_attribute("download").endswith(".gif")
    gif = page.request.get(link.get_attribute("href"))
    with PIL.Image.open(io.BytesIO(gif.body())) as animation:  # every preview, then the result
        assert animation.format == "GIF" and animation.n_frames == 5  # 20 steps: after 4, 8, 12, 16, and the end
    assert not toasts(page)
    page.screenshot(path=str(shots / "diffuse.png"), full_page=True)


def test_text_to_image_streams_previews_before_the_grid_and_offers_the_gif(fresh_page, shots):
    page = fresh_page
    page.wait_for_function("() => document.querySelector('#model-status')?.innerText.includes('48×48')")
    choose(page, "Model", "tiny-sd")
    page.wait_for_function("() => document.querySelector('#model-status')?.innerText.includes('text-to-image')")
    wait_for_tab(page, "Text to image", shown=True)
    wait_for_tab(page, "Sample", shown=False)
    page.locator("#t2i-run").wait_for(state="visible")  # the open tab follows the model
    page.get_by_label("Prompt", exact=True).first.fill("red spaceship")
    page.evaluate(WATCH_JS, ["#t2i-preview", "#t2i-grid"])
    page.click("#t2i-run")
    page.wait_for_function(
        "() => { const i = document.querySelector('#t2i-grid img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    seen = page.evaluate("window.diffuseSeen")
    assert [preview for preview, grid in seen if preview and grid is None], f"no preview before the grid: {seen}"
    page.locator("#t2i-gif a[download]").wait_for()
    assert not toasts(page)
    page.screenshot(path=str(shots / "text_to_image.png"), full_page=True)


def test_compare_shows_three_captioned_columns(page, shots):
    select_tab(page, "Compare")
    assert page.get_by_label("Diffusion pipeline", exact=True).input_value() == "ldm"  # the only pipeline
    choose(page, "Vector VAE", "tiny")  # it has a mixture prior: three columns
    page.click("#compare-run")
    page.wait_for_function("() => document.querySelectorAll('#compare-grid .caption-label').length === 3")
    captions = page.locator("#compare-grid .caption-label").all_inner_texts()
    assert captions == [
        "N(0, I) prior · FD 8.62",
        "mixture prior · FD 5.54",
        "diffusion · FD 1.45 · class match 91.8%",
    ]
    page.wait_for_function(
        "() => [...document.querySelectorAll('#compare-grid img')].every(i => i.complete && i.naturalWidth > 0)"
    )
    rows = page.eval_on_selector_all("#compare-numbers table tr", "rs => rs.map(r => r.children[0].innerText)")
    assert rows[1:] == ["N(0, I) prior", "mixture prior", "diffusion"]
    page.screenshot(path=str(shots / "compare.png"), full_page=True)


def test_the_model_description_is_readable_on_a_phone(browser_space, shots):
    page = open_page(browser_space, width=390, height=844)
    try:
        page.wait_for_function("() => document.querySelector('#model-status')?.innerText.includes('48×48')")
        width = page.locator("#model-status").bounding_box()["width"]
        assert width > 300  # the full width of the screen, not a narrow column beside the model box
        page.screenshot(path=str(shots / "phone.png"), full_page=False)
    finally:
        page.context.close()
