"""Sweeps (issue 6): vmapped grid vs one-by-one runs, kill-and-resume, refused configs, the CLI.

Every sweep here has the same buckets (rule, K = M = 2) and compiled batch size (3), so the
batched solve compiles once per rule for the whole module.
"""

import itertools
import json

import jax
import numpy as np
import pytest
import xarray as xr

import plateaux as px
from plateaux import analysis as pa
from plateaux.cli import main
from plateaux.experiments import (
    Sweep,
    SweepConfigError,
    SweepMismatchError,
    load_sweep,
    plan,
    run_chunk,
    run_sweep,
)
from plateaux.experiments._store import assemble

GRID = {"rule": ["sgd", "ngd"], "K": 2, "M": 2, "eta": [0.1, 0.5], "c": [0.0, 0.9], "seed": [0, 1]}
SETTINGS = {"integration": {"horizon": 2000.0, "num_saves": 60}}
NO_ANALYSIS = {"analysis": {"phases": False, "fixed_points": False}}
CHUNK = 3  # 8 members per rule -> 3 chunks of compiled batch 3 (the last one padded)


def _sweep(grid=GRID, analysis=NO_ANALYSIS, **changes) -> Sweep:
    return Sweep.from_dict({"grid": grid | changes, **SETTINGS, **analysis})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted run (the reference for the one-by-one and resume tests)."""
    out = tmp_path_factory.mktemp("reference")
    return run_sweep(_sweep(), out, chunk_size=CHUNK, progress=False)


def test_sweep_equals_scenarios_run_one_by_one(reference):
    ds = reference
    grid = px.log_grid(2000.0, 60)
    np.testing.assert_array_equal(ds.alpha.values, grid)
    names = ("eg", "Q", "R", "t_stop", "plateau_height")
    diff = {name: [] for name in names}  # |sweep - one by one|
    error = {name: [] for name in names}  # |one by one - one by one at 100x tighter tolerances|
    for rule in GRID["rule"]:
        for eta in GRID["eta"]:
            for c in GRID["c"]:
                for seed in GRID["seed"]:
                    start = px.classic_start(2, px.correlated_teacher(2, c), jax.random.key(seed))
                    if rule == "sgd":
                        dynamics = px.OnlineSGD(eta)
                    else:
                        dynamics = px.natural.NaturalGradientSGD(eta)
                    traj = px.integrate(start, dynamics, grid, throw=False)
                    tight = px.integrate(start, dynamics, grid, throw=False, rtol=1e-10, atol=1e-12)
                    point = ds.sel(rule=rule, eta=eta, c=c, seed=seed).squeeze()
                    for name in ("eg", "Q", "R", "t_stop"):
                        diff[name].append(_distance(name, point[name].values, getattr(traj, name)))
                        error[name].append(_distance(name, getattr(tight, name), getattr(traj, name)))
                    heights = [_height(grid, x) for x in (point.eg.values, traj.eg, tight.eg)]
                    diff["plateau_height"].append(abs(heights[0] - heights[1]))
                    error["plateau_height"].append(abs(heights[2] - heights[1]))
                    assert int(point.status) == int(traj.status)
                    assert np.nan_to_num(float(point.plateau_height)) == pytest.approx(heights[0], rel=1e-12)
    # Most members agree bit for bit; where the batched and single solves' round-off differ,
    # the difference is amplified through the plateau's exit (the asymmetry grows from 1e-12,
    # below atol), exactly as the solver's own error is: it stays below the change that 100x
    # tighter tolerances make to the same single runs (up to ~6e-4 in eps_g on this grid).
    # Round-off can also decide which student unit specialises to which teacher unit, so Q
    # and R are compared up to permutations of the units.
    for name in names:
        assert max(diff[name]) <= max(error[name]), (name, max(diff[name]), max(error[name]))
    assert np.median(diff["eg"]) < 1e-12
    # Both rules ran and learned: every run ends far below its start.
    assert np.all(ds.eg_final.values < 0.5 * ds.eg.isel(alpha=0).values)


def _distance(name, a, b):
    """max |a - b|; for Q and R minimised over permutations of the student units (and, for R,
    of the teacher units: T = (1 - c) I + c 11^T is invariant under them)."""
    a, b = np.asarray(a), np.asarray(b)
    if name not in ("Q", "R"):
        return float(np.max(np.abs(a - b)))
    perms = [list(p) for p in itertools.permutations(range(a.shape[-1]))]
    if name == "Q":
        return min(float(np.max(np.abs(a[..., p, :][..., p] - b))) for p in perms)
    return min(float(np.max(np.abs(a[..., p, :][..., q] - b))) for p in perms for q in perms)


def _height(t, eg):
    """Plateau height by `find_plateau` (0 if none, so that 'none' vs 'none' differs by 0)."""
    plateau = pa.find_plateau(t, np.asarray(eg))
    return 0.0 if plateau is None else plateau.height


class _Interrupt(Exception):
    pass


def test_kill_and_resume_gives_the_same_dataset(reference, tmp_path):
    sweep = _sweep()
    total = len(plan(sweep, CHUNK))

    def stop_after_two(done, total):
        if done == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        run_sweep(sweep, tmp_path, chunk_size=CHUNK, progress=False, on_chunk=stop_after_two)
    assert len(list((tmp_path / "chunks").glob("chunk-*.npz"))) == 2
    assert not (tmp_path / "sweep.nc").exists()
    with pytest.raises(RuntimeError, match="not finished"):
        load_sweep(tmp_path)
    # A half-written chunk left by a kill during a write is ignored.
    (tmp_path / "chunks" / "chunk-00003.npz.abc123.tmp").write_bytes(b"garbage")
    computed = []
    resumed = run_sweep(sweep, tmp_path, progress=False, on_chunk=lambda done, n: computed.append(done))
    assert computed == list(range(3, total + 1))  # only the missing chunks were run
    xr.testing.assert_identical(resumed, reference)
    xr.testing.assert_identical(load_sweep(tmp_path), reference)
    # Running again computes nothing and still gives the same dataset.
    again = run_sweep(sweep, tmp_path, progress=False, on_chunk=lambda *a: computed.append(-1))
    assert -1 not in computed
    xr.testing.assert_identical(again, reference)


def test_changed_config_or_chunk_size_is_refused(reference, tmp_path):
    run_sweep(_sweep(rule="sgd"), tmp_path, chunk_size=CHUNK, progress=False)
    with pytest.raises(SweepMismatchError, match="another configuration"):
        run_sweep(_sweep(), tmp_path, chunk_size=CHUNK, progress=False)
    with pytest.raises(SweepMismatchError, match="chunk size 3, not 4"):
        run_sweep(_sweep(rule="sgd"), tmp_path, chunk_size=4, progress=False)
    assert len(list((tmp_path / "chunks").glob("*.npz"))) == 3  # nothing was mixed in
    # overwrite=True discards the old sweep and runs the new one.
    ds = run_sweep(_sweep(), tmp_path, chunk_size=CHUNK, progress=False, overwrite=True)
    xr.testing.assert_identical(ds, reference)


def test_sharded_chunk_matches_reference(reference):
    """A chunk sharded over the local devices (here the one CPU device: the shard_map path)
    gives the reference's members to the solver's tolerance."""
    task = plan(_sweep(), CHUNK, devices=1)[0]
    result = run_chunk(task)
    flat = reference.eg.values.reshape(-1, reference.sizes["alpha"])
    # Different programs round differently; through the plateau exit that shows at up to the
    # solver's own error (~6e-4 in eps_g on this grid, see the test above).
    np.testing.assert_allclose(result["eg"], flat[result["index"]], atol=1e-3)
    np.testing.assert_array_equal(result["status"], reference.status.values.ravel()[result["index"]])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"eta": [0.1, -0.5]}, r"eta = \[0.1, -0.5\].*\[-0.5\] out of range"),
        ({"rule": ["sgd", "adam"]}, r"unknown rule\(s\) \['adam'\]"),
        ({"c": [0.5, 1.0]}, r"c = \[0.5, 1.0\].*c in \[0, 1\)"),
        ({"c": -0.1}, r"c = \[-0.1\]"),
        ({"K": [2, 0]}, r"K = \[2, 0\].*integers >= 1"),
        ({"seed": [1, 1]}, r"seed = \[1, 1\].*distinct"),
        ({"eta": "fast"}, r"eta = \['fast'\].*numbers"),
        ({"gamma": [1]}, r"unknown key\(s\) in \[grid\]: \['gamma'\]"),
    ],
)
def test_bad_grid_values_are_named(change, message):
    with pytest.raises(SweepConfigError, match=message):
        _sweep(**change)


def test_bad_settings_are_named():
    with pytest.raises(SweepConfigError, match="missing required key \\[grid\\] eta"):
        Sweep.from_dict({"grid": {k: v for k, v in GRID.items() if k != "eta"}, **SETTINGS})
    with pytest.raises(SweepConfigError, match="missing required key \\[integration\\] horizon"):
        Sweep.from_dict({"grid": GRID})
    with pytest.raises(SweepConfigError, match="rtol = 2.0 is out of range"):
        Sweep.from_dict({"grid": GRID, "integration": {"horizon": 10.0, "rtol": 2.0}})


def test_ragged_K_is_nan_padded():
    """Assembly of chunks of different K: Q, R padded with NaN beyond each scenario's K."""
    sweep = Sweep.from_dict({"grid": GRID | {"K": [1, 2], "rule": "sgd"}, **SETTINGS, **NO_ANALYSIS})
    S = len(sweep.save_times())
    chunks = []
    for (_, K, M), members in sweep.buckets():
        n = len(members)
        chunks.append(
            {
                "index": np.array([i for i, _ in members]),
                "eg": np.full((n, S), float(K)),
                "Q": np.full((n, S, K, K), float(K)),
                "R": np.full((n, S, K, M), float(K)),
                "status": np.zeros(n, dtype=np.int8),
            }
        )
    ds = assemble(sweep, chunks, {})
    assert ds.Q.sizes["k"] == 2 and ds.R.sizes["n"] == 2
    one = ds.sel(K=1)
    assert np.all(one.Q.isel(k=0, l=0) == 1) and np.all(np.isnan(one.Q.isel(k=1)))
    assert np.all(np.isnan(one.R.isel(k=1))) and np.all(one.R.isel(k=0) == 1)
    assert np.all(ds.sel(K=2).Q == 2) and np.all(ds.sel(K=1).eg == 1)


