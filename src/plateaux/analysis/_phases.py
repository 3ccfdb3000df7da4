r"""Split a trajectory into slow phases and classify them: plateau vs quasi-plateau.

**Segmentation.** On the log-spaced saves compute the log-log slope
$s(\alpha) = d\ln\epsilon_g/d\ln\alpha$. A *slow phase* is a maximal run with $|s| <$
`slow_slope` (default 1: slower than any $\alpha^{-1}$ decay), $\epsilon_g >$ `floor`,
$\alpha \ge$ `min_time`, spanning at least a factor `min_factor` in $\alpha$. Before the first
slow phase the trajectory is in its *transient*; between slow phases in a *transition*; after
the last one, if $\epsilon_g$ falls below `floor`, in *convergence*.

**Organising fixed point.** From the slowest saved state of the phase (smallest
$\max|F|$) a root finder (Newton, then dogleg, then Levenberg-Marquardt) finds a fixed point
$X$. $X$ organises the phase if it is valid and its error is within a factor
`1 +- level_tol` of the error at the phase's end; otherwise the phase is *unclassified*.

**Rule** (thresholds relative to the spectrum's scale $\sigma = \max|\mathrm{Re}\,\lambda|$):
with $\rho = \lambda_+/\sigma$ the relative escape rate, $n_c$ the number of centre-like
eigenvalues ($|\lambda| <$ `centre_tol` $\sigma$), $d$ the distance of $X$ to the singular set
(smallest of $Q_{ii}+Q_{kk}-2Q_{ik}$, $Q_{ii}$, $|v_i|$) and `drift` the median $|s|$ over the
phase:

- **plateau**: $X$ is a saddle with $\rho \ge$ `rho_min` (a resolved escape along a small
  positive eigenvalue) and the error sits flat (`drift` $<$ `flat_slope`);
- **quasi-plateau**: $X$ lies on or near the singular set ($d <$ `singular_tol`), has
  centre-like eigenvalues ($n_c \ge 1$) and a small or no escape rate ($\rho <$ `rho_min`):
  the approach along the centre-like directions is slow, the error drifts, and leaving takes
  long because the optimum is close to the singular set;
- **spurious minimum**: $X$ is stable with $\epsilon_g(X) \ge$ `floor` and not degenerate;
- **convergence**: $X$ is stable with $\epsilon_g(X) <$ `floor`;
- **unclassified**: anything else (no fixed point, its error far from the phase's, a saddle
  with a resolved escape but a drifting error, ...). The rule says so rather than guess.

Escape rates and $\sigma$ scale with $\eta$, so the thresholds are dimensionless. For the
reference cases (K = M = 2 and K = 3, M = 2, $\eta = 0.1$) $\rho\approx 0.02$-$0.04$ on the
classic plateau (0.015 for K = M = 3, 0.0149 at $\eta = 0.05$) and $\rho\lesssim 0.008$ when
the teacher correlation is $c \ge 0.9$.
"""

import dataclasses

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._order_params import flatten_learned
from .._trajectory import Trajectory, take_time
from ..dynamics import AbstractDynamics
from ._fixed_points import FixedPoint, find_fixed_point
from ._plateau import mask_runs
from ._spectrum import predicted_plateau_length, spectrum


