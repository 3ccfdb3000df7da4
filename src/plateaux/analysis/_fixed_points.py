r"""Fixed points of averaged learning equations: Newton, symmetric subspace, continuation and
multi-start search."""

import dataclasses
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from .._generalization import generalization_error
from .._order_params import OrderParams, check_order_params, flatten_learned, unflatten_learned
from ..dynamics import AbstractDynamics
from ..dynamics._base import averaging_activation
from ._singular import singular_distances
from ._spectrum import Spectrum, spectrum


@dataclasses.dataclass(frozen=True)
class FixedPoint:
    r"""A state with $F(\mathrm{state}) \approx 0$, its error, spectrum and singular distances.

    `residual` is $\max|F|$ at `params`; `converged` says whether Newton met its tolerance
    and the result is a valid (PSD) state.
    """

    params: OrderParams
    residual: float
    converged: bool
    eg: float
    spectrum: Spectrum
    distances: dict

    @property
    def kind(self) -> str:
        return self.spectrum.kind

    def summary(self) -> dict:
        return {
            "eg": self.eg,
            "residual": self.residual,
            "converged": self.converged,
            "Q": np.asarray(self.params.Q).tolist(),
            "R": np.asarray(self.params.R).tolist(),
            "spectrum": self.spectrum.summary(),
            "distances": {k: np.asarray(v).tolist() for k, v in self.distances.items()},
        }


def _symmetric_embed(z, template: OrderParams) -> OrderParams:
    # z = (s, c, r_1..r_M): Q = c 11^T + s^2 I, R_in = r_n for every student i. Writing the
    # gap Q_ii - Q_ik = s^2 keeps every iterate valid (Q_ii >= Q_ik).
    K, M = template.K, template.M
    s, c, r = z[0], z[1], z[2 : 2 + M]
    Q = s**2 * jnp.eye(K) + c * jnp.ones((K, K))
    R = jnp.broadcast_to(r, (K, M))
    return OrderParams(Q, R, template.T, template.v, template.w)


def _symmetric_coords(params: OrderParams):
    c = params.Q[0, 1] if params.K > 1 else 0.0
    # Start the gap away from 0: there dq/ds = 0 and the Newton matrix is singular.
    s = jnp.sqrt(jnp.maximum(params.Q[0, 0] - c, 1e-4))
    return jnp.concatenate([jnp.stack([s, jnp.asarray(c)]), params.R[0]])


def _symmetric_residual(z, args):
    dynamics, template = args
    rates = dynamics.vector_field(_symmetric_embed(z, template))
    off = rates.Q[0, 1] if template.K > 1 else z[0]  # K = 1: pin the (absent) gap
    return jnp.concatenate([jnp.stack([rates.Q[0, 0], off]), rates.R[0]])


def _identical_embed(z, template: OrderParams) -> OrderParams:
    # All students identical (on the overlap singularity): Q = q 11^T, R_in = r_n.
    K, M = template.K, template.M
    Q = z[0] * jnp.ones((K, K))
    return OrderParams(Q, jnp.broadcast_to(z[1 : 1 + M], (K, M)), template.T, template.v, template.w)


def _identical_coords(params: OrderParams):
    return jnp.concatenate([params.Q[0, :1], params.R[0]])


def _identical_residual(z, args):
    # The set is invariant (identical fields give identical updates, eta^2 term included),
    # so dQ_ii = dQ_ik there and these M + 1 equations are the whole vector field.
    dynamics, template = args
    rates = dynamics.vector_field(_identical_embed(z, template))
    return jnp.concatenate([rates.Q[0, :1], rates.R[0]])


_SUBSPACES = {
    "symmetric": (_symmetric_residual, _symmetric_coords, _symmetric_embed),
    "identical": (_identical_residual, _identical_coords, _identical_embed),
}


def _full_residual(y, args):
    dynamics, template = args
    return dynamics.flat_vector_field(y, template)


_SOLVERS = {
    "newton": optx.Newton,
    "dogleg": optx.Dogleg,
    "levenberg_marquardt": optx.LevenbergMarquardt,
}


