"""Helpers shared by the test modules (random valid states, tree comparison)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import plateaux as px

# Every ODE test saves on grids of this many points, so that all integrations of one
# (K, M, batch) shape hit the same compiled `_solve` (a new grid length recompiles, ~2-3 s).
NUM_SAVES = 81


def tree_allclose(x, y, *, rtol=0.0, atol=0.0) -> bool:
    """`eqx.tree_equal` with tolerances, as a Python bool (same structure required)."""
    return bool(eqx.tree_equal(x, y, rtol=rtol, atol=atol))


def random_covariance(rng, n, *, rank=None, var_range=(0.2, 1.5)):
    """A random `n x n` PSD covariance of the given rank with variances in `var_range`.

    Variances stay <= 1.5 so that moderate Gauss-Hermite orders are exact to ~1e-14
    (measured: order 24 in 4-d, order 30 in 3-d give |error| < 1e-14 at these variances).
    """
    rank = n if rank is None else rank
    A = rng.standard_normal((n, rank))
    C = A @ A.T
    scale = np.sqrt(rng.uniform(*var_range, size=n) / np.diag(C))
    return C * np.outer(scale, scale)


def repeated_field_covariance(rng, n):
    """An `n x n` covariance whose first two fields are *identical* (singular, rank n-1)."""
    base = random_covariance(rng, n - 1)
    idx = [0] + list(range(n - 1))
    return base[np.ix_(idx, idx)]


def random_order_params(rng, K, M, *, random_vw=True, rank=None, var_range=(0.2, 1.5)):
    """A valid random state: Q, R, T taken from one random PSD joint covariance."""
    C = random_covariance(rng, K + M, rank=rank, var_range=var_range)
    v = rng.uniform(0.5, 1.5, K) if random_vw else None
    w = rng.uniform(0.5, 1.5, M) if random_vw else None
    return px.OrderParams(C[:K, :K], C[:K, K:], C[K:, K:], v, w)


def stack(params_list):
    """Stack a list of same-shape pytrees along a new leading (batch) axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *params_list)


def symmetric_fixed_point(K):
    """The published plateau fixed point for K = M, T = I, v = w = 1 (Saad & Solla 1995):
    R_in = 1/sqrt(K(2K-1)), Q_ik = 1/(2K-1) for all i, k."""
    Q = np.full((K, K), 1.0 / (2 * K - 1))
    R = np.full((K, K), 1.0 / np.sqrt(K * (2 * K - 1)))
    return px.OrderParams(Q, R, np.eye(K))


def published_plateau_error(K):
    """eps_g at the symmetric fixed point: (K/pi)(pi/6 - K arcsin(1/(2K)))."""
    return (K / np.pi) * (np.pi / 6 - K * np.arcsin(1.0 / (2 * K)))


def symmetric_state(K, q_diag=0.3, q_off=0.1, r=0.05):
    """A state in the symmetric subspace (T = I): all Q_ii, all Q_ik, all R_in equal."""
    Q = np.full((K, K), q_off) + np.eye(K) * (q_diag - q_off)
    return px.OrderParams(Q, np.full((K, K), r), np.eye(K))


# Hand-picked starts with O(1) asymmetry (unit 1 already leans to teacher 1, unit 2 to
# teacher 2), so the dynamics never approaches the symmetric plateau, where finite-N noise
# would decide the escape time. Both have PSD joint covariance (smallest eigenvalue 0.07
# and 0.03).
SPECIALISED_STARTS = {
    "K2M2": dict(Q=[[0.6, 0.05], [0.05, 0.4]], R=[[0.7, 0.0], [0.05, 0.5]], T=np.eye(2)),
    "K3M2": dict(
        Q=[[0.6, 0.05, 0.0], [0.05, 0.4, 0.05], [0.0, 0.05, 0.3]],
        R=[[0.7, 0.0], [0.05, 0.5], [0.1, 0.3]],
        T=np.eye(2),
    ),
}


def specialised_start(name):
    d = SPECIALISED_STARTS[name]
    return px.OrderParams(d["Q"], d["R"], d["T"])
