r"""Natural gradient update rules for the finite-N simulation ([`plateaux.simulate`][]`(rule=...)`).

Both rules precondition the online gradient $\nabla_J\epsilon = -(\tau - \sigma)\nabla_J\sigma$,
$\nabla_{J_i}\sigma = v_ig'(x_i)\xi/\sqrt N$, with an inverse Fisher:
$\Delta J = -\frac\eta N\,G^{-1}\nabla_J\epsilon$. With the exact Fisher ($G = \mathcal G/N$,
$\mathcal G = O(1)$) the step is $\frac{\eta}{\sqrt N}\mathcal G^{-1}(\delta\otimes\xi)$, the same size per
component as online SGD.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._network import SoftCommittee
from .._rules import AbstractUpdateRule, activation_pair
from ._fisher import _check_erf, fisher_matrix, structure_from_weights
from ._ode import NaturalGradientSGD


def _eigh_solve(M, b, damping, rcond):
    """(M + damping)^+ b by eigh; also returns M's eigenvalues and whether any was dropped."""
    mu, V = jnp.linalg.eigh(M + damping * jnp.eye(M.shape[0]))
    keep = mu > rcond * jnp.max(jnp.abs(mu))
    inv = jnp.where(keep, 1.0 / jnp.where(keep, mu, 1.0), 0.0)
    return V @ (inv * (V.T @ b)), mu - damping, ~jnp.all(keep)


class NaturalGradient(AbstractUpdateRule):
    r"""Online natural gradient descent with the exact Fisher of an erf soft committee machine.

    Each step builds the structured Fisher of the current weights
    ([`plateaux.natural.FisherStructure`][]: $O(K^2N)$ work, a $K\times K$ and a $K^2\times K^2$
    eigen-solve, no $KN\times KN$ matrix) and applies
    $\Delta J = \frac\eta{\sqrt N}(\mathcal G + \lambda I)^{+}(\delta\otimes\xi)$, $\delta_i =
    v_ig'(x_i)(\tau - \sigma)$, i.e. $-\frac\eta N(G + \lambda I/N)^{-1}\nabla_J\epsilon$. Its
    $N\to\infty$ limit is [`plateaux.natural.NaturalGradientSGD`][].

    **Arguments:**

    - `damping`: Tikhonov damping $\lambda\ge0$ of the normalised Fisher $\mathcal G = NG$.
    - `rcond`: relative cutoff of the pseudo-inverses and of the span directions (see
      [`plateaux.natural.FisherStructure`][]).
    - `warn_below`: a step is *flagged* when the smallest eigenvalue of $\mathcal G$ is below
      `warn_below` times the largest.

    **Diagnostics** (per record, in `SimulationResult.diagnostics`): `condition` (smallest /
    largest eigenvalue of $\mathcal G$ at the record), `n_regularised` (steps so far where damping
    or a pseudo-inverse cutoff was active), `n_flagged` (steps so far below `warn_below`).
    """

    damping: Float[Array, ""]
    rcond: float = eqx.field(static=True)
    warn_below: float = eqx.field(static=True)

    def __init__(self, damping: ArrayLike = 0.0, *, rcond: float = 1e-12, warn_below: float = 1e-8):
        self.damping = jnp.asarray(damping, dtype=float)
        self.rcond = float(rcond)
        self.warn_below = float(warn_below)

    def __check_init__(self):
        if not isinstance(self.damping, jax.core.Tracer):
            d = np.asarray(self.damping)
            if not (np.all(np.isfinite(d)) and np.all(d >= 0)):
                raise ValueError(f"damping must be finite and >= 0; got damping={d}")
        if not (0.0 < self.rcond < 1.0):
            raise ValueError(f"rcond must lie in (0, 1); got rcond={self.rcond}")

    def check(self, student):
        _check_erf(student.activation, "NaturalGradient (exact Fisher)")

    def init(self, student, eta):
        return {"n_regularised": jnp.zeros((), int), "n_flagged": jnp.zeros((), int)}

    def direction(self, weights, student, c, xi):
        r"""$\mathcal G_\lambda^{+}(c\otimes\xi)$ and `(condition, regularised)` of this step."""
        K, N = weights.shape
        s = structure_from_weights(weights, student.v, self.rcond)
        z = s.basis.T @ xi
        perp = xi - s.basis @ z
        coef, mu_a, drop_a = _eigh_solve(s.complement, c, self.damping, self.rcond)
        w, mu_s, drop_s = _eigh_solve(s.span, jnp.outer(c, z).reshape(-1), self.damping, self.rcond)
        step = jnp.outer(coef, perp) + w.reshape(K, -1) @ s.basis.T
        mu = jnp.concatenate([mu_a, mu_s])
        condition = jnp.min(mu) / jnp.max(mu)
        regularised = (self.damping > 0) | drop_a | drop_s | ~jnp.all(s.kept)
        return step, condition, regularised

    def update(self, weights, state, student, xi, label, eta):
        N = weights.shape[1]
        act = student.activation
        x = weights @ xi / math.sqrt(N)
        c = (label - act.g(x) @ student.v) * student.v * act.dg(x)
        step, condition, regularised = self.direction(weights, student, c, xi)
        state = {
            "n_regularised": state["n_regularised"] + regularised.astype(int),
            "n_flagged": state["n_flagged"] + (condition < self.warn_below).astype(int),
        }
        return weights + (eta / math.sqrt(N)) * step, state

    def record(self, weights, state, student):
        s = structure_from_weights(weights, student.v, self.rcond)
        report = s.report(self.damping, self.warn_below)
        return {"condition": report.condition, **state}

    def dynamics(self, eta, noise, activation=None):
        student, teacher = activation_pair(activation)
        if teacher is not None and not isinstance(teacher, type(student)):
            raise ValueError(
                "NaturalGradientSGD has no ODE for a teacher activation different from the "
                f"student's; got student {type(student).__name__}, teacher {type(teacher).__name__}"
            )
        return NaturalGradientSGD(eta, noise, student, damping=self.damping)


