r"""Linearisation of averaged learning equations: Jacobians and their spectra.

In order-parameter (minimal) coordinates the Jacobian $\partial F/\partial y$ is not symmetric,
so its spectrum comes from a general eigen-solver (`eig`); `eigh` of its symmetric part would
give different numbers. Eigenvalues are sorted by decreasing real part.
"""

import dataclasses

import equinox as eqx
import jax
import numpy as np

from .._order_params import OrderParams, flatten_learned
from ..dynamics import AbstractDynamics


def coordinate_names(K: int, M: int, *, learn_v: bool = False) -> list[str]:
    """Names of the minimal coordinates, in the order of [`plateaux.flatten_learned`][]."""
    names = [f"Q[{i},{k}]" for i in range(K) for k in range(i, K)]
    names += [f"R[{i},{n}]" for i in range(K) for n in range(M)]
    if learn_v:
        names += [f"v[{i}]" for i in range(K)]
    return names


def jacobian(dynamics: AbstractDynamics, params: OrderParams) -> np.ndarray:
    r"""$\partial F/\partial y$ at `params` by forward-mode autodiff (`jax.jacfwd`), in minimal
    coordinates; shape `(D, D)`."""
    return np.asarray(_jacobian(dynamics, params))


@eqx.filter_jit
def _jacobian(dynamics: AbstractDynamics, params: OrderParams):
    y = flatten_learned(params, learn_v=dynamics.learn_v)
    return jax.jacfwd(lambda z: dynamics.flat_vector_field(z, params))(y)


@dataclasses.dataclass(frozen=True)
class Spectrum:
    r"""Eigen-decomposition of a Jacobian, with the rates that organise slow dynamics.

    Thresholds are relative to the spectrum's scale $s = \max_j|\mathrm{Re}\,\lambda_j|$: an
    eigenvalue is *near zero* (centre-like) when $|\lambda| <$ `centre_tol` $\cdot s$.

    **Fields:** `eigenvalues` (complex, sorted by decreasing real part), `eigenvectors`
    (columns), `names` (coordinate names), `centre_tol`.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    names: tuple
    centre_tol: float = 1e-4

    @property
    def scale(self) -> float:
        return float(np.max(np.abs(self.eigenvalues.real), initial=0.0))

    @property
    def near_zero(self) -> np.ndarray:
        """Boolean mask of centre-like eigenvalues."""
        return np.abs(self.eigenvalues) < self.centre_tol * max(self.scale, 1e-300)

    @property
    def unstable(self) -> np.ndarray:
        """Mask of eigenvalues with positive real part that are not near zero."""
        return (self.eigenvalues.real > 0) & ~self.near_zero

    @property
    def stable(self) -> np.ndarray:
        return (self.eigenvalues.real < 0) & ~self.near_zero

    @property
    def escape_rate(self) -> float:
        r"""$\lambda_+$: the largest positive real part (0 if none); the rate of leaving a saddle."""
        return float(np.max(self.eigenvalues.real[self.unstable], initial=0.0))

    @property
    def slowest_stable_rate(self) -> float:
        r"""The stable eigenvalue closest to zero (a negative number; NaN if none)."""
        stable = self.eigenvalues.real[self.stable]
        return float(np.max(stable)) if stable.size else float("nan")

    @property
    def index(self) -> int:
        """Number of unstable directions."""
        return int(self.unstable.sum())

    @property
    def kind(self) -> str:
        """'stable', 'saddle' or 'unstable', prefixed 'degenerate ' if near-zero modes exist."""
        base = "stable" if self.index == 0 else ("unstable" if self.stable.sum() == 0 else "saddle")
        return ("degenerate " if self.near_zero.any() else "") + base

    def unstable_component(self, delta: np.ndarray) -> float:
        r"""$|w_+\cdot\delta|$: the component of a deviation $\delta$ (minimal coordinates,
        from the fixed point) along the fastest unstable direction, with $w_+$ the left
        eigenvector (row of $V^{-1}$), so stable components do not leak in. NaN if no
        unstable direction."""
        if self.index == 0:
            return float("nan")
        j = int(np.argmax(np.where(self.unstable, self.eigenvalues.real, -np.inf)))
        left = np.linalg.inv(self.eigenvectors)[j]
        return float(abs(left @ np.asarray(delta)))

    def direction(self, j: int) -> dict:
        """The eigenvector `j` as {coordinate name: component} (largest components first)."""
        vec = self.eigenvectors[:, j]
        vec = vec / vec[np.argmax(np.abs(vec))]
        order = np.argsort(-np.abs(vec))
        return {self.names[k]: complex(vec[k]) for k in order if abs(vec[k]) > 1e-8}

    def summary(self) -> dict:
        return {
            "kind": self.kind,
            "eigenvalues_real": self.eigenvalues.real.tolist(),
            "eigenvalues_imag": self.eigenvalues.imag.tolist(),
            "escape_rate": self.escape_rate,
            "slowest_stable_rate": self.slowest_stable_rate,
            "index": self.index,
            "n_near_zero": int(self.near_zero.sum()),
            "centre_tol": self.centre_tol,
        }


def spectrum(dynamics: AbstractDynamics, params: OrderParams, *, centre_tol: float = 1e-4) -> Spectrum:
    """The [`Spectrum`][] of the Jacobian of `dynamics` at `params`."""
    J = jacobian(dynamics, params)
    if not np.all(np.isfinite(J)):
        raise ValueError("the Jacobian has non-finite entries at this state")
    values, vectors = np.linalg.eig(J)
    order = np.lexsort((-values.imag, -values.real))
    names = tuple(coordinate_names(params.K, params.M, learn_v=dynamics.learn_v))
    return Spectrum(values[order], vectors[:, order], names, centre_tol)


def predicted_plateau_length(d0: float, d_exit: float, escape_rate: float) -> float:
    r"""Dwell time near a saddle, $\ln(d_{\rm exit}/d_0)/\lambda_+$, for a deviation growing
    from $d_0$ to $d_{\rm exit}$ along the unstable direction."""
    if not (d0 > 0 and d_exit > 0 and escape_rate > 0):
        raise ValueError(f"need d0, d_exit, escape_rate > 0; got {d0}, {d_exit}, {escape_rate}")
    return float(np.log(d_exit / d0) / escape_rate)
