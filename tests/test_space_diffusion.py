"""The Space's latent diffusion, in process: loading a pipeline within bounds, /diffuse (streamed x0 previews, seeded,
every scheduler, "any" class, a GIF of the path, bad input, a visitor who leaves), /compare's captions from the
models' own records, and which model kind has which tab. Tiny pipelines (``hub_doubles.tiny_pipeline_folder``);
the Space over HTTP is in test_space.py."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import PIL.Image
import pytest
import torch
from hub_doubles import PIPELINE_CLASSES, populate_hf_cache, tiny_pipeline_folder
from space_helpers import load_app, make_model
from test_hostile import FakeHub

from vae_hub import explore, space_models
from vae_hub.explore import Explorer, InputError
from vae_hub.pipelines import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS


VAE_RECORDS = {
    "standard_prior": {"kind": "vae", "prior": "standard", "num_samples": 10000, "frechet_distance": 8.6187},
    "mixture_prior": {"kind": "vae", "prior": "mixture", "num_samples": 2000, "frechet_distance": 5.5385},
}
AT_DEFAULTS = {
    "kind": "pipeline",
    "num_inference_steps": DEFAULT_NUM_INFERENCE_STEPS,
    "guidance_scale": DEFAULT_GUIDANCE_SCALE,
    "num_samples": 10000,
    "frechet_distance": 1.4508,
    "class_match": 0.9177,
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusion_models")
    vae = make_model(root / "vae", latent_dim=4)
    metrics = json.loads((vae / "metrics.json").read_text())
    (vae / "metrics.json").write_text(json.dumps({**metrics, "sample_quality": VAE_RECORDS}))
    ldm = tiny_pipeline_folder(root / "ldm")  # with pickles and checkpoints beside it, as a training run leaves it
    ldm_measured = tiny_pipeline_folder(root / "ldm-measured", clutter=False)
    metrics = json.loads((ldm_measured / "metrics.json").read_text())
    metrics["sample_quality"]["at_the_defaults"] = AT_DEFAULTS
    (ldm_measured / "metrics.json").write_text(json.dumps(metrics))
    (ldm_measured / "README.md").write_text(
        "---\nlibrary_name: diffusers\n---\n# A tiny pipeline\n\n![samples](samples.png)\n"
    )
    return {
        "vae": vae,
        "vae-2d": make_model(root / "vae-2d", latent_dim=2, mixture=False, seed=1),
        "ldm": ldm,
        "ldm-measured": ldm_measured,
    }


@pytest.fixture(scope="module")
def ex(folders, tmp_path_factory):
    return Explorer(list(folders), folders, explore.OutputFiles(tmp_path_factory.mktemp("files")))


def final(stream) -> tuple:
    """The last value of a /diffuse stream."""
    *_, last = stream
    return last


def pixels(image: PIL.Image.Image) -> bytes:
    return image.tobytes()


# ==================================================================================== loading
def test_a_pipeline_folder_loads_from_safetensors_with_its_classes(ex):
    pipe = ex.entry("ldm").model
    assert type(pipe).__name__ == "LatentDiffusionPipeline" and pipe.class_names == PIPELINE_CLASSES
    assert not pipe.unet.training and not any(p.requires_grad for p in pipe.unet.parameters())
    assert ex.warm("ldm") is None


@pytest.mark.parametrize(
    "break_it, message",
    [
        (
            lambda f: (f / "unet" / "diffusion_pytorch_model.safetensors").unlink(),
            "the pipeline is incomplete: unet/diffusion_pytorch_model.safetensors missing",
        ),
        (
            lambda f: patch_json(f / "unet" / "config.json", block_out_channels=[2048, 4096], norm_num_groups=32),
            r"its vae and unet configs imply [\d,]+ MiB of weights, above the limit of this Space of 256 MiB",
        ),
        (lambda f: patch_json(f / "unet" / "config.json", sample_size=1024), "its latents are 1024 px"),
        (
            lambda f: patch_json(f / "unet" / "config.json", layers_per_block=10**6),
            "its unet has more than 8 stages or 16 blocks per stage",
        ),
        (
            lambda f: patch_json(
                f / "unet" / "config.json", block_out_channels=[8] * 9, down_block_types=["DownBlock2D"] * 9
            ),
            "its unet has more than 8 stages or 16 blocks per stage",
        ),
        (lambda f: patch_json(f / "vae" / "config.json", sample_size=4096), "its vae/images are 4096 px"),
        (
            lambda f: patch_json(f / "vae" / "config.json", _class_name="AutoencoderKL"),
            "its vae/ holds a AutoencoderKL, not a",
        ),
        (
            lambda f: patch_json(f / "scheduler" / "scheduler_config.json", _class_name="os.system"),
            "its scheduler 'os.system' is not one of diffusers' schedulers",
        ),
        (
            lambda f: patch_json(f / "model_index.json", _class_name="StableDiffusionPipeline"),  # checked as one
            "its vae/ holds a 'SpatialVAEModel', not a AutoencoderKL",
        ),
        (lambda f: (f / "unet" / "config.json").write_text("{not json"), "its unet/config.json is not valid JSON"),
    ],
)
def test_a_bad_pipeline_is_refused_in_words_before_anything_is_allocated(tmp_path, break_it, message):
    folder = tiny_pipeline_folder(tmp_path / "bad", clutter=False)
    break_it(folder)
    ex = Explorer(["bad"], {"bad": folder}, explore.OutputFiles(tmp_path / "files"))
    for _ in range(2):  # the failure is remembered, with the same words
        with pytest.raises(InputError, match=message) as refused:
            ex.entry("bad")
        assert str(tmp_path) not in str(refused.value)


def patch_json(path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_a_hub_pipeline_is_sized_before_its_weights_are_downloaded(tmp_path, monkeypatch):
    good = tiny_pipeline_folder(tmp_path / "good", clutter=False)
    huge = tiny_pipeline_folder(tmp_path / "huge", clutter=False)
    patch_json(huge / "unet" / "config.json", block_out_channels=[2048, 4096], norm_num_groups=32)
    hub = FakeHub({"user/ldm": good, "user/huge-ldm": huge}, tmp_path / "cache")
    monkeypatch.setattr("huggingface_hub.HfApi.model_info", hub.model_info)
    monkeypatch.setattr("huggingface_hub.snapshot_download", hub.snapshot_download)
    ex = Explorer([], {}, explore.OutputFiles(tmp_path / "out"), allow_hub=True)
    with pytest.raises(InputError, match="above the limit of this Space of 256 MiB"):
        ex.entry("user/huge-ldm")
    assert not any(name.endswith(".safetensors") for name in hub.downloaded)  # only the configs were fetched
    assert ex.entry("user/ldm").model.class_names == PIPELINE_CLASSES
    assert {"unet/diffusion_pytorch_model.safetensors", "metrics.json", "training_info.json"} <= set(hub.downloaded)
    assert not any(name.endswith((".bin", ".py")) for name in hub.downloaded)
    assert "[user/ldm](https://huggingface.co/user/ldm)" in ex.about("user/ldm")


def test_a_pipeline_in_the_offline_hub_cache_loads(tmp_path, monkeypatch):
    folder = tiny_pipeline_folder(tmp_path / "ldm", clutter=False)
    files = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    populate_hf_cache(tmp_path / "hf", "user/ldm", files)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(space_models.hub_constants, "HF_HUB_OFFLINE", True)
    ex = Explorer([], {}, explore.OutputFiles(tmp_path / "out"), allow_hub=True)
    assert ex.entry("user/ldm").kind == "pipeline"


def test_shipped_pipelines_are_offered_after_the_vector_vaes(tmp_path):
    make_model(tmp_path / "models" / "b-vector", latent_dim=2, mixture=False)
    tiny_pipeline_folder(tmp_path / "models" / "a-ldm", clutter=False)
    ids, shipped = explore.default_model_ids(tmp_path, env={})
    assert ids == ["b-vector", "a-ldm"] and set(shipped) == set(ids)
    ex = Explorer(ids, shipped)
    assert ex.offered("pipeline") == ["a-ldm"] and ex.offered("vector") == ["b-vector"]


# ==================================================================================== /diffuse
def test_diffuse_streams_decoded_previews_before_the_final_grid_and_its_gif(ex):
    stream = list(ex.diffuse("ldm", "Trouser", 4, 6, 3.0, 0, "DDIM"))
    previews, (last_preview, grid, gif) = stream[:-1], stream[-1]
    assert len(previews) == 2  # six steps: after steps 2 and 4, then the final
    assert all(grid_ is None and gif_ is None for _, grid_, gif_ in previews)
    assert last_preview is grid and pixels(previews[0][0]) != pixels(grid)  # the first guess is not the result
    assert grid.size == previews[0][0].size == explore.show(torch.zeros(4, 1, 12, 12)).size
    with PIL.Image.open(gif) as animation:
        assert (
            animation.n_frames == len(stream)
            and animation.width == explore.show(torch.zeros(4, 1, 12, 12), width=explore.GIF_WIDTH).width
        )


def test_diffuse_previews_every_few_steps(ex):
    assert (
        len(list(ex.diffuse("ldm", "any", 2, 25, 4.0, 0, "Euler"))) == 5
    )  # after steps 5, 10, 15, 20; then the final


def test_diffuse_is_seeded(ex):
    first = final(ex.diffuse("ldm", "Sneaker", 4, 3, 4.0, 7, "DPM-Solver++"))[1]
    assert pixels(final(ex.diffuse("ldm", "Sneaker", 4, 3, 4.0, 7, "DPM-Solver++"))[1]) == pixels(first)
    for other in (
        ("Sneaker", 4, 3, 4.0, 8),
        ("Trouser", 4, 3, 4.0, 7),
        ("Sneaker", 4, 3, 1.0, 7),
        ("Sneaker", 4, 4, 4.0, 7),
    ):
        assert pixels(final(ex.diffuse("ldm", *other, "DPM-Solver++"))[1]) != pixels(first), other


@pytest.mark.parametrize(
    "scheduler, cls",
    [("DDIM", "DDIMScheduler"), ("DPM-Solver++", "DPMSolverMultistepScheduler"), ("Euler", "EulerDiscreteScheduler")],
)
def test_each_scheduler_runs_on_its_own_copy_of_the_pipelines_config(ex, scheduler, cls):
    pipe = ex.entry("ldm").model
    shared = (type(pipe.scheduler), dict(pipe.scheduler.config))
    own = explore.private_copy(pipe, scheduler)
    assert type(own.scheduler).__name__ == cls and own.scheduler is not pipe.scheduler
    assert own.unet is pipe.unet and own.vae is pipe.vae  # shared weights, no copy
    assert own.scheduler.config.num_train_timesteps == pipe.scheduler.config.num_train_timesteps == 100
    results = {name: pixels(final(ex.diffuse("ldm", "any", 4, 4, 4.0, 1, name))[1]) for name in explore.SCHEDULERS}
    assert len(set(results.values())) == 3  # three samplers, three results
    assert (type(pipe.scheduler), dict(pipe.scheduler.config)) == shared  # the shared pipeline is untouched


def test_concurrent_requests_with_other_schedulers_get_what_they_would_get_alone(ex):
    requests = [("Trouser", 4, 5, 4.0, s, name) for s, name in enumerate(explore.SCHEDULERS)] * 2
    alone = [pixels(final(ex.diffuse("ldm", *r))[1]) for r in requests]
    with ThreadPoolExecutor(len(requests)) as pool:
        together = list(pool.map(lambda r: pixels(final(ex.diffuse("ldm", *r))[1]), requests))
    assert together == alone


def test_any_class_draws_a_seeded_class_per_image_and_a_name_is_case_insensitive(ex):
    pipe = ex.entry("ldm").model
    labels = explore.class_labels(pipe, "any", 12, 3)
    assert labels == explore.class_labels(pipe, "any", 12, 3) and len(set(labels)) > 1
    assert labels != explore.class_labels(pipe, "any", 12, 4)
    assert explore.class_labels(pipe, "sneaker", 3, 0) == [2, 2, 2]


def test_a_visitor_who_leaves_stops_the_sampling(ex):
    unet = ex.entry("ldm").model.unet
    calls = []
    hook = unet.register_forward_hook(lambda *args: calls.append(1))
    try:
        stream = ex.diffuse("ldm", "any", 2, 100, 4.0, 0, "DDIM")
        next(stream)  # the first preview, after 100 / PREVIEWS = 20 of 100 steps
        stream.close()
    finally:
        hook.remove()
    assert 20 <= len(calls) <= 22  # interrupted at the next step, not run to the end
    assert not any(t.name == "diffuse" for t in threading.enumerate())


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ("ldm", "Cardigan", 4, 5, 4.0, 0, "DDIM"),
            "Class must be one of any, T-shirt/top, Trouser, Sneaker; got 'Cardigan'",
        ),
        (("ldm", None, 4, 5, 4.0, 0, "DDIM"), "Class must be one of any"),
        (("ldm", "any", 37, 5, 4.0, 0, "DDIM"), "Number of images must be a whole number from 1 to 36, got 37"),
        (("ldm", "any", 4, 0, 4.0, 0, "DDIM"), "Steps must be a whole number from 1 to 100, got 0"),
        (("ldm", "any", 4, 101, 4.0, 0, "DDIM"), "Steps must be a whole number from 1 to 100, got 101"),
        (("ldm", "any", 4, 5, 15.5, 0, "DDIM"), "Guidance scale must be a number from 0 to 15, got 15.5"),
        (("ldm", "any", 4, 5, float("nan"), 0, "DDIM"), "Guidance scale must be a number from 0 to 15"),
        (("ldm", "any", 4, 5, 4.0, -1, "DDIM"), "Seed must be a whole number"),
        (("ldm", "any", 4, 5, 4.0, 0, "PNDM"), "Scheduler must be one of DDIM, DPM-Solver\\+\\+, Euler; got 'PNDM'"),
        (
            ("vae", "any", 4, 5, 4.0, 0, "DDIM"),
            "vae is a vector VAE: it has a code and a prior, not a denoiser, so it has no "
            "diffusion sampling. Try Sample, .*, Latent map or Compare, or choose a diffusion pipeline",
        ),
    ],
)
def test_bad_diffuse_input_is_one_clear_error(ex, args, message):
    with pytest.raises(InputError, match=message):
        next(ex.diffuse(*args))


# ==================================================================================== /compare
def test_compare_captions_come_from_the_models_records(ex):
    columns, table = ex.compare("vae", "ldm-measured", 4, 0)
    assert [caption for _, caption in columns] == [
        "N(0, I) prior · FD 8.62",
        "mixture prior · FD 5.54",
        "diffusion · FD 1.45 · class match 91.8%",
    ]
    assert "| N(0, I) prior | vae | temperature 1 | 8.62 | – | 10,000 |" in table
    assert "| mixture prior | vae | temperature 1 | 5.54 | – | 2,000 |" in table
    assert (
        f"| diffusion | ldm-measured | {DEFAULT_NUM_INFERENCE_STEPS} steps, guidance {DEFAULT_GUIDANCE_SCALE:g}, "
        "DPMSolverMultistepScheduler, "
        "random classes | 1.45 | "
        "91.8% | 10,000 |"
    ) in table
    grids = [pixels(image) for image, _ in columns]
    assert len(set(grids)) == 3 and all(image.size == columns[0][0].size for image, _ in columns[:2])
    assert [pixels(image) for image, _ in ex.compare("vae", "ldm-measured", 4, 0)[0]] == grids  # seeded
    # the pipeline at these settings is drawn as /diffuse draws "any" with its own scheduler
    diffused = ex.diffuse(
        "ldm-measured", "any", 4, DEFAULT_NUM_INFERENCE_STEPS, DEFAULT_GUIDANCE_SCALE, 0, "DPM-Solver++"
    )
    assert grids[2] == pixels(final(diffused)[1])


def test_compare_says_not_measured_and_skips_a_missing_mixture(ex):
    columns, table = ex.compare("vae-2d", "ldm", 2, 0)  # no records; the pipeline measured at guidance 3 only
    assert [caption for _, caption in columns] == ["N(0, I) prior · not measured", "diffusion · not measured"]
    assert table.count("| not measured | – | – |") == 2


def test_compare_says_when_the_vae_and_the_pipeline_were_trained_on_different_data(folders, tmp_path):
    """Issue 29: a VAE of other data beside the pipeline is said; a local copy of the pipeline's Hub dataset is not."""
    same = make_model(tmp_path / "vae-same", dataset="../datasets/fashion-mnist")  # the pipeline's, as a local folder
    ex = Explorer(
        ["vae", "vae-same", "ldm"],
        {"vae": folders["vae"], "vae-same": same, "ldm": folders["ldm"]},
        explore.OutputFiles(tmp_path / "files"),
    )
    _, table = ex.compare("vae", "ldm", 2, 0)
    assert table.startswith(
        "**Different training data:** vae was trained on made-up, ldm on "
        "zalando-datasets/fashion_mnist: their samples and numbers do not compare like for like."
    )
    _, table = ex.compare("vae-same", "ldm", 2, 0)
    assert "Different training data" not in table and table.startswith("| |")