def _solver(name: str, rtol: float, atol: float):
    try:
        return _SOLVERS[name](rtol=rtol, atol=atol)
    except KeyError:
        raise ValueError(f"unknown root finder {name!r}; available: {sorted(_SOLVERS)}") from None


@eqx.filter_jit
def _root(dynamics, guess, subspace, solver, max_steps):
    if subspace is not None:
        fn, coords, embed = _SUBSPACES[subspace]
        y0 = coords(guess)
    else:
        fn, y0 = _full_residual, flatten_learned(guess, learn_v=dynamics.learn_v)
    sol = optx.root_find(
        fn,
        solver,
        y0,
        args=(dynamics, guess),
        max_steps=max_steps,
        throw=False,
    )
    if subspace is not None:
        params = embed(sol.value, guess)
    else:
        params = unflatten_learned(sol.value, guess, learn_v=dynamics.learn_v)
    residual = jnp.max(jnp.abs(flatten_learned(dynamics.vector_field(params), learn_v=dynamics.learn_v)))
    return params, residual, sol.result == optx.RESULTS.successful


def _is_valid(params: OrderParams) -> bool:
    try:
        check_order_params(params)
    except ValueError:
        return False
    return True


def _describe(dynamics, params, residual, ok, centre_tol) -> FixedPoint:
    ok = bool(ok) and bool(np.isfinite(residual)) and _is_valid(params)
    spec = spectrum(dynamics, params, centre_tol=centre_tol) if ok else _empty_spectrum()
    return FixedPoint(
        params=params,
        residual=float(residual),
        converged=ok,
        eg=float(generalization_error(params, averaging_activation(dynamics.activations))),
        spectrum=spec,
        distances={k: np.asarray(v) for k, v in singular_distances(params).items()},
    )


def _empty_spectrum() -> Spectrum:
    return Spectrum(np.array([], dtype=complex), np.zeros((0, 0), dtype=complex), ())


def find_fixed_point(
    dynamics: AbstractDynamics,
    guess: OrderParams,
    *,
    symmetric: bool = False,
    rtol: float = 1e-12,
    atol: float = 1e-14,
    max_steps: int = 200,
    centre_tol: float = 1e-4,
    solver: str = "newton",
) -> FixedPoint:
    r"""Root finding (optimistix; Newton by default, or `solver="dogleg"` /
    `"levenberg_marquardt"`, trust-region methods that stay closer to the guess) for
    $F(\mathrm{state}) = 0$ from `guess`.

    With `symmetric=True` the search is restricted to the symmetric subspace (all student
    units equal: $Q_{ii} = q$, $Q_{i\ne k} = c$, $R_{in} = r_n$), which the dynamics leaves
    invariant; this finds the plateau fixed point even though it is a saddle. If that fails
    (the $\eta\to0$ plateau point lies exactly on the overlap singularity $q = c$, where the
    field is flat in the gap $q - c$ and Newton converges only linearly), it solves on the
    invariant set of identical students ($Q = q\mathbf 1\mathbf 1^T$, $R_{in} = r_n$).

    **Returns:** a [`FixedPoint`][]; check `.converged` (Newton may fail or leave the set of
    valid states; then the spectrum is empty).
    """
    if guess.R.ndim != 2:
        raise ValueError("find_fixed_point takes one state; use search_fixed_points for a batch")
    method = _solver(solver, rtol, atol)
    if not symmetric:
        return _describe(dynamics, *_root(dynamics, guess, None, method, max_steps), centre_tol)
    point = _describe(dynamics, *_root(dynamics, guess, "symmetric", method, max_steps), centre_tol)
    if point.converged:
        return point
    # A symmetric fixed point exactly on the overlap singularity (the eta -> 0 plateau) is
    # degenerate in the gap Q_ii - Q_ik (the field is flat there to second order), where
    # Newton only converges linearly: solve on the invariant set of identical students.
    return _describe(dynamics, *_root(dynamics, guess, "identical", method, max_steps), centre_tol)


