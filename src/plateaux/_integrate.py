r"""Integrate averaged learning equations with diffrax (adaptive, error-controlled, float64)."""

import math

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._generalization import generalization_error
from ._order_params import OrderParams, check_order_params, flatten_learned, unflatten_learned
from ._trajectory import Status, Trajectory, take_time
from .dynamics import AbstractDynamics, OnlineSGD
from .dynamics._base import averaging_activation
from .schedules import AbstractSchedule, Scheduled


def log_grid(horizon: float, num: int = 400, start: float = 1e-2) -> np.ndarray:
    r"""Saving grid $\{0\} \cup \{$`num` log-spaced times from `start` to `horizon`$\}$."""
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be finite and > 0; got {horizon}")
    start = min(start, horizon / 10)
    return np.concatenate([[0.0], np.logspace(math.log10(start), math.log10(horizon), num)])


def _as_grid(ts) -> np.ndarray:
    if ts is None:
        raise ValueError("pass the saving times ts (an array) or a horizon (a number)")
    ts = np.asarray(ts, dtype=float)
    if ts.ndim == 0:
        return log_grid(float(ts))
    if ts.ndim != 1 or ts.size < 2:
        raise ValueError(f"ts must be a 1-d array of at least two times; got shape {ts.shape}")
    if not np.all(np.isfinite(ts)) or np.any(np.diff(ts) <= 0):
        raise ValueError(f"ts must be finite and strictly increasing; got {ts}")
    return ts


class _StopRule(eqx.Module):
    """Terminate once converged (error tiny AND vector field ~ 0) or diverged."""

    stop_eg: Array
    stop_rate: Array
    q_max: Array

    def __call__(self, t, y, args, **kwargs):
        dynamics, template = args
        params = unflatten_learned(y, template, learn_v=dynamics.learn_v)
        eg = generalization_error(params, averaging_activation(dynamics.activations))
        # The vector field is only needed once the error is small (unbatched solves skip it;
        # under vmap `cond` becomes `select` and both branches run).
        slow = jax.lax.cond(
            eg < self.stop_eg,
            lambda: jnp.max(jnp.abs(dynamics.flat_vector_field(y, template, t))) < self.stop_rate,
            lambda: jnp.asarray(False),
        )
        return slow | _diverged(params, self.q_max)


def _diverged(params: OrderParams, q_max: float):
    finite = jnp.all(jnp.isfinite(params.Q)) & jnp.all(jnp.isfinite(params.R))
    return ~finite | (jnp.max(jnp.abs(jnp.diagonal(params.Q))) > q_max)


@eqx.filter_jit
def _solve(dynamics, params0, ts, rtol, atol, max_steps, stop_eg, stop_rate, q_max, progress):
    template = params0
    y0 = flatten_learned(params0, learn_v=dynamics.learn_v)
    # A vector field that is not finite at the start would make every step rejected (a hang
    # until max_steps): refuse it with the reason instead.
    y0 = eqx.error_if(
        y0,
        ~jnp.all(jnp.isfinite(dynamics.flat_vector_field(y0, template, ts[0]))),
        "the vector field is not finite at params0 (an activation undefined there? a bad start?)",
    )

    def rhs(t, y, args):
        return dynamics.flat_vector_field(y, template, t)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs),
        diffrax.Tsit5(),
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=y0,
        args=(dynamics, template),
        saveat=diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=ts), diffrax.SubSaveAt(t1=True)]),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        event=diffrax.Event(_StopRule(stop_eg, stop_rate, q_max)),
        max_steps=max_steps,
        throw=False,
        progress_meter=diffrax.TqdmProgressMeter() if progress else diffrax.NoProgressMeter(),
    )
    ys_grid, y_final = sol.ys[0], sol.ys[1][0]
    t_stop = sol.ts[1][0]
    final = unflatten_learned(y_final, template, learn_v=dynamics.learn_v)
    diverged = _diverged(final, q_max)
    reached_event = sol.result == diffrax.RESULTS.event_occurred
    status = jnp.where(
        diverged,
        int(Status.DIVERGED),
        jnp.where(
            sol.result == diffrax.RESULTS.max_steps_reached,
            int(Status.MAX_STEPS),
            jnp.where(reached_event, int(Status.CONVERGED), int(Status.REACHED_HORIZON)),
        ),
    )
    # Saves after an early stop: repeat the converged state; NaN after divergence/max_steps.
    unreached = ts > t_stop
    fill = jnp.where(status == int(Status.CONVERGED), y_final, jnp.nan)
    ys = jnp.where(unreached[:, None], fill[None, :], ys_grid)
    series = unflatten_learned(ys, _broadcast_time(template, ts.shape[0]), learn_v=dynamics.learn_v)
    eg = generalization_error(series, averaging_activation(dynamics.activations))
    stats = sol.stats
    return Trajectory(
        t=ts,
        params=series,
        eg=eg,
        t_stop=t_stop,
        status=status,
        num_steps=stats["num_steps"],
        num_accepted_steps=stats["num_accepted_steps"],
        num_rejected_steps=stats["num_rejected_steps"],
    )


