"""Config validation shared by the models: refuse a bad config at construction, naming the field."""

import math

from diffusers.models.activations import ACT2CLS

from .. import likelihood as lik


# Python builds one module per residual block, even on the meta device where ``check_model_size`` sizes a config
# before any weights: bounding the count keeps a hostile config (layers_per_block=10**6) from taking minutes and GBs.
MAX_STAGES = 8  # a 2**7 down-sampling
MAX_BLOCKS_PER_STAGE = 16


class ConfigChecks:
    """``ConfigChecks(cls_name, cfg).common()`` then model-specific ``need``/``positive_int`` calls.

    Every failure is one ``ValueError`` naming the class and the field (never a shape error inside forward).
    """

    def __init__(self, cls_name: str, cfg: dict):
        self.cls_name, self.cfg = cls_name, cfg

    def need(self, ok: bool, field: str, what: str) -> None:
        if not ok:
            raise ValueError(f"{self.cls_name} config: `{field}` {what}, got {self.cfg[field]!r}")

    def positive_int(self, *fields: str) -> None:
        for field in fields:
            value = self.cfg[field]
            self.need(
                isinstance(value, int) and not isinstance(value, bool) and value > 0,
                field,
                "must be a positive integer",
            )

    def positive_number(self, *fields: str) -> None:
        for field in fields:
            value = self.cfg[field]
            self.need(
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0,
                field,
                "must be a positive number",
            )

    def blocks_per_stage(self, field: str) -> None:
        self.positive_int(field)
        self.need(self.cfg[field] <= MAX_BLOCKS_PER_STAGE, field, f"must be at most {MAX_BLOCKS_PER_STAGE}")

    def channel_list(self, field: str) -> None:
        """Channels per stage: 1 to ``MAX_STAGES`` positive integers, each divisible by ``norm_num_groups``."""
        blocks = self.cfg[field]
        self.need(
            isinstance(blocks, (list, tuple))
            and 0 < len(blocks) <= MAX_STAGES
            and all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in blocks),
            field,
            f"must be a sequence of 1 to {MAX_STAGES} positive integers",
        )
        self.need(
            all(c % self.cfg["norm_num_groups"] == 0 for c in blocks),
            field,
            f"must all be divisible by norm_num_groups={self.cfg['norm_num_groups']}",
        )

    def common(self) -> None:
        """The fields both models share: channels, stages, groups, activation, likelihood, scaling factor."""
        cfg = self.cfg
        self.positive_int("in_channels", "out_channels", "sample_size", "norm_num_groups")
        self.blocks_per_stage("layers_per_block")
        self.need(
            cfg["out_channels"] == cfg["in_channels"],
            "out_channels",
            "must equal in_channels (a VAE reconstructs its input)",
        )
        self.channel_list("block_out_channels")
        self.need(cfg["act_fn"] in ACT2CLS, "act_fn", f"must be one of {sorted(ACT2CLS)}")
        self.need(cfg["likelihood"] in lik.LIKELIHOODS, "likelihood", f"must be one of {lik.LIKELIHOODS}")
        self.positive_number("likelihood_scale", "scaling_factor")
        self.need(isinstance(cfg["learn_likelihood_scale"], bool), "learn_likelihood_scale", "must be True or False")
