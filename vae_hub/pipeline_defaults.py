"""``LatentDiffusionPipeline.__call__``'s defaults, in a module of their own without imports: the training script's
flags take them without loading torch, and the code file of a pushed pipeline (``vae_hub.remote_code``) bundles them
with the pipeline and nothing else. The Space, Compare, the cards and the README follow them."""

# Measured on the shipped fashion-mnist-ldm: guidance 1.5 to 4 against 10, 20 and 25 DPM-Solver++ steps, 2,000
# class-balanced samples each (python -m vae_hub.evaluate_samples ... --record --recommend; its metrics.json), chosen
# by evaluate_samples.CLASS_CONDITIONAL_RULE: the lowest Fréchet distance whose class match is at least 95 %, FDs
# within 0.05 a tie that fewer steps win. Guidance 4 (DiTPipeline's) gave the least varied samples (FD 1.47 against
# 0.59 at 2.5); guidance 2 the closest (0.47) but with 7 % of the samples of another class. tests/test_pipeline_defaults.py
# checks that the shipped records still choose these.
DEFAULT_NUM_INFERENCE_STEPS = 20
DEFAULT_GUIDANCE_SCALE = 2.5
