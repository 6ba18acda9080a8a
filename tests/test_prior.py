"""fit_mixture_prior: recovers clustered codes, samples where the codes are, travels with save/load, validates input."""

import os

import numpy as np
import pytest
import torch
from tiny import tiny_vae

from vae_hub.models import VAEModel
from vae_hub.prior import fit_mixture_prior


CENTRES = torch.tensor([[-6.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
STDS = torch.tensor([[0.3, 0.3], [0.5, 0.2], [0.2, 0.6]])
WEIGHTS = torch.tensor([0.5, 0.3, 0.2])


def tiny(latent_dim: int = 2) -> VAEModel:
    return tiny_vae(latent_dim=latent_dim)


def clustered_codes(n: int = 1000, seed: int = 0) -> torch.Tensor:
    """Codes from three well separated diagonal Gaussians with weights 0.5 / 0.3 / 0.2, shuffled."""
    gen = torch.Generator().manual_seed(seed)
    counts = (WEIGHTS * n).long().tolist()
    codes = torch.cat([CENTRES[k] + STDS[k] * torch.randn(c, 2, generator=gen) for k, c in enumerate(counts)])
    return codes[torch.randperm(len(codes), generator=gen)]


def matched(model: VAEModel) -> torch.Tensor:
    """For each true cluster, the index of the fitted component nearest to its centre (a permutation if recovered)."""
    return torch.cdist(CENTRES, model.prior_means.float()).argmin(1)


def test_fitting_recovers_the_clusters():
    model = tiny()
    fit_mixture_prior(model, clustered_codes(), num_components=3)
    assert model.config.prior_components == 3
    k = matched(model)
    assert sorted(k.tolist()) == [0, 1, 2]
    torch.testing.assert_close(model.prior_means[k], CENTRES, rtol=0, atol=0.1)
    torch.testing.assert_close((0.5 * model.prior_log_vars[k]).exp(), STDS, rtol=0.15, atol=0)
    torch.testing.assert_close(model.prior_log_weights[k].exp(), WEIGHTS, rtol=0, atol=0.01)
    assert model.prior_log_weights.exp().sum().item() == pytest.approx(1.0, rel=1e-5)  # float32 log → exp


def test_mixture_samples_land_on_the_clusters():
    model = tiny()
    fit_mixture_prior(model, clustered_codes(), num_components=3)
    z = model.sample_prior(3000, torch.Generator().manual_seed(0), prior="mixture")
    nearest = torch.cdist(z, CENTRES).argmin(1)
    assert (torch.cdist(z, CENTRES).min(1).values < 3).all()  # none in the empty space between clusters
    torch.testing.assert_close(torch.bincount(nearest, minlength=3) / 3000, WEIGHTS, rtol=0, atol=0.03)
    for j in range(3):
        torch.testing.assert_close(z[nearest == j].std(0), STDS[j], rtol=0.15, atol=0)
    # a standard-normal sample of the same model mostly lands between the clusters
    z_standard = model.sample_prior(3000, torch.Generator().manual_seed(0))
    assert (torch.cdist(z_standard, CENTRES).min(1).values > 3).float().mean() > 0.9


def test_same_seed_same_mixture_and_refitting_replaces_it():
    a, b = tiny(), tiny()
    codes = clustered_codes()
    fit_mixture_prior(a, codes, 3, seed=5)
    fit_mixture_prior(b, codes, 3, seed=5)
    for name in ("prior_means", "prior_log_vars", "prior_log_weights"):
        assert torch.equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == torch.float32
    fit_mixture_prior(a, codes, 2)
    assert a.config.prior_components == 2 and a.prior_means.shape == (2, 2) and a.prior_log_weights.shape == (2,)


def test_saved_and_loaded_model_samples_identically(tmp_path):
    model = tiny(latent_dim=4)
    codes = torch.cat([clustered_codes(), torch.randn(1000, 2, generator=torch.Generator().manual_seed(1))], dim=1)
    fit_mixture_prior(model, codes, num_components=4, seed=1)
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "diffusion_pytorch_model.safetensors"]  # no pickle
    loaded = VAEModel.from_pretrained(tmp_path)
    assert loaded.config.prior_components == 4
    for seed in (0, 1):
        assert torch.equal(
            loaded.sample_prior(8, torch.Generator().manual_seed(seed), 0.7, "mixture"),
            model.sample_prior(8, torch.Generator().manual_seed(seed), 0.7, "mixture"),
        )
        assert torch.equal(
            loaded.generate(3, torch.Generator().manual_seed(seed), prior="mixture"),
            model.generate(3, torch.Generator().manual_seed(seed), prior="mixture"),
        )


@pytest.mark.parametrize(
    "codes, num_components, match",
    [
        (torch.zeros(10, 3), 2, r"codes must be a tensor \(N, latent_dim=2\), got \(10, 3\)"),
        (torch.zeros(10), 2, r"codes must be a tensor \(N, latent_dim=2\), got \(10,\)"),
        (np.zeros((10, 2)), 2, "codes must be a tensor .* got ndarray"),
        (torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]), 1, "NaN or infinite"),
        (torch.zeros(10, 2), 0, "between 1 and the number of codes \\(10\\), got 0"),
        (torch.zeros(10, 2), 11, "between 1 and the number of codes \\(10\\), got 11"),
        (torch.zeros(10, 2), 2.0, "got 2.0"),
        (torch.zeros(10, 2), True, "got True"),
        (torch.zeros(0, 2), 1, "between 1 and the number of codes \\(0\\)"),
    ],
)
def test_bad_input_is_refused(codes, num_components, match):
    model = tiny()
    with pytest.raises(ValueError, match=match):
        fit_mixture_prior(model, codes, num_components)
    assert model.config.prior_components == 0  # nothing half-stored


