r"""Order parameters of a student-teacher pair of soft committee machines.

$Q = J J^T/N$ (student-student), $R = J B^T/N$ (student-teacher), $T = B B^T/N$
(teacher-teacher), second-layer weights $v$ (student) and $w$ (teacher). The joint covariance of
the local fields $(x, y)$ is $C = [[Q, R], [R^T, T]]$, which must be positive semi-definite.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

# Relative tolerances of the eager checks. Symmetry: round-off of float64 products of O(1)
# numbers. Positive semi-definiteness: states on the boundary of the PSD cone (the optimum,
# the plateau saddles) come out of an integration at rtol ~ 1e-8 with eigenvalues of C down
# to ~ -3e-10; 1e-7 accepts those (and their restarts) while rejecting real violations.
_SYMMETRY_RTOL = 1e-10
_PSD_RTOL = 1e-7


def _as_float_array(x) -> Array:
    return jnp.asarray(x, dtype=float)


class OrderParams(eqx.Module):
    r"""The macroscopic state $(Q, R, T, v, w)$ of a soft committee machine pair.

    **Arguments:**

    - `Q`: student-student overlaps, shape `(K, K)`, symmetric.
    - `R`: student-teacher overlaps, shape `(K, M)`.
    - `T`: teacher-teacher overlaps, shape `(M, M)`, symmetric.
    - `v`: student second-layer weights, shape `(K,)` (default ones).
    - `w`: teacher second-layer weights, shape `(M,)` (default ones).

    Leading batch axes are allowed (the same on every field), so a batch of states is an
    `OrderParams` too. Shapes are checked at construction (`ValueError` naming the field);
    values (finite, symmetric, PSD joint covariance) by [`plateaux.check_order_params`][].
    """

    Q: Float[Array, "*batch K K"]
    R: Float[Array, "*batch K M"]
    T: Float[Array, "*batch M M"]
    v: Float[Array, "*batch K"]
    w: Float[Array, "*batch M"]

    def __init__(self, Q: ArrayLike, R: ArrayLike, T: ArrayLike, v=None, w=None):
        Q, R, T = _as_float_array(Q), _as_float_array(R), _as_float_array(T)
        if Q.ndim < 2 or R.ndim < 2 or T.ndim < 2:
            raise ValueError(f"Q, R, T must be matrices; got shapes Q{Q.shape}, R{R.shape}, T{T.shape}")
        K, M = R.shape[-2], R.shape[-1]
        self.Q = Q
        self.R = R
        self.T = T
        self.v = jnp.ones(Q.shape[:-2] + (K,)) if v is None else _as_float_array(v)
        self.w = jnp.ones(T.shape[:-2] + (M,)) if w is None else _as_float_array(w)

    def __check_init__(self):
        K, M = self.R.shape[-2], self.R.shape[-1]
        if K == 0 or M == 0:
            raise ValueError(f"need at least one student and one teacher unit; got K={K}, M={M}")
        batch = self.R.shape[:-2]
        expected = {
            "Q": batch + (K, K),
            "T": batch + (M, M),
            "v": batch + (K,),
            "w": batch + (M,),
        }
        for name, shape in expected.items():
            got = getattr(self, name).shape
            if got != shape:
                raise ValueError(
                    f"{name} has shape {got} but R has shape {self.R.shape} (K={K}, M={M}), "
                    f"so {name} must have shape {shape}"
                )

    @property
    def K(self) -> int:
        """Number of student hidden units."""
        return self.R.shape[-2]

    @property
    def M(self) -> int:
        """Number of teacher hidden units."""
        return self.R.shape[-1]

    @property
    def covariance(self) -> Float[Array, "*batch K+M K+M"]:
        r"""The joint covariance $C = [[Q, R], [R^T, T]]$ of the fields $(x, y)$."""
        top = jnp.concatenate([self.Q, self.R], axis=-1)
        bottom = jnp.concatenate([jnp.swapaxes(self.R, -1, -2), self.T], axis=-1)
        return jnp.concatenate([top, bottom], axis=-2)


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def check_order_params(params: OrderParams, name: str = "params") -> OrderParams:
    r"""Check that `params` is a valid state and return it unchanged.

    Valid means: all entries finite, $Q$ and $T$ symmetric, and the joint covariance
    $C = [[Q, R], [R^T, T]]$ positive semi-definite (smallest eigenvalue
    $\ge -10^{-7} \max(|C|, 1)$, which admits integration round-off on the boundary of
    the PSD cone).

    Eagerly (concrete arrays) a violation raises `ValueError` naming the field and the
    offending value; under `jit`/`vmap` it raises at run time through `eqx.error_if`.
    """
    leaves = [params.Q, params.R, params.T, params.v, params.w]
    if any(_is_traced(x) for x in leaves):
        C = params.covariance
        scale = jnp.max(jnp.abs(C))
        bad = ~jnp.all(jnp.isfinite(C)) | ~jnp.all(jnp.isfinite(params.v))
        bad = bad | ~jnp.all(jnp.isfinite(params.w))
        bad = bad | (jnp.min(jnp.linalg.eigvalsh(C)) < -_PSD_RTOL * jnp.maximum(scale, 1.0))
        Q = eqx.error_if(
            params.Q, bad, f"{name}: non-finite entries or non-PSD joint covariance [[Q,R],[R^T,T]]"
        )
        return eqx.tree_at(lambda p: p.Q, params, Q)

    for field in ("Q", "R", "T", "v", "w"):
        value = np.asarray(getattr(params, field))
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name}.{field} has non-finite entries: {value}")
    for field in ("Q", "T"):
        value = np.asarray(getattr(params, field))
        asym = np.max(np.abs(value - np.swapaxes(value, -1, -2)), initial=0.0)
        if asym > _SYMMETRY_RTOL * max(np.max(np.abs(value), initial=0.0), 1.0):
            raise ValueError(f"{name}.{field} is not symmetric (max |X - X^T| = {asym:.3g}): {value}")
    C = np.asarray(params.covariance)
    lam_min = np.min(np.linalg.eigvalsh(C))
    if lam_min < -_PSD_RTOL * max(np.max(np.abs(C)), 1.0):
        raise ValueError(
            f"{name}: the joint covariance [[Q, R], [R^T, T]] is not positive semi-definite "
            f"(smallest eigenvalue {lam_min:.3g}); no networks have these overlaps. "
            f"Q={np.asarray(params.Q).tolist()}, R={np.asarray(params.R).tolist()}, "
            f"T={np.asarray(params.T).tolist()}"
        )
    return params


def _triu(K: int):
    return np.triu_indices(K)


def flatten_learned(params: OrderParams, *, learn_v: bool = False) -> Float[Array, " D"]:
    r"""Minimal coordinates of the learned state: upper triangle of $Q$ (row-major, with the
    diagonal), then $R$ row-major, then $v$ when the second layer is learned.

    $D = K(K+1)/2 + KM\ (+K)$. A full symmetric $Q$ in the state would add $K(K-1)/2$ spurious
    eigenvalues to Jacobians; these coordinates avoid them.
    """
    iu = _triu(params.K)
    parts = [params.Q[..., iu[0], iu[1]], params.R.reshape(params.R.shape[:-2] + (-1,))]
    if learn_v:
        parts.append(params.v)
    return jnp.concatenate(parts, axis=-1)


def unflatten_learned(y: Float[Array, " D"], template: OrderParams, *, learn_v: bool = False) -> OrderParams:
    """Inverse of [`plateaux.flatten_learned`][]: fill $Q$, $R$ (and $v$) of `template`."""
    K, M = template.K, template.M
    n_q = K * (K + 1) // 2
    iu = _triu(K)
    batch = y.shape[:-1]
    upper = jnp.zeros(batch + (K, K)).at[..., iu[0], iu[1]].set(y[..., :n_q])
    Q = upper + jnp.swapaxes(jnp.triu(upper, 1), -1, -2)
    R = y[..., n_q : n_q + K * M].reshape(batch + (K, M))
    fixed = [template.T, template.v, template.w]
    if batch and template.R.ndim == 2:  # batched coordinates, one template: broadcast it
        fixed = [jnp.broadcast_to(x, batch + x.shape) for x in fixed]
    T, v, w = fixed
    if learn_v:
        v = y[..., n_q + K * M :]
    return OrderParams(Q, R, T, v, w)