@pytest.mark.parametrize(
    "args, message",
    [
        (("ldm", "ldm", 4, 0), "ldm is a latent diffusion pipeline: .* so it has no prior samples to compare"),
        (("vae", "vae-2d", 4, 0), "vae-2d is a vector VAE: .* so it has no diffusion samples to compare"),
        (("vae", "ldm", 0, 0), "Number of images must be a whole number from 1 to 36"),
    ],
)
def test_bad_compare_input_is_one_clear_error(ex, args, message):
    with pytest.raises(InputError, match=message):
        ex.compare(*args)


# ==================================================================================== what each model can do
def test_a_pipeline_has_diffuse_compare_and_about_and_says_so_elsewhere(ex):
    assert "latent diffusion pipeline · 3 classes · 1×12×12 images" in ex.status("ldm")
    assert "Diffuse, Compare and About only" in ex.status("ldm")
    refusal = "ldm is a latent diffusion pipeline: .* Try Diffuse or Compare, or choose a (vector )?VAE"
    for call in (
        lambda: ex.sample("ldm"),
        lambda: ex.interpolate("ldm"),
        lambda: ex.decode_point("ldm", 0.0, 0.0),
        lambda: ex.traverse("ldm", "origin", None, 1, *[0.0] * explore.TRAVERSE_SLIDERS),
    ):
        with pytest.raises(InputError, match=refusal):
            call()
    with pytest.raises(InputError, match="ldm is a latent diffusion pipeline: .* no reconstruction. .* choose a VAE"):
        ex.reconstruct("ldm", PIL.Image.new("L", (12, 12)))
    image, words = ex.latent_map("ldm")
    assert image is None and "Diffuse tab" in words and ex.manifold("ldm") is None
    assert all(not u["visible"] for u in ex.slider_updates("ldm")[:-1])
    assert ex.class_choices("ldm") == {"choices": ["any", *PIPELINE_CLASSES], "value": "any", "interactive": True}
    assert ex.class_choices("vae") == {"choices": ["any"], "value": "any", "interactive": False}
    assert ex.tabs("ldm") == ("Diffuse", "Compare", "About") and all(ex.has_tab("ldm", t) for t in ex.tabs("ldm"))
    assert [tab for tab in ("Diffuse", "Compare", "About") if ex.has_tab("vae", tab)] == ["Compare", "About"]
    assert ex.kind("ldm") == "pipeline" and ex.kind("vae") == "vector"
    assert "Diffuse needs a diffusion pipeline" in ex.status("vae")


