r"""Natural gradient descent in the thermodynamic limit: order-parameter ODEs.

**Rule.** $\Delta J = -\frac\eta N G^{-1}\nabla_J\epsilon$ with the Fisher $G$ of [`plateaux.natural`][]
(unit output noise). With $\nabla_{J_i}\epsilon = -\delta_i\xi/\sqrt N$, $\delta_i = v_ig'(x_i)(\tau-\sigma)$,
and the normalised Fisher $\mathcal G = NG$ (entries $O(1)$) this is
$\Delta J = \frac{\eta}{\sqrt N}\mathcal G^{-1}(\delta\otimes\xi)$: the same $O(\eta/\sqrt N)$ step per
component as online SGD $\Delta J_i = \frac\eta{\sqrt N}\delta_i\xi$, so time is again $\alpha = \mu/N$.

**Derivation** (Rattray, Saad & Amari 1998). Split $\xi$ into its parts along
$\mathrm{span}\{J_i\}$ and orthogonal to it. On the complement $\mathcal G = a\otimes(I - P)$ with
$a_{ij} = v_iv_j\langle g'_ig'_j\rangle$; on the span, in the basis $J_a/\sqrt N$, the quadratic form of
$\mathcal G$ is $\mathfrak B_{(ia),(jb)} = v_iv_j\langle g'_ig'_jx_ax_b\rangle$ and the metric is $Q$. With
$h_{i,u} = \langle\delta_i u\rangle$ for a student field $u = x_b$ or a teacher field $u = y_n$ (the same
$I_3$ sums as online SGD), and $W = \mathfrak B^{-1}h_x$ ($K^2\times K^2$ solve),

- $dR/d\alpha = \eta\,[a^{-1}(h_y - h_xQ^{-1}R) + WR]$,
- $dQ/d\alpha = \eta\,[WQ + (WQ)^T] + \eta^2 a^{-1}\mathcal D a^{-1}$,
  $\mathcal D_{jl} = \langle\delta_j\delta_l\rangle + s^2v_jv_l\langle g'_jg'_l\rangle$
  ($I_4$ and $J_2$ sums; $s$ the label-noise standard deviation).

The first-order terms are the natural gradient flow on $\epsilon_g$ and are exact at every $N$; the
$\eta^2$ term comes from the complement part of the step alone (the span part contributes
$O(\eta^2/N)$), and its finite-$N$ value carries a factor $1 - O(K/N)$. With $v = 1$ and $s = 0$ this is the
form in `THEORY.md` section 5 ($a = A$, $h_{j,u} = \langle(\tau-\sigma)g'_ju\rangle$,
$\mathcal D = D_2$).

**Regularisation.** $Q^{-1}$ and $\mathfrak B^{-1}$ do not exist where a student unit vanishes
($Q$ singular), and $a$ is singular on the overlap singularity, although the Fisher's action on the
gradient stays finite there. Here $Q^{-1}$, $\mathfrak B^{-1}$ and $a^{-1}$ are pseudo-inverses
(singular values below `rcond` times the largest dropped; `jnp.linalg.pinv`, whose derivative is
defined, so spectra and fixed points work), and `damping` $\lambda$ replaces $\mathcal G$ by
$\mathcal G + \lambda I$: $a\to a + \lambda I$ and $\mathfrak B\to\mathfrak B + \lambda\,I_K\otimes Q$ (the
Euclidean metric in the basis $J_a/\sqrt N$). [`NaturalGradientSGD.diagnostics`][] reports when either
is active. At a regular state with `damping=0` both are exact inverses.

**References:** Rattray, Saad & Amari, PRL 81, 5461 (1998); Rattray & Saad, PRE 59, 4523 (1999);
Inoue, Park & Okada, J. Phys. Soc. Jpn. 72, 1838 (2003).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._averages import i3_tensor, i4_tensor, j2_matrix
from .._generalization import output_coefficients
from .._order_params import OrderParams
from ..activations import AbstractActivation, Erf
from ..dynamics import AbstractDynamics
from ..dynamics._base import check_nonnegative_scalars, zero_rates_like
from ._fisher import (
    FisherReport,
    _report,
    complement_block,
    span_block_fields,
    span_block_whitened,
    whitening,
)


def _scalar(x: ArrayLike) -> Array:
    return jnp.asarray(x, dtype=float)


def _pinv(M, rcond):
    return jnp.linalg.pinv(M, rtol=rcond, hermitian=True)


class NaturalGradientSGD(AbstractDynamics):
    r"""Order-parameter ODEs of online natural gradient descent, $N\to\infty$ (see the module docstring
    for the equations and their derivation).

    **Arguments:**

    - `eta`: learning rate $\eta > 0$.
    - `noise`: label-noise standard deviation $s\ge0$ (the Fisher still assumes unit noise).
    - `activation`: must be [`plateaux.Erf`][] (the Fisher's span block uses its closed form).
    - `eta_squared`: keep the $O(\eta^2)$ term (default); `False` gives the $\eta\to0$ limit, the
      natural gradient flow $dJ/d\alpha = -\eta G^{-1}\nabla_J\epsilon_g$.
    - `damping`: Tikhonov damping $\lambda\ge0$ of the normalised Fisher (default 0).
    - `rcond`: relative cutoff of the pseudo-inverses (default $10^{-10}$).

    At the optimum of a realisable problem (no noise) the linearisation is Newton-like: the
    $\eta\to0$ flow has rates exactly $-\eta$ along the $KM$ directions realised inside the teacher
    span and $-2\eta$ along the $K(K+1)/2$ directions of $Q$ orthogonal to it ($Q$ is quadratic there),
    whatever the teacher correlation; the $\eta^2$ term vanishes to second order there.
    """

    eta: Float[Array, ""]
    noise: Float[Array, ""]
    damping: Float[Array, ""]
    activation: AbstractActivation
    eta_squared: bool = eqx.field(static=True)
    rcond: float = eqx.field(static=True)
    learn_v: bool = eqx.field(static=True)

    def __init__(
        self,
        eta: ArrayLike,
        noise: ArrayLike = 0.0,
        activation: AbstractActivation | None = None,
        eta_squared: bool = True,
        *,
        damping: ArrayLike = 0.0,
        rcond: float = 1e-10,
    ):
        self.eta = _scalar(eta)
        self.noise = _scalar(noise)
        self.damping = _scalar(damping)
        self.activation = Erf() if activation is None else activation
        self.eta_squared = eta_squared
        self.rcond = float(rcond)
        self.learn_v = False

    def __check_init__(self):
        if not isinstance(self.activation, Erf):
            raise ValueError(
                f"NaturalGradientSGD needs the erf activation (closed-form Fisher); got "
                f"{type(self.activation).__name__}"
            )
        if not (0.0 < self.rcond < 1.0):
            raise ValueError(f"rcond must lie in (0, 1); got rcond={self.rcond}")
        check_nonnegative_scalars(
            {"learning rate eta": self.eta},
            {"output noise (standard deviation) noise": self.noise, "damping": self.damping},
        )

    def _parts(self, params: OrderParams):
        K = params.K
        act = self.activation
        C = params.covariance
        v = params.v
        a_out = output_coefficients(params)
        h = v[:, None] * jnp.einsum("ibc,c->ib", i3_tensor(act, C, K), a_out)  # <delta_i u_b>
        a = complement_block(params.Q, v) + self.damping * jnp.eye(K)
        B = span_block_fields(params.Q, v) + self.damping * jnp.einsum("ij,ab->iajb", jnp.eye(K), params.Q)
        return C, a, B, h

    def vector_field(self, params: OrderParams) -> OrderParams:
        K = params.K
        Q, R, v = params.Q, params.R, params.v
        C, a, B, h = self._parts(params)
        h_x, h_y = h[:, :K], h[:, K:]
        a_inv = _pinv(a, self.rcond)
        W = (_pinv(B.reshape(K * K, K * K), self.rcond) @ h_x.reshape(-1)).reshape(K, K)
        dR = self.eta * (a_inv @ (h_y - h_x @ _pinv(Q, self.rcond) @ R) + W @ R)
        WQ = W @ Q
        dQ = self.eta * (WQ + WQ.T)
        if self.eta_squared:
            a_out = output_coefficients(params)
            vv = jnp.outer(v, v)
            dd = vv * jnp.einsum("ikcd,c,d->ik", i4_tensor(self.activation, C, K), a_out, a_out)
            dd = dd + self.noise**2 * vv * j2_matrix(self.activation, C)[:K, :K]
            dQ = dQ + self.eta**2 * a_inv @ dd @ a_inv
        return zero_rates_like(params, dQ, dR)

    def diagnostics(self, params: OrderParams, warn_below: float = 1e-8) -> FisherReport:
        r"""Conditioning of the normalised Fisher $NG$ at `params` (batch axes mapped over) and
        whether the vector field is regularised there: `regularised` is true when `damping` $> 0$
        or a pseudo-inverse drops a direction ($Q$, $a$ or $\mathfrak B$ below `rcond`);
        `near_singular` when the smallest eigenvalue of $NG$ is below `warn_below` times the
        largest. `span_rank` counts the directions of $Q$ above `rcond`."""
        if params.R.ndim > 2:
            return jax.vmap(lambda p: self.diagnostics(p, warn_below))(params)
        return _diagnostics(self, params, warn_below)


@eqx.filter_jit
def _diagnostics(dynamics: NaturalGradientSGD, params: OrderParams, warn_below: float) -> FisherReport:
    Q, v = params.Q, params.v
    L, _, kept = whitening(Q, dynamics.rcond)
    report = _report(
        complement_block(Q, v),
        span_block_whitened(L, Q, v),
        kept,
        dynamics.damping,
        dynamics.rcond,
        warn_below,
    )
    _, a, B, _ = dynamics._parts(params)
    K = params.K
    dropped = jnp.linalg.matrix_rank(a, rtol=dynamics.rcond) < K
    dropped = dropped | (jnp.linalg.matrix_rank(B.reshape(K * K, K * K), rtol=dynamics.rcond) < K * K)
    return eqx.tree_at(lambda r: r.regularised, report, report.regularised | dropped)


def diagnose(traj, dynamics: NaturalGradientSGD, warn_below: float = 1e-8) -> dict:
    r"""Where along a trajectory of `dynamics` the natural gradient is regularised or near-singular.

    Evaluates [`NaturalGradientSGD.diagnostics`][] at every reached save of `traj` (one unbatched
    [`plateaux.Trajectory`][]) and returns plain NumPy: `t`, `condition`, `min_eigenvalue`,
    `span_rank`, `regularised`, `near_singular` (per save), and `first_regularised` /
    `first_near_singular` (the first such time, or None).
    """
    if np.ndim(traj.t) != 1:
        raise ValueError("diagnose takes one trajectory; loop (or index) over a batch")
    reached = np.asarray(traj.t) <= float(traj.t_stop)
    report = dynamics.diagnostics(traj.params, warn_below)
    out = {"t": np.asarray(traj.t)[reached]}
    for name in ("condition", "min_eigenvalue", "span_rank", "regularised", "near_singular"):
        out[name] = np.asarray(getattr(report, name))[reached]
    for name in ("regularised", "near_singular"):
        hits = np.nonzero(out[name])[0]
        out[f"first_{name}"] = float(out["t"][hits[0]]) if hits.size else None
    return out
