"""The Space's API as its page documents it (issue 29, item 5), in process: every parameter of every endpoint has
a name, and every value of a documented choice is taken; a session's own copy of a component refuses in one line
too (item 7). The calls over HTTP (every endpoint with values of the documented types, by name) are in
test_space.py; refusals and malformed calls in test_hostile.py."""

import ast
import asyncio
import re

import gradio as gr
import pytest
from gradio.state_holder import SessionState
from hub_doubles import tiny_pipeline_folder
from space_helpers import load_app, make_model

from vae_hub import explore
from vae_hub.explore import Explorer


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> gr.Blocks:
    root = tmp_path_factory.mktemp("api_models")
    folders = {
        "tiny": make_model(root / "tiny", latent_dim=4),
        "ldm": tiny_pipeline_folder(root / "ldm", clutter=False),
    }
    return load_app().build_demo(Explorer(list(folders), folders, explore.OutputFiles(root / "files")))


def documented_parameters(demo: gr.Blocks) -> list[tuple[str, dict, gr.components.Component]]:
    """(endpoint, its API page's entry, the component that reads it) for every parameter of every endpoint."""
    api = demo.get_api_info()["named_endpoints"]
    fns = {f"/{fn.api_name}": fn for fn in demo.fns.values() if f"/{fn.api_name}" in api}
    return [
        (name, parameter, component)
        for name, info in api.items()
        for parameter, component in zip(info["parameters"], fns[name].inputs, strict=True)
    ]


def test_every_parameter_of_every_endpoint_has_a_name(demo):
    names = [(endpoint, p["parameter_name"]) for endpoint, p, _ in documented_parameters(demo)]
    assert all(name.isidentifier() and not re.fullmatch(r"param_\d+", name) for _, name in names), names
    assert len(set(names)) == len(names)  # none twice in one endpoint
    traverse = [name for endpoint, name in names if endpoint == "/traverse"]
    assert traverse == ["model_id", "start", "image", "sweep", *(f"slider_{i}" for i in range(1, 11))]


def test_every_documented_choice_is_taken_as_written(demo):
    """A choice is documented as a string (``Literal['1', …]``): that string is what a caller sends, and the
    component reads it as its value (/traverse's ``sweep`` refused '1' and took only the integer)."""
    for _, parameter, component in documented_parameters(demo):
        documented = parameter["python_type"]["type"]
        for value in ast.literal_eval(documented.removeprefix("Literal")) if documented.startswith("Literal[") else ():
            component.preprocess(value)  # a gr.Error if refused
    sweep = next(c for e, p, c in documented_parameters(demo) if p["parameter_name"] == "sweep")
    assert sweep.preprocess("3") == 3 and sweep.preprocess(3) == 3


def test_whole_number_parameters_are_documented_as_int(demo):
    """A slider of whole numbers (images, steps, frames, grid points) is an ``int`` on the API page: documented as a
    float, 3.5 was refused by the endpoint."""
    for endpoint, parameter, component in documented_parameters(demo):
        if isinstance(component, (gr.Slider, gr.Number)):
            whole_steps = isinstance(component, gr.Slider) and float(component.step).is_integer()
            whole = component.precision == 0 or whole_steps
            assert parameter["python_type"]["type"] == ("int" if whole else "float"), (endpoint, parameter["label"])
            if whole:
                assert component.preprocess(3.0) == 3 and isinstance(component.preprocess(3.0), int)


@pytest.mark.parametrize(
    "value, words",
    [
        (float("nan"), "/sample: an input could not be read. Its inputs are"),
        ("c" * 100_000, "is not in the list of choices"),
    ],
)
def test_a_sessions_own_copy_of_a_component_refuses_in_one_line(demo, value, words):
    """Gradio gives a session its own copy of a component whose settings an event updated for it (choosing a model
    updates the sliders), made without the Space's wrapper: what it cannot read is still one short line, logged as
    one (no traceback), not Gradio's own words with the whole value."""
    fn = next(f for f in demo.fns.values() if f.api_name == "sample")
    state = SessionState(demo)
    for block in fn.inputs:
        state[block._id] = type(block)(**{**block.constructor_args, "render": False})
    inputs = ["tiny", 4, value, 1.0, "standard"] if isinstance(value, float) else ["tiny", 4, 0, 1.0, value]
    with pytest.raises(gr.Error) as refused:
        asyncio.run(demo.preprocess_data(fn, inputs, state))
    message = refused.value.message
    assert words in message and "\n" not in message and len(message) < 500 and not refused.value.print_exception
