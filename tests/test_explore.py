"""The Space's logic (vae_hub.explore) without Gradio: tiny models and data made here."""

import json
import math
import os
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageDraw
import PIL.ImageOps
import pytest
import torch
from space_helpers import make_coloured_model, make_model

from vae_hub import SpatialVAEModel, VAEModel, explore
from vae_hub.explore import Explorer, InputError, MapSample
from vae_hub.images import float_to_uint8, pil_to_uint8, uint8_to_float
from vae_hub.latent import encode_images


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "tiny": make_model(root / "tiny", latent_dim=4),
        "tiny-2d": make_model(root / "tiny-2d", latent_dim=2, mixture=False, seed=1),
        "tiny-rgb": make_model(
            root / "tiny-rgb", latent_dim=3, size=20, channels=3, mixture=False, seed=2, likelihood="gaussian"
        ),
    }


@pytest.fixture(scope="module")
def sample(folders):
    """tiny-2d's own latent-map sample (1×28×28, like tiny's)."""
    return MapSample.load(folders["tiny-2d"] / "latent_map_sample.npz")


@pytest.fixture(scope="module")
def ex(folders, tmp_path_factory):
    return Explorer(list(folders), dict(folders), explore.OutputFiles(tmp_path_factory.mktemp("files")))


@pytest.fixture(scope="module")
def model(ex):
    return ex.entry("tiny").model


def test_checks_name_the_field_and_range():
    assert explore.check_int(3.0, "n", 1, 5) == 3
    assert explore.check_float("0.5", "t", 0, 1) == 0.5
    for bad in (None, "x", 2.5, 0, 6, float("nan")):
        with pytest.raises(InputError, match="n must be a whole number from 1 to 5"):
            explore.check_int(bad, "n", 1, 5)
    for bad in (None, float("inf"), -0.1, 1.5):
        with pytest.raises(InputError, match="t must be a number from 0 to 1"):
            explore.check_float(bad, "t", 0, 1)
    with pytest.raises(InputError, match="one of a, b"):
        explore.check_choice("c", "Mode", ("a", "b"))
    assert 0 <= explore.new_seed() <= explore.MAX_SEED


def test_sample_images(model):
    grid = explore.sample_images(model, n=9, seed=1)
    scale = explore.display_scale(3 * 30 + 2)
    assert grid.size == ((3 * 30 + 2) * scale,) * 2 and grid.mode == "L"
    same = explore.sample_images(model, n=9, seed=1)
    assert same.tobytes() == grid.tobytes()
    assert explore.sample_images(model, n=9, seed=2).tobytes() != grid.tobytes()
    assert explore.sample_images(model, n=9, seed=1, temperature=0.3).tobytes() != grid.tobytes()
    assert explore.sample_images(model, n=9, seed=1, prior="mixture").tobytes() != grid.tobytes()
    assert explore.sample_images(model, n=1).size[0] <= explore.DISPLAY_WIDTH


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "Number of images"),
        ({"n": 65}, "Number of images"),
        ({"seed": -1}, "Seed"),
        ({"temperature": 2.5}, "Temperature"),
        ({"prior": "uniform"}, "Prior"),
    ],
)
def test_sample_images_rejects_out_of_range(model, kwargs, match):
    with pytest.raises(InputError, match=match):
        explore.sample_images(model, **kwargs)


def test_mixture_prior_missing_is_a_clear_message(ex):
    with pytest.raises(InputError, match="no fitted mixture prior"):
        explore.sample_images(ex.entry("tiny-2d").model, prior="mixture")