# ==================================================================================== navigation (issue 29, 2)
def test_choosing_a_model_or_a_tab_never_raises_it_enables_the_models_tabs():
    """Tabs that a model cannot use are disabled (not clickable) and the open one moves to the model's first."""
    fit_tabs = load_app().fit_tabs
    labels = ["Sample", "Latent map", "Diffuse", "Compare", "About"]
    assert fit_tabs(explore.TABS["vector"], "Diffuse", labels) == ("Sample", [True, True, False, True, True])
    assert fit_tabs(explore.TABS["pipeline"], "Sample", labels) == ("Diffuse", [False, False, True, True, True])
    assert fit_tabs(explore.TABS["pipeline"], "Compare", labels)[0] == "Compare"  # an open tab it has stays open
    assert fit_tabs(explore.TABS["spatial"], "Latent map", labels)[0] == "Reconstruct"


def test_a_space_serving_a_pipeline_first_opens_on_diffuse_and_its_api_defaults_are_valid(folders, tmp_path):
    """No error toast on the first page: it opens on a tab the first model has; /diffuse's defaults are a pipeline
    and its classes, even while the model box holds a VAE."""
    import gradio as gr

    app = load_app()
    first_pipeline = app.build_demo(Explorer(["ldm", "vae"], folders, explore.OutputFiles(tmp_path)))
    tabs = [b for b in first_pipeline.blocks.values() if isinstance(b, gr.Tab) and b.id]
    assert next(b for b in first_pipeline.blocks.values() if isinstance(b, gr.Tabs)).selected == "diffuse"
    assert [t.label for t in tabs if t.visible is True] == ["Diffuse", "Compare", "About"]
    assert {t.visible for t in tabs if t.label not in ("Diffuse", "Compare", "About")} == {
        "hidden"
    }  # app.tab_visibility
    first_vae = app.build_demo(Explorer(["vae", "ldm"], folders, explore.OutputFiles(tmp_path)))
    assert next(b for b in first_vae.blocks.values() if isinstance(b, gr.Tabs)).selected == "sample"
    diffuse = {p["parameter_name"]: p for p in first_vae.get_api_info()["named_endpoints"]["/diffuse"]["parameters"]}
    assert diffuse["model_id"]["parameter_default"] == "ldm"
    assert all(name in diffuse["label"]["python_type"]["type"] for name in PIPELINE_CLASSES)


