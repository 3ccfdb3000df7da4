r"""Differentiable outcomes of the order-parameter ODE (gradients through diffrax).

Every outcome integrates the averaged learning equations from `params0` with diffrax (Tsit5,
PID step control, float64) **without** the early-stopping event and eager validation of
[`plateaux.integrate`][], so it traces cleanly under `jax.grad`, `jax.jacfwd`, `jax.vmap`
and `jit`; a failed solve (divergence to non-finite values, exhausted `max_steps`) raises
through `eqx.error_if` rather than returning NaN.

The derivative is that of the discretised solve ("discretise-then-optimise"); with
`rtol` small it approaches the derivative of the exact flow. Choose the `adjoint`:

- `diffrax.ForwardMode()` with `jax.jacfwd`: cost proportional to the number of parameters,
  no memory overhead; best for a few scalars ($\eta$, $c$, one initial overlap).
- `diffrax.RecursiveCheckpointAdjoint()` (default) with `jax.grad`: cost independent of the
  number of parameters (a schedule with 20-50 knots), memory bounded by checkpointing.
  (`BacksolveAdjoint` is unreliable through plateaus: the backward solve of the unstable
  direction is exponentially ill-conditioned.)

[`value_and_grad`][] picks the right pairing from `mode`.
"""

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PyTree

from .._generalization import generalization_error
from .._order_params import OrderParams, flatten_learned, unflatten_learned
from ..dynamics import AbstractDynamics
from ..dynamics._base import averaging_activation

_TINY = 1e-300


def _safe_log(x):
    return jnp.log(jnp.maximum(x, _TINY))


def _check_positive(**values) -> None:
    """Eager range check (skipped for traced values): finite and > 0, naming the value."""
    for name, value in values.items():
        if isinstance(value, jax.core.Tracer):
            continue
        value = np.asarray(value)
        if not (np.all(np.isfinite(value)) and np.all(value > 0)):
            raise ValueError(f"{name} must be finite and > 0; got {name}={value}")


def _eg(dynamics: AbstractDynamics, params: OrderParams):
    return generalization_error(params, averaging_activation(dynamics.activations))


def _solve(dynamics, params0, t0, t1, ts, margin, rtol, atol, max_steps, adjoint):
    """Integrate (y, z) with dy/dt = F(y, t) and, if `margin` is given,
    dz/dt = sigmoid(margin(params)); save y at `ts` (or t1) and z at t1."""
    template = params0
    learn_v = dynamics.learn_v
    y0 = flatten_learned(params0, learn_v=learn_v)
    # Checked at run time, so a traced eta (grad, vmap, an optimiser's step) is covered too.
    etas = _learning_rates(dynamics, t0, t1)
    y0 = eqx.error_if(
        y0, ~jnp.all(jnp.isfinite(etas) & (etas > 0)), "the learning rate must be finite and > 0"
    )
    y0 = eqx.error_if(
        y0,
        ~jnp.all(jnp.isfinite(dynamics.flat_vector_field(y0, template, t0))),
        "the vector field is not finite at params0 (an activation undefined there? a bad start?)",
    )

    def rhs(t, state, args):
        y, _ = state
        dy = dynamics.flat_vector_field(y, template, t)
        if margin is None:
            return dy, jnp.zeros(())
        return dy, jax.nn.sigmoid(margin(unflatten_learned(y, template, learn_v=learn_v)))

    saveat = diffrax.SaveAt(t1=True) if ts is None else diffrax.SaveAt(ts=ts)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(rhs),
        diffrax.Tsit5(),
        t0=t0,
        t1=t1,
        dt0=None,
        y0=(y0, jnp.zeros(())),
        saveat=saveat,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        adjoint=diffrax.RecursiveCheckpointAdjoint() if adjoint is None else adjoint,
        max_steps=max_steps,
    )
    ys, zs = sol.ys
    ys = eqx.error_if(
        ys, ~jnp.all(jnp.isfinite(ys)), "the integration diverged (non-finite state): eta too large?"
    )
    # The same divergence rule as px.integrate: a norm Q_ii above Q_MAX is a runaway solve.
    q_diag = jnp.stack(list(_diagonal_coordinates(ys, template.K)), axis=-1)
    ys = eqx.error_if(
        ys, jnp.any(q_diag > _Q_MAX), f"the integration diverged (a Q_ii > {_Q_MAX:g}): eta too large?"
    )
    return ys, zs


_Q_MAX = 1e4  # as px.integrate's default q_max


def _diagonal_coordinates(ys, K: int):
    """The Q_ii entries of minimal coordinates (upper triangle of Q, row-major, comes first)."""
    j = 0
    for i in range(K):
        yield ys[..., j]
        j += K - i