class AdaptiveNaturalGradient(AbstractUpdateRule):
    r"""Adaptive natural gradient (Amari, Park & Fukumizu 2000; Park, Amari & Fukumizu 2000): an
    online estimate $\hat G^{-1}$ of the inverse Fisher replaces the exact one.

    Per example, with $f = \nabla_J\sigma(\xi)$ (a $KN$ vector) and the estimation rate
    $\varepsilon$:

    $$\hat G^{-1}\leftarrow(1+\varepsilon)\hat G^{-1} - \varepsilon\,\hat G^{-1}ff^T\hat G^{-1},\qquad
    \Delta J = -\frac\eta N\hat G^{-1}\nabla_J\epsilon = \frac\eta N(\tau - \sigma)\hat G^{-1}f,$$

    the updated estimate being used for the step. The first formula is the first-order (in
    $\varepsilon$) inverse of the running average $\hat G\leftarrow(1-\varepsilon)\hat G + \varepsilon ff^T$,
    whose mean fixed point is $G$. It needs no Fisher formula (any activation), costs $O((KN)^2)$ per
    step and stores a $KN\times KN$ matrix.

    **Choosing $\varepsilon$.** The first-order inverse is accurate, and $\hat G^{-1}$ stays positive
    definite, only while $\varepsilon f^T\hat G^{-1}f\ll1$; since $f^T G^{-1}f = O(KN)$ this needs
    $\varepsilon\ll1/(KN)$. The estimate then relaxes over about $1/(\varepsilon N)$ units of $\alpha$ and
    averages about $1/\varepsilon$ rank-one samples in $KN$ dimensions (relative error
    $\sim\sqrt{\varepsilon KN}$). The per-record diagnostic `gain`, the largest
    $\varepsilon f^T\hat G^{-1}f$ so far, says whether the rule stayed in that regime.

    **Arguments:**

    - `rate`: $\varepsilon > 0$ (constant).
    - `init`: initial $\hat G^{-1}$: `"identity"` gives $N\cdot$`scale`$\cdot I$, for which the first step
      equals `scale` times an SGD step; `"exact"` is the inverse of the exact (erf) Fisher of the
      initial student.
    - `scale`: see `init`.
    """

    rate: Float[Array, ""]
    scale: Float[Array, ""]
    init_inverse: str = eqx.field(static=True)

    def __init__(self, rate: ArrayLike, *, init: str = "identity", scale: ArrayLike = 1.0):
        self.rate = jnp.asarray(rate, dtype=float)
        self.scale = jnp.asarray(scale, dtype=float)
        self.init_inverse = init

    def __check_init__(self):
        if self.init_inverse not in ("identity", "exact"):
            raise ValueError(f"init must be 'identity' or 'exact'; got {self.init_inverse!r}")
        for name in ("rate", "scale"):
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer):
                continue
            value = np.asarray(value)
            if not (np.all(np.isfinite(value)) and np.all(value > 0)):
                raise ValueError(f"{name} must be finite and > 0; got {name}={value}")

    def check(self, student):
        if self.init_inverse == "exact":
            _check_erf(student.activation, "AdaptiveNaturalGradient(init='exact')")

    def init(self, student: SoftCommittee, eta):
        KN = student.K * student.N
        if self.init_inverse == "exact":
            G_inv = jnp.linalg.inv(fisher_matrix(student))
        else:
            G_inv = student.N * self.scale * jnp.eye(KN)
        return {"G_inv": G_inv, "gain": jnp.zeros(())}

    def update(self, weights, state, student, xi, label, eta):
        K, N = weights.shape
        act = student.activation
        x = weights @ xi / math.sqrt(N)
        f = jnp.outer(student.v * act.dg(x), xi).reshape(-1) / math.sqrt(N)
        G_inv = state["G_inv"]
        Gf = G_inv @ f
        gain = self.rate * (f @ Gf)
        G_inv = (1.0 + self.rate) * G_inv - self.rate * jnp.outer(Gf, Gf)
        new_Gf = (1.0 + self.rate) * Gf - gain * Gf  # = G_inv(new) @ f, without a second matvec
        err = label - act.g(x) @ student.v
        weights = weights + (eta / N) * err * new_Gf.reshape(K, N)
        return weights, {"G_inv": G_inv, "gain": jnp.maximum(state["gain"], gain)}

    def record(self, weights, state, student):
        return {"gain": state["gain"]}
