r"""The online-SGD vector field of a *batch* of states, evaluated batch-last.

Under `vmap` every array gets its batch axis in front, so the tensors of Gaussian averages of
$B$ states are $(B, K, K, K+M, K+M)$ arrays built by broadcasting tiny slices of each
covariance: XLA's CPU loops then read every operand at computed, non-contiguous offsets and
do not vectorise (measured: ~1 us per state for $I_4$ at $K = M = 2$). With the batch axis
*last*, the same broadcasts are along leading axes and the innermost loop runs over the
batch, contiguously: 4-5x faster. [`flat_vector_field`][] is the vector field with a custom
`vmap` rule that moves the batch axis last, evaluates the same closed forms there, and moves
it back (an unbatched call runs the same kernel with a batch of one); derivatives (`jvp`,
`vjp`) use the ordinary code, so values agree to round-off and autodiff is untouched.

Used for [`plateaux.OnlineSGD`][] with one activation (student = teacher) that has closed
forms for $I_2, J_2, I_3, I_4$ (e.g. [`plateaux.Erf`][]); anything else takes the ordinary
path.
"""

import jax
import jax.numpy as jnp

from .._averages import i3_arguments, i4_arguments
from ..activations import AbstractActivation
from ._base import AbstractDynamics, averaging_activation


def _closed_forms(act) -> bool:
    if not isinstance(act, AbstractActivation):  # a (student, teacher) pair
        return False
    return all(getattr(type(act), m) is not getattr(AbstractActivation, m) for m in ("i2", "j2", "i3", "i4"))


def supports_batch_last(dynamics) -> bool:
    """Whether [`flat_vector_field`][] has a batch-last rule for `dynamics`."""
    from ._sgd import OnlineSGD

    return type(dynamics) is OnlineSGD and _closed_forms(averaging_activation(dynamics.activations))


def _plain(dynamics, y, template):
    return AbstractDynamics.flat_vector_field(dynamics, y, template)


@jax.custom_jvp
def flat_vector_field(dynamics, y, template):
    """`dynamics.flat_vector_field(y, template)`, batch-last under `vmap` (module docstring)."""
    return _vmappable(dynamics, y, template)


@flat_vector_field.defjvp
def _jvp(primals, tangents):
    return jax.jvp(_plain, primals, tangents)


@jax.custom_batching.custom_vmap
def _vmappable(dynamics, y, template):
    # The same kernel with a batch of one (the ordinary code here trips a JAX custom_vmap
    # limitation inside a vmapped `cond`: its traced constants would be batched).
    dynamics, y, template = jax.tree.map(lambda x: jnp.asarray(x)[..., None], (dynamics, y, template))
    return _sgd_batch_last(dynamics, y, template)[..., 0]


@_vmappable.def_vmap
def _vmap_rule(axis_size, in_batched, dynamics, y, template):
    def last(x, batched):
        x = jnp.asarray(x)
        if not batched:
            x = jnp.broadcast_to(x, (axis_size,) + x.shape)
        return jnp.moveaxis(x, 0, -1)

    dynamics, y, template = jax.tree.map(last, (dynamics, y, template), tuple(in_batched))
    return jnp.moveaxis(_sgd_batch_last(dynamics, y, template), -1, 0), True


def _sgd_batch_last(dyn, y, template):
    """[`plateaux.OnlineSGD.vector_field`][] in minimal coordinates with every array's batch
    axis last: `y` is `(D, B)`, `template.T` is `(M, M, B)`, scalars are `(B,)`."""
    act = averaging_activation(dyn.activations)
    K, M = template.R.shape[0], template.R.shape[1]
    n = K + M
    n_q = K * (K + 1) // 2
    # Unflatten: the upper triangle of Q row-major, then R row-major (then v).
    upper = {}
    for j, (i, k) in enumerate((i, k) for i in range(K) for k in range(i, K)):
        upper[i, k] = upper[k, i] = y[j]
    R = y[n_q : n_q + K * M].reshape((K, M) + y.shape[1:])
    v = y[n_q + K * M :] if dyn.learn_v else template.v
    T, w = template.T, template.w
    rows = [jnp.stack([upper[i, k] for k in range(K)] + [R[i, m] for m in range(M)]) for i in range(K)]
    rows += [jnp.concatenate([R[:, m], T[m]]) for m in range(M)]
    C = jnp.stack(rows)  # (n, n, B)
    d = jnp.stack([C[i, i] for i in range(n)])  # (n, B)
    a = jnp.concatenate([-v, w])  # (n, B)
    s = slice(0, K)
    # <delta_i u_b> = v_i sum_c a_c I3(x_i, u_b, u_c): grid (i, b, c, B).
    i3 = act.i3(*i3_arguments(d, C, K))
    delta_u = v[:, None] * jnp.sum(i3 * a[None, None], axis=2)  # (K, n, B)
    eta, wd = dyn.eta, dyn.weight_decay
    delta_x = delta_u[:, :K]
    dR = eta * (delta_u[:, K:] - wd * R)
    Q = C[:K, :K]
    dQ = eta * (delta_x + jnp.swapaxes(delta_x, 0, 1) - 2.0 * wd * Q)
    if dyn.eta_squared:
        i4 = act.i4(*i4_arguments(d, C, K))
        vv = v[:, None] * v[None, :]
        delta_delta = vv * jnp.sum(i4 * (a[:, None] * a[None, :])[None, None], axis=(2, 3))
        noise_term = dyn.noise**2 * vv * act.j2(d[s, None], C[s, s], d[None, s])
        dQ = dQ + eta**2 * (delta_delta + noise_term)
    parts = [
        jnp.stack([dQ[i, k] for i in range(K) for k in range(i, K)]),
        dR.reshape((K * M,) + dR.shape[2:]),
    ]
    if dyn.learn_v:
        i2 = act.i2(d[s, None], C[s, :], d[None, :])  # (K, n, B)
        parts.append(dyn.eta_v * jnp.sum(i2 * a[None], axis=1))
    return jnp.concatenate(parts)
