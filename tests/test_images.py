"""The one PIL ↔ tensor path: exact uint8 ↔ float, every common PIL mode, any size in, (N, C, size, size) out."""

import io

import numpy as np
import PIL.Image
import pytest
import torch

from vae_hub.images import float_to_uint8, make_grid, pil_to_tensor, pil_to_uint8, tensor_to_pil, uint8_to_float


RED = (200, 30, 90)
RED_AS_GRAY = round(200 * 0.299 + 30 * 0.587 + 90 * 0.114)  # PIL's ITU-R 601-2 luma


def test_uint8_float_round_trip_is_exact():
    every_value = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    x = uint8_to_float(every_value)
    assert x.dtype == torch.float32 and x.min() == -1 and x.max() == 1
    assert torch.equal(float_to_uint8(x), every_value)
    assert float_to_uint8(torch.tensor([-3.0, -1.0, 0.0, 0.999, 1.0, 7.0])).tolist() == [0, 0, 128, 255, 255, 255]


def solid(mode: str, size=(12, 12)) -> PIL.Image.Image:
    """A uniform image whose colour, converted to the model's channels, is RED (or RED_AS_GRAY)."""
    if mode == "L":
        return PIL.Image.new("L", size, RED_AS_GRAY)
    if mode == "P":
        return PIL.Image.new("RGB", size, RED).convert("P", palette=PIL.Image.Palette.ADAPTIVE)
    if mode == "RGBA":
        return PIL.Image.new("RGBA", size, RED + (255,))
    if mode == "LA":
        return PIL.Image.new("LA", size, (RED_AS_GRAY, 255))
    return PIL.Image.new(mode, size, RED)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P"])
@pytest.mark.parametrize("channels", [1, 3])
def test_modes_convert_to_the_model_channels(mode, channels):
    x = pil_to_uint8([solid(mode), solid(mode)], size=12, channels=channels)
    assert x.shape == (2, channels, 12, 12) and x.dtype == torch.uint8
    if mode in ("L", "LA") and channels == 3:
        expected = [RED_AS_GRAY] * 3
    elif channels == 3:
        expected = list(RED)
    else:
        expected = [RED_AS_GRAY]
    assert torch.equal(x, torch.tensor(expected, dtype=torch.uint8).view(1, -1, 1, 1).expand_as(x))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_flattened_onto_black(mode):
    rgba = PIL.Image.new("RGBA", (4, 4), (255, 255, 255, 0))
    rgba.putpixel((0, 0), (255, 255, 255, 255))
    image = {"RGBA": rgba, "LA": rgba.convert("LA"), "P": rgba.convert("P")}[mode]
    x = pil_to_uint8([image], size=4, channels=1)[0, 0]
    assert x[0, 0] == 255 and (x.flatten()[1:] == 0).all()


def test_sixteen_bit_grayscale_png_is_rescaled_not_clipped():
    values = np.linspace(0, 65535, 16 * 16).round().astype(np.uint16).reshape(16, 16)
    buffer = io.BytesIO()
    PIL.Image.fromarray(values).save(buffer, format="PNG")
    image = PIL.Image.open(buffer)
    assert image.mode == "I;16"
    x = pil_to_uint8([image], size=16, channels=1)[0, 0].numpy()
    np.testing.assert_array_equal(x, np.round(values / 257).astype(np.uint8))
    assert x.min() == 0 and x.max() == 255 and len(np.unique(x)) > 200  # the whole range, not clipped at 255


@pytest.mark.parametrize("width, height", [(1, 1), (3000, 2000), (7, 300), (300, 7), (28, 28)])
@pytest.mark.parametrize("channels", [1, 3])
def test_any_size_gives_size_by_size(width, height, channels):
    x = pil_to_uint8([PIL.Image.new("RGB", (width, height), RED)], size=28, channels=channels)
    expected = list(RED) if channels == 3 else [RED_AS_GRAY]
    assert x.shape == (1, channels, 28, 28)
    assert (x.int() - torch.tensor(expected).view(1, -1, 1, 1)).abs().max() <= 1  # resampling keeps a flat colour


def test_non_square_images_are_centre_cropped():
    bands = np.zeros((20, 60), dtype=np.uint8)
    bands[:, 20:40] = 255  # black | white | black: the centre square is the white band
    x = pil_to_uint8([PIL.Image.fromarray(bands)], size=20, channels=1)
    assert (x == 255).all()
    tall = pil_to_uint8([PIL.Image.fromarray(np.ascontiguousarray(bands.T))], size=20, channels=1)
    assert (tall == 255).all()


def test_pil_to_tensor_and_back():
    array = np.random.default_rng(0).integers(0, 256, (9, 9, 3), dtype=np.uint8)
    x = pil_to_tensor(PIL.Image.fromarray(array), size=9, channels=3)  # a single image is accepted too
    assert x.shape == (1, 3, 9, 9) and x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    (back,) = tensor_to_pil(x)
    assert back.mode == "RGB" and np.array_equal(np.asarray(back), array)
    gray = tensor_to_pil(torch.zeros(2, 1, 5, 5))
    assert [g.mode for g in gray] == ["L", "L"] and np.asarray(gray[0]).tolist() == [[128] * 5] * 5


def test_channels_other_than_one_or_three_are_refused():
    with pytest.raises(ValueError, match="1 \\(grayscale\\) or 3 \\(RGB\\) channels"):
        pil_to_uint8([solid("RGB")], size=8, channels=2)


@pytest.mark.parametrize("channels", [1, 3])
def test_make_grid_layout(channels):
    b, h, w, padding, scale = 5, 7, 9, 1, 3
    x = uint8_to_float(torch.arange(b, dtype=torch.uint8).mul(50).view(b, 1, 1, 1).expand(b, channels, h, w))
    grid = make_grid(x, nrow=2, padding=padding, scale=scale)
    assert grid.mode == ("L" if channels == 1 else "RGB")
    assert grid.size == ((2 * (w + padding) + padding) * scale, (3 * (h + padding) + padding) * scale)
    array = np.asarray(grid)
    for i in range(b):  # image i sits in row i // 2, column i % 2; the padding is white
        top, left = (padding + (i // 2) * (h + padding)) * scale, (padding + (i % 2) * (w + padding)) * scale
        assert (array[top : top + h * scale, left : left + w * scale] == 50 * i).all()
    assert (array[:scale] == 255).all()
    assert make_grid(x).size == (3 * (w + 2) + 2, 2 * (h + 2) + 2)  # default: a square-ish grid, ceil(√5) = 3 per row