def _gradient(size=(28, 28), mode="L") -> PIL.Image.Image:
    """A dark-background image with a bright centre square."""
    array = np.zeros((size[1], size[0]), dtype=np.uint8)
    array[size[1] // 4 : 3 * size[1] // 4, size[0] // 4 : 3 * size[0] // 4] = 220
    return PIL.Image.fromarray(array).convert(mode)


def test_prepare_image_converts_what_it_can(model):
    x, notes = explore.prepare_image(_gradient(), model)
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.uint8 and notes == []
    assert torch.equal(x, pil_to_uint8([_gradient()], 28, 1))
    x, notes = explore.prepare_image(_gradient((40, 56), "RGB"), model)
    assert x.shape == (1, 1, 28, 28)
    assert notes == ["converted to greyscale", "centre-cropped from 40×56", "resized to 28×28"]
    rgba = _gradient(mode="RGBA")
    rgba.putalpha(128)
    _, notes = explore.prepare_image(rgba, model)
    assert "transparency flattened onto black" in notes
    light = PIL.ImageOps.invert(_gradient())
    x, notes = explore.prepare_image(light, model)
    assert torch.equal(x, pil_to_uint8([_gradient()], 28, 1)) and "inverted" in notes[-1]
    x, notes = explore.prepare_image(light, model, dark_background=False)
    assert notes == [] and x[0, 0, 0, 0] == 255


@pytest.mark.parametrize(
    "image, match",
    [
        (None, "No image"),
        (PIL.Image.new("L", (5, 5)), "too small"),
        (PIL.Image.new("L", (4100, 100)), "too large"),
        (PIL.Image.new("L", (90, 30)), "far from square"),
        (PIL.Image.new("RGBA", (30, 30)), "fully transparent"),
        ("not an image", "Expected an image"),
    ],
)
def test_prepare_image_refuses_bad_images(model, image, match):
    with pytest.raises(InputError, match=match):
        explore.prepare_image(image, model)


def test_sketch_alpha_becomes_white_on_black():
    canvas = PIL.Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    PIL.ImageDraw.Draw(canvas).rectangle((50, 20, 89, 59), fill=(0, 0, 0, 255))  # a black stroke
    image = explore.sketch_to_image({"background": None, "layers": [], "composite": canvas}, margin=0.0)
    assert image.mode == "L" and image.size == (40, 40)
    assert np.asarray(image).min() == 255  # cropped to the stroke, which became white
    framed = np.asarray(explore.sketch_to_image({"composite": canvas}))  # default margin: a black frame
    assert framed[0, 0] == 0 and framed[framed.shape[0] // 2, framed.shape[1] // 2] == 255
    white = PIL.Image.new("RGBA", (200, 100), (255, 255, 255, 255))  # Gradio 6 paints the canvas white
    PIL.ImageDraw.Draw(white).rectangle((50, 20, 89, 59), fill=(0, 0, 0, 255))
    assert np.array_equal(
        np.asarray(explore.sketch_to_image({"composite": white}, margin=0.0)), np.full((40, 40), 255)
    )


def test_opaque_sketch_is_cropped_to_the_strokes_by_brightness():
    canvas = PIL.Image.new("RGB", (280, 280), (255, 255, 255))
    PIL.ImageDraw.Draw(canvas).line((100, 60, 100, 200), fill=(0, 0, 0), width=10)
    image = np.asarray(explore.sketch_to_image({"composite": canvas}))
    assert image.shape[0] == image.shape[1] == round(141 * 1.08)  # the stroke's height plus the margins
    assert image[0, 0] == 0 and image[image.shape[0] // 2, image.shape[1] // 2] == 255


@pytest.mark.parametrize(
    "sketch",
    [
        None,
        {},
        {"composite": None},
        {"composite": PIL.Image.new("RGBA", (50, 50))},
        {"composite": PIL.Image.new("RGBA", (50, 50), (255, 255, 255, 255))},
    ],
)
def test_empty_sketch_is_refused(sketch):
    with pytest.raises(InputError, match="sketchpad is empty"):
        explore.sketch_to_image(sketch)


def test_reconstruct(model):
    x, _ = explore.prepare_image(_gradient(), model)
    rec = explore.reconstruct(model, x, ["a note"])
    assert rec.input.size == rec.reconstruction.size == (320, 320)  # 28 + 2·2 padding, ×10
    pixels = np.s_[20:300:10, 20:300:10]  # one screen pixel per image pixel: padding 2 and scale 10
    assert np.array_equal(np.asarray(rec.input)[pixels], x[0, 0].numpy())
    expected = float_to_uint8(model(uint8_to_float(x)).sample)[0, 0].numpy()
    assert np.array_equal(np.asarray(rec.reconstruction)[pixels], expected)
    mean = model.encode(uint8_to_float(x)).latent_dist.mean.flatten()
    np.testing.assert_allclose(rec.code["mean"], mean.numpy(), atol=1e-4)
    assert len(rec.code["std"]) == len(rec.code["kl_nats"]) == 4
    assert "nats" in rec.summary and "a note" in rec.summary
    assert rec.posterior.size == (720, 300)


def test_posterior_chart_draws_each_dimension_where_it_is():
    base, (left, top, right, bottom) = explore._posterior_axes(3)
    chart = explore.posterior_chart(np.array([0.0, 2.0, -9.0]), np.array([0.5, 0.5, 0.5]), np.array([1.0, 0.0, 0.5]))
    assert chart.size == base.size == (720, 300)

    def at(j, v):  # data → pixel, as the chart's axes map them
        return round(left + (j + 0.7) / 3 * (right - left)), round(
            top + (explore.POSTERIOR_RANGE - v) / 10 * (bottom - top)
        )

    for j, v in (
        (0, 0.0),
        (1, 2.0),
        (1, 2.5),
        (2, -explore.POSTERIOR_RANGE),
    ):  # means, an error bar's end, a clipped mean
        assert chart.getpixel(at(j, v)) != base.getpixel(at(j, v))
    assert chart.getpixel(at(1, 0.0)) == base.getpixel(at(1, 0.0))  # nothing drawn away from the points


def test_interpolate_strip_and_gif(model, tmp_path):
    files = explore.OutputFiles(tmp_path)
    z0, z1 = torch.randn(4), torch.randn(4)
    strip, gif = explore.interpolate(model, z0, z1, "slerp", 5, files)
    scale = explore.display_scale(5 * 30 + 2, 1024)
    assert strip.size == ((5 * 30 + 2) * scale, 32 * scale)
    with PIL.Image.open(gif) as animation:
        assert animation.n_frames == 8 and animation.size == (224, 224)  # forward 5, back 3
        first = np.asarray(animation.convert("L"))
    decoded = float_to_uint8(model.decode(z0[None]).sample)[0, 0].numpy()
    assert np.array_equal(first[::8, ::8], decoded)
    lerp_strip, lerp_gif = explore.interpolate(model, z0, z1, "lerp", 5, files)
    assert lerp_strip.tobytes() != strip.tobytes() and lerp_gif != gif
    assert explore.interpolate(model, z0, z1, "slerp", 5, files)[1] == gif  # same request, same file
    for method, steps, match in (("cubic", 5, "Interpolation"), ("lerp", 1, "Steps"), ("lerp", 33, "Steps")):
        with pytest.raises(InputError, match=match):
            explore.interpolate(model, z0, z1, method, steps, files)


def test_output_files_are_named_by_content_and_bounded(tmp_path):
    files = explore.OutputFiles(tmp_path, keep=3, prune_every=1000)
    images = [PIL.Image.new("L", (4, 4), v) for v in range(5)]
    paths = [files.png(im) for im in images]
    assert files.png(images[4]) == paths[4] and len(set(paths)) == 5
    with PIL.Image.open(paths[4]) as back:
        assert back.tobytes() == images[4].tobytes()
    for age, path in enumerate(paths):
        os.utime(path, (age, age))
    files.prune()
    assert sorted(tmp_path.iterdir()) == sorted(map(Path, paths[2:]))  # the newest three
    assert not list(tmp_path.glob(".*"))  # no half-written leftovers
    automatic = explore.OutputFiles(tmp_path / "auto", keep=2, prune_every=3)
    for v in range(9):
        automatic.png(PIL.Image.new("L", (4, 4), v))
    assert len(list((tmp_path / "auto").iterdir())) == 2  # pruned at the 9th write


def test_traverse_moves_one_dimension(model):
    base = torch.randn(4)
    image, row = explore.traverse(model, base, [2, 0], [0.0, 0.0], sweep=0)
    assert np.array_equal(
        np.asarray(image), np.asarray(explore.show(model.decode(base[None]).sample, nrow=1, width=336))
    )
    assert row.size[0] > 5 * row.size[1]
    moved, moved_row = explore.traverse(model, base, [2, 0], [1.5, 0.0], sweep=0)
    z = base.clone()
    z[2] += 1.5
    assert np.array_equal(np.asarray(moved), np.asarray(explore.show(model.decode(z[None]).sample, nrow=1, width=336)))
    # the sweep covers the swept dimension's whole range, so moving that slider leaves the row as it is
    assert np.array_equal(np.asarray(moved_row), np.asarray(row))
    assert not np.array_equal(
        np.asarray(explore.traverse(model, base, [2, 0], [1.5, 0.0], sweep=1)[1]), np.asarray(row)
    )


def test_latent_map_2d_is_the_latent_itself(ex, sample):
    entry = ex.entry("tiny-2d")
    m = entry.latent_map
    codes = encode_images(entry.model, sample.images)
    np.testing.assert_allclose(m.coords, codes.numpy(), atol=1e-6)
    assert m.axis_names == ("z₀", "z₁") and m.image.size == (820, 620)
    x0, x1, y0, y1 = m.box
    assert x1 - x0 == pytest.approx(y1 - y0, rel=1e-5)  # square, so manifold cells are square (float32 box)
    for x, y in ((x0, y1), (x1, y0), ((x0 + x1) / 2, (y0 + y1) / 3)):  # plane → pixel → plane
        left, top, right, bottom = m.axes_px
        px, py = left + (x - x0) / (x1 - x0) * (right - left), top + (y1 - y) / (y1 - y0) * (bottom - top)
        assert m.map_pixel_to_plane(px, py) == pytest.approx((x, y), rel=1e-6, abs=1e-5)
    assert m.map_pixel_to_plane(-50, 1e6) == pytest.approx((x0, y0), rel=1e-6, abs=1e-5)  # outside: clamped


def test_latent_map_pca_for_more_dimensions(ex, sample):
    m = ex.entry("tiny").latent_map
    assert m.directions.shape == (2, 4) and "PC 1" in m.axis_names[0]
    torch.testing.assert_close(m.directions @ m.directions.T, torch.eye(2), atol=1e-5, rtol=0)
    assert m.coords[:, 0].var() >= m.coords[:, 1].var()
    assert np.unique(m.labels).tolist() == [0, 1, 2]


def test_latent_map_of_an_rgb_model_uses_its_own_sample(ex):
    m = ex.entry("tiny-rgb").latent_map  # 3 channels, 20 px: its own sample, in its own format
    assert m.coords.shape == (60, 2) and ex.entry("tiny-rgb").sample.images.shape[1:] == (3, 20, 20)


def test_manifold_and_its_clicks(ex):
    entry = ex.entry("tiny-2d")
    m = entry.latent_map
    grid = explore.manifold(entry.model, m, 5)
    assert grid.size == (5 * 28 * explore.display_scale(140, explore.MANIFOLD_WIDTH),) * 2
    assert explore.manifold(entry.model, m, 6).size != grid.size
    assert ex.manifold("tiny-2d", 5).tobytes() == grid.tobytes()
    assert ex.manifold("tiny-2d", 5) is ex.manifold("tiny-2d", 5.0)  # computed once per model and size
    width = grid.size[0]
    x0, x1, y0, y1 = m.box
    step = float(x1 - x0) / 1000  # clicks come back rounded to a thousandth of the box, not with 16 digits
    for value in ex.manifold_click("tiny-2d", 7, 3, 5) + ex.map_click("tiny-2d", 301, 257):
        assert value == float(f"{value:.{max(0, 3 - math.floor(math.log10(x1 - x0)))}f}")
    assert ex.manifold_click("tiny-2d", 0, 0, 5) == pytest.approx((x0, y1), abs=step)
    assert ex.manifold_click("tiny-2d", width - 1, width - 1, 5) == pytest.approx((x1, y0), abs=step)
    # the top-left cell of the grid is the decoded top-left corner of the box
    corner = float_to_uint8(entry.model.decode(m.code(x0, y1)[None]).sample)[0, 0].numpy()
    scale = width // 140
    assert np.array_equal(np.asarray(grid)[: 28 * scale : scale, : 28 * scale : scale], corner)
    with pytest.raises(InputError, match="Grid size"):
        explore.manifold(entry.model, m, 2)


def test_decode_point(ex):
    m = ex.entry("tiny-2d").latent_map
    x, y = m.box[0] * 0.5, m.box[2] * 0.5
    image, marked = ex.decode_point("tiny-2d", x, y)
    assert image.size == (320, 320) and marked.size == (820, 620)
    changed = np.argwhere(np.any(np.asarray(marked) != np.asarray(m.image), axis=-1))
    left, top, right, bottom = m.axes_px
    centre = (
        top + (m.box[3] - y) / (m.box[3] - m.box[2]) * (bottom - top),
        left + (x - m.box[0]) / (m.box[1] - m.box[0]) * (right - left),
    )
    assert len(changed) and np.abs(changed.mean(0) - centre).max() < 2  # a crosshair centred on the point
    assert ex.decode_point("tiny-2d", -x, -y)[0].tobytes() != image.tobytes()
    with pytest.raises(InputError, match="x must be"):
        ex.decode_point("tiny-2d", 1e9, 0)


def test_sliders_follow_the_kl_order(ex):
    entry = ex.entry("tiny")
    order, kl = entry.kl
    updates = ex.slider_updates("tiny")
    assert len(updates) == explore.TRAVERSE_SLIDERS + 1
    dims = entry.slider_dims
    active = [(int(j), float(kl[j])) for j in order[: explore.TRAVERSE_SLIDERS] if kl[j] > explore.ACTIVE_KL_NATS]
    assert dims == (active or [(int(order[0]), float(kl[order[0]]))])
    assert [k for _, k in dims] == sorted((k for _, k in dims), reverse=True)
    assert all(u["visible"] for u in updates[: len(dims)])
    assert not any(u["visible"] for u in updates[len(dims) : explore.TRAVERSE_SLIDERS])
    assert f"z{dims[0][0]}" in updates[0]["label"]
    # the sweep selector names each choice as its slider's label starts, and its value is the slider's rank
    assert updates[-1]["choices"] == [(f"z{d}", rank + 1) for rank, (d, _) in enumerate(dims)]
    assert all(
        updates[rank]["label"].startswith(name + " ")
        for name, rank in ((name, value - 1) for name, value in updates[-1]["choices"])
    )


def test_explorer_traverse(ex):
    offsets = [0.0] * explore.TRAVERSE_SLIDERS
    origin, row = ex.traverse("tiny", "origin", None, 1, *offsets)
    from_image, _ = ex.traverse("tiny", "image", _gradient(), 1, *offsets)
    assert origin.tobytes() != from_image.tobytes()
    moved, _ = ex.traverse("tiny", "origin", None, 1, 2.0, *offsets[1:])
    assert moved.tobytes() != origin.tobytes()
    for args, match in (
        (("image", None, 1, *offsets), "no image"),
        (("origin", None, 1, 9.0, *offsets[1:]), "Slider 1"),
        (("origin", None, 99, *offsets), "Swept slider"),
        (("sideways", None, 1, *offsets), "Start"),
        (("origin", None, 1, 0.0), "Expected 10 slider values"),
    ):
        with pytest.raises(InputError, match=match):
            ex.traverse("tiny", *args)


def test_explorer_interpolate_and_reconstruct(ex):
    strip, gif = ex.interpolate("tiny", "seeds", None, None, 0, 1, "slerp", 4)
    assert gif.endswith(".gif") and strip.size[0] > strip.size[1]
    assert ex.interpolate("tiny", "seeds", None, None, 0, 2, "slerp", 4)[0].tobytes() != strip.tobytes()
    other = PIL.Image.fromarray(np.tril(np.full((28, 28), 200, dtype=np.uint8)))
    images, _ = ex.interpolate("tiny", "images", _gradient(), other, 0, 0, "lerp", 3)
    scale = explore.display_scale(3 * 30 + 2, 1024)
    assert images.size == (92 * scale, 32 * scale)  # 3 frames in a row
    with pytest.raises(InputError, match="Image B is missing"):
        ex.interpolate("tiny", "images", _gradient(), None)
    with pytest.raises(InputError, match="Seed A"):
        ex.interpolate("tiny", "seeds", None, None, -3, 1)
    outputs = ex.reconstruct("tiny-rgb", _gradient((30, 30)))
    assert outputs[0].mode == "RGB" and len(outputs[3]["mean"]) == 3
    sketch = PIL.Image.new("RGBA", (100, 100))
    PIL.ImageDraw.Draw(sketch).line((10, 10, 90, 90), fill=(0, 0, 0, 255), width=12)
    assert ex.reconstruct_sketch("tiny", {"composite": sketch})[0].size == (320, 320)


def test_model_ids_and_loading(folders, tmp_path):
    space = tmp_path / "space"
    make_model(space / "models" / "shipped-b", latent_dim=2, mixture=False)
    make_model(space / "models" / "shipped-a", latent_dim=2, mixture=False)
    (space / "models" / "not-a-model").mkdir()
    (space / "models" / "classifier").mkdir()  # another model class: not offered as a VAE
    (space / "models" / "classifier" / "config.json").write_text(json.dumps({"_class_name": "ImageClassifier"}))
    (space / "space_config.json").write_text(json.dumps({"model_id": "someone/deployed"}))
    ids, shipped = explore.default_model_ids(space, {"VAE_MODEL": f"{folders['tiny']}, shipped-a"})
    assert ids == [str(folders["tiny"]), "shipped-a", "someone/deployed", "shipped-b"]
    assert list(shipped) == ["shipped-a", "shipped-b"]
    ex = Explorer.from_space_dir(space, {})
    assert ex.model_ids == ["someone/deployed", "shipped-a", "shipped-b"] and ex.default_model == "someone/deployed"
    assert ex.entry("shipped-b") is ex.entry(" shipped-b ")  # loaded once
    with pytest.raises(InputError, match="not one of this Space's models"):
        ex.entry(str(folders["tiny"]))  # a folder typed by a visitor is never loaded
    configured = Explorer.from_space_dir(space, {"VAE_MODEL": str(folders["tiny"])})
    assert configured.model_ids[0] == folders["tiny"].name  # by its name: no server path in the box or the API
    assert configured.entry(folders["tiny"].name).model.config.latent_dim == 4  # configured by the owner
    with pytest.raises(InputError, match="not one of this Space's models"):
        configured.entry(str(folders["tiny"]))  # its path is not an id either
    assert "shipped-a" in ex.status("shipped-a")


def test_a_configured_folder_goes_by_its_base_name_never_its_path(tmp_path):
    """Issue 29: ``VAE_MODEL=/home/me/runs/mnist-vae`` is ``mnist-vae`` in the box, the API and the About heading;
    a second folder of the same name gets ``-2``."""
    first = make_model(tmp_path / "home" / "me" / "runs" / "mnist-vae", latent_dim=2, mixture=False)
    second = make_model(tmp_path / "elsewhere" / "mnist-vae", latent_dim=3, mixture=False)
    ex = Explorer([str(first), str(second), "someone/hub-model"], {})
    assert ex.model_ids == ["mnist-vae", "mnist-vae-2", "someone/hub-model"]
    assert ex.entry("mnist-vae-2").model.config.latent_dim == 3
    shown = ex.status("mnist-vae") + ex.about("mnist-vae")
    assert "## mnist-vae\n" in shown and str(tmp_path) not in shown and "/home/me" not in shown


@pytest.mark.parametrize(
    "model_id, match",
    [
        ("", "Choose a model"),
        (None, "Choose a model"),
        ("/no/such/folder", "not one of this Space's models"),
        ("a/b/c", "not one of this Space's models"),
        ("not a repo id!", "not one of this Space's models"),
        ("nobody/nothing-here", "not one of this Space's models"),  # Hub ids are the owner's opt-in
    ],
)
def test_bad_model_ids(ex, model_id, match):
    with pytest.raises(InputError, match=match):
        ex.entry(model_id)


def test_folder_that_is_not_ours(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    ex = Explorer(["kl"], {"kl": tmp_path})
    with pytest.raises(
        InputError,
        match="Cannot load model 'kl': it holds a UNet2DModel, not a VAEModel or SpatialVAEModel or AutoencoderKL",
    ) as refused:
        ex.entry("kl")
    assert str(tmp_path) not in str(refused.value)  # the model is named, its folder is not shown


def test_least_recently_used_models_are_dropped(folders):
    ex = Explorer(list(folders), dict(folders), max_models=2)
    first = ex.entry("tiny")
    ex.entry("tiny-2d")
    ex.entry("tiny")
    ex.entry("tiny-rgb")  # evicts tiny-2d, the least recently used
    assert ex.entry("tiny") is first and set(ex.models._entries) == {"tiny", "tiny-rgb"}


def test_about(ex):
    text = ex.about("tiny")
    assert "4-dimensional" in text and "3-component Gaussian mixture" in text
    assert "| Negative ELBO | 123.46 nats |" in text  # metrics.json, labelled as the card labels it
    assert "# A tiny test model" in text and "license: apache-2.0" not in text  # card without front matter
    assert "60 held-out images (made in a test)" in text  # its own sample
    assert "| Prior | N(0, I) |" in ex.about("tiny-2d")
    assert "![web](https://example.org/a.png)" in text
    assert "Shipped with this Space." in text and str(ex.entry("tiny").loaded.folder) not in text  # no server path


def test_map_sample_for_model_keeps_matching_images(sample):
    model = VAEModel(sample_size=28, block_out_channels=(8,), norm_num_groups=4, latent_dim=2)
    assert sample.for_model(model) is sample.images


# ------------------------------------------------------------------------------------------------ the model's own views
def rendered_tables(markdown: str) -> list[list[list[str]]]:
    """Each Markdown table as rows of cell texts, as a GFM renderer (markdown-it, tables on) sees them."""
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark").enable("table").render(markdown)
    tables = []
    for table in html.split("<table>")[1:]:
        rows = table.split("</table>")[0].split("<tr>")[1:]
        tables.append([[c.split("</t")[0] for c in row.replace("<th>", "<td>").split("<td>")[1:]] for row in rows])
    return tables


def test_about_tables_keep_their_columns_and_say_what_was_evaluated(tmp_path):
    folder = make_model(tmp_path / "m", latent_dim=2, mixture=False, dataset="some|pipe/data")
    metrics = {
        "dataset": "some|pipe/data",
        "split": "train[0.1 held out]",
        "num_images": 6,
        "negative_elbo_nats": 10.0,
        "reconstruction_nats": 8.0,
        "kl_nats": 2.0,
        "mse": 0.01,
        "likelihood_note": "a note",
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "training_info.json").write_text(json.dumps({"dataset_name": "some|pipe/data"}))
    text = Explorer([str(folder)], {}).about(folder.name)
    tables = rendered_tables(text)
    assert len(tables) >= 2 and all(len(row) == 2 for table in tables for row in table)  # no row split by a "|"
    cells = {row[0]: row[1] for table in tables for row in table}
    assert cells["Reconstruction term"] == "8.00 nats" and cells["KL to the prior"] == "2.00 nats"
    assert cells["MSE of reconstructions, pixels in [0, 1]"] == "0.01000"  # the convention of vae_hub.evaluate
    assert cells["Dataset"] == "<code>some|pipe/data</code>"
    assert "Numbers on held-out images" in text and "Test-set" not in text  # part of train, not a test split


def test_every_view_of_a_coloured_48px_model_comes_from_that_model(tmp_path):
    folder = str(make_coloured_model(tmp_path / "shapes"))
    ex = Explorer([folder], {})
    folder = Path(folder).name  # its id in the Space
    status = ex.status(folder)
    assert "3×48×48 images of `someone/coloured-shapes`" in status
    m = ex.entry(folder).latent_map
    assert m.class_names == ["red circle", "green square", "blue triangle"] and len(m.coords) == 30
    assert m.title.startswith("30 held-out images, coloured by class")
    image, description = ex.latent_map(folder)
    assert image is m.image and "coloured-shapes test split" in description
    about = ex.about(folder)
    assert "3×48×48, pixels in [-1, 1]" in about and "coloured-shapes test split" in about
    for text in (status, m.title, description, about.split("The example images")[0]):
        assert "Fashion" not in text and "28×28" not in text and "clothes" not in text
    assert ex.manifold(folder, 3).size[0] == 3 * 48 * explore.display_scale(3 * 48, explore.MANIFOLD_WIDTH)


def test_a_model_without_its_own_map_sample_says_the_map_is_not_available(tmp_path):
    folder = str(make_model(tmp_path / "bare", latent_dim=3, map_sample=False))
    ex = Explorer([folder], {})
    folder = Path(folder).name  # its id in the Space
    image, description = ex.latent_map(folder)
    assert image is None and "No latent map for this model" in description and "latent_map_sample.npz" in description
    assert ex.manifold(folder, 5) is None
    with pytest.raises(InputError, match="No latent map: this model ships no sample"):
        ex.decode_point(folder, 0.0, 0.0)
    assert ex.slider_updates(folder)[0]["visible"]  # the sliders are ordered on its own prior samples instead
    assert "No latent map" in ex.about(folder) and ex.warm(folder) is None


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"images": np.zeros((4, 1, 8, 8), np.float32), "labels": np.zeros(4, np.int64)}, "must be uint8"),
        ({"images": np.zeros((4, 2, 8, 8), np.uint8), "labels": np.zeros(4, np.int64)}, "must be uint8"),
        ({"images": np.zeros((4, 1, 8, 8), np.uint8), "labels": np.zeros(3, np.int64)}, "one class index per image"),
        (
            {"images": np.zeros((4, 1, 8, 8), np.uint8), "labels": np.full(4, 2), "class_names": np.array(["a", "b"])},
            "below its 2 class names",
        ),
        ({"images": np.zeros((4, 1, 8, 8), np.uint8)}, "not a readable .npz"),
        ({"images": np.zeros((4, 1, 8, 8), np.uint8), "labels": np.array([None] * 4, dtype=object)}, "not a readable"),
    ],
)
def test_a_bad_map_sample_is_refused_and_the_space_says_why(tmp_path, arrays, match):
    np.savez(tmp_path / "s.npz", **arrays)
    with pytest.raises(ValueError, match=match):
        MapSample.load(tmp_path / "s.npz")
    folder = make_model(tmp_path / "m", latent_dim=2, map_sample=False)
    os.replace(tmp_path / "s.npz", folder / "latent_map_sample.npz")
    assert "latent_map_sample.npz cannot be used" in Explorer([str(folder)], {}).latent_map(folder.name)[1]