CLI_CONFIG = """
[grid]
rule = "sgd"
K = 2
M = 2
eta = [0.1, 0.5]
c = [0.0, 0.9]
seed = [0, 1]

[integration]
horizon = 2000
num_saves = 60
"""


def test_cli_end_to_end_with_phases_and_fixed_points(tmp_path, capsys):
    config = tmp_path / "sweep.toml"
    config.write_text(CLI_CONFIG)
    out = tmp_path / "out"
    assert main(["sweep", str(config), "--out", str(out), "--chunk-size", "3", "--quiet"]) == 0
    assert "8 scenarios" in capsys.readouterr().out
    ds = load_sweep(out)
    assert dict(ds.sizes) | {"phase": 0} == {
        "rule": 1, "K": 1, "M": 1, "eta": 2, "c": 2, "noise": 1, "seed": 2, "alpha": 61,
        "k": 2, "l": 2, "n": 2, "phase": 0,
    }  # fmt: skip
    assert json.loads(ds.attrs["config"])["grid"]["eta"] == [0.1, 0.5]
    assert len(ds.attrs["config_hash"]) == 64 and "jax" in json.loads(ds.attrs["versions"])
    # eta = 0.5, c = 0: the classic plateau sits at the symmetric saddle's error (the error is
    # flat there to within the find_plateau flatness, 10% over the run), and segment calls it
    # a plateau.
    point = ds.sel(eta=0.5, c=0.0).squeeze()
    assert int(point.sym_converged) == 1 and int(point.sym_unstable) >= 1
    assert float(point.sym_escape_rate) > 0
    np.testing.assert_allclose(point.plateau_height.values, float(point.sym_eg), rtol=0.1)
    kinds = point.phase_kind.attrs["flag_meanings"].split()
    labels = [[kinds[k] for k in row if k >= 0] for row in point.phase_kind.values]
    assert all("plateau" in row for row in labels), labels
    assert np.all(point.plateau_duration.values > 0)
    # A different config in the same folder is refused with exit status 2.
    config.write_text(CLI_CONFIG.replace("[0.1, 0.5]", "[0.1, 0.2]"))
    assert main(["sweep", str(config), "--out", str(out), "--quiet"]) == 2
    assert "another configuration" in capsys.readouterr().err
    config.write_text(CLI_CONFIG.replace('"sgd"', '"adam"'))
    assert main(["sweep", str(config), "--out", str(out), "--quiet"]) == 2
    assert "unknown rule(s) ['adam']" in capsys.readouterr().err
