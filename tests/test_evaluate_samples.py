"""vae_hub.evaluate_samples: the Fréchet distance against closed forms, class match, generators, determinism, CLI."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.linalg
import tiny
import torch
from datasets_util import CLASS_NAMES, make_images, write_hub_dataset
from diffusers import ImagePipelineOutput

import vae_hub
from vae_hub.classifier import ImageClassifier
from vae_hub.evaluate_samples import (
    CLASS_CONDITIONAL_RULE,
    FD_TIE,
    MIN_CLASS_MATCH,
    MIN_REFERENCE_ACCURACY,
    FeatureStatistics,
    SampleSource,
    evaluate_samples,
    frechet_distance,
    images_source,
    main,
    pipeline_source,
    recommend_class_conditional,
    reconstruction_source,
    vae_source,
)
from vae_hub.images import pil_to_uint8, uint8_to_float
from vae_hub.models import SpatialVAEModel, VAEModel


def gaussian(mean, covariance) -> FeatureStatistics:
    return FeatureStatistics(
        torch.as_tensor(mean, dtype=torch.float64), torch.as_tensor(covariance, dtype=torch.float64), 0
    )


def random_covariance(dim: int, rank: int, seed: int) -> torch.Tensor:
    a = torch.randn(dim, rank, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T


# ---------------------------------------------------------------- the closed form
def test_frechet_distance_of_identical_gaussians_is_zero():
    stats = gaussian(torch.arange(5.0), random_covariance(5, 5, seed=0))
    assert frechet_distance(stats, stats) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_in_one_dimension():
    """W2² between N(m1, s1²) and N(m2, s2²) is (m1 − m2)² + (s1 − s2)²."""
    assert frechet_distance(gaussian([1.0], [[4.0]]), gaussian([-2.0], [[0.25]])) == pytest.approx(9 + 1.5**2)


def test_frechet_distance_of_commuting_covariances():
    """Diagonal covariances: ‖Δμ‖² + Σ_i (√a_i − √b_i)²."""
    a, b = torch.tensor([1.0, 4.0, 9.0, 0.0]), torch.tensor([4.0, 1.0, 9.0, 2.25])
    expected = 3.0 + ((a.sqrt() - b.sqrt()) ** 2).sum().item()
    got = frechet_distance(gaussian([1.0, 1, 1, 0], torch.diag(a)), gaussian([0.0, 0, 0, 0], torch.diag(b)))
    assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("rank", [6, 3])  # full rank, and singular (fewer samples than features)
def test_frechet_distance_matches_scipy_sqrtm_for_general_covariances(rank):
    s1, s2 = random_covariance(6, rank, seed=1), random_covariance(6, rank, seed=2)
    m1, m2 = torch.randn(6, dtype=torch.float64), torch.zeros(6, dtype=torch.float64)
    root = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy())
    expected = ((m1 - m2) ** 2).sum().item() + np.trace(s1.numpy() + s2.numpy() - 2 * np.real(root))
    assert frechet_distance(gaussian(m1, s1), gaussian(m2, s2)) == pytest.approx(expected, rel=1e-7, abs=1e-8)
    # symmetric to the same precision as scipy's: for singular covariances the square root of the product is
    # ill-conditioned, and the two orders round differently (seen: 1.8e-9 relative with scipy 1.17 / numpy 2.4)
    assert frechet_distance(gaussian(m1, s1), gaussian(m2, s2)) == pytest.approx(
        frechet_distance(gaussian(m2, s2), gaussian(m1, s1)), rel=1e-7
    )


def test_statistics_of_samples_estimate_the_distance_between_their_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200_000, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5])
    b = torch.randn(200_000, 3, generator=g, dtype=torch.float64) + torch.tensor([1.0, 0.0, 0.0])
    expected = 1.0 + 0 + 1.0 + 0.25  # ‖Δμ‖² + Σ (σ_a − σ_b)²
    assert frechet_distance(FeatureStatistics.of(a), FeatureStatistics.of(b)) == pytest.approx(expected, abs=0.03)


# ---------------------------------------------------------------- measuring generators
@pytest.fixture(scope="module")
def trained_classifier(tmp_path_factory) -> ImageClassifier:
    """A tiny classifier trained (by the project's script) on the stripe classes of datasets_util."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    import train_classifier

    root = tmp_path_factory.mktemp("classifier")
    data = write_hub_dataset(root / "data", n_train=96, n_test=32)
    train_classifier.main(
        train_classifier.parse_args(
            [
                "--dataset_name",
                str(data),
                "--output_dir",
                str(root / "model"),
                "--cache_dir",
                str(root / "cache"),
                "--channels",
                "4",
                "8",
                "--layers_per_block",
                "1",
                "--feature_dim",
                "8",
                "--train_batch_size",
                "16",
                "--num_train_epochs",
                "20",
                "--lr_warmup_steps",
                "2",
                "--learning_rate",
                "1e-2",
                "--seed",
                "1",
            ]
        )
    )
    return ImageClassifier.from_pretrained(root / "model").eval()


def labelled_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    pils, labels = make_images(n, size=8, seed=seed)
    return pil_to_uint8(pils, 8, 1), torch.tensor(labels)


class FakePipeline:
    """What ``pipeline_source`` needs of a ``LatentDiffusionPipeline``: real images of the asked classes.

    ``shift`` answers class k with images of class k + shift (a generator that ignores its prompt).
    """

    class_names = list(CLASS_NAMES)

    def __init__(self, shift: int = 0, size: int = 8):
        self.images, self.labels = labelled_images(400, seed=7)
        self.shift, self.size, self.calls = shift, size, []

    def __call__(
        self,
        class_labels=None,
        num_images_per_class=1,
        num_inference_steps=25,
        guidance_scale=3.0,
        generator=None,
        output_type="pil",
    ):
        self.calls.append(
            {
                "class_labels": class_labels,
                "num_images_per_class": num_images_per_class,
                "num_inference_steps": num_inference_steps,
                "guidance_scale": guidance_scale,
                "output_type": output_type,
            }
        )
        picks = []
        for label in class_labels:
            pool = torch.nonzero(self.labels == (label + self.shift) % len(CLASS_NAMES)).flatten()
            picks.append(pool[torch.randint(len(pool), (1,), generator=generator)])
        images = self.images[torch.cat(picks)].float() / 255  # "pt": [0, 1]
        return ImagePipelineOutput(images=torch.nn.functional.interpolate(images, size=self.size))


def test_a_pipeline_that_draws_the_asked_class_matches_it_and_one_that_does_not_fails(trained_classifier):
    reference, labels = labelled_images(64, seed=3)
    pipe = FakePipeline()
    good = evaluate_samples(
        pipeline_source(pipe), trained_classifier, reference, labels, num_samples=40, batch_size=16, progress=False
    )
    bad = evaluate_samples(
        pipeline_source(FakePipeline(shift=1)),
        trained_classifier,
        reference,
        labels,
        num_samples=40,
        batch_size=16,
        progress=False,
    )
    assert good["classifier_accuracy_on_reference"] >= 0.9
    assert good["class_match"] >= 0.9 and bad["class_match"] <= 0.1
    assert set(good["class_match_per_class"]) == set(CLASS_NAMES)
    assert good["class_balanced"] and good["predicted_class_shares"]["two"] == pytest.approx(0.25, abs=0.1)
    # one image per label, labels 0, 1, 2, 3, 0, ... in batches of 16 (the last one 8), pt output, defaults recorded
    assert [len(call["class_labels"]) for call in pipe.calls] == [16, 16, 8]
    assert pipe.calls[0]["class_labels"][:6] == [0, 1, 2, 3, 0, 1]
    assert {(c["num_images_per_class"], c["output_type"]) for c in pipe.calls} == {(1, "pt")}
    assert (good["kind"], good["num_inference_steps"], good["guidance_scale"]) == ("pipeline", 25, 3.0)
    flagged = pipeline_source(pipe, num_inference_steps=7, guidance_scale=1.5)
    flagged.sample(2, torch.tensor([0, 1]), torch.Generator())
    assert (pipe.calls[-1]["num_inference_steps"], pipe.calls[-1]["guidance_scale"]) == (7, 1.5)


def test_real_images_are_closer_to_the_reference_than_generated_ones(trained_classifier):
    """The floor: held-out real images of the same distribution beat a VAE that never trained."""
    reference, labels = labelled_images(64, seed=3)
    real, _ = labelled_images(64, seed=4)
    floor = evaluate_samples(
        images_source(real), trained_classifier, reference, labels, num_samples=64, batch_size=16, progress=False
    )
    same = evaluate_samples(
        images_source(reference), trained_classifier, reference, labels, num_samples=64, batch_size=16, progress=False
    )
    untrained = evaluate_samples(
        vae_source(tiny_vae()), trained_classifier, reference, labels, num_samples=64, batch_size=16, progress=False
    )
    assert same["frechet_distance"] == pytest.approx(0, abs=1e-9)  # the same 64 images, in another order
    assert 0 < floor["frechet_distance"] < untrained["frechet_distance"] / 3
    assert floor["class_match"] is None and floor["kind"] == "real images"


def tiny_vae(prior_components: int = 0) -> VAEModel:
    return tiny.tiny_vae(sample_size=8, prior_components=prior_components).eval()


def test_same_seed_same_numbers_other_seed_other_numbers(trained_classifier):
    reference, labels = labelled_images(32, seed=3)
    vae = tiny_vae(prior_components=3)

    def run(source, seed):
        return evaluate_samples(
            source, trained_classifier, reference, labels, num_samples=24, batch_size=10, seed=seed, progress=False
        )

    for make in (
        lambda: vae_source(vae, "standard"),
        lambda: vae_source(vae, "mixture"),
        lambda: images_source(reference),
        lambda: reconstruction_source(vae, reference),
        lambda: pipeline_source(FakePipeline()),
    ):
        first, second, other = run(make(), 5), run(make(), 5), run(make(), 6)
        for result in (first, second, other):
            result.pop("samples_per_second")
        assert first == second
        assert other["frechet_distance"] != first["frechet_distance"]
    json.dumps(first)  # JSON-ready


def test_generators_must_fit_the_classifier(trained_classifier):
    reference, _ = labelled_images(16, seed=3)
    with pytest.raises(ValueError, match="must agree on channels and size"):
        evaluate_samples(pipeline_source(FakePipeline(size=10)), trained_classifier, reference, progress=False)
    nan = SampleSource(lambda n, labels, g: torch.full((n, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="NaN"):
        evaluate_samples(nan, trained_classifier, reference, progress=False)
    pipe = FakePipeline()
    pipe.class_names = ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match=r"classes \['a', 'b', 'c', 'd'\] are not the classifier's"):
        evaluate_samples(pipeline_source(pipe), trained_classifier, reference, progress=False)
    with pytest.raises(ValueError, match="3 classes, the classifier 4"):
        evaluate_samples(SampleSource(None, ["x", "y", "z"]), trained_classifier, reference, progress=False)
    with pytest.raises(ValueError, match="no mixture prior"):
        vae_source(tiny_vae(), "mixture")
    pipe.class_names = ["0", "1", "2", "3"]  # MNIST's digits are names too: not the classifier's classes
    with pytest.raises(
        ValueError,
        match=r"classes \['0', '1', '2', '3'\] are not the classifier's .* does not fit; "
        r"train one .* training/train_classifier.py .* --classifier",
    ):
        evaluate_samples(pipeline_source(pipe), trained_classifier, reference, progress=False)
    with pytest.raises(ValueError, match="reference images must be uint8"):
        evaluate_samples(images_source(reference), trained_classifier, reference.float(), progress=False)


def test_a_classifier_that_does_not_know_the_reference_images_is_refused(trained_classifier):
    """Its accuracy on the labelled reference below the stated threshold: no numbers, the fix named."""
    reference, labels = labelled_images(32, seed=3)
    wrong = (labels + 1) % len(CLASS_NAMES)  # the same images under other labels: ~0 % right
    with pytest.raises(
        ValueError,
        match=rf"does not fit the reference images: it classifies \d+.\d% of them right, "
        rf"below {MIN_REFERENCE_ACCURACY:.0%}; train one .*train_classifier.py",
    ):
        evaluate_samples(
            pipeline_source(FakePipeline()), trained_classifier, reference, wrong, num_samples=8, progress=False
        )


# ---------------------------------------------------------------- command line
@pytest.fixture
def folders(tmp_path, trained_classifier):
    trained_classifier.save_pretrained(tmp_path / "classifier")
    tiny_vae(prior_components=2).save_pretrained(tmp_path / "vae")
    (tmp_path / "vae" / "metrics.json").write_text(json.dumps({"iw_nll_nats": 123.0, "command": "python -m x"}))
    data = write_hub_dataset(tmp_path / "data", n_train=40, n_test=24)
    return SimpleNamespace(classifier=tmp_path / "classifier", vae=tmp_path / "vae", data=data, root=tmp_path)


def cli(folders, *extra) -> dict:
    return main(
        [
            "--classifier",
            str(folders.classifier),
            "--dataset_name",
            str(folders.data),
            "--num_samples",
            "20",
            "--batch_size",
            "8",
            "--cache_dir",
            str(folders.root / "cache"),
            *extra,
        ]
    )


def test_cli_writes_and_records_both_priors_keeping_the_rest_of_metrics_json(folders, capsys):
    output = folders.root / "samples.json"
    standard = cli(folders, "--generator", str(folders.vae), "--output", str(output), "--record")
    assert json.loads(capsys.readouterr().out) == json.loads(output.read_text()) == standard
    mixture = cli(folders, "--generator", str(folders.vae), "--prior", "mixture", "--record")
    recorded = json.loads((folders.vae / "metrics.json").read_text())
    assert recorded["iw_nll_nats"] == 123.0 and recorded["command"] == "python -m x"  # untouched
    assert recorded["sample_quality"] == {"standard_prior": standard, "mixture_prior": mixture}
    assert mixture["command"].startswith(f"python -m vae_hub.evaluate_samples --classifier {folders.classifier} ")
    assert (mixture["prior"], mixture["split"], mixture["num_reference_images"]) == ("mixture", "test", 24)
    assert not list(folders.vae.glob("*.partial"))


def test_cli_measures_the_floor_and_reconstructions(folders):
    floor = cli(folders, "--generator", str(folders.data), "--generator_split", "train")
    reconstructions = cli(folders, "--generator", str(folders.vae), "--reconstruct_split", "train", "--record")
    assert (floor["kind"], floor["images_split"], floor["split"]) == ("real images", "train", "test")
    assert (reconstructions["kind"], reconstructions["images_split"]) == ("vae reconstructions", "train")
    recorded = json.loads((folders.vae / "metrics.json").read_text())["sample_quality"]
    assert recorded["reconstructions_train"]["frechet_distance"] == reconstructions["frechet_distance"]


def test_cli_measures_a_spatial_vae_by_its_reconstructions_only(folders, capsys):
    spatial = folders.root / "spatial"
    SpatialVAEModel(sample_size=8, block_out_channels=(8, 16), norm_num_groups=4, latent_channels=2).save_pretrained(
        spatial
    )
    result = cli(folders, "--generator", str(spatial), "--reconstruct_split", "train")
    assert result["kind"] == "vae reconstructions" and result["frechet_distance"] > 0
    with pytest.raises(SystemExit):
        cli(folders, "--generator", str(spatial))
    assert "holds a SpatialVAEModel, which has no prior to sample" in capsys.readouterr().err


def test_cli_runs_a_pipeline_folder(folders, monkeypatch):
    class FakePipelineClass:
        @classmethod
        def from_pretrained(cls, path):
            pipe = FakePipeline()
            pipe.to = lambda device: pipe
            pipe.set_progress_bar_config = lambda **kwargs: None
            return pipe

    pipeline_dir = folders.root / "pipeline"
    pipeline_dir.mkdir()
    (pipeline_dir / "model_index.json").write_text("{}")
    monkeypatch.setattr(vae_hub.pipelines, "LatentDiffusionPipeline", FakePipelineClass)
    result = cli(folders, "--generator", str(pipeline_dir), "--num_inference_steps", "10", "--record")
    assert (result["kind"], result["num_inference_steps"], result["guidance_scale"]) == ("pipeline", 10, 3.0)
    assert result["class_match"] >= 0.9
    recorded = json.loads((pipeline_dir / "metrics.json").read_text())
    assert list(recorded["sample_quality"]) == ["steps_10_guidance_3_n20"]  # FD depends on N: the key says it
    cli(folders, "--generator", str(pipeline_dir), "--num_inference_steps", "5", "--record", "--recommend")
    recorded = json.loads((pipeline_dir / "metrics.json").read_text())
    assert recorded["recommended_settings"] == recommend_class_conditional(recorded["sample_quality"], 20)
    assert recorded["recommended_settings"]["chosen_from"] == 2


def test_cli_recommend_is_for_pipelines_and_needs_an_eligible_record(folders, capsys):
    with pytest.raises(SystemExit):
        cli(folders, "--generator", str(folders.vae), "--record", "--recommend")
    assert "--recommend chooses a pipeline's sampling setting" in capsys.readouterr().err


def record(steps: int, guidance: float, fd: float, class_match: float, num_samples: int = 2000) -> dict:
    return {
        "kind": "pipeline",
        "num_inference_steps": steps,
        "guidance_scale": guidance,
        "frechet_distance": fd,
        "class_match": class_match,
        "num_samples": num_samples,
    }


def test_recommend_class_conditional_takes_the_lowest_fd_above_the_class_match_floor():
    records = {
        "a": record(25, 1.5, 0.3, MIN_CLASS_MATCH - 0.01),  # closest to the data, but too often the wrong class
        "b": record(25, 2.5, 0.6, MIN_CLASS_MATCH),  # the lowest FD of the rest
        "c": record(20, 2.5, 0.6 + FD_TIE, 0.97),  # a tie with b in fewer steps: chosen
        "d": record(10, 3.0, 0.6 + 2 * FD_TIE, 0.98),  # fewer steps still, but no tie
        "e": record(20, 2.0, 0.1, 0.99, num_samples=10_000),
    }  # another N: not comparable
    chosen = recommend_class_conditional(records, 2000)
    assert chosen == {
        "num_inference_steps": 20,
        "guidance_scale": 2.5,
        "rule": CLASS_CONDITIONAL_RULE,
        "chosen_from": 4,
        "num_samples": 2000,
    }
    assert recommend_class_conditional(records, 10_000)["guidance_scale"] == 2.0
    with pytest.raises(ValueError, match="none of the 1 settings recorded with 2000 samples has a class match"):
        recommend_class_conditional({"a": records["a"]}, 2000)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--num_samples", "1"], "--num_samples must be >= 2"),
        (["--num_inference_steps", "10"], "--num_inference_steps is for a diffusion pipeline"),
        (["--prior", "mixture", "--reconstruct_split", "train"], "exclude each other"),
        (["--reconstruct_split", "train", "--num_samples", "41"], "has 40 images, fewer than --num_samples 41"),
        (["--split", "validation"], "no split 'validation'"),
        (["--output", "/no/such/folder/m.json"], "folder does not exist"),
        (["--num_sample", "10"], "unrecognized arguments"),  # no abbreviations
    ],
)
def test_cli_errors_are_one_line(folders, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        cli(folders, "--generator", str(folders.vae), *extra)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in error and message in error


def test_cli_refuses_a_classifier_of_other_data(folders, capsys):
    """Issue 29: an MNIST-like dataset ("0"…"3") measured with a classifier of other classes exits 2, in one line."""
    digits = write_hub_dataset(folders.root / "digits", n_train=24, n_test=24, class_names=("0", "1", "2", "3"))
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "--classifier",
                str(folders.classifier),
                "--dataset_name",
                str(digits),
                "--num_samples",
                "8",
                "--cache_dir",
                str(folders.root / "cache"),
                "--generator",
                str(folders.vae),
            ]
        )
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--dataset_name {digits}'s classes ['0', '1', '2', '3'] are not the classifier's" in error
    assert "training/train_classifier.py" in error and "--classifier" in error


