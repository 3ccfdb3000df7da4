r"""Learning-rate schedules $\eta(\alpha)$ for the ODE and the finite-N simulation.

A schedule is an Equinox module, callable $\alpha\mapsto\eta(\alpha)$, whose array fields are
differentiable parameters (so `jax.grad` and optax see them as ordinary pytree leaves).

- [`Constant`][]: $\eta(\alpha) = \eta_0$.
- [`PiecewiseConstant`][]: $\eta = v_j$ for $b_{j-1}\le\alpha < b_j$ (boundaries $b$).
- [`PiecewiseLinear`][]: linear interpolation of `values` between `knots`, constant outside.
- [`InverseTime`][]: $\eta_0(1 + \alpha/\alpha_0)^{-\beta}$ (Robbins-Monro family).
- [`Bounded`][]: $\eta_{\max}\,\mathrm{sigmoid}(\theta(\alpha))$ with $\theta$ linear between
  knots: smooth in its parameters, always inside $(0, \eta_{\max})$; the family used for
  gradient-based schedule design ([`plateaux.studies`][]).

In the ODE, [`Scheduled`][]`(dynamics, schedule)` is the time-dependent vector field
$F(\mathrm{state}; \eta(\alpha))$ (the base dynamics' `eta` leaf replaced by
$\eta(\alpha)$); `px.integrate(params0, schedule, ts)` is shorthand for online SGD. In the
simulation, `px.simulate(..., eta=schedule)` uses $\eta(\mu/N)$ at step $\mu$
([`ScheduledRule`][]).
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PyTree

from ._order_params import OrderParams
from ._rules import SGD, AbstractUpdateRule
from .dynamics import AbstractDynamics


def _traced(*xs) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(xs))


def _check_values(name: str, values, *, positive: bool = True) -> None:
    if _traced(values):
        return
    values = np.asarray(values)
    ok = values > 0 if positive else np.ones_like(values, dtype=bool)
    if not (np.all(np.isfinite(values)) and np.all(ok)):
        raise ValueError(
            f"schedule {name} must be finite{' and > 0' if positive else ''}; got {name}={values}"
        )


def _check_knots(name: str, knots, min_size: int) -> None:
    if _traced(knots):
        return
    knots = np.asarray(knots)
    if knots.ndim != 1 or knots.size < min_size:
        raise ValueError(
            f"schedule {name} must be a 1-d array of >= {min_size} times; got shape {knots.shape}"
        )
    if not np.all(np.isfinite(knots)) or np.any(np.diff(knots) <= 0):
        raise ValueError(f"schedule {name} must be finite and strictly increasing; got {name}={knots}")


def _array(x) -> Array:
    return jnp.asarray(x, dtype=float)


class AbstractSchedule(eqx.Module):
    r"""A learning rate as a function of time, $\alpha\mapsto\eta(\alpha) > 0$."""

    @abc.abstractmethod
    def __call__(self, alpha: ArrayLike) -> Float[Array, "..."]:
        r"""$\eta(\alpha)$ (elementwise for an array of times)."""


class Constant(AbstractSchedule):
    r"""$\eta(\alpha) = \eta_0$. **Arguments:** `eta`: $\eta_0 > 0$."""

    eta: Float[Array, ""]

    def __init__(self, eta: ArrayLike):
        self.eta = _array(eta)

    def __check_init__(self):
        if not _traced(self.eta) and self.eta.shape != ():
            raise ValueError(f"Constant schedule needs a scalar eta; got shape {self.eta.shape}")
        _check_values("eta", self.eta)

    def __call__(self, alpha):
        return jnp.broadcast_to(self.eta, jnp.shape(alpha))


class PiecewiseConstant(AbstractSchedule):
    r"""$\eta(\alpha) = v_j$ for $b_{j-1}\le\alpha<b_j$ ($b_0 = -\infty$, $b_n = \infty$).

    **Arguments:** `boundaries`: strictly increasing $b_1 < \dots < b_{n-1}$ ($n-1\ge1$ times);
    `values`: $v_1, \dots, v_n > 0$ (one more than the boundaries). Differentiable in `values`
    (the derivative in the boundaries is not captured by an ODE solve: use
    [`PiecewiseLinear`][] or [`Bounded`][] for that). An adaptive ODE solve finds the jumps
    by step rejection, to its tolerance.

    **Raises:** `ValueError` for non-increasing boundaries, a count mismatch, or values that are
    not finite and positive.
    """

    boundaries: Float[Array, " n-1"]
    values: Float[Array, " n"]

    def __init__(self, boundaries: ArrayLike, values: ArrayLike):
        self.boundaries = _array(boundaries)
        self.values = _array(values)

    def __check_init__(self):
        _check_knots("boundaries", self.boundaries, 1)
        _check_values("values", self.values)
        if self.values.shape != (self.boundaries.shape[0] + 1,):
            raise ValueError(
                f"need a 1-d array of one more value than boundaries; got values of shape "
                f"{self.values.shape} for {self.boundaries.shape[0]} boundaries"
            )

    def __call__(self, alpha):
        return self.values[jnp.searchsorted(self.boundaries, jnp.asarray(alpha), side="right")]


class PiecewiseLinear(AbstractSchedule):
    r"""$\eta$ linear between $(\alpha_j, v_j)$, constant ($v_1$, $v_n$) outside the knots.

    **Arguments:** `knots`: strictly increasing times $\alpha_1<\dots<\alpha_n$ ($n\ge2$);
    `values`: $v_j > 0$, one per knot. Differentiable in both.

    **Raises:** `ValueError` for non-increasing knots, a count mismatch, or values that are not
    finite and positive.
    """

    knots: Float[Array, " n"]
    values: Float[Array, " n"]

    def __init__(self, knots: ArrayLike, values: ArrayLike):
        self.knots = _array(knots)
        self.values = _array(values)

    def __check_init__(self):
        _check_knots("knots", self.knots, 2)
        _check_values("values", self.values)
        if self.values.shape != self.knots.shape:
            raise ValueError(
                f"need one value per knot; got {self.values.shape[0]} values, {self.knots.shape[0]} knots"
            )

    def __call__(self, alpha):
        return jnp.interp(jnp.asarray(alpha, dtype=float), self.knots, self.values)


class InverseTime(AbstractSchedule):
    r"""$\eta(\alpha) = \eta_0\,(1 + \alpha/\alpha_0)^{-\beta}$ ($\beta = 1$: the Robbins-Monro
    $1/\alpha$ decay that online SGD needs to reach zero error under label noise).

    **Arguments:** `eta0 > 0`, `alpha0 > 0`, `beta >= 0`; differentiable in all three.
    """

    eta0: Float[Array, ""]
    alpha0: Float[Array, ""]
    beta: Float[Array, ""]

    def __init__(self, eta0: ArrayLike, alpha0: ArrayLike, beta: ArrayLike = 1.0):
        self.eta0, self.alpha0, self.beta = _array(eta0), _array(alpha0), _array(beta)

    def __check_init__(self):
        _check_values("eta0", self.eta0)
        _check_values("alpha0", self.alpha0)
        _check_values("beta", self.beta, positive=False)
        if not _traced(self.beta) and np.any(np.asarray(self.beta) < 0):
            raise ValueError(f"schedule beta must be >= 0; got beta={self.beta}")

    def __call__(self, alpha):
        return self.eta0 * (1.0 + jnp.asarray(alpha, dtype=float) / self.alpha0) ** (-self.beta)


def _logit(p):
    return jnp.log(p) - jnp.log1p(-p)


class Bounded(AbstractSchedule):
    r"""$\eta(\alpha) = \eta_{\max}\,\mathrm{sigmoid}(\theta(\alpha))$, with $\theta$ linear
    between the knots $(\alpha_j, \theta_j)$ and constant outside.

    Every real $\theta$ gives a valid schedule inside $(0, \eta_{\max})$, so unconstrained
    optimisers (optax) can move `logits` freely while $\eta$ stays below a stability bound.
    [`plateaux.studies.optimize_schedule`][] trains the `logits` and keeps the knots.

    **Arguments:** `knots` (strictly increasing, $\ge 2$), `logits` $\theta_j$ (one per knot),
    `eta_max > 0`. [`Bounded.from_values`][] builds one from $\eta$ values in $(0, \eta_{\max})$.
    """

    knots: Float[Array, " n"]
    logits: Float[Array, " n"]
    eta_max: Float[Array, ""]

    def __init__(self, knots: ArrayLike, logits: ArrayLike, eta_max: ArrayLike):
        self.knots, self.logits, self.eta_max = _array(knots), _array(logits), _array(eta_max)

    def __check_init__(self):
        _check_knots("knots", self.knots, 2)
        _check_values("logits", self.logits, positive=False)
        _check_values("eta_max", self.eta_max)
        if self.logits.shape != self.knots.shape:
            raise ValueError(
                f"need one logit per knot; got {self.logits.shape[0]} logits, {self.knots.shape[0]} knots"
            )

    @classmethod
    def from_values(cls, knots: ArrayLike, values: ArrayLike, eta_max: ArrayLike) -> "Bounded":
        r"""The schedule through $\eta(\alpha_j) = $ `values[j]` (each in $(0, \eta_{\max})$;
        a scalar is broadcast to every knot)."""
        knots = _array(knots)
        values = jnp.broadcast_to(_array(values), knots.shape)
        if not _traced(values, eta_max):
            bad = ~((np.asarray(values) > 0) & (np.asarray(values) < np.asarray(eta_max)))
            if np.any(bad) or not np.all(np.isfinite(np.asarray(values))):
                raise ValueError(f"Bounded values must lie in (0, eta_max={eta_max}); got values={values}")
        return cls(knots, _logit(values / _array(eta_max)), eta_max)

    def __call__(self, alpha):
        theta = jnp.interp(jnp.asarray(alpha, dtype=float), self.knots, self.logits)
        return self.eta_max * jax.nn.sigmoid(theta)


class Scheduled(AbstractDynamics):
    r"""The time-dependent vector field $F(\mathrm{state};\,\eta(\alpha))$: the base dynamics
    with its `eta` leaf replaced by `schedule(alpha)` at every time.

    Works for any dynamics with a scalar `eta` field ([`plateaux.OnlineSGD`][],
    [`plateaux.natural.NaturalGradientSGD`][]); the base's own `eta` is ignored. Integrators
    pass the time ([`AbstractDynamics.vector_field_at`][]); the autonomous
    [`vector_field`][] (fixed points, Jacobians) has no meaning here and raises.

    **Arguments:** `base`: an [`plateaux.AbstractDynamics`][] with an `eta` field;
    `schedule`: an [`AbstractSchedule`][].
    """

    base: AbstractDynamics
    schedule: AbstractSchedule

    def __check_init__(self):
        if not isinstance(self.base, AbstractDynamics) or not hasattr(self.base, "eta"):
            raise ValueError(
                f"Scheduled needs a dynamics with an `eta` field; got {type(self.base).__name__}"
            )
        if not isinstance(self.schedule, AbstractSchedule):
            raise TypeError(
                f"schedule must be a plateaux.schedules.AbstractSchedule; got {type(self.schedule)}"
            )

    @property
    def learn_v(self) -> bool:
        return self.base.learn_v

    @property
    def activation(self):
        return self.base.activation

    @property
    def activations(self):
        return self.base.activations

    def at(self, t) -> AbstractDynamics:
        r"""The base dynamics frozen at $\eta = \eta(t)$."""
        return eqx.tree_at(lambda d: d.eta, self.base, jnp.asarray(self.schedule(t), dtype=float))

    def vector_field(self, params: OrderParams) -> OrderParams:
        raise ValueError(
            "a Scheduled dynamics is time dependent: use vector_field_at(params, t), or "
            "scheduled.at(t) for the autonomous dynamics frozen at eta(t)"
        )

    def vector_field_at(self, params: OrderParams, t) -> OrderParams:
        return self.at(t).vector_field(params)

    def flat_vector_field(self, y, template, t=None):
        # The base's own flat field at eta(t) (it may have a faster path than vector_field).
        if t is None:
            self.vector_field(template)  # raises: no autonomous field
        return self.at(t).flat_vector_field(y, template, t)


class ScheduledRule(AbstractUpdateRule):
    r"""A finite-N learning rule driven by a schedule: step $\mu$ (counted from 0) uses
    $\eta(\mu/N)$. The step count lives in the rule's state, so the simulation machinery is
    unchanged. `px.simulate(..., eta=schedule)` builds it around the rule given (default
    [`plateaux.SGD`][]); its ODE is [`Scheduled`][]`(rule.dynamics(...), schedule)`.
    """

    rule: AbstractUpdateRule
    schedule: AbstractSchedule

    def check(self, student) -> None:
        self.rule.check(student)

    def parameters(self, student) -> PyTree:
        return self.rule.parameters(student)

    def network(self, student, parameters):
        return self.rule.network(student, parameters)

    def init(self, student, eta) -> PyTree:
        return (self.rule.init(student, self.schedule(0.0)), jnp.zeros((), dtype=int))

    def update(self, weights, state, student, xi, label, eta):
        inner, step = state
        eta_t = self.schedule(step.astype(float) / student.N)
        weights, inner = self.rule.update(weights, inner, student, xi, label, eta_t)
        return weights, (inner, step + 1)

    def record(self, weights, state, student) -> dict:
        return self.rule.record(weights, state[0], student)

    def dynamics(self, eta, noise, *args, **kwargs):
        base = self.rule.dynamics(self.schedule(0.0), noise, *args, **kwargs)
        return None if base is None else Scheduled(base, self.schedule)


def scheduled_rule(rule, optimizer, schedule: AbstractSchedule) -> ScheduledRule:
    """`ScheduledRule(rule, schedule)`, the rule defaulting to `SGD(optimizer)` (used by
    [`plateaux.simulate`][] for `eta=schedule`)."""
    if rule is not None and optimizer is not None:
        raise ValueError("pass either optimizer= or rule=, not both (use rule=SGD(optimizer))")
    return ScheduledRule(SGD(optimizer) if rule is None else rule, schedule)
