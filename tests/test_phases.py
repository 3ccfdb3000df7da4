"""Phase segmentation and the plateau / quasi-plateau rule on constructed cases."""

import dataclasses

import jax
import numpy as np
import pytest

import plateaux as px
from plateaux import analysis as pa, scenarios

ETA = 0.1
SGD = px.OnlineSGD(ETA)


def _phases(scenario, horizon=1e5):
    traj = px.integrate(scenario.params0, SGD, px.log_grid(horizon, 300), throw=False)
    return pa.segment(traj, SGD)


def _kinds(phases):
    return [p.kind for p in phases]


def test_regular_scenario_has_one_plateau_with_predicted_length():
    phases = _phases(scenarios.regular(2, key=jax.random.key(0)))
    assert _kinds(phases) == ["transient", "plateau", "convergence"]
    plateau = phases[1]
    assert plateau.fixed_point.kind.endswith("saddle")
    # Height of the eta = 0.1 symmetric plateau (eta -> 0: 0.0116; the eta^2 term lifts it).
    assert plateau.fixed_point.eg == pytest.approx(0.01209, rel=1e-2)
    # ln(d_exit / d_0) / lambda_+ from the unstable component at entry and exit vs the measured
    # duration: the linearisation ignores the nonlinear entry and exit, worth ~10%.
    assert plateau.predicted_length == pytest.approx(plateau.measured_length, rel=0.15)


def test_near_singular_teacher_gives_quasi_plateau():
    phases = _phases(scenarios.near_singular(2, c=0.99, key=jax.random.key(0)))
    quasi = [p for p in phases if p.kind == "quasi-plateau"]
    assert len(quasi) == 1 and "plateau" not in _kinds(phases)
    q = quasi[0]
    assert q.relative_escape < pa.PhaseRule().rho_min
    assert q.singular_distance < 1e-4  # next to the overlap singularity
    assert q.fixed_point.spectrum.near_zero.sum() >= 1
    assert q.eg_exit < 1e-5  # a low-error slow phase


def test_overparameterized_near_singular_plateau_then_quasi_plateau():
    phases = _phases(scenarios.on_singular(3, 2, c=0.9, key=jax.random.key(0)))
    kinds = _kinds(phases)
    assert kinds[0] == "transient" and kinds[-1] == "convergence"
    quasi = [p for p in phases if p.kind == "quasi-plateau"]
    assert len(quasi) == 1
    q = quasi[0]
    # One student unit is (nearly) eliminated while the other two merge: the organising fixed
    # point sits at both singular sets. At finite eta it is not exactly on the elimination
    # set: at J_i = 0 the eta^2 term eta^2 <delta_i^2> = eta^2 g'(0)^2 <(tau - sigma)^2> > 0
    # keeps Q_ii ~ eta * eps_g ~ 3e-5 (not 0) while eps_g > 0.
    distances = q.fixed_point.distances
    norms = np.sort(np.asarray(distances["norm"]))
    assert norms[0] < 10 * ETA * q.fixed_point.eg and norms[1] > 0.5
    overlaps = np.sort(np.asarray(distances["overlap"]))
    assert overlaps[0] < 1e-3 and overlaps[1] > 0.5
    # It comes after a higher-error slow phase (the symmetric plateau region).
    earlier = [p for p in phases if p.fixed_point is not None and p.entry < q.entry]
    assert earlier and earlier[0].eg_exit > 10 * q.eg_exit


def _point(guess_Q, guess_R, c=0.0):
    return pa.find_fixed_point(
        SGD, px.OrderParams(guess_Q, guess_R, px.correlated_teacher(np.shape(guess_R)[1], c))
    )


def test_rule_says_unclassified_when_evidence_is_weak():
    rule = pa.PhaseRule()
    assert pa.classify(None, 0.01, 0.0, rule)[0] == "unclassified"
    saddle = pa.find_fixed_point(
        SGD,
        px.OrderParams(np.full((2, 2), 0.3) + 0.01 * np.eye(2), np.full((2, 2), 0.3), np.eye(2)),
        symmetric=True,
    )
    assert saddle.converged and saddle.kind.endswith("saddle")
    # Same saddle, flat error: a plateau.
    assert pa.classify(saddle, saddle.eg, 0.01, rule)[0] == "plateau"
    # The phase's error far from the fixed point's: not organised by it.
    kind, reason, *_ = pa.classify(saddle, 10 * saddle.eg, 0.01, rule)
    assert kind == "unclassified" and "far" in reason
    # A saddle with a resolved escape but a strongly drifting error: conflicting evidence.
    kind, reason, *_ = pa.classify(saddle, saddle.eg, 0.5, rule)
    assert kind == "unclassified" and "drifting" in reason
    # Raising the escape threshold above this saddle's rate with the singular tolerance at 0
    # leaves no rule satisfied either.
    strict = dataclasses.replace(rule, rho_min=1.0, singular_tol=0.0)
    assert pa.classify(saddle, saddle.eg, 0.01, strict)[0] == "unclassified"


def test_rule_labels_minima(spurious_minimum):
    optimum = _point(0.9 * np.eye(2), 0.9 * np.eye(2))
    assert pa.classify(optimum, 0.0, 0.0, pa.PhaseRule())[0] == "convergence"
    point = spurious_minimum  # K = 3, M = 2, from the session fixture
    assert pa.classify(point, point.eg, 0.0, pa.PhaseRule())[0] == "spurious minimum"


def test_segment_rejects_batches_and_short_input():
    start = scenarios.regular(2, key=jax.random.key(0)).params0
    batch = jax.tree.map(lambda x: np.stack([x, x]), start)
    traj = px.integrate(batch, SGD, 10.0)
    with pytest.raises(ValueError, match="one trajectory"):
        pa.segment(traj, SGD)
    short = px.integrate(start, SGD, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="too short"):
        pa.segment(short, SGD)