def test_auto_chooses_the_number_of_clusters_by_held_out_likelihood():
    model = tiny()
    choice = fit_mixture_prior(model, clustered_codes(2000), "auto", seed=3, candidates=(1, 2, 3, 4, 6, 8))
    # one and two components miss a cluster (far lower held-out log-likelihood); more than three add nothing
    assert choice.num_components == 3 == model.config.prior_components and choice.method == "held-out log-likelihood"
    scores = choice.held_out_nats
    assert scores[1] < scores[2] - 1 < scores[3] - 2 and max(scores.values()) - scores[3] < 0.05
    assert (
        "K = 3 components, chosen from the data" in choice.describe() and "2,000 training codes" in choice.describe()
    )
    again = tiny()
    assert fit_mixture_prior(again, clustered_codes(2000), "auto", seed=3, candidates=(1, 2, 3, 4, 6, 8)) == choice
    assert torch.equal(again.prior_means, model.prior_means)  # same codes and seed, same mixture


def test_auto_by_default_tries_what_the_codes_can_support():
    choice = fit_mixture_prior(tiny(), clustered_codes(2000), "auto", seed=3)
    # the smallest default candidate with all three clusters; 200 would leave under 10 fitting codes per component
    assert choice.num_components == 5 and list(choice.held_out_nats) == [1, 2, 5, 10, 20, 50, 100]


def test_auto_with_the_candidates_it_is_given():
    choice = fit_mixture_prior(tiny(), clustered_codes(), "auto", candidates=(1, 3, 6))
    assert choice.num_components == 3 and list(choice.held_out_nats) == [1, 3, 6]
    assert choice.to_dict()["held_out_log_likelihood_nats_per_code"].keys() == {"1", "3", "6"}
    given = fit_mixture_prior(tiny(), clustered_codes(), 4)
    assert given.num_components == 4 and given.method == "given" and given.held_out_nats == {}
    with pytest.raises(ValueError, match="'auto' or an integer"):
        fit_mixture_prior(tiny(), clustered_codes(), "many")


def test_auto_shows_its_progress_over_the_candidates(capsys):
    fit_mixture_prior(tiny(), clustered_codes(), "auto", candidates=(1, 3, 6), progress=True)
    bar = capsys.readouterr().err
    assert "mixture prior: K in [1, 3, 6]" in bar and "10/10" in bar  # weighted by K: 1 + 3 + 6
    fit_mixture_prior(tiny(), clustered_codes(), "auto", candidates=(1, 3))
    assert capsys.readouterr().err == ""  # quiet unless asked


@pytest.mark.parametrize(
    "given, pretrained_k, steps, expected_k, candidates, says",
    [
        (None, 7, 1000, 7, None, "K = 7, the pretrained model's"),  # a fine-tune keeps its K: no search
        (None, 0, 30, "auto", [1, 2, 5, 10, 20], "at most the run's 30 steps"),  # a short new run: a short search
        (None, 0, 5, "auto", [1, 2, 5, 10], "at most the run's 5 steps"),  # at least up to 10
        (None, 0, 5000, "auto", None, None),  # a long run tries them all
        ("auto", 7, 10, "auto", None, None),  # asked for: the full search
        (3, 7, 10, 3, None, None),  # a number: as given
    ],
)
def test_train_vae_settles_prior_components_in_proportion_to_the_run(
    given, pretrained_k, steps, expected_k, candidates, says
):
    from types import SimpleNamespace

    from test_train import load_script

    from vae_hub.prior import CANDIDATES

    script = load_script()
    args = SimpleNamespace(prior_components=given, pretrained_model_name_or_path="base" if pretrained_k else None)
    model = SimpleNamespace(config={"prior_components": pretrained_k, "latent_dim": 2})
    note = script.settle_prior_components(args, model, steps)
    assert args.prior_components == expected_k
    assert args.prior_candidates == (candidates or list(CANDIDATES))
    assert (note is None) if says is None else (says in note)
