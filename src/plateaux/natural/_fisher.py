r"""Fisher information of a soft committee machine with Gaussian inputs.

For $\sigma(\xi) = \sum_i v_i g(x_i)$, $x_i = J_i\cdot\xi/\sqrt N$, $\xi\sim\mathcal N(0, I_N)$ and unit
output noise, the Fisher information of the hidden weights is
$G = \langle\nabla_J\sigma\,\nabla_J\sigma^T\rangle$, with $\nabla_{J_i}\sigma = v_i g'(x_i)\,\xi/\sqrt N$:

$$G_{(i\cdot),(j\cdot)} = \frac{v_i v_j}{N}\langle g'(x_i) g'(x_j)\,\xi\xi^T\rangle.$$

**Erf closed form.** For $g(x) = \mathrm{erf}(x/\sqrt2)$,
$g'(x_i)g'(x_j) = \frac2\pi e^{-\xi^TA_{ij}\xi/2}$ with $A_{ij} = (J_iJ_i^T + J_jJ_j^T)/N = U U^T$,
$U = [J_i, J_j]/\sqrt N$, and
$\langle e^{-\xi^TA\xi/2}\xi\xi^T\rangle = \det(I + A)^{-1/2}(I + A)^{-1}$. Since $A$ has rank 2
(Woodbury), $\det(I + A) = \det(I_2 + Q_{(ij)})$ and $(I + A)^{-1} = I - U S_{ij} U^T$ with
$Q_{(ij)} = U^TU = [[Q_{ii}, Q_{ij}], [Q_{ij}, Q_{jj}]]$ and $S_{ij} = (I_2 + Q_{(ij)})^{-1}$, so

$$N G_{(i\cdot),(j\cdot)} = v_i v_j J_2(Q_{ii}, Q_{ij}, Q_{jj})\,\big[I_N - U S_{ij} U^T\big],
\qquad J_2 = \tfrac2\pi\det(I_2 + Q_{(ij)})^{-1/2}.$$

**Structure (exact at every N, not only N -> infinity).** Let $P$ project on $\mathrm{span}\{J_i\}$. The
correction $U S U^T$ lives in the span, so with the *normalised* Fisher $\mathcal G = N G$:

- on the complement, $\mathcal G = a\otimes(I - P)$, $a_{ij} = v_i v_j J_2(Q_{ii}, Q_{ij}, Q_{jj})$
  ($K\times K$);
- on the span, with an orthonormal basis $E$ ($N\times r$) and $J/\sqrt N = L E^T$ ($LL^T = Q$),
  $\mathcal G$ is the $Kr\times Kr$ matrix with blocks
  $v_i v_j J_2(\cdot)\,[I_r - (l_i, l_j) S_{ij} (l_i, l_j)^T]$ ($l_i$ the rows of $L$), which equals
  $v_iv_j\langle g'_i g'_j zz^T\rangle$ for the whitened fields $z = E^T\xi$.

So $G^{-1}u$ needs one $K\times K$ and one $K^2\times K^2$ (here $Kr \le K^2$) eigen-solve plus $O(K^2N)$
work, instead of a $KN\times KN$ solve. Gaussian inputs make this decomposition exact; there is no
$O(1/N)$ approximation in it (Rattray, Saad & Amari 1998 use the same structure at large N).

**Regularisation near the singular set.** $G$ is singular on the overlap singularity ($J_i = \pm J_j$
makes $a$ and the span block singular) and for $v_i = 0$; a vanishing unit ($J_i\to 0$) leaves $G$
regular for erf but removes a direction from the span. Explicitly:

- `damping` $\lambda\ge 0$ is Tikhonov damping in *normalised* units: $G + (\lambda/N) I$, i.e.
  $\mathcal G + \lambda I$, so the same $\lambda$ means the same thing at every $N$ (and in the ODE);
- directions of $\mathrm{span}\{J\}$ with $Q$-eigenvalue below `rcond` times the largest are dropped
  from the span (treated as complement directions), and eigenvalues of the damped small matrices
  below `rcond` times their largest are dropped from the solve (a pseudo-inverse);
- [`FisherStructure.report`][] gives the smallest eigenvalue of $\mathcal G$ (undamped, over both
  parts), the condition number and flags `regularised` / `near_singular`.

**References:** Amari, Neural Computation 10, 251 (1998); Rattray, Saad & Amari, PRL 81, 5461
(1998); Rattray & Saad, PRE 59, 4523 (1999).
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._network import SoftCommittee
from ..activations import Erf

_TWO_OVER_PI = 2.0 / math.pi


def _check_erf(activation, what: str) -> None:
    if not isinstance(activation, Erf):
        raise ValueError(
            f"{what} has a closed form for the erf activation only; got {type(activation).__name__} "
            "(use plateaux.natural.fisher_monte_carlo for other activations)"
        )


def pair_factors(Q: Float[Array, "K K"]):
    r"""For every pair $(i, j)$: $J_2(Q_{ii}, Q_{ij}, Q_{jj}) = \frac2\pi\det(I_2 + Q_{(ij)})^{-1/2}$
    and the entries $(S_{11}, S_{12}, S_{22})$ of $S_{ij} = (I_2 + Q_{(ij)})^{-1}$ (closed-form 2x2
    inverse; $S_{21} = S_{12}$). Each is a `(K, K)` array; the diagonal pairs $i = j$ are included
    (then $Q_{(ii)} = Q_{ii}\mathbf 1\mathbf 1^T$)."""
    d = jnp.diagonal(Q)
    q11, q22 = d[:, None], d[None, :]
    det = (1.0 + q11) * (1.0 + q22) - Q**2
    j2 = _TWO_OVER_PI / jnp.sqrt(det)
    return j2, (1.0 + q22) / det, -Q / det, (1.0 + q11) / det


def _pair_correction(Q, X, Y):
    r"""$[(x_i, x_j) S_{ij} (y_i, y_j)^T]$ for all pairs, with rows $x_i$ of `X` `(K, n)` and $y_i$ of
    `Y` `(K, m)`: shape `(K, K, n, m)`."""
    _, s11, s12, s22 = pair_factors(Q)
    xi, xj = X[:, None, :, None], X[None, :, :, None]
    yi, yj = Y[:, None, None, :], Y[None, :, None, :]
    s11, s12, s22 = (s[:, :, None, None] for s in (s11, s12, s22))
    return s11 * xi * yi + s12 * (xi * yj + xj * yi) + s22 * xj * yj


def complement_block(Q: Float[Array, "K K"], v: Float[Array, " K"]) -> Float[Array, "K K"]:
    r"""$a_{ij} = v_i v_j\langle g'_i g'_j\rangle = v_i v_j J_2(Q_{ii}, Q_{ij}, Q_{jj})$: the normalised
    Fisher $\mathcal G = NG$ on the complement of $\mathrm{span}\{J_i\}$ is $a\otimes(I - P)$ (erf)."""
    j2, *_ = pair_factors(Q)
    return jnp.outer(v, v) * j2


def span_block_fields(Q: Float[Array, "K K"], v: Float[Array, " K"]) -> Float[Array, "K K K K"]:
    r"""$\mathfrak B_{(ia),(jb)} = v_i v_j\langle g'_i g'_j x_a x_b\rangle$ over the student fields
    $x\sim\mathcal N(0, Q)$ (erf), axes `(i, a, j, b)`.

    Closed form: $v_iv_jJ_2(\cdot)\,[Q - Q_{\cdot(ij)} S_{ij} Q_{(ij)\cdot}]_{ab}$, which equals the form
    $A_{ij}[Q(I + D_{ij}Q)^{-1}]_{ab}$, $D_{ij} = e_ie_i^T + e_je_j^T$, of the theory notes; no inverse
    of $Q$ is needed. This is the span part of $\mathcal G$ in the (non-orthonormal) basis $J_a/\sqrt N$.
    """
    j2, *_ = pair_factors(Q)
    corr = _pair_correction(Q, Q, Q)  # (i, j, a, b): rows of Q are the "fields" of J_a on J_i
    block = (jnp.outer(v, v) * j2)[:, :, None, None] * (Q[None, None] - corr)
    return jnp.transpose(block, (0, 2, 1, 3))


def whitening(Q: Float[Array, "K K"], rcond: float):
    r"""$Q = LL^T$ from `eigh`: $L = V\Lambda^{1/2}$ and $L^{+T} = V\Lambda^{-1/2}$, with directions
    whose eigenvalue is below `rcond` times the largest dropped (their columns set to zero).
    Returns `(L, L_pinv_T, kept)`; not differentiable at degenerate eigenvalues (diagnostics and
    finite-N steps only)."""
    lam, V = jnp.linalg.eigh(Q)
    kept = lam > rcond * jnp.maximum(jnp.max(lam), 0.0)
    safe = jnp.where(kept, lam, 1.0)
    L = V * jnp.where(kept, jnp.sqrt(safe), 0.0)
    L_pinv_T = V * jnp.where(kept, 1.0 / jnp.sqrt(safe), 0.0)
    return L, L_pinv_T, kept


def span_block_whitened(L: Float[Array, "K r"], Q, v) -> Float[Array, "K*r K*r"]:
    r"""The span part of $\mathcal G$ in an orthonormal basis ($J/\sqrt N = LE^T$): the $Kr\times Kr$ matrix
    with blocks $v_iv_jJ_2(\cdot)[I_r - (l_i, l_j)S_{ij}(l_i, l_j)^T]$, index $(i, a)\mapsto ir + a$."""
    K, r = L.shape
    j2, *_ = pair_factors(Q)
    corr = _pair_correction(Q, L, L)  # (i, j, a, b)
    block = (jnp.outer(v, v) * j2)[:, :, None, None] * (jnp.eye(r)[None, None] - corr)
    return jnp.transpose(block, (0, 2, 1, 3)).reshape(K * r, K * r)


def _eig_solve(M, b, damping, rcond):
    """(M + damping I)^+ b through `eigh` (symmetric M), dropping eigenvalues below rcond * max."""
    mu, V = jnp.linalg.eigh(M + damping * jnp.eye(M.shape[0]))
    keep = mu > rcond * jnp.max(jnp.abs(mu))
    inv = jnp.where(keep, 1.0 / jnp.where(keep, mu, 1.0), 0.0)
    return V @ (inv[:, None] * (V.T @ b)) if b.ndim == 2 else V @ (inv * (V.T @ b))


class FisherReport(eqx.Module):
    r"""How close the (normalised) Fisher $\mathcal G = NG$ is to singular, and whether the solve was
    regularised.

    **Fields:** `min_eigenvalue` (smallest eigenvalue of $\mathcal G$, undamped, over complement and
    span), `max_eigenvalue`, `condition` (their ratio), `span_rank` (kept directions of
    $\mathrm{span}\{J\}$), `regularised` (damping $> 0$, a dropped span direction, or a dropped
    eigenvalue), `near_singular` (`condition` below the `warn_below` threshold).
    """

    min_eigenvalue: Float[Array, "*b"]
    max_eigenvalue: Float[Array, "*b"]
    condition: Float[Array, "*b"]
    span_rank: Array
    regularised: Array
    near_singular: Array


class FisherStructure(eqx.Module):
    r"""The exact Fisher information of an erf soft committee machine in structured form.

    $NG = a\otimes(I - P) + E\,\mathcal G_{\rm span}E^T$ (see the module docstring), stored as

    - `complement`: $a$, `(K, K)`;
    - `span`: $\mathcal G_{\rm span}$ in the orthonormal basis, `(K r, K r)` with $r = K$ (dropped
      directions have zero basis columns and act like complement directions);
    - `basis`: $E$, `(N, r)`, orthonormal columns (or zero for dropped directions);
    - `kept`: which of the $r$ span directions are kept.

    Build with [`fisher_structure`][]. Methods apply $G$, $(G + \lambda/N)^{-1}$, form the dense
    matrix (tests, benchmarks) and report the conditioning.
    """

    complement: Float[Array, "K K"]
    span: Float[Array, "Kr Kr"]
    basis: Float[Array, "N r"]
    kept: Array
    rcond: float = eqx.field(static=True)

    @property
    def N(self) -> int:
        return self.basis.shape[0]

    @property
    def K(self) -> int:
        return self.complement.shape[0]

    def _split(self, u):
        coords = u @ self.basis  # (K, r)
        return u - coords @ self.basis.T, coords

    @eqx.filter_jit
    def matvec(self, u: Float[Array, "K N"]) -> Float[Array, "K N"]:
        r"""$Gu$ for $u$ of shape `(K, N)` (row $i$: the component along $J_i$)."""
        perp, coords = self._split(u)
        span = (self.span @ coords.reshape(-1)).reshape(coords.shape)
        return (self.complement @ perp + span @ self.basis.T) / self.N

    @eqx.filter_jit
    def solve(self, u: Float[Array, "K N"], damping=0.0) -> Float[Array, "K N"]:
        r"""$(G + \lambda I/N)^{-1}u$ with $\lambda$ = `damping` (normalised units, see the module
        docstring): one $K\times K$ and one $Kr\times Kr$ eigen-solve (pseudo-inverse below `rcond`)."""
        damping = jnp.asarray(damping, dtype=float)
        perp, coords = self._split(u)
        out_perp = _eig_solve(self.complement, perp, damping, self.rcond)
        out_span = _eig_solve(self.span, coords.reshape(-1), damping, self.rcond).reshape(coords.shape)
        return self.N * (out_perp + out_span @ self.basis.T)

    @eqx.filter_jit
    def dense(self) -> Float[Array, "KN KN"]:
        """The $KN\\times KN$ matrix $G$ (for tests and benchmarks)."""
        K, N = self.K, self.N
        eye = jnp.eye(K * N).reshape(K * N, K, N)
        return jax.vmap(self.matvec)(eye).reshape(K * N, K * N)

    def eigenvalues(self):
        """Eigenvalues of the normalised Fisher $NG$: `(complement, span)` (undamped; the span ones
        include dropped directions, which repeat complement eigenvalues)."""
        return jnp.linalg.eigvalsh(self.complement), jnp.linalg.eigvalsh(self.span)

    def report(self, damping=0.0, warn_below: float = 1e-8) -> FisherReport:
        """A [`FisherReport`][]: conditioning of $NG$ and whether the solve is regularised."""
        damping = jnp.asarray(damping, dtype=float)
        return _jit_report(self.complement, self.span, self.kept, damping, self.rcond, warn_below)


def _report(complement, span, kept, damping, rcond, warn_below) -> FisherReport:
    e = jnp.concatenate([jnp.linalg.eigvalsh(complement), jnp.linalg.eigvalsh(span)])
    lo, hi = jnp.min(e), jnp.max(e)
    cond = lo / hi
    dropped = ~jnp.all(kept) | ((lo + damping) <= rcond * (hi + damping))
    return FisherReport(
        min_eigenvalue=lo,
        max_eigenvalue=hi,
        condition=cond,
        span_rank=jnp.sum(kept),
        regularised=(jnp.asarray(damping) > 0) | dropped,
        near_singular=cond < warn_below,
    )


_jit_report = eqx.filter_jit(lambda *args: _report(*args))


@eqx.filter_jit
def structure_from_weights(J: Float[Array, "K N"], v: Float[Array, " K"], rcond: float = 1e-12):
    """[`FisherStructure`][] from raw weights (jit-friendly core of [`fisher_structure`][])."""
    N = J.shape[1]
    Jhat = J / math.sqrt(N)
    Q = Jhat @ Jhat.T
    L, L_pinv_T, kept = whitening(Q, rcond)
    return FisherStructure(
        complement=complement_block(Q, v),
        span=span_block_whitened(L, Q, v),
        basis=Jhat.T @ L_pinv_T,
        kept=kept,
        rcond=rcond,
    )


def fisher_structure(student: SoftCommittee, *, rcond: float = 1e-12) -> FisherStructure:
    r"""The exact Fisher of `student` (erf) in structured form, $O(K^2N)$ work.

    `rcond`: span directions with $Q$-eigenvalue below `rcond` times the largest are dropped, and
    eigenvalues of the damped small matrices below `rcond` times their largest are not inverted.

    **Raises:** `ValueError` for a non-erf activation.
    """
    _check_erf(student.activation, "fisher_structure")
    return structure_from_weights(student.weights, student.v, rcond)


def fisher_matrix(student: SoftCommittee) -> Float[Array, "KN KN"]:
    r"""The exact $KN\times KN$ Fisher $G$ of an erf `student`, block by block:
    $G_{(i\cdot),(j\cdot)} = \frac{v_iv_j}{N}\frac2\pi\det(I + A_{ij})^{-1/2}(I + A_{ij})^{-1}$,
    $A_{ij} = (J_iJ_i^T + J_jJ_j^T)/N$, with the rank-2 Woodbury form of $(I + A_{ij})^{-1}$ (no
    $N\times N$ inversion). Row/column index $(i, n)\mapsto iN + n$.
    """
    _check_erf(student.activation, "fisher_matrix")
    return _fisher_matrix(student.weights, student.v)


@eqx.filter_jit
def _fisher_matrix(J, v):
    K, N = J.shape
    Jhat = J / math.sqrt(N)
    Q = Jhat @ Jhat.T
    j2, *_ = pair_factors(Q)
    corr = _pair_correction(Q, Jhat, Jhat)  # (i, j, n, m)
    blocks = (jnp.outer(v, v) * j2)[:, :, None, None] * (jnp.eye(N)[None, None] - corr) / N
    return jnp.transpose(blocks, (0, 2, 1, 3)).reshape(K * N, K * N)


def output_gradient(student: SoftCommittee, xi: Float[Array, "*B N"]) -> Float[Array, "*B K N"]:
    r"""$\nabla_J\sigma(\xi)$ by autodiff (any activation): shape `(K, N)` per input."""

    def sigma(weights, x):
        return eqx.tree_at(lambda s: s.weights, student, weights)(x)

    grad = jax.grad(sigma)
    if xi.ndim == 1:
        return grad(student.weights, xi)
    return jax.vmap(grad, in_axes=(None, 0))(student.weights, xi)


@eqx.filter_jit
def _mc_sums(student, key, n_batches, batch):
    K, N = student.K, student.N

    def body(carry, k):
        s1, s2 = carry
        xi = jax.random.normal(k, (batch, N))
        g = output_gradient(student, xi).reshape(batch, K * N)
        return (s1 + g.T @ g, s2 + (g**2).T @ (g**2)), None

    zeros = jnp.zeros((K * N, K * N))
    return jax.lax.scan(body, (zeros, zeros), jax.random.split(key, n_batches))[0]


def fisher_monte_carlo(
    student: SoftCommittee, key: PRNGKeyArray, n_samples: int, *, batch: int = 500
) -> tuple[Float[Array, "KN KN"], Float[Array, "KN KN"]]:
    r"""Monte-Carlo estimate of $G = \langle\nabla_J\sigma\nabla_J\sigma^T\rangle$ for *any* activation:
    the average of $\nabla_J\sigma(\xi)\nabla_J\sigma(\xi)^T$ (autodiff) over $\xi\sim\mathcal N(0, I_N)$.

    **Returns:** `(mean, stderr)`, both $KN\times KN$; `stderr` is the entrywise standard error
    $\sqrt{(\overline{X^2} - \bar X^2)/(n-1)}$. `n_samples` is rounded up to a multiple of `batch`.
    """
    if n_samples < 2 or batch < 1:
        raise ValueError(f"need n_samples >= 2 and batch >= 1; got {n_samples}, {batch}")
    n_batches = -(-int(n_samples) // int(batch))
    n = n_batches * batch
    s1, s2 = _mc_sums(student, key, n_batches, int(batch))
    mean = s1 / n
    var = jnp.maximum(s2 / n - mean**2, 0.0) * n / (n - 1)
    return mean, jnp.sqrt(var / n)


def natural_gradient(student: SoftCommittee, grad: Float[Array, "K N"], *, damping=0.0, rcond=1e-12):
    r"""$(G + \lambda I/N)^{-1}$`grad` for an erf `student` through [`FisherStructure.solve`][]."""
    return fisher_structure(student, rcond=rcond).solve(grad, damping)
