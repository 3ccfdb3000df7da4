r"""Gradient-based design of learning-rate schedules (optax on a schedule's parameters)."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike

from ..schedules import AbstractSchedule, Bounded, PiecewiseConstant, PiecewiseLinear


def best_constant(loss: Callable[[Array], Array], etas: ArrayLike) -> tuple[float, np.ndarray]:
    r"""Scan a scalar `loss(eta)` over constant learning rates `etas` (1-d) and return
    `(eta_best, losses)`. An $\eta$ whose solve fails (diverges, runs out of steps) scores
    `inf`. The loss is jitted once ($\eta$ is traced), then evaluated one value at a time.

    **Raises:** `ValueError` if every $\eta$ fails.
    """
    etas = np.asarray(etas, dtype=float)
    if etas.ndim != 1 or etas.size == 0:
        raise ValueError(f"etas must be a non-empty 1-d array; got shape {etas.shape}")
    jitted = jax.jit(loss)
    losses = np.full(etas.shape, np.inf)
    first_error = None
    for i, eta in enumerate(etas):
        try:
            losses[i] = float(jitted(jnp.asarray(eta)))
        except Exception as error:  # a failed solve (eqx.error_if / diffrax throw) scores inf
            first_error = first_error or error
    losses[~np.isfinite(losses)] = np.inf
    if not np.any(np.isfinite(losses)):
        raise ValueError(f"the loss failed for every eta in {etas}") from first_error
    return float(etas[np.argmin(losses)]), losses


def _default_where(schedule: AbstractSchedule):
    if isinstance(schedule, Bounded):
        return lambda s: s.logits
    if isinstance(schedule, PiecewiseConstant | PiecewiseLinear):
        return lambda s: s.values
    return None


def optimize_schedule(
    loss: Callable[[AbstractSchedule], Array],
    schedule: AbstractSchedule,
    *,
    steps: int = 50,
    optimizer: optax.GradientTransformation | None = None,
    where: Callable | None = None,
) -> tuple[AbstractSchedule, np.ndarray]:
    r"""Minimise `loss(schedule)` over the schedule's trainable parameters with optax.

    Reverse-mode gradients (`jax.value_and_grad`; write `loss` with the default
    `diffrax.RecursiveCheckpointAdjoint`, so a schedule with tens of knots costs one backward
    pass per step). The best schedule seen is returned (the last step need not be the best).

    **Arguments:**

    - `loss`: schedule $\mapsto$ scalar, e.g. a [`plateaux.studies.time_to_threshold`][] of
      [`plateaux.schedules.Scheduled`][]`(dynamics, schedule)`.
    - `schedule`: the starting [`plateaux.schedules.AbstractSchedule`][].
    - `steps`: optimizer steps. `optimizer`: an optax transformation (default
      `optax.adam(0.05)`).
    - `where`: which leaves are trained, as for `eqx.tree_at` (a leaf or a tuple of leaves).
      Default: `logits` of a [`plateaux.schedules.Bounded`][] (its knots and $\eta_{\max}$
      stay put), `values` of piecewise schedules, otherwise every float array.

    **Returns:** `(best_schedule, losses)` with the loss before each step and after the last
    (`steps + 1` values).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0; got steps={steps}")
    optimizer = optax.adam(0.05) if optimizer is None else optimizer
    where = _default_where(schedule) if where is None else where
    if where is None:
        spec = jax.tree.map(eqx.is_inexact_array, schedule)
    else:
        spec = jax.tree.map(lambda _: False, schedule)
        chosen = where(schedule)
        spec = eqx.tree_at(where, spec, replace=jax.tree.map(lambda _: True, chosen))
    params, static = eqx.partition(schedule, spec)
    opt_state = optimizer.init(params)

    @eqx.filter_jit
    def step(params, opt_state):
        value, grads = jax.value_and_grad(lambda p: loss(eqx.combine(p, static)))(params)
        # optax mixes Python floats with int32 step counts (adam's bias correction), which
        # strict dtype promotion (used by the tests) refuses; standard promotion is exact here.
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    # steps + 1 evaluations (the last only for its value), one compiled function.
    losses, best, best_params = [], np.inf, params
    for i in range(steps + 1):
        new_params, new_state, value = step(params, opt_state)
        value = float(value)
        losses.append(value)
        if value < best:
            best, best_params = value, params
        if i < steps:
            params, opt_state = new_params, new_state
    return eqx.combine(best_params, static), np.asarray(losses)
