"""The samplers offered by the Space and the evaluation, by display name, each built from a pipeline's own
scheduler config (its noise schedule and prediction type), as diffusers users swap schedulers:
``Scheduler.from_config(pipe.scheduler.config)``."""

from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin


SCHEDULERS = {
    "DDIM": (DDIMScheduler, {}),
    "DPM-Solver++": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++"}),
    "Euler": (EulerDiscreteScheduler, {}),
}


def scheduler_name(scheduler: SchedulerMixin) -> str | None:
    """The display name of a scheduler instance or config's class (None if it is not one of ``SCHEDULERS``)."""
    class_name = scheduler.__class__.__name__
    return next((name for name, (cls, _) in SCHEDULERS.items() if cls.__name__ == class_name), None)


def build_scheduler(name: str, config) -> SchedulerMixin:
    """A new ``SCHEDULERS[name]`` configured from ``config`` (a pipeline's ``scheduler.config``).

    Raises:
        ValueError: ``name`` is not one of ``SCHEDULERS``.
    """
    if name not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {name!r}: choose one of {', '.join(SCHEDULERS)}")
    cls, options = SCHEDULERS[name]
    return cls.from_config(config, **options)