def _learning_rates(dynamics, t0, t1):
    """The learning rate(s) the solve uses: eta, or a schedule sampled densely on [t0, t1]."""
    schedule = getattr(dynamics, "schedule", None)
    if schedule is not None:
        return schedule(jnp.linspace(t0, t1, 513))
    return jnp.asarray(getattr(dynamics, "eta", 1.0))


def _params_at(ys, template, learn_v):
    return unflatten_learned(ys, template, learn_v=learn_v)


def eg_at(
    params0: OrderParams,
    dynamics: AbstractDynamics,
    alpha: ArrayLike,
    *,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 100_000,
    adjoint: diffrax.AbstractAdjoint | None = None,
) -> Float[Array, "..."]:
    r"""The generalization error $\epsilon_g(\alpha)$ along the ODE solution from `params0`.

    **Arguments:**

    - `params0`: the initial [`plateaux.OrderParams`][] (at $\alpha = 0$; differentiable in
      every entry, including the teacher's $T$).
    - `dynamics`: any [`plateaux.AbstractDynamics`][] (differentiable in its array fields,
      e.g. `eta`, or a schedule inside [`plateaux.schedules.Scheduled`][]).
    - `alpha`: a time $> 0$, or an increasing 1-d array of times.
    - `rtol`, `atol`, `max_steps`: solver controls; `adjoint`: a `diffrax` adjoint (module
      docstring).

    **Returns:** $\epsilon_g(\alpha)$, of the shape of `alpha`.
    """
    _check_positive(alpha=alpha)
    alpha = jnp.asarray(alpha, dtype=float)
    ts = jnp.atleast_1d(alpha)
    ys, _ = _solve(dynamics, params0, 0.0, ts[-1], ts, None, rtol, atol, max_steps, adjoint)
    eg = _eg(dynamics, _params_at(ys, params0, dynamics.learn_v))
    return eg.reshape(alpha.shape)


def soft_duration(
    params0: OrderParams,
    dynamics: AbstractDynamics,
    margin: Callable[[OrderParams], Array],
    horizon: ArrayLike,
    *,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 100_000,
    adjoint: diffrax.AbstractAdjoint | None = None,
) -> Float[Array, ""]:
    r"""$\int_0^{H}\mathrm{sigmoid}\big(m(\mathrm{state}(\alpha))\big)\,d\alpha$: a smooth
    measure of the time during which the condition $m > 0$ holds ($H$ = `horizon`).

    As the margin $m$ gets steep this tends to the total time spent with $m > 0$, and its
    derivative exists everywhere (a hard first-crossing time has a derivative too, but an
    integral is what an ODE solve differentiates robustly). Integrated as an extra ODE
    coordinate, with the same error control.

    **Arguments:** as [`eg_at`][], plus `margin` (state $\mapsto$ scalar $m$, smooth) and
    `horizon` $H > 0$.

    **Returns:** the soft duration, a scalar in $[0, H]$.
    """
    _check_positive(horizon=horizon)
    _, z = _solve(
        dynamics,
        params0,
        0.0,
        jnp.asarray(horizon, dtype=float),
        None,
        margin,
        rtol,
        atol,
        max_steps,
        adjoint,
    )
    return z[-1]


def time_to_threshold(
    params0: OrderParams,
    dynamics: AbstractDynamics,
    threshold: ArrayLike,
    horizon: ArrayLike,
    *,
    sharpness: ArrayLike = 20.0,
    **kwargs,
) -> Float[Array, ""]:
    r"""Smooth time for $\epsilon_g$ to reach `threshold` $\theta$:

    $$\tau_\kappa = \int_0^{H}\mathrm{sigmoid}\big(\kappa\,[\ln\epsilon_g(\alpha)
    - \ln\theta]\big)\,d\alpha,$$

    the soft time spent with $\epsilon_g > \theta$. If $\epsilon_g$ crosses $\theta$ once, at
    $\alpha^*$, with log-slope $s = -d\ln\epsilon_g/d\alpha$ there, then
    $\tau_\kappa = \alpha^* + O\big((\kappa s)^{-2}\,\partial_\alpha s / s\big)$ (the sigmoid is
    odd about the crossing, so the first-order correction cancels), up to terms
    $e^{-\kappa\,|\ln\epsilon_g/\theta|}$ from the start and the end. The width of the soft
    step is a factor $e^{1/\kappa}$ in the error (default $\kappa = 20$: 5%). With $\theta$
    below the plateau's error this is the soft **plateau exit time**. $H$ must be past the
    crossing (otherwise $\tau_\kappa \approx H$).

    **Arguments:** as [`eg_at`][], plus `threshold` $\theta > 0$, `horizon` $H$ and
    `sharpness` $\kappa$.
    """
    _check_positive(threshold=threshold, horizon=horizon, sharpness=sharpness)
    log_threshold = jnp.log(jnp.asarray(threshold, dtype=float))

    def margin(params):
        return sharpness * (_safe_log(_eg(dynamics, params)) - log_threshold)

    return soft_duration(params0, dynamics, margin, horizon, **kwargs)