def test_map_sample_from_a_split_is_stratified_and_round_trips(tmp_path):
    images = torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1).expand(50, 1, 4, 4).contiguous()
    labels = torch.arange(50) % 5
    sample = MapSample.from_images(images, labels, list("abcde"), "a split", per_class=3, seed=1)
    assert len(sample.labels) == 15 and np.bincount(sample.labels).tolist() == [3] * 5
    assert (sample.images[:, 0, 0, 0].numpy() % 5 == sample.labels).all()  # each image keeps its label
    sample.save(tmp_path / "s.npz")
    back = MapSample.load(tmp_path / "s.npz")
    assert torch.equal(back.images, sample.images) and back.class_names == list("abcde") and back.source == "a split"
    unlabelled = MapSample.from_images(images, None, None, "no labels")
    assert unlabelled.class_names == [] and (unlabelled.labels == 0).all() and len(unlabelled.labels) == 50


def test_the_dataset_shown_is_the_cards_or_a_folder_name_never_a_path(tmp_path):
    folder = make_model(tmp_path / "m", latent_dim=2, dataset="/data/private/fmnist")
    ex = Explorer([str(folder)], {})
    assert "images of `fmnist`" in ex.status(folder.name) and "/data/private" not in ex.about(folder.name)
    (folder / "README.md").write_text("---\ndatasets:\n- someone/the-data\n---\n# card\n")
    assert "images of `someone/the-data`" in Explorer([str(folder)], {}).status(folder.name)


