"""``LatentDiffusionPipeline.__call__``'s defaults, in a module of their own without imports: the training script's
flags take them without loading torch, and the code file of a pushed pipeline (``vae_hub.remote_code``) bundles them
with the pipeline and nothing else."""

# 20 DPM-Solver++ steps (the scheduler the training script saves): Fréchet distance within 0.07 of 25 steps on 2,000
# samples of the shipped pipeline, 20% less time (benchmarks/RESULTS.md); 4.0 as DiTPipeline.
DEFAULT_NUM_INFERENCE_STEPS = 20
DEFAULT_GUIDANCE_SCALE = 4.0