@dataclasses.dataclass(frozen=True)
class PhaseRule:
    """Thresholds of the segmentation and classification rule (see the module docstring)."""

    slow_slope: float = 1.0
    flat_slope: float = 0.1
    min_factor: float = 3.0
    min_time: float = 1.0
    floor: float = 1e-7
    level_tol: float = 0.5
    centre_tol: float = 1e-4
    rho_min: float = 0.01
    singular_tol: float = 0.05


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of a trajectory: its `kind`, times, errors and the evidence behind the label."""

    kind: str
    entry: float
    exit: float
    eg_entry: float
    eg_exit: float
    drift: float | None = None
    fixed_point: FixedPoint | None = None
    relative_escape: float | None = None
    singular_distance: float | None = None
    reason: str = ""
    local_spectra: dict = dataclasses.field(default_factory=dict)
    measured_length: float | None = None
    predicted_length: float | None = None

    def summary(self) -> dict:
        out = {
            "kind": self.kind,
            "entry": self.entry,
            "exit": self.exit,
            "eg_entry": self.eg_entry,
            "eg_exit": self.eg_exit,
            "drift": self.drift,
            "relative_escape": self.relative_escape,
            "singular_distance": self.singular_distance,
            "reason": self.reason,
            "measured_length": self.measured_length,
            "predicted_length": self.predicted_length,
            "local_spectra": self.local_spectra,
        }
        if self.fixed_point is not None:
            out["fixed_point"] = self.fixed_point.summary()
        return out


def _organising_fixed_point(dynamics, state, rule: PhaseRule) -> FixedPoint | None:
    for solver in ("newton", "dogleg", "levenberg_marquardt"):
        point = find_fixed_point(dynamics, state, solver=solver, centre_tol=rule.centre_tol)
        if point.converged and point.residual < 1e-9:
            return point
    return None


def classify(point: FixedPoint | None, eg_level: float, drift: float, rule: PhaseRule):
    """Apply the rule to one slow phase. Returns `(kind, reason, rho, d)`."""
    if point is None:
        return "unclassified", "no fixed point found from the phase's slowest state", None, None
    spec = point.spectrum
    scale = max(spec.scale, 1e-300)
    rho = spec.escape_rate / scale
    # Round-off can leave a distance of order -1e-12 at a point on the singular set.
    d = max(
        0.0, float(min(np.min(point.distances["overlap_min"]), np.min(point.distances["elimination_min"])))
    )
    n_centre = int(spec.near_zero.sum())
    if abs(eg_level - point.eg) > rule.level_tol * max(point.eg, rule.floor):
        return (
            "unclassified",
            f"nearest fixed point has eps_g = {point.eg:.3g}, far from the phase's {eg_level:.3g}",
            rho,
            d,
        )
    if spec.index == 0:
        if point.eg < rule.floor:
            return "convergence", "stable fixed point with eps_g below floor", rho, d
        if n_centre == 0:
            return "spurious minimum", f"stable, non-degenerate, eps_g = {point.eg:.3g}", rho, d
    if spec.index >= 1 and rho >= rule.rho_min:
        if drift < rule.flat_slope:
            return "plateau", f"saddle, relative escape rate {rho:.3g} >= {rule.rho_min}, flat error", rho, d
        return (
            "unclassified",
            f"saddle with resolved escape ({rho:.3g}) but drifting error ({drift:.3g})",
            rho,
            d,
        )
    if d < rule.singular_tol and n_centre >= 1:
        return (
            "quasi-plateau",
            f"fixed point {d:.3g} from the singular set, {n_centre} centre-like eigenvalue(s), "
            f"relative escape rate {rho:.3g} < {rule.rho_min}",
            rho,
            d,
        )
    return "unclassified", f"weak evidence: rho = {rho:.3g}, d = {d:.3g}, centre modes = {n_centre}", rho, d


def _local_spectrum(dynamics, traj, index, centre_tol) -> dict:
    spec = spectrum(dynamics, take_time(traj.params, index), centre_tol=centre_tol)
    return {
        "alpha": float(traj.t[index]),
        "eigenvalues_real": spec.eigenvalues.real.tolist(),
        "eigenvalues_imag": spec.eigenvalues.imag.tolist(),
    }


def segment(traj: Trajectory, dynamics: AbstractDynamics, rule: PhaseRule | None = None) -> list[Phase]:
    """Split `traj` (one unbatched trajectory of `dynamics`) into classified phases."""
    rule = PhaseRule() if rule is None else rule
    if np.ndim(traj.t) != 1:
        raise ValueError("segment takes one trajectory; loop (or index) over a batch")
    t_all = np.asarray(traj.t)
    eg_all = np.asarray(traj.eg)
    reached = t_all <= float(traj.t_stop)
    idx = np.nonzero(reached & (t_all > 0) & (eg_all > 0) & np.isfinite(eg_all))[0]
    if idx.size < 3:
        raise ValueError("trajectory too short to segment (fewer than 3 positive saves)")
    t, eg = t_all[idx], eg_all[idx]
    slope = np.gradient(np.log(eg), np.log(t))
    slow = (np.abs(slope) < rule.slow_slope) & (eg > rule.floor) & (t >= rule.min_time)
    speeds = _speeds(dynamics, traj)[idx]
    phases: list[Phase] = []
    previous_exit = float(t_all[0])
    eg_previous = float(eg_all[0])
    for a, b in mask_runs(slow):
        if t[b] / t[a] < rule.min_factor:
            continue
        rep = a + int(np.argmin(speeds[a : b + 1]))
        state = take_time(traj.params, int(idx[rep]))
        point = _organising_fixed_point(dynamics, state, rule)
        if point is not None and not _near_level(point.eg, eg[a : b + 1], rule):
            continue  # a slowish stretch of the transient, not organised by a fixed point
        at_level = slice(a, b + 1) if point is None else _level_slice(point.eg, eg, a, b, rule)
        drift = float(np.median(np.abs(slope[at_level])))
        if t[a] > previous_exit:
            kind = "transient" if not phases else "transition"
            phases.append(Phase(kind, previous_exit, float(t[a]), eg_previous, float(eg[a])))
        kind, reason, rho, d = classify(point, float(eg[rep]), drift, rule)
        measured = predicted = None
        if kind == "plateau":
            measured, predicted = _plateau_lengths(point, traj, idx[a], idx[b], dynamics)
        local = {
            name: _local_spectrum(dynamics, traj, int(idx[i]), rule.centre_tol)
            for name, i in (("entry", a), ("slowest", rep), ("exit", b))
        }
        phases.append(
            Phase(
                kind,
                float(t[a]),
                float(t[b]),
                float(eg[a]),
                float(eg[b]),
                drift,
                point,
                rho,
                d,
                reason,
                local,
                measured,
                predicted,
            )
        )
        previous_exit, eg_previous = float(t[b]), float(eg[b])
    end = float(t_all[reached][-1])
    if end > previous_exit:
        final_eg = float(eg_all[reached][-1])
        kind = "convergence" if final_eg < rule.floor else ("transient" if not phases else "transition")
        phases.append(Phase(kind, previous_exit, end, eg_previous, final_eg))
    return phases


def _near_level(level: float, eg: np.ndarray, rule: PhaseRule) -> bool:
    """Does the run's error come within `level_tol` of the fixed point's error?"""
    return bool(np.any(np.abs(eg - level) <= rule.level_tol * max(level, rule.floor)))


def _level_slice(level, eg, a, b, rule) -> np.ndarray:
    """Indices of the run where the error is at the fixed point's level."""
    run = np.arange(a, b + 1)
    near = np.abs(eg[run] - level) <= rule.level_tol * max(level, rule.floor)
    return run[near] if near.any() else run