def test_a_spatial_autoencoder_reconstructs_shows_its_latents_and_says_what_it_cannot_do(tmp_path):
    torch.manual_seed(0)
    SpatialVAEModel(
        block_out_channels=(8, 16), norm_num_groups=4, latent_channels=2, sample_size=12, scaling_factor=0.5
    ).save_pretrained(tmp_path / "spatial")
    ex = Explorer(["spatial"], {"spatial": tmp_path / "spatial"}, explore.OutputFiles(tmp_path / "files"))
    assert "spatial autoencoder, latents 2×8×8" in ex.status("spatial")
    seen, recon, latents, code, summary = ex.reconstruct("spatial", _gradient((12, 12)))
    assert seen.size == recon.size
    assert latents.width > latents.height  # the channels side by side
    assert code["shape"] == [2, 8, 8] and len(code["channel_std"]) == 2
    assert "what a diffusion model sees" in summary
    for call in (
        lambda: ex.sample("spatial"),
        lambda: ex.traverse("spatial", "origin", None, 1, *[0.0] * explore.TRAVERSE_SLIDERS),
        lambda: ex.decode_point("spatial", 0.0, 0.0),
    ):
        with pytest.raises(InputError, match="spatial is a spatial autoencoder .* Try Reconstruct or Interpolate"):
            call()
    with pytest.raises(InputError, match="no prior to draw codes from seeds, .* choose images"):
        ex.interpolate("spatial", "seeds")
    strip, gif = ex.interpolate(
        "spatial", "images", _gradient((12, 12)), _gradient((12, 12)).rotate(90), method="lerp", steps=4
    )
    assert strip.width > 3 * strip.height and Path(gif).suffix == ".gif"
    image, words = ex.latent_map("spatial")
    assert image is None and "spatial autoencoder" in words and ex.manifold("spatial") is None
    assert all(not u["visible"] for u in ex.slider_updates("spatial")[:-1])
    about = ex.about("spatial")
    assert "| Latents | 2×8×8 diagonal Gaussian posterior" in about and str(tmp_path) not in about
    assert ex.warm("spatial") is None