def _broadcast_time(params: OrderParams, n: int) -> OrderParams:
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), params)


def integrate(
    params0: OrderParams,
    eta: ArrayLike | AbstractDynamics,
    ts: ArrayLike | float,
    *,
    noise: ArrayLike = 0.0,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 200_000,
    stop_eg: float = 1e-7,
    stop_rate: float = 1e-8,
    q_max: float = 1e4,
    progress: bool = False,
    throw: bool = True,
    batched_dynamics: bool = False,
) -> Trajectory:
    r"""Integrate the order-parameter ODE from `params0` and save on the grid `ts`.

    Solver: Tsit5 with a PID step-size controller (`rtol`, `atol`) in minimal coordinates
    (upper triangle of $Q$, then $R$), in float64. The solve stops early once *converged*:
    $\epsilon_g <$ `stop_eg` **and** $\max|dy/d\alpha| <$ `stop_rate` (a plateau has a tiny
    vector field but an error far above `stop_eg`, so it never triggers this); saves after
    the stop repeat the converged state and `t_stop` records when it happened. With output
    noise $\epsilon_g$ has a floor $O(\eta s^2)$, so early stopping only happens if you raise
    `stop_eg` above it.

    **Arguments:**

    - `params0`: initial [`plateaux.OrderParams`][]; leading batch axes are solved in one
      `vmap` (the batch steps until its slowest member finishes).
    - `eta`: learning rate $\eta > 0$ for [`plateaux.OnlineSGD`][], a schedule $\eta(\alpha)$
      ([`plateaux.schedules.AbstractSchedule`][]), or any [`plateaux.AbstractDynamics`][]
      (then `noise` must be left at 0). For a batched
      `params0`, an array `eta` (and `noise`) of its batch shape gives one learning rate per
      member, still in one compiled `vmap`.
    - `ts`: increasing saving times starting at the initial time, or a horizon (a number):
      then [`plateaux.log_grid`][]`(horizon)`.
    - `noise`: output-noise standard deviation $s$.
    - `rtol`, `atol`, `max_steps`: solver controls.
    - `stop_eg`, `stop_rate`: early-stopping thresholds (above). `q_max`: a diagonal
      $Q_{ii}$ above it counts as divergence.
    - `progress`: show a progress bar (unbatched solves).
    - `throw`: raise on divergence or exhausted `max_steps` (default); with `False`, return
      the flagged trajectory (`status`, NaN after `t_stop`).
    - `batched_dynamics`: the dynamics object is itself a batch (its array fields with
      `ndim > 0` carry `params0`'s batch shape first, e.g. one $\eta$ per member; 0-d fields
      are shared) and is mapped together with `params0`. Implied by an array `eta` or
      `noise` with `ndim > 0`.

    **Returns:** a [`plateaux.Trajectory`][].

    **Raises:** `ValueError` on invalid input (naming it) and `RuntimeError` when the
    integration diverged or ran out of steps (with `throw=True`).
    """
    if isinstance(eta, AbstractSchedule):  # online SGD with eta(alpha)
        eta = Scheduled(OnlineSGD(eta(0.0), noise), eta)
        noise = 0.0
    if not isinstance(eta, AbstractDynamics) and (np.ndim(eta) or np.ndim(noise)):
        shape = params0.R.shape[:-2]
        eta, noise = (jnp.broadcast_to(jnp.asarray(x, dtype=float), shape) for x in (eta, noise))
        batched_dynamics = True
    dynamics = eta if isinstance(eta, AbstractDynamics) else OnlineSGD(eta, noise)
    if isinstance(eta, AbstractDynamics) and np.any(np.asarray(noise) != 0):
        raise ValueError("pass noise to the dynamics object, not to integrate(), when eta is one")
    if not isinstance(params0, OrderParams):
        raise TypeError(f"params0 must be a plateaux.OrderParams; got {type(params0).__name__}")
    if max_steps <= 0:
        raise ValueError(f"max_steps must be positive; got {max_steps}")
    for name, value, ok in (
        ("rtol", rtol, 0 < rtol < 1),
        ("atol", atol, atol > 0),
        ("stop_eg", stop_eg, stop_eg >= 0),
        ("stop_rate", stop_rate, stop_rate >= 0),
        ("q_max", q_max, q_max > 0),
    ):
        if not (np.isfinite(value) and ok):
            raise ValueError(f"{name}={value} is out of range (rtol in (0, 1); atol, q_max > 0; stop_* >= 0)")
    check_order_params(params0, "params0")
    grid = jnp.asarray(_as_grid(ts))
    # Tolerances and thresholds travel as arrays, so new values do not recompile.
    scalars = [jnp.asarray(x, dtype=float) for x in (rtol, atol, stop_eg, stop_rate, q_max)]
    args = (scalars[0], scalars[1], int(max_steps), *scalars[2:])
    batch_ndim = params0.R.ndim - 2
    if batch_ndim == 0:
        traj = _solve(dynamics, params0, grid, *args, progress)
    else:
        batch = params0.R.shape[:batch_ndim]
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[batch_ndim:]), params0)
        solve_one = lambda d, p: _solve(d, p, grid, *args, False)  # noqa: E731
        if batched_dynamics:
            dynamics_axes = jax.tree.map(lambda x: 0 if _is_batched(x) else None, dynamics)
            flat_dynamics = _flatten_batch(dynamics, batch)
            traj = eqx.filter_vmap(solve_one, in_axes=(dynamics_axes, 0))(flat_dynamics, flat)
        else:
            traj = eqx.filter_vmap(solve_one, in_axes=(None, 0))(dynamics, flat)
        traj = jax.tree.map(lambda x: x.reshape(batch + x.shape[1:]), traj)
    if throw:
        _raise_on_failure(traj, dynamics)
    return traj