def _plateau_lengths(point: FixedPoint, traj: Trajectory, i_entry: int, i_exit: int, dynamics):
    r"""Measured duration and $\ln(d_{\rm exit}/d_0)/\lambda_+$, with $d$ the component of
    the deviation from the saddle along its unstable direction at entry and exit."""
    y_fixed = np.asarray(flatten_learned(point.params, learn_v=dynamics.learn_v))
    d = [
        point.spectrum.unstable_component(
            np.asarray(flatten_learned(take_time(traj.params, int(i)), learn_v=dynamics.learn_v)) - y_fixed
        )
        for i in (i_entry, i_exit)
    ]
    measured = float(traj.t[i_exit] - traj.t[i_entry])
    if not (d[0] > 0 and d[1] > d[0]):
        return measured, None
    return measured, predicted_plateau_length(d[0], d[1], point.spectrum.escape_rate)


def _speeds(dynamics: AbstractDynamics, traj: Trajectory) -> np.ndarray:
    """$\\max|F|$ at every saved state (one vmapped call)."""
    return np.asarray(_max_rates(dynamics, traj.params))


@eqx.filter_jit
def _max_rates(dynamics, params):
    rates = eqx.filter_vmap(dynamics.vector_field)(params)
    return jnp.max(jnp.abs(flatten_learned(rates, learn_v=dynamics.learn_v)), axis=-1)
