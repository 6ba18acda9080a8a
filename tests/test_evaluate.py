"""vae_hub.evaluate: the IW bound against a model whose log p(x) is known, the ELBO terms, MSE/PSNR, active units, CLI."""

import json
import math
from types import SimpleNamespace

import datasets
import pytest
import tiny
import torch
import torch.nn as nn
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

from vae_hub.evaluate import evaluate_model, importance_samples, main
from vae_hub.images import tensor_to_pil, uint8_to_float
from vae_hub.models import VAEModel


METRIC_KEYS = {
    "dataset",
    "split",
    "num_images",
    "likelihood",
    "likelihood_note",
    "seed",
    "iw_samples",
    "negative_elbo_nats",
    "reconstruction_nats",
    "kl_nats",
    "iw_nll_nats",
    "bits_per_dim",
    "mse",
    "psnr_db",
    "active_units",
    "latent_dim",
    "images_per_second",
}


class LinearGaussianVAE(nn.Module):
    """p(z) = N(0, I), p(x | z) = N(Wz + b, σ²I) on 2×2 one-channel images, so x ~ N(b, WWᵀ + σ²I) exactly.

    W has orthogonal columns, which makes the true posterior diagonal; the encoder returns it exactly, or
    ``off`` it: mean shifted by ``mean_shift`` posterior standard deviations and variance times ``var_factor``.
    float64 throughout, so exact identities hold to ~1e-10.
    """

    reparameterize = staticmethod(VAEModel.reparameterize)

    def __init__(self, mean_shift: float = 0.0, var_factor: float = 1.0):
        super().__init__()
        self.config = SimpleNamespace(likelihood="gaussian", in_channels=1, sample_size=2)
        q, _ = torch.linalg.qr(torch.tensor([[1.0, 0.2], [0.3, -1.0], [-0.5, 0.4], [0.2, 0.7]], dtype=torch.float64))
        self.weight = nn.Parameter(q * torch.tensor([0.4, 0.25], dtype=torch.float64))  # (4, 2)
        self.bias = nn.Parameter(torch.tensor([0.1, -0.2, 0.0, 0.3], dtype=torch.float64))
        self.log_sigma = math.log(0.1)
        self.mean_shift, self.var_factor = mean_shift, var_factor

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) for images (B, 1, 2, 2) in [-1, 1], (B,)."""
        cov = self.weight @ self.weight.T + math.exp(2 * self.log_sigma) * torch.eye(4, dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.bias, cov).log_prob(x.flatten(1).double())

    def encode(self, x: torch.Tensor):
        noise_var = math.exp(2 * self.log_sigma)
        post_var = 1.0 / (1.0 + (self.weight**2).sum(0) / noise_var)  # (2,), diagonal because WᵀW is
        mu = (x.flatten(1) - self.bias) @ self.weight * post_var / noise_var
        mu = mu + self.mean_shift * post_var.sqrt()
        logvar = (post_var * self.var_factor).log().expand_as(mu)
        return SimpleNamespace(latent_dist=DiagonalGaussianDistribution(torch.cat([mu, logvar], 1)[:, :, None, None]))

    def decode_params(self, z: torch.Tensor) -> torch.Tensor:
        loc = (z.flatten(1) @ self.weight.T + self.bias).view(-1, 1, 2, 2)
        return torch.cat([loc, torch.full_like(loc, self.log_sigma)], dim=1)


def continuous_gaussian(params: torch.Tensor, x: torch.Tensor, likelihood: str) -> torch.Tensor:
    """log N(x; loc, σ²) summed per image: the seam that lets the linear model have a closed-form log p(x)."""
    loc, log_scale = params.chunk(2, dim=1)
    return torch.distributions.Normal(loc, log_scale.exp()).log_prob(x.double()).flatten(1).sum(1)


def linear_data(n: int = 24, seed: int = 0) -> torch.Tensor:
    """uint8 images drawn near the linear model's marginal (quantised; log p is evaluated at the stored values)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g) * 0.3 + torch.tensor([0.1, -0.2, 0.0, 0.3])
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).view(n, 1, 2, 2)


def true_nll(model: LinearGaussianVAE, images: torch.Tensor) -> float:
    return -model.log_marginal(uint8_to_float(images)).mean().item()


