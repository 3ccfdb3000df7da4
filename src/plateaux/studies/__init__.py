r"""Differentiable studies: gradients of learning outcomes through the ODE, and
gradient-based design of learning-rate schedules.

- Outcomes (differentiable, jit/vmap-safe): [`eg_at`][], [`time_to_threshold`][] (soft),
  [`plateau_length`][] (soft), [`soft_duration`][] (any smooth condition).
- Derivatives: [`value_and_grad`][] / [`grad`][] with `mode="forward"` (few parameters) or
  `"reverse"` (many; checkpointed).
- Schedules: [`optimize_schedule`][] (optax on a [`plateaux.schedules.AbstractSchedule`][]),
  [`best_constant`][] (1-d scan over constant $\eta$).

`python -m plateaux.studies` runs the K = M = 2 schedule study of the README.
"""

from ._design import best_constant as best_constant, optimize_schedule as optimize_schedule
from ._outcomes import (
    eg_at as eg_at,
    grad as grad,
    plateau_length as plateau_length,
    soft_duration as soft_duration,
    time_to_threshold as time_to_threshold,
    value_and_grad as value_and_grad,
)