def _symmetry_breaking_squared(params: OrderParams):
    K = params.K
    Q, R = params.Q, params.R
    eye = jnp.eye(K, dtype=bool)
    diag_mean = jnp.sum(jnp.where(eye, Q, 0.0)) / K
    off_mean = jnp.sum(jnp.where(eye, 0.0, Q)) / max(K * (K - 1), 1)
    Q_sym = jnp.where(eye, diag_mean, off_mean)
    return jnp.sum((Q - Q_sym) ** 2) + jnp.sum((R - jnp.mean(R, axis=0)) ** 2)


def plateau_length(
    params0: OrderParams,
    dynamics: AbstractDynamics,
    horizon: ArrayLike,
    *,
    level: ArrayLike = 0.05,
    sharpness: ArrayLike = 5.0,
    **kwargs,
) -> Float[Array, ""]:
    r"""Smooth time spent near the symmetric subspace (the plateau of a $K = M$ run):

    $$\ell_\kappa = \int_0^H\mathrm{sigmoid}\big(\kappa\,[\ln d - \ln S(\alpha)]\big)\,d\alpha,$$

    with $S$ the symmetry breaking of [`plateaux.analysis.symmetry_breaking`][] (distance of
    $(Q, R)$ from the subspace of identical students) and $d$ = `level`. A classic start has
    $S = O(q_{\max})$ (the $Q_{ii}$ differ), the student falls onto the symmetric saddle
    ($S\to$ the initial asymmetry, $\sim10^{-12}$), and leaves it when $S$ grows like
    $e^{\lambda_+\alpha}$ back to $O(1)$: $\ell_\kappa$ is the length of that stay. Since
    $\ln S$ moves fast away from the crossings, $\kappa$ can be small (default 5).

    **Arguments:** as [`eg_at`][], plus `horizon` $H$, `level` $d$ and `sharpness` $\kappa$.
    """
    _check_positive(level=level, horizon=horizon, sharpness=sharpness)
    log_level = jnp.log(jnp.asarray(level, dtype=float))

    def margin(params):
        return sharpness * (log_level - 0.5 * _safe_log(_symmetry_breaking_squared(params)))

    return soft_duration(params0, dynamics, margin, horizon, **kwargs)


def value_and_grad(
    outcome: Callable[[PyTree, diffrax.AbstractAdjoint], Array], x: PyTree, *, mode: str = "reverse"
) -> tuple[Array, PyTree]:
    r"""The value of a scalar outcome and its derivative in `x`.

    `outcome(x, adjoint)` must pass `adjoint` on to the outcome functions above (or to
    `diffrax.diffeqsolve`). `mode="forward"`: `jax.jacfwd` with `diffrax.ForwardMode()`
    (one tangent per scalar in `x`: for a few parameters); `mode="reverse"`: `jax.grad` with
    `diffrax.RecursiveCheckpointAdjoint()` (one backward pass: for many parameters).

    ```python
    f = lambda eta, adjoint: px.studies.eg_at(p0, px.OnlineSGD(eta), 200.0, adjoint=adjoint)
    value, d_eta = px.studies.value_and_grad(f, 0.5, mode="forward")
    ```

    Compiled once per `outcome` object (pass the same function to reuse the compilation).

    **Returns:** `(value, gradient)`, the gradient with the structure of `x` (floats only:
    pass `x` as float arrays or Python floats).
    """
    x = jax.tree.map(lambda a: jnp.asarray(a, dtype=float), x)
    if mode == "forward":
        return _forward(outcome, x)
    if mode == "reverse":
        return _reverse(outcome, x)
    raise ValueError(f"mode must be 'forward' or 'reverse'; got mode={mode!r}")


# Jitted once per `outcome` function object (a non-array argument: static, hashed by identity).
@eqx.filter_jit
def _forward(outcome, x):
    adjoint = diffrax.ForwardMode()

    def f(y):
        value = outcome(y, adjoint)
        return value, value

    grad, value = jax.jacfwd(f, has_aux=True)(x)
    return value, grad


@eqx.filter_jit
def _reverse(outcome, x):
    return jax.value_and_grad(lambda y: outcome(y, diffrax.RecursiveCheckpointAdjoint()))(x)


def grad(
    outcome: Callable[[PyTree, diffrax.AbstractAdjoint], Array], x: PyTree, *, mode: str = "reverse"
) -> PyTree:
    """The derivative of `outcome` in `x` ([`value_and_grad`][] without the value)."""
    return value_and_grad(outcome, x, mode=mode)[1]