def tiny_vae(likelihood: str = "bernoulli", latent_dim: int = 4) -> VAEModel:
    return tiny.tiny_vae(latent_dim=latent_dim, sample_size=8, likelihood=likelihood)


def tiny_images(n: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def evaluate_linear(model, images, iw_samples, seed=0, batch_size=8192):  # the linear decoder is cheap: few, big calls
    return evaluate_model(
        model,
        images,
        iw_samples=iw_samples,
        seed=seed,
        batch_size=batch_size,
        progress=False,
        log_likelihood=continuous_gaussian,
    )


# ---------------------------------------------------------------- the bound against a known log p(x)
def test_exact_posterior_makes_every_importance_weight_the_marginal():
    """With q = p(z | x), log p(x|z) + log p(z) − log q(z|x) = log p(x) for every z: checks all three densities."""
    model, images = LinearGaussianVAE(), linear_data()
    x = uint8_to_float(images).double()
    samples = importance_samples(
        model, x, model.encode(x).latent_dist, 7, torch.Generator().manual_seed(0), log_likelihood=continuous_gaussian
    )
    log_w = samples.log_px_z + samples.log_pz - samples.log_qz
    assert log_w.shape == (len(images), 7)
    torch.testing.assert_close(log_w, model.log_marginal(x)[:, None].expand(-1, 7), rtol=0, atol=1e-9)
    assert evaluate_linear(model, images, 1)["iw_nll_nats"] == pytest.approx(true_nll(model, images), abs=1e-9)


def test_iw_bound_converges_to_the_true_log_likelihood():
    model, images = LinearGaussianVAE(mean_shift=0.8, var_factor=2.5), linear_data(n=64)
    truth = true_nll(model, images)
    metrics = evaluate_linear(model, images, 1000)  # over seeds, −L_1000 − truth spreads by ~0.005 nats here
    elbo_gap = metrics["negative_elbo_nats"] - truth
    iw_gap = metrics["iw_nll_nats"] - truth
    assert elbo_gap > 1.0  # the off posterior costs the ELBO KL(q ‖ p(z|x)) ≈ 1.2 nats
    assert abs(iw_gap) < 0.025 and abs(iw_gap) < 0.02 * elbo_gap


def test_iw_bound_tightens_as_k_grows():
    model, images = LinearGaussianVAE(mean_shift=0.8, var_factor=2.5), linear_data()
    truth = true_nll(model, images)
    nll = [evaluate_linear(model, images, k, seed=1)["iw_nll_nats"] for k in (1, 10, 100)]
    assert nll[0] > nll[1] > nll[2] > truth - 0.01


def test_iw_bound_with_one_sample_is_the_single_sample_elbo():
    """k = 1: −L_1 is reconstruction + a one-sample KL of the same z (the reported KL is the analytic one)."""
    model, images = tiny_vae(), tiny_images()
    metrics = evaluate_model(model, images, iw_samples=1, batch_size=len(images), seed=3, progress=False)
    x = uint8_to_float(images)
    with torch.no_grad():
        samples = importance_samples(model, x, model.encode(x).latent_dist, 1, torch.Generator().manual_seed(3))
    sampled_kl = (samples.log_qz - samples.log_pz).mean().item()
    assert metrics["reconstruction_nats"] == pytest.approx(-samples.log_px_z.mean().item(), abs=1e-6)
    assert metrics["iw_nll_nats"] == pytest.approx(metrics["reconstruction_nats"] + sampled_kl, abs=1e-4)


def test_sampled_kl_agrees_with_the_analytic_kl():
    """The log q and log p used in the weights average to the analytic KL that the ELBO reports."""
    model, images = LinearGaussianVAE(mean_shift=0.8, var_factor=2.5), linear_data(n=8)
    metrics = evaluate_linear(model, images, 1)  # the reported KL is analytic, whatever k is
    x = uint8_to_float(images).double()
    samples = importance_samples(
        model,
        x,
        model.encode(x).latent_dist,
        4000,
        torch.Generator().manual_seed(0),
        decode_batch_size=32000,
        log_likelihood=continuous_gaussian,
    )
    per_sample_kl = (samples.log_qz - samples.log_pz).mean(0)  # (k,): batch-mean KL of each sample index
    standard_error = per_sample_kl.std().item() / math.sqrt(4000)
    assert abs(per_sample_kl.mean().item() - metrics["kl_nats"]) < 4 * standard_error


def test_decoder_calls_stay_within_batch_size(monkeypatch):
    """k = 1000 never decodes k·B latents at once: every call holds at most batch_size, and all k·N are scored."""
    model, images = LinearGaussianVAE(mean_shift=0.8, var_factor=2.5), linear_data(n=3)
    calls = []
    decode_params = model.decode_params
    monkeypatch.setattr(model, "decode_params", lambda z: calls.append(len(z)) or decode_params(z))
    evaluate_linear(model, images, 1000, batch_size=256)
    assert max(calls) <= 256
    assert sum(calls) == 3 * 1000 + 3  # the k samples of each image, plus its posterior-mean reconstruction


# ---------------------------------------------------------------- the metrics dict
def test_metrics_have_the_metrics_json_keys_and_are_deterministic():
    model, images = tiny_vae(), tiny_images()
    first = evaluate_model(model, images, iw_samples=20, seed=5, progress=False, dataset="toy", split="test")
    second = evaluate_model(model, images, iw_samples=20, seed=5, progress=False, dataset="toy", split="test")
    other = evaluate_model(model, images, iw_samples=20, seed=6, progress=False, dataset="toy", split="test")
    assert set(first) == METRIC_KEYS
    json.dumps(first)  # JSON-ready: plain Python numbers
    first.pop("images_per_second"), second.pop("images_per_second")
    assert first == second
    assert other["iw_nll_nats"] != first["iw_nll_nats"]
    assert (first["dataset"], first["split"], first["num_images"], first["latent_dim"]) == ("toy", "test", 12, 4)
    assert first["negative_elbo_nats"] == pytest.approx(first["reconstruction_nats"] + first["kl_nats"])
    assert model.training  # evaluation does not leave the model in eval mode


def test_bits_per_dim_only_for_a_discretised_likelihood():
    images = tiny_images()
    bernoulli = evaluate_model(tiny_vae("bernoulli"), images, iw_samples=4, progress=False)
    gaussian = evaluate_model(tiny_vae("gaussian"), images, iw_samples=4, progress=False)
    assert bernoulli["bits_per_dim"] is None and "no bits/dim" in bernoulli["likelihood_note"]
    assert "intensities" in bernoulli["likelihood_note"] and "grey" not in bernoulli["likelihood_note"]  # RGB too
    assert gaussian["bits_per_dim"] == pytest.approx(gaussian["iw_nll_nats"] / (64 * math.log(2)))
    assert "discretised gaussian" in gaussian["likelihood_note"] and "256" in gaussian["likelihood_note"]


def test_mse_and_psnr_of_the_posterior_mean_reconstruction():
    model, images = tiny_vae("gaussian"), tiny_images()
    metrics = evaluate_model(model, images, iw_samples=2, progress=False)
    with torch.no_grad():
        x = uint8_to_float(images)
        reconstruction = model.decode(model.encode(x).latent_dist.mean).sample
    mse = ((reconstruction + 1) / 2 - images.double() / 255).pow(2).mean().item()
    assert metrics["mse"] == pytest.approx(mse, rel=1e-5)
    assert metrics["psnr_db"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-5)


def test_active_units_ignore_dimensions_the_encoder_does_not_use():
    model = tiny_vae(latent_dim=6)
    with torch.no_grad():
        moments = model.encoder.to_moments
        moments.weight[:2] = 0  # μ_0, μ_1 constant: the same code for every image
        moments.weight[2:6] *= 20  # the other means spread well beyond Var = 0.01
    metrics = evaluate_model(model, tiny_images(n=32), iw_samples=1, progress=False)
    assert metrics["active_units"] == 4


@pytest.mark.parametrize(
    "kwargs, message",
    [({"iw_samples": 0}, "iw_samples"), ({"batch_size": 0}, "batch_size")],
)
def test_evaluate_model_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate_model(tiny_vae(), tiny_images(), progress=False, **kwargs)


def test_evaluate_model_refuses_images_of_the_wrong_shape_or_type():
    with pytest.raises(ValueError, match="uint8"):
        evaluate_model(tiny_vae(), tiny_images().float(), progress=False)
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        evaluate_model(tiny_vae(), torch.zeros(2, 1, 7, 7, dtype=torch.uint8), progress=False)


# ---------------------------------------------------------------- command line
@pytest.fixture
def model_and_dataset(tmp_path):
    model_dir = tmp_path / "model"
    tiny_vae().save_pretrained(model_dir)
    images = tiny_images(n=6)
    data_dir = tmp_path / "dataset" / "data"
    data_dir.mkdir(parents=True)
    for split in ("train", "test"):
        table = datasets.Dataset.from_dict({"image": tensor_to_pil(uint8_to_float(images)), "label": [0, 1] * 3})
        table.cast_column("image", datasets.Image()).to_parquet(str(data_dir / f"{split}-00000-of-00001.parquet"))
    return model_dir, data_dir.parent, images


def test_cli_end_to_end(model_and_dataset, tmp_path, capsys):
    model_dir, dataset_dir, images = model_and_dataset
    output = tmp_path / "metrics.json"
    printed = main(
        [
            "--model",
            str(model_dir),
            "--dataset_name",
            str(dataset_dir),
            "--max_samples",
            "4",
            "--iw_samples",
            "8",
            "--seed",
            "2",
            "--output",
            str(output),
            "--cache_dir",
            str(tmp_path / "cache"),
        ]
    )
    written = json.loads(output.read_text())
    assert json.loads(capsys.readouterr().out) == written
    assert written == pytest.approx(printed)  # the JSON file round-trips the returned dict
    direct = evaluate_model(VAEModel.from_pretrained(model_dir), images[:4], iw_samples=8, seed=2, progress=False)
    for key in ("iw_nll_nats", "negative_elbo_nats", "mse", "active_units"):
        assert written[key] == pytest.approx(direct[key])
    assert (written["dataset"], written["split"], written["num_images"]) == (str(dataset_dir), "test", 4)
    assert written["command"].startswith(f"python -m vae_hub.evaluate --model {model_dir} ")
    assert set(written) == METRIC_KEYS | {"command"}


def test_compiled_decoder_gives_the_eager_numbers(model_and_dataset, tmp_path, monkeypatch):
    """--compile changes how the decoder runs, not what it computes: the same ε give the same numbers."""
    model_dir, dataset_dir, _ = model_and_dataset
    argv = [
        "--model",
        str(model_dir),
        "--dataset_name",
        str(dataset_dir),
        "--max_samples",
        "4",
        "--iw_samples",
        "8",
        "--batch_size",
        "16",
        "--cache_dir",
        str(tmp_path / "cache"),
    ]
    eager = main(argv)
    compiled_functions = []
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compiled_functions.append(fn) or real_compile(fn, **kw))
    compiled = main(argv + ["--compile"])
    assert [fn.__name__ for fn in compiled_functions] == ["decode_params"]
    for key in ("iw_nll_nats", "negative_elbo_nats", "kl_nats", "mse"):
        assert compiled[key] == pytest.approx(eager[key], rel=1e-5)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--iw_samples", "0"], "--iw_samples must be >= 1"),
        (["--model", "/no/such/model"], "--model /no/such/model"),
        (["--split", "validation"], "no split 'validation'"),
        (["--output", "/no/such/folder/m.json"], "folder does not exist"),
    ],
)
def test_cli_errors_are_one_line(model_and_dataset, tmp_path, capsys, extra, message):
    model_dir, dataset_dir, _ = model_and_dataset
    argv = ["--model", str(model_dir), "--dataset_name", str(dataset_dir), "--cache_dir", str(tmp_path / "cache")]
    with pytest.raises(SystemExit) as exit_info:
        main(argv + extra)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in error and message in error


def test_help_shows_defaults_and_the_cost():
    from vae_hub.evaluate import build_parser

    text = " ".join(build_parser().format_help().split())
    for shown in (
        "--iw_samples IW_SAMPLES k, posterior samples per image (default: 1000)",
        "--split SPLIT (default: test)",
        "over an hour on 2 CPU cores",
    ):
        assert shown in text, shown