def one_line_error(capsys, run, *argv) -> str:
    """The last line of what ``run(*argv)`` printed on exiting with code 2 (argparse's error line)."""
    with pytest.raises(SystemExit) as exit_info:
        run(*argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_cli_refuses_generators_it_cannot_measure(folders, capsys, monkeypatch):
    def error_of(*argv) -> str:
        return one_line_error(capsys, lambda *a: cli(folders, *a), *argv)

    assert "cannot read the config.json of /no/such" in error_of("--generator", "/no/such")
    big = folders.root / "vae16"
    VAEModel(block_out_channels=(8,), norm_num_groups=4, latent_dim=2, sample_size=16).save_pretrained(big)
    assert "makes 1-channel 16x16 images, the classifier takes 1-channel 8x8" in error_of("--generator", str(big))
    assert "--classifier /no/such" in error_of("--generator", str(folders.vae), "--classifier", "/no/such")
    (folders.vae / "metrics.json").write_text("{not json")
    assert "cannot be read as JSON" in error_of("--generator", str(folders.vae), "--record")
    assert (folders.vae / "metrics.json").read_text() == "{not json"  # nothing lost
    assert "must be a local model folder" in error_of("--generator", "org/model", "--record")
    pipeline_dir = folders.root / "pipeline"
    pipeline_dir.mkdir()
    (pipeline_dir / "model_index.json").write_text("{}")
    assert "--prior is for a VAE" in error_of("--generator", str(pipeline_dir), "--prior", "standard")


def test_reconstructions_decode_the_posterior_mean():
    vae, (images, _) = tiny_vae(), labelled_images(6, seed=0)
    out = reconstruction_source(vae, images).sample(6, None, torch.Generator().manual_seed(0))
    order = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x = uint8_to_float(images[order])
        expected = vae.decode(vae.encode(x).latent_dist.mean).sample
    torch.testing.assert_close(out, expected)


# ---------------------------------------------------------------- measured with a mini CLIP (like text to image)
@pytest.fixture
def clip_folders(tmp_path):
    vae = tmp_path / "rgb-vae"
    tiny.tiny_vae(sample_size=tiny.SIZE, in_channels=3, likelihood="laplace", prior_components=2).save_pretrained(vae)
    clip = tiny.tiny_mini_clip(tmp_path / "clip", [f"thing {i}, test style" for i in range(40)])
    data = write_hub_dataset(tmp_path / "rgb-data", n_train=24, n_test=20, size=tiny.SIZE, channels=3)
    return SimpleNamespace(vae=vae, clip=clip, data=data, root=tmp_path)


def clip_cli(folders, *extra) -> dict:
    return main(
        ["--clip", str(folders.clip), "--dataset_name", str(folders.data), "--batch_size", "8",
         "--cache_dir", str(folders.root / "cache"), *extra]
    )  # fmt: skip


def test_clip_measures_a_vae_prior_on_as_many_samples_as_the_split_and_records_it_apart(clip_folders, capsys):
    """A vector VAE's prior samples in the CLIP's image features, as a text-to-image pipeline of the same data is
    measured: N = the split's images, recorded beside (not over) the classifier's records."""
    standard = clip_cli(clip_folders, "--generator", str(clip_folders.vae), "--record")
    mixture = clip_cli(clip_folders, "--generator", str(clip_folders.vae), "--prior", "mixture", "--record")
    again = clip_cli(clip_folders, "--generator", str(clip_folders.vae))
    assert (standard["kind"], standard["prior"], standard["num_samples"]) == ("vae", "standard", 20)
    assert standard["clip"] == str(clip_folders.clip) and standard["split"] == "test"
    assert standard["frechet_distance"] > 0 and mixture["frechet_distance"] != standard["frechet_distance"]
    assert again["frechet_distance"] == standard["frechet_distance"]  # seeded
    recorded = json.loads((clip_folders.vae / "metrics.json").read_text())["sample_quality"]
    assert set(recorded) == {"standard_prior_clip", "mixture_prior_clip"}
    # the same images in another order: the same features' statistics, distance 0
    same = clip_cli(clip_folders, "--generator", str(clip_folders.data), "--generator_split", "test")
    assert same["kind"] == "real images" and same["frechet_distance"] == pytest.approx(0, abs=1e-6)


def test_clip_refuses_what_it_cannot_measure_in_one_line(clip_folders, capsys, tmp_path):
    def error_of(*argv) -> str:
        return one_line_error(capsys, lambda *a: clip_cli(clip_folders, *a), *argv)

    grey = tmp_path / "grey"
    tiny.tiny_vae(sample_size=tiny.SIZE).save_pretrained(grey)
    assert "makes 1-channel 16x16 images, the CLIP takes 3-channel 16x16" in error_of("--generator", str(grey))
    assert "--classifier: with --clip it measures a VAE's prior" in error_of(
        "--generator", str(clip_folders.vae), "--classifier", "x"
    )
    pipeline_dir = tmp_path / "pipeline"
    pipeline_dir.mkdir()
    (pipeline_dir / "model_index.json").write_text("{}")
    assert "is a class-conditional pipeline, measured with --classifier" in error_of("--generator", str(pipeline_dir))
    assert "--clip /no/such" in error_of("--generator", str(clip_folders.vae), "--clip", "/no/such")
