r"""The three learning scenarios, by where the optimum (the teacher) sits relative to the
singular set of the student's parameter space.

Each constructor returns a [`Scenario`][]: the teacher (in $T$, $w$) and a classic random
student start (Saad & Solla: $Q_{ii}\sim U[0, q_{\max}]$, tiny $Q_{ik}$, $R_{in}$), plus a
description of which singular region is involved and why.

- **regular** (far): $K = M$, $T = I$, $w = 1$. The optimum $J_i = B_{\pi(i)}$ has all units
  distinct and non-zero; the only slow phase is the classic symmetric plateau (a saddle on
  the overlap singularity) that the student passes on its way.
- **near-singular**: the optimum is close to the singular set: correlated teacher vectors
  $T = (1-c)I + c\,\mathbf 1\mathbf 1^T$ with $c\to1$ (near the overlap singularity
  $B_n = B_m$), or one small teacher output weight $w_M = \epsilon$ (near the elimination
  singularity).
- **on-singular**: the optimum lies on the singular set: an over-parameterized student
  ($K > M$; one student unit must vanish or duplicate another), identical teacher units
  ($c = 1$) or a zero teacher output weight.

References: Saad & Solla (1995); Inoue, Park & Okada (2003); Amari, Park & Ozeki (2006);
Wei, Zhang, Cousseau & Amari (2008).
"""

import dataclasses

import jax
import numpy as np

from ._initial import classic_start, correlated_teacher
from ._order_params import OrderParams


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A teacher and a student start, with the singular region they relate to."""

    name: str
    params0: OrderParams
    singular_region: str
    description: str

    @property
    def K(self) -> int:
        return self.params0.K

    @property
    def M(self) -> int:
        return self.params0.M


def _start(K, T, w, key, q_max, overlap_max) -> OrderParams:
    key = jax.random.key(0) if key is None else key
    return classic_start(K, T, key, q_max=q_max, overlap_max=overlap_max, w=w)


def regular(K: int = 2, *, key=None, q_max: float = 0.5, overlap_max: float = 1e-12) -> Scenario:
    """Optimum far from the singular set: $K = M$, $T = I$, $w = 1$."""
    if K < 1:
        raise ValueError(f"need K >= 1; got K={K}")
    T = correlated_teacher(K, 0.0)
    return Scenario(
        "regular",
        _start(K, T, None, key, q_max, overlap_max),
        "none at the optimum; the symmetric plateau saddle lies on the overlap singularity",
        f"K = M = {K}, orthonormal teacher (T = I), unit output weights: the optimum J_i = B_i "
        "has distinct, non-vanishing units, far from the singular set.",
    )


def near_singular(
    K: int = 2,
    M: int | None = None,
    *,
    c: float = 0.9,
    small_weight: float | None = None,
    key=None,
    q_max: float = 0.5,
    overlap_max: float = 1e-12,
) -> Scenario:
    r"""Optimum near the singular set: teacher correlation $c$ close to 1 (overlap
    singularity), or, with `small_weight` $=\epsilon$, the last teacher output weight
    $w_M = \epsilon$ (elimination singularity) on an otherwise orthonormal teacher."""
    M = K if M is None else M
    if small_weight is not None:
        if not (np.isfinite(small_weight) and small_weight != 0):
            raise ValueError(f"small_weight must be finite and non-zero; got {small_weight}")
        w = np.ones(M)
        w[-1] = small_weight
        T = correlated_teacher(M, 0.0)
        region = "elimination singularity (teacher output weight w_M -> 0)"
        text = f"K = {K}, M = {M}, T = I, w_M = {small_weight}: one teacher unit barely contributes."
    else:
        if not c < 1.0:
            raise ValueError(f"near_singular needs c < 1 (c = 1 is on the singular set); got c={c}")
        w = None
        T = correlated_teacher(M, c)
        region = "overlap singularity (teacher units B_n -> B_m as c -> 1)"
        text = f"K = {K}, M = {M}, teacher correlation c = {c}: teacher units are nearly parallel."
    return Scenario("near-singular", _start(K, T, w, key, q_max, overlap_max), region, text)


def on_singular(
    K: int = 3,
    M: int = 2,
    *,
    c: float = 0.0,
    kind: str = "overparameterized",
    key=None,
    q_max: float = 0.5,
    overlap_max: float = 1e-12,
) -> Scenario:
    r"""Optimum on the singular set.

    `kind`:
    - `"overparameterized"`: $K > M$ with teacher correlation $c$; the student must eliminate
      or duplicate $K - M$ units to represent the teacher.
    - `"identical"`: $K = M$, $c = 1$: all teacher units equal.
    - `"zero_weight"`: $K = M$, $T = I$ and $w_M = 0$.
    """
    if kind == "overparameterized":
        if K <= M:
            raise ValueError(f"an over-parameterized student needs K > M; got K={K}, M={M}")
        T, w = correlated_teacher(M, c), None
        region = "elimination / overlap singularity (K > M)"
        text = f"K = {K} > M = {M}, teacher correlation c = {c}: the student has spare units."
    elif kind == "identical":
        M = K
        T, w = correlated_teacher(M, 1.0), None
        region = "overlap singularity (c = 1: identical teacher units)"
        text = f"K = M = {K}, c = 1: the teacher is a single unit repeated."
    elif kind == "zero_weight":
        M = K
        w = np.ones(M)
        w[-1] = 0.0
        T = correlated_teacher(M, 0.0)
        region = "elimination singularity (w_M = 0)"
        text = f"K = M = {K}, T = I, w_M = 0: one teacher unit is switched off."
    else:
        raise ValueError(
            f"unknown on-singular kind {kind!r}; use 'overparameterized', 'identical' or 'zero_weight'"
        )
    return Scenario("on-singular", _start(K, T, w, key, q_max, overlap_max), region, text)