def test_a_pipelines_about_shows_its_parts_records_and_card_without_paths(ex, folders):
    about = ex.about("ldm-measured")
    assert '| Conditioning | 3 classes + the "no class" label (classifier-free guidance) |' in about  # as in its card
    assert "SpatialVAEModel`, frozen; latents × scaling factor 0.5 |" in about
    assert (
        f"| this pipeline, {DEFAULT_NUM_INFERENCE_STEPS} steps, guidance {DEFAULT_GUIDANCE_SCALE:g} | 1.45 | 91.8% | 10,000 |"
        in about
    )
    assert "| this pipeline, 25 steps, guidance 3 | 12.35 | 87.3% | 10,000 |" in about
    assert "### Training" in about and "### Model card" in about and "# A tiny pipeline" in about
    assert "![samples](/gradio_api/file=" in about  # the card's figure, copied among the served files
    assert str(folders["ldm-measured"].parent) not in about


# ==================================================================================== the app's streamed endpoint
def test_a_streamed_endpoint_sends_files_as_they_come_and_closes_the_stream_when_the_visitor_leaves(tmp_path):
    import gradio as gr

    app = load_app()
    closed = []

    def stream(model_id, refuse=False):
        try:
            if refuse:
                raise InputError("Steps must be a whole number from 1 to 100, got 0.")
            yield PIL.Image.new("L", (4, 4)), None
            yield PIL.Image.new("L", (4, 4), 255), [(PIL.Image.new("L", (4, 4), 9), "a caption")]
        finally:
            closed.append(model_id)

    served = app.endpoint(stream, explore.OutputFiles(tmp_path))
    first, second = list(served("a"))
    assert first[0].endswith(".png") and first[1] is None
    assert second[1][0][0].endswith(".png") and second[1][0][1] == "a caption"
    values = served("b")
    next(values)
    values.close()  # Gradio closes the stream of a visitor who left
    assert closed == ["a", "b"]
    with pytest.raises(gr.Error, match="Steps must be a whole number"):
        next(served("c", refuse=True))
