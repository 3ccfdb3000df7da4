r"""How accurate is the quadrature at a given state? Compare with a higher order."""

import dataclasses

import equinox as eqx
import numpy as np

from ._base import as_pair, quadrature_order
from ._quadrature import MAX_ORDER, check_order


@eqx.filter_jit
def _tensors(pair, C, K):
    from .._averages import i2_matrix, i3_tensor, i4_tensor, j2_matrix

    return [f(pair, C, K) for f in (i2_matrix, j2_matrix, i3_tensor, i4_tensor)]


def _with_order(act, order):
    if not hasattr(act, "order"):
        raise ValueError(f"{type(act).__name__} has no `order` field: its quadrature order cannot be varied")
    return dataclasses.replace(act, order=order)


def quadrature_report(act, state, K: int | None = None, reference_order: int | None = None) -> dict:
    r"""Error estimate of the quadrature averages at one state.

    Builds the $I_2$, $J_2$, $I_3$, $I_4$ tensors of the ODE (as [`plateaux.OnlineSGD`][]
    does) with the activations' own `order` and with `reference_order` (default: twice the
    larger order), and returns the largest absolute change of each. For activations whose
    averages are all closed forms the changes are 0; for quadrature averages they estimate the
    quadrature error (conservatively when the reference is much more accurate).

    **Arguments:**

    - `act`: an activation or a `(student, teacher)` pair.
    - `state`: a [`plateaux.OrderParams`][] or a joint covariance $C$ (then pass `K`).
    - `K`: number of student fields (taken from `state` if it is an `OrderParams`).
    - `reference_order`: the higher order to compare with.

    **Returns:** a dict with keys `"I2"`, `"J2"`, `"I3"`, `"I4"` (max abs change), `"max"`,
    `"order"` (the activations' orders) and `"reference_order"`.

    **Raises:** `ValueError` for a missing `K` or a non-positive `reference_order`.
    """
    if hasattr(state, "covariance"):
        C, K = state.covariance, state.K
    else:
        C = np.asarray(state, dtype=float)
        if K is None:
            raise ValueError("pass K (the number of student fields) with a covariance matrix")
    student, teacher = as_pair(act)
    orders = (quadrature_order(student), quadrature_order(teacher))
    ref = min(2 * max(orders), MAX_ORDER) if reference_order is None else check_order(reference_order)
    low = (student, teacher)
    high = (_with_order(student, ref), _with_order(teacher, ref))
    out = {}
    for name, a, b in zip(("I2", "J2", "I3", "I4"), _tensors(low, C, K), _tensors(high, C, K)):
        out[name] = float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
    out["max"] = max(out[k] for k in ("I2", "J2", "I3", "I4"))
    out["order"] = orders if orders[0] != orders[1] else orders[0]
    out["reference_order"] = ref
    return out