def _is_batched(x) -> bool:
    return eqx.is_array(x) and x.ndim > 0


def _flatten_batch(dynamics: AbstractDynamics, batch: tuple) -> AbstractDynamics:
    """A batched dynamics' array fields with the batch axes flattened into one (0-d fields
    are shared by all members)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(eqx.filter(dynamics, _is_batched))[0]:
        if leaf.shape[: len(batch)] != batch:
            raise ValueError(
                f"batched dynamics field {jax.tree_util.keystr(path)} has shape {leaf.shape}; "
                f"it must start with the batch shape {batch} of params0 (or be a scalar)"
            )
    flatten = lambda x: x.reshape((-1,) + x.shape[len(batch) :]) if _is_batched(x) else x  # noqa: E731
    return jax.tree.map(flatten, dynamics)


def _raise_on_failure(traj: Trajectory, dynamics: AbstractDynamics) -> None:
    status = np.atleast_1d(np.asarray(traj.status))
    t_stop = np.atleast_1d(np.asarray(traj.t_stop))
    for code, what in (
        (Status.DIVERGED, "diverged (non-finite state or Q_ii > q_max)"),
        (Status.MAX_STEPS, "ran out of solver steps (raise max_steps, or loosen rtol/atol)"),
    ):
        bad = np.argwhere(status == code)
        if bad.size:
            idx = tuple(int(i) for i in bad[0])
            eta = np.asarray(getattr(dynamics, "eta", np.nan))
            eta = eta[idx] if eta.ndim else eta
            raise RuntimeError(
                f"integration {what} at alpha={t_stop[idx]:.6g}"
                + (f" for batch member {idx}" if np.ndim(traj.status) else "")
                + f" with eta={eta}"
                + ("; for online SGD this usually means eta is too large" if code == Status.DIVERGED else "")
                + ". Pass throw=False to get the flagged trajectory."
            )


def integrate_from_simulation(sim, ts: ArrayLike | None = None, **kwargs) -> Trajectory:
    r"""The ODE prediction for a [`plateaux.SimulationResult`][]: integrate from the
    simulated networks' *initial* order parameters with the same $\eta$, noise, learning
    rule and (student, teacher) activations (`sim.rule.dynamics(eta, noise, activations)`:
    [`plateaux.OnlineSGD`][] for SGD, with its trained second layer and weight decay;
    [`plateaux.natural.NaturalGradientSGD`][] for exact natural gradient), saving at the
    simulation's record times (or `ts`). Seeds batched in `sim` give a batched trajectory.
    Extra keyword arguments go to [`plateaux.integrate`][].

    **Raises:** `ValueError` if the batch mixes $\eta$, noise or rule settings, or if the rule
    has no order-parameter ODE (a custom optax optimizer, adaptive natural gradient).
    """
    eta, noise = np.unique(np.asarray(sim.eta)), np.unique(np.asarray(sim.noise))
    if eta.size != 1 or noise.size != 1:
        raise ValueError(f"simulations with different eta/noise in one batch: {eta}, {noise}")
    batch_ndim = np.ndim(sim.t) - 1

    def first(x):
        flat = np.asarray(x).reshape((-1,) + np.shape(x)[batch_ndim:])
        if not np.all(flat == flat[0]):
            raise ValueError(f"simulations with different rule settings in one batch: {flat}")
        return flat[0]

    rule = jax.tree.map(first, sim.rule)
    activations = jax.tree.map(first, (sim.student.activation, sim.teacher_activation))
    dynamics = rule.dynamics(eta[0], noise[0], activations)
    if dynamics is None:
        raise ValueError(
            f"the learning rule {type(rule).__name__} has no order-parameter ODE to compare with "
            "(a custom optax optimizer or an adaptive estimate of the Fisher)"
        )
    grid = np.asarray(sim.t).reshape(-1, np.shape(sim.t)[-1])[0] if ts is None else ts
    params0 = take_time(sim.params, 0)
    return integrate(params0, dynamics, grid, **kwargs)