def continuation(
    family: Callable[[float], tuple[AbstractDynamics, OrderParams]],
    values: Sequence[float],
    guess: OrderParams,
    *,
    symmetric: bool = False,
    **kwargs,
) -> list[FixedPoint]:
    r"""Follow a fixed point along a parameter path (natural-parameter continuation).

    `family(value)` returns `(dynamics, template)`: the learning rule and a state carrying
    the fixed fields ($T$, $w$, ...) at that parameter value (e.g. $\eta$, or a teacher
    correlation $c$ through $T$). Newton at each value starts from the previous solution
    (its $Q$, $R$ placed into the new template).
    """
    points = []
    current = guess
    for value in values:
        dynamics, template = family(value)
        start = OrderParams(current.Q, current.R, template.T, template.v, template.w)
        point = find_fixed_point(dynamics, start, symmetric=symmetric, **kwargs)
        points.append(point)
        if point.converged:
            current = point.params
    return points


def search_fixed_points(
    dynamics: AbstractDynamics,
    starts: OrderParams,
    *,
    rtol: float = 1e-12,
    atol: float = 1e-14,
    max_steps: int = 500,
    solvers: Sequence[str] = ("dogleg", "levenberg_marquardt"),
    residual_tol: float = 1e-9,
    merge_tol: float = 1e-6,
    centre_tol: float = 1e-4,
) -> list[FixedPoint]:
    r"""Root finding from many starts at once (`vmap`), returning the *distinct* fixed points.

    Each of `solvers` is run from every start; the trust-region solvers (dogleg,
    Levenberg-Marquardt) converge from far more random starts than plain Newton, whose
    full steps tend to leave the set of valid (PSD) states.

    `starts` is an `OrderParams` with one leading batch axis (e.g. from
    [`random_states`][]). Converged, valid results with $\max|F| <$ `residual_tol` are kept;
    two are the same fixed point when their errors and sorted spectra agree to `merge_tol`
    (this merges states related by permuting student or equivalent teacher units).
    Sorted by increasing $\epsilon_g$.
    """
    if starts.R.ndim != 3:
        raise ValueError(f"starts must have one leading batch axis; got R of shape {starts.R.shape}")
    found: list[FixedPoint] = []
    for name in solvers:
        solver = _solver(name, rtol, atol)
        params, residual, ok = eqx.filter_vmap(
            lambda g: _root(dynamics, g, None, solver, max_steps),  # noqa: B023
        )(starts)
        for b in range(starts.R.shape[0]):
            if not (bool(ok[b]) and float(residual[b]) < residual_tol):
                continue
            point = _describe(dynamics, _index(params, b), residual[b], True, centre_tol)
            if point.converged and not any(_same_point(point, q, merge_tol) for q in found):
                found.append(point)
    return sorted(found, key=lambda p: p.eg)


def _index(params: OrderParams, b: int) -> OrderParams:
    return jax.tree.map(lambda x: x[b], params)


def _same_point(a: FixedPoint, b: FixedPoint, tol: float) -> bool:
    if abs(a.eg - b.eg) > tol * max(1.0, abs(a.eg)):
        return False
    ea, eb = np.sort(a.spectrum.eigenvalues.real), np.sort(b.spectrum.eigenvalues.real)
    scale = max(a.spectrum.scale, 1e-12)
    return ea.shape == eb.shape and np.allclose(ea, eb, rtol=0, atol=tol * scale * 1e3)


def random_states(template: OrderParams, n: int, key, *, scale: float = 1.0) -> OrderParams:
    r"""`n` random valid states with the teacher of `template`: student vectors with i.i.d.
    $\mathcal N(0, \mathrm{scale}^2/(K+M))$ coordinates in a $(K+M)$-dimensional space that
    contains the teacher (so $Q$, $R$ are always realisable)."""
    from .._reduced import reduced_teacher

    K, M = template.K, template.M
    B = reduced_teacher(template.T, K)
    W = scale * jax.random.normal(key, (n, K, K + M)) / np.sqrt(K + M)
    Q = jnp.einsum("bkd,bld->bkl", W, W)
    R = jnp.einsum("bkd,md->bkm", W, B)
    batch = lambda x: jnp.broadcast_to(x, (n,) + x.shape)  # noqa: E731
    return OrderParams(Q, R, batch(template.T), batch(template.v), batch(template.w))
