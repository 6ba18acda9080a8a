"""Issue 26 in real Chromium: an inpaint mask drawn with the editor's brush, and a prompt walk, on the tiny
text-to-image model (a module of its own, with a Space of its own)."""

import io
import re

import numpy as np
import PIL.Image
import torch
from space_helpers import select_tab
from test_space_browser import (  # noqa: F401 (the fixtures browser_space, fresh_page and shots)
    _image_source,
    browser_space,
    choose,
    fresh_page,
    shots,
    toasts,
    wait_for_tab,
)


def open_text_to_image_tab(page, tab: str, button: str) -> None:
    """Choose the tiny text-to-image model and open its tab ``tab``, whose ``button`` then shows. The model's tabs
    arrive in an update after its status: it is waited for, so that it does not undo the click."""
    page.wait_for_function("() => document.querySelector('#model-status')?.innerText.includes('48×48')")
    choose(page, "Model", "tiny-sd")
    page.wait_for_function("() => document.querySelector('#model-status')?.innerText.includes('text-to-image')")
    wait_for_tab(page, tab, shown=True)
    wait_for_tab(page, "Sample", shown=False)
    select_tab(page, tab)
    page.locator(button).wait_for(state="visible")


def shown_images(page, selector: str, count: int, size: int = 16, padding: int = 2) -> torch.Tensor:
    """The ``count`` images (count, 3, size, size) uint8 of the one-row grid shown in ``selector`` (``explore.show``:
    ``padding`` px around each, enlarged by a whole factor), read from the PNG the page shows."""
    png = page.request.get(page.eval_on_selector(f"{selector} img", "i => i.src")).body()
    grid = torch.from_numpy(np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGB"))).permute(2, 0, 1)
    scale = grid.shape[-1] // (count * (size + padding) + padding)
    cells = [
        grid[:, padding * scale :: scale, (padding + k * (size + padding)) * scale :: scale][:, :size, :size]
        for k in range(count)
    ]
    return torch.stack(cells)


def quadrants(path, side: int = 256):
    """A picture of four flat colours (red, green / blue, yellow), saved at ``path``."""
    image = PIL.Image.new("RGB", (side, side))
    for (x, y), colour in zip(((0, 0), (1, 0), (0, 1), (1, 1)), ("#e02020", "#20c040", "#2040e0", "#f0d020")):
        image.paste(colour, (x * side // 2, y * side // 2, (x + 1) * side // 2, (y + 1) * side // 2))
    image.save(path)
    return image


INPAINT_NOTE = re.compile(r"Redrew (\d+)% of the image\. The rest changed by PSNR ([\d.]+) dB, against ([\d.]+) dB")


def test_a_mask_drawn_in_the_editor_redraws_only_that_part(fresh_page, shots, tmp_path):
    """Issue 26: upload a picture, paint a band down its left side with the editor's brush, inpaint: the server saw
    a mask of part of the image, the unmasked part changed no more than the autoencoder's own round trip changes
    it (its note), and another prompt redraws the band while the far right of the result stays as it was."""
    page = fresh_page
    open_text_to_image_tab(page, "Inpaint", "#inpaint-run")
    quadrants(tmp_path / "quadrants.png")
    image_tool, upload = (page.locator(f"#inpaint-editor button[aria-label='{name}']") for name in ("Image", "Upload"))
    image_tool.wait_for()
    if not upload.is_visible():  # the editor's image tool holds its upload button
        image_tool.click()
    with page.expect_file_chooser() as chooser:  # the editor's own upload button, as a person uploads
        upload.click()
    chooser.value.set_files(str(tmp_path / "quadrants.png"))
    # the editor shows the picture (its zoom level) in place of its "Upload an image …" prompt
    page.wait_for_function(
        "() => { const t = document.querySelector('#inpaint-editor').innerText; "
        "return /\\d+%/.test(t) && !t.includes('Upload an image'); }"
    )
    box = page.locator("#inpaint-editor canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2  # the picture's centre
    page.mouse.move(cx - 60, cy - 100)  # a band down the left half (the brush is selected with the picture)
    page.mouse.down()
    page.mouse.move(cx - 60, cy + 100, steps=12)
    page.mouse.up()
    page.get_by_label("Prompt", exact=True).locator("visible=true").first.fill("blue square, noto style")  # this tab's
    page.click("#inpaint-run")
    page.wait_for_function("() => document.querySelector('#inpaint-note')?.innerText.includes('Redrew')")
    note = page.locator("#inpaint-note").inner_text()
    share, unmasked, reconstruction = INPAINT_NOTE.search(note).groups()
    assert 0 < int(share) < 50, note  # the drawn band, not nothing and not everything
    # the criterion, as the unit test allows for: the latent mask's blocky edges aside
    assert float(unmasked) >= float(reconstruction) - 1.0, note
    page.wait_for_function(
        "() => { const i = document.querySelector('#inpaint-result img'); "
        "return i && i.complete && i.naturalWidth > 0; }"
    )
    first = shown_images(page, "#inpaint-result", 1)[0].float()
    # the same picture, mask and seed with another prompt: what changes is the band (the random tiny autoencoder
    # is too poor for the rest to look like the picture, but it must stay the same)
    before = _image_source(page, "#inpaint-result")
    page.get_by_label("Prompt", exact=True).locator("visible=true").first.fill("red disc, flat style")
    page.click("#inpaint-run")
    page.wait_for_function(
        "b => { const i = document.querySelector('#inpaint-result img'); "
        "return i && i.src !== b && i.complete && i.naturalWidth > 0; }",
        arg=before,
    )
    change = (shown_images(page, "#inpaint-result", 1)[0].float() - first).abs()
    far, band = change[:, :, 11:].mean(), change[:, 4:12, 3:5].mean()
    # the right third, 4+ px from the band, is kept (the decoder mixes a little of the band into it: ~1.7 of 255 with
    # these seeded tiny models); the band is redrawn (the tiny UNet heeds the prompt weakly: ~6 of 255)
    assert far < 3 and band > 2 * far, (far, band)
    assert not toasts(page)
    page.screenshot(path=str(shots / "inpaint.png"), full_page=True)


def test_prompt_walk_frames_arrive_and_differ_smoothly(fresh_page, shots):
    page = fresh_page
    open_text_to_image_tab(page, "Prompt walk", "#walk-run")
    page.get_by_label("Prompt A", exact=True).fill("red disc, flat style")
    page.get_by_label("Prompt B", exact=True).fill("blue square, noto style")
    frames = page.locator("#walk-frames input[type='number']")
    frames.fill("5")
    frames.press("Enter")
    page.click("#walk-run")
    page.wait_for_function(
        "() => { const i = document.querySelector('#walk-strip img'); return i && i.complete && i.naturalWidth > 0; }"
    )
    walk = shown_images(page, "#walk-strip", 5).float()
    steps = (walk[1:] - walk[:-1]).abs().mean(dim=(1, 2, 3))
    assert (steps > 0).all(), steps  # every frame moved on
    assert steps.max() < (walk[-1] - walk[0]).abs().mean(), steps  # no jump larger than the whole walk
    link = page.locator("#walk-gif a[download]")
    link.wait_for()
    with PIL.Image.open(io.BytesIO(page.request.get(link.get_attribute("href")).body())) as animation:
        assert animation.format == "GIF" and animation.n_frames == 8  # 5 frames forward, 3 back
    assert not toasts(page)
    page.screenshot(path=str(shots / "prompt_walk.png"), full_page=True)
