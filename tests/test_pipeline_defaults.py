"""LatentDiffusionPipeline's default steps and guidance are the setting that the shipped fashion-mnist-ldm's recorded
sweep chooses by the stated rule: one constant, measured, that the pipeline, the training script, the Space and the
card all follow."""

import inspect
import json
from pathlib import Path

from vae_hub.description import sweep_commands
from vae_hub.evaluate_samples import CLASS_CONDITIONAL_RULE, recommend_class_conditional
from vae_hub.pipeline_defaults import DEFAULT_GUIDANCE_SCALE, DEFAULT_NUM_INFERENCE_STEPS
from vae_hub.pipelines import LatentDiffusionPipeline


SHIPPED = Path(__file__).resolve().parents[1] / "space" / "models" / "fashion-mnist-ldm"


def test_the_defaults_are_what_the_shipped_sweep_recommends():
    metrics = json.loads((SHIPPED / "metrics.json").read_text())
    recommended = metrics["recommended_settings"]
    assert recommended == recommend_class_conditional(metrics["sample_quality"], recommended["num_samples"])
    assert recommended["rule"] == CLASS_CONDITIONAL_RULE and recommended["chosen_from"] >= 12
    assert (recommended["num_inference_steps"], recommended["guidance_scale"]) == (
        DEFAULT_NUM_INFERENCE_STEPS,
        DEFAULT_GUIDANCE_SCALE,
    )
    swept = {
        r["guidance_scale"]
        for r in metrics["sample_quality"].values()
        if r.get("num_samples") == recommended["num_samples"]
    }
    assert {1.5, 2.0, 2.5, 3.0, 3.5, 4.0} <= swept


def test_the_pipeline_samples_at_those_defaults():
    parameters = inspect.signature(LatentDiffusionPipeline.__call__).parameters
    assert parameters["num_inference_steps"].default == DEFAULT_NUM_INFERENCE_STEPS
    assert parameters["guidance_scale"].default == DEFAULT_GUIDANCE_SCALE


def test_the_shipped_card_states_the_rule_and_samples_at_the_chosen_setting():
    card = (SHIPPED / "README.md").read_text()
    assert CLASS_CONDITIONAL_RULE in " ".join(card.split())
    assert f"num_inference_steps={DEFAULT_NUM_INFERENCE_STEPS}, guidance_scale={DEFAULT_GUIDANCE_SCALE}," in card
    assert "`LatentDiffusionPipeline.__call__`'s defaults" in card


def test_a_sweeps_commands_are_written_once_with_letters():
    base = "python -m vae_hub.evaluate_samples --generator g --guidance_scale {} --num_inference_steps {} --record"
    sweep = [base.format(g, s) for s in (10, 20) for g in (2, 3)] + [base.format(4, 20) + " --recommend"]
    alone = "python -m vae_hub.evaluate_samples --generator g --prior mixture --record"
    assert sweep_commands([alone, *sweep, alone]) == [alone, base.format("G", "S")]
    assert sweep_commands([sweep[0], alone]) == [sweep[0], alone]  # one setting: as it was run
