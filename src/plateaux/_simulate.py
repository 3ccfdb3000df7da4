r"""Finite-N online learning of a soft committee machine (the same rules as the ODEs).

The machinery (inputs drawn in chunks inside a jitted `lax.scan`, exact order parameters at every
record, `vmap` over seeds) is shared by every learning rule; the rule itself is an
[`plateaux.AbstractUpdateRule`][] (online SGD by default, natural gradient in
[`plateaux.natural`][]).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._generalization import generalization_error
from ._network import SoftCommittee, order_parameters
from ._order_params import OrderParams
from ._rules import SGD, AbstractUpdateRule, squared_error as squared_error
from ._trajectory import OrderParamsSeries
from .activations import AbstractActivation
from .dynamics._base import averaging_activation
from .schedules import AbstractSchedule, scheduled_rule


class SimulationResult(OrderParamsSeries):
    r"""Record of a finite-N simulation.

    **Fields:** `t` (time $\alpha = \mu/N$ at each record, shape `(S,)`), `params` (exact
    order parameters of the networks at each record), `eg` (the *exact* generalization error
    of the finite network, from its order parameters, so no Monte-Carlo noise is added),
    `student` (final student), `eta`, `noise`, `rule` (the [`plateaux.AbstractUpdateRule`][]
    that was simulated), `diagnostics` (the rule's per-record scalars, e.g. the conditioning of
    the Fisher for natural gradient; empty for SGD), `teacher_activation`, `N`. With a trained
    second layer (`SGD(eta_v=...)`) `params.v` records $v(\alpha)$.
    Batch axes (e.g. seeds under `vmap`) come first.
    """

    t: Float[Array, "*b S"]
    params: OrderParams
    eg: Float[Array, "*b S"]
    student: SoftCommittee
    eta: Float[Array, "*b"]
    noise: Float[Array, "*b"]
    rule: AbstractUpdateRule
    diagnostics: dict
    teacher_activation: AbstractActivation
    N: int = eqx.field(static=True)


_CHUNK = 256  # inputs drawn at once (per seed): one chunk of (256, N) normals


def _check_positive(name: str, value) -> None:
    if isinstance(value, jax.core.Tracer):
        return
    value = np.asarray(value)
    if not (np.all(np.isfinite(value)) and np.all(value > 0)):
        raise ValueError(f"{name} must be finite and > 0; got {name}={value}")


@eqx.filter_jit
def _run(student, teacher, eta, noise, key, n_records, record_every, rule):
    N = student.N
    # Each block of `record_every` steps runs full chunks, then one shorter chunk for the rest,
    # so the chunk size (and the speed) does not depend on the divisors of record_every.
    chunk = min(_CHUNK, record_every)
    n_chunks, rest = divmod(record_every, chunk)

    def step(carry, example):
        weights, state = carry
        xi, label_noise = example
        label = teacher(xi) + noise * label_noise
        return rule.update(weights, state, student, xi, label, eta), None

    def run_chunk(carry, chunk_key, size=chunk):
        # Drawing a chunk of inputs at once is much faster than one draw per step.
        k_xi, k_noise = jax.random.split(chunk_key)
        examples = (jax.random.normal(k_xi, (size, N)), jax.random.normal(k_noise, (size,)))
        return jax.lax.scan(step, carry, examples)[0], None

    def block(carry, block_key):
        k_full, k_rest = jax.random.split(block_key)
        carry, _ = jax.lax.scan(run_chunk, carry, jax.random.split(k_full, n_chunks))
        if rest:
            carry, _ = run_chunk(carry, k_rest, rest)
        return carry, (carry[0], rule.record(*carry, student))

    state0 = rule.init(student, eta)
    init = (rule.parameters(student), state0)
    (weights, _), (recorded, stats) = jax.lax.scan(block, init, jax.random.split(key, n_records))
    all_weights = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), init[0], recorded)
    stats0 = rule.record(init[0], state0, student)
    diagnostics = jax.tree.map(lambda a, b: jnp.concatenate([jnp.asarray(a)[None], b]), stats0, stats)
    series = jax.vmap(lambda p: order_parameters(rule.network(student, p), teacher))(all_weights)
    t = jnp.arange(n_records + 1, dtype=float) * (record_every / N)
    return SimulationResult(
        t=t,
        params=series,
        eg=generalization_error(series, averaging_activation((student.activation, teacher.activation))),
        student=rule.network(student, weights),
        eta=jnp.asarray(eta, dtype=float),
        noise=jnp.asarray(noise, dtype=float),
        rule=rule,
        diagnostics=diagnostics,
        teacher_activation=teacher.activation,
        N=N,
    )


def simulate(
    student: SoftCommittee,
    teacher: SoftCommittee,
    eta: ArrayLike,
    n_steps: int,
    key: PRNGKeyArray,
    *,
    record_every: int | None = None,
    noise: ArrayLike = 0.0,
    optimizer: optax.GradientTransformation | None = None,
    rule: AbstractUpdateRule | None = None,
    eta_v: ArrayLike | None = None,
    weight_decay: ArrayLike = 0.0,
) -> SimulationResult:
    r"""Online learning of `student` on labels of `teacher`, one fresh Gaussian example per step.

    Each step draws $\xi\sim\mathcal N(0, I_N)$, the label $\tau = \sum_n w_n g(y_n) + s\zeta$
    ($\zeta\sim\mathcal N(0,1)$), and applies the learning `rule`. The default,
    [`plateaux.SGD`][], is optax SGD with learning rate $\eta$ on
    $\epsilon = (\sigma-\tau)^2/2$ as a function of the hidden weights; since
    $\nabla_{J_i}\epsilon = (\sigma-\tau) v_i g'(x_i)\,\xi/\sqrt N$ this is exactly
    $J_i \leftarrow J_i + \frac{\eta}{\sqrt N} v_i g'(x_i)(\tau - \sigma)\,\xi$, the rule whose
    $N\to\infty$ limit is [`plateaux.OnlineSGD`][]. Time is $\alpha = \mu/N$.

    Pure in `key` (jitted with `lax.scan`), so `jax.vmap` over keys (and students) runs many
    seeds at once.

    **Arguments:**

    - `student`, `teacher`: [`plateaux.SoftCommittee`][] of the same input dimension $N$.
    - `eta`: learning rate $> 0$, or a schedule $\eta(\alpha)$
      ([`plateaux.schedules.AbstractSchedule`][]: step $\mu$ uses $\eta(\mu/N)$; the result's
      `eta` is then $\eta(0)$ and its `rule` a [`plateaux.schedules.ScheduledRule`][]).
      `noise`: label-noise standard deviation $s\ge0$.
    - `n_steps`: number of examples; a multiple of `record_every`.
    - `key`: a JAX PRNG key.
    - `record_every`: steps between records (default: the largest divisor of `n_steps`
      giving at least 200 records).
    - `optimizer`: an optax transformation to use instead of `optax.sgd(eta)` (then the ODE
      comparison no longer applies); shorthand for `rule=SGD(optimizer)`.
    - `rule`: the learning rule, an [`plateaux.AbstractUpdateRule`][] (default
      [`plateaux.SGD`][]); e.g. [`plateaux.natural.NaturalGradient`][] (exact Fisher) or
      [`plateaux.natural.AdaptiveNaturalGradient`][]. `rule.dynamics(eta, noise)` is the matching
      order-parameter ODE, if any.
    - `eta_v`, `weight_decay`: shorthand for `rule=SGD(optimizer, eta_v=eta_v,
      weight_decay=weight_decay)`: a trained second layer
      $v_i\leftarrow v_i + \frac{\eta_v}N g(x_i)(\tau-\sigma)$ and hidden-layer weight decay
      $J_i\leftarrow J_i - \frac{\eta\lambda}N J_i$ (see [`plateaux.SGD`][]).

    **Returns:** a [`plateaux.SimulationResult`][] with `n_steps // record_every + 1` records,
    the first at $\alpha = 0$.
    """
    if student.N != teacher.N:
        raise ValueError(f"student N={student.N} and teacher N={teacher.N} differ")
    if (
        eta_v is not None
        or isinstance(weight_decay, jax.core.Tracer)
        or np.any(np.asarray(weight_decay) != 0)
    ):
        if rule is not None:
            raise ValueError(
                "pass either eta_v=/weight_decay= or rule=, not both "
                "(use rule=SGD(optimizer, eta_v=..., weight_decay=...))"
            )
        rule, optimizer = SGD(optimizer, eta_v=eta_v, weight_decay=weight_decay), None
    if isinstance(eta, AbstractSchedule):  # eta(mu / N) at step mu, counted in the rule's state
        rule, optimizer, eta = scheduled_rule(rule, optimizer, eta), None, eta(0.0)
    _check_positive("eta", eta)
    if not isinstance(noise, jax.core.Tracer) and not np.all(np.asarray(noise) >= 0):
        raise ValueError(f"noise (standard deviation) must be >= 0; got noise={noise}")
    n_steps = int(n_steps)
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1; got {n_steps}")
    if record_every is None:  # about 200 records, spaced by a divisor of n_steps
        target = max(1, n_steps // 200)
        record_every = max(d for d in range(1, target + 1) if n_steps % d == 0)
    record_every = int(record_every)
    if record_every < 1 or n_steps % record_every:
        raise ValueError(f"record_every={record_every} must be >= 1 and divide n_steps={n_steps}")
    if rule is None:
        rule = SGD(optimizer)
    elif optimizer is not None:
        raise ValueError("pass either optimizer= or rule=, not both (use rule=SGD(optimizer))")
    if not isinstance(rule, AbstractUpdateRule):
        raise TypeError(f"rule must be a plateaux.AbstractUpdateRule; got {type(rule).__name__}")
    rule.check(student)
    eta = jnp.asarray(eta, dtype=float)
    noise = jnp.asarray(noise, dtype=float)
    return _run(student, teacher, eta, noise, key, n_steps // record_every, record_every, rule)