def test_shipped_vector_models_come_before_a_spatial_one(tmp_path):
    make_model(tmp_path / "models" / "b-vector", latent_dim=2, mixture=False)
    SpatialVAEModel(block_out_channels=(8, 16), norm_num_groups=4).save_pretrained(tmp_path / "models" / "a-spatial")
    (tmp_path / "models" / "classifier").mkdir()
    (tmp_path / "models" / "classifier" / "config.json").write_text(json.dumps({"_class_name": "ImageClassifier"}))
    ids, shipped = explore.default_model_ids(tmp_path, env={})
    assert ids == ["b-vector", "a-spatial"] and set(shipped) == {"b-vector", "a-spatial"}


def test_an_autoencoder_kl_reconstructs_rgb_interpolates_and_credits_its_data(tmp_path):
    """diffusers' AutoencoderKL (a folder trained by train_vae.py: likelihood.json, a data credit) in the Space: a
    transparent upload is flattened onto its white background (not inverted), interpolation runs between two images'
    latent maps, About credits the data."""
    from diffusers import AutoencoderKL

    from vae_hub import AutoencoderKLWithLikelihood

    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        norm_num_groups=4,
        latent_channels=4,
        sample_size=16,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
    )
    with torch.no_grad():
        vae.decoder.conv_out.bias.fill_(5.0)  # decodes white, like emoji on a white background
    folder = tmp_path / "models" / "emoji-vae"
    AutoencoderKLWithLikelihood(vae).save_pretrained(folder)
    (folder / "training_info.json").write_text(
        json.dumps(
            {"dataset_name": "/data/emoji", "dataset_credit": "Twemoji (CC-BY 4.0)", "dataset_license": "cc-by-4.0"}
        )
    )
    ids, shipped = explore.default_model_ids(tmp_path, env={})
    assert ids == ["emoji-vae"]  # its folder's config names AutoencoderKL: offered as a spatial autoencoder
    ex = Explorer(ids, shipped, explore.OutputFiles(tmp_path / "files"))
    assert ex.kind("emoji-vae") == "spatial" and "AutoencoderKL, latents 4×8×8" in ex.status("emoji-vae")
    assert ex.status("emoji-vae").endswith("**Training data:** Twemoji (CC-BY 4.0); dataset licence: `cc-by-4.0`")
    red = PIL.Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    PIL.ImageDraw.Draw(red).ellipse((8, 8, 24, 24), fill=(255, 0, 0, 255))
    seen, recon, latents, code, summary = ex.reconstruct("emoji-vae", red)
    corner, centre = seen.convert("RGB").getpixel((1, 1)), seen.convert("RGB").getpixel((seen.width // 2,) * 2)
    assert corner[0] > 200 and corner[1] > 200 and centre[0] > 200 and centre[1] < 60  # white ground, red disc
    assert "transparency flattened onto white" in summary and "inverted" not in summary
    assert code["shape"] == [4, 8, 8]
    strip, gif = ex.interpolate("emoji-vae", "images", red, red.rotate(90), method="slerp", steps=3)
    assert Path(gif).is_file()
    about = ex.about("emoji-vae")
    assert "| data credits | Twemoji (CC-BY 4.0); dataset licence: `cc-by-4.0` |" in about
    assert "Twemoji, CC-BY 4.0" in about and "/data/emoji" not in about
