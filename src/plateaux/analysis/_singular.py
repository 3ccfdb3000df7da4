r"""Distances of a state to the singular regions of the student's parameter space.

- overlap singularity $J_i = J_k$: $d^{\rm ov}_{ik} = Q_{ii} + Q_{kk} - 2Q_{ik} = |J_i - J_k|^2/N$;
- elimination singularity $J_i = 0$ or $v_i = 0$: $Q_{ii} = |J_i|^2/N$ and $|v_i|$.

The Fisher information degenerates on these sets (Amari, Park & Ozeki 2006).
"""

import jax.numpy as jnp
import numpy as np

from .._order_params import OrderParams


def singular_distances(params: OrderParams) -> dict:
    r"""Distances to the singular set; leading (batch or time) axes are kept.

    **Returns:** a dict with
    - `"overlap"`: $Q_{ii} + Q_{kk} - 2Q_{ik}$ for every pair $i < k$ (row-major), shape `(..., K(K-1)/2)`;
    - `"norm"`: $Q_{ii}$, shape `(..., K)`;
    - `"output_weight"`: $|v_i|$, shape `(..., K)`;
    - `"overlap_min"`, `"elimination_min"`: the smallest overlap distance (inf if K = 1) and the
      smallest of $Q_{ii}$ and $|v_i|$ over units;
    - `"output_weight_min"`: $\min_i|v_i|$, the distance to the elimination set $v_i = 0$. It is
      constant unless the second layer is trained (`OnlineSGD(eta_v=...)`), which makes
      $v_i = 0$ reachable.
    """
    K = params.K
    iu = np.triu_indices(K, 1)
    diag = jnp.diagonal(params.Q, axis1=-2, axis2=-1)
    overlap = diag[..., iu[0]] + diag[..., iu[1]] - 2.0 * params.Q[..., iu[0], iu[1]]
    weight = jnp.abs(params.v)
    overlap_min = jnp.min(overlap, axis=-1) if K > 1 else jnp.full(diag.shape[:-1], jnp.inf)
    return {
        "overlap": overlap,
        "norm": diag,
        "output_weight": weight,
        "overlap_min": overlap_min,
        "output_weight_min": jnp.min(weight, axis=-1),
        "elimination_min": jnp.minimum(jnp.min(diag, axis=-1), jnp.min(weight, axis=-1)),
    }


def symmetry_breaking(params: OrderParams) -> jnp.ndarray:
    r"""Distance from the symmetric subspace (all student units equal):
    $\big[\sum_{ik}(Q_{ik} - \bar Q_{ik})^2 + \sum_{in}(R_{in} - \bar R_n)^2\big]^{1/2}$ where
    $\bar R_n$ is the mean over students and $\bar Q$ the symmetrised (diagonal mean,
    off-diagonal mean) matrix. It grows like $e^{\lambda_+\alpha}$ when leaving a plateau."""
    K = params.K
    Q, R = params.Q, params.R
    eye = jnp.eye(K, dtype=bool)
    diag_mean = jnp.sum(jnp.where(eye, Q, 0.0), axis=(-2, -1)) / K
    off_mean = jnp.sum(jnp.where(eye, 0.0, Q), axis=(-2, -1)) / max(K * (K - 1), 1)
    Q_sym = jnp.where(eye, diag_mean[..., None, None], off_mean[..., None, None])
    R_sym = jnp.mean(R, axis=-2, keepdims=True)
    return jnp.sqrt(jnp.sum((Q - Q_sym) ** 2, axis=(-2, -1)) + jnp.sum((R - R_sym) ** 2, axis=(-2, -1)))
