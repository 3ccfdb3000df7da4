"""The `plateaux run` command: files written, their contents, and errors on bad configs."""

import json
import re

import numpy as np
import pytest

import plateaux as px
from plateaux.cli import main

SMALL = """
[model]
K = 2
M = 2

[teacher]
kind = "isotropic"

[student]
start = "classic"
seed = 3
overlap_max = 1e-6

[learning]
eta = 0.5

[integration]
horizon = 3000
num_saves = 120
"""

WITH_SIMULATION = (
    SMALL
    + """
[simulation]
N = 100
seeds = 2
horizon = 4
records = 20
"""
)


def _write(tmp_path, text, name="config.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_run_ode_only_writes_consistent_results(tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path, SMALL)), "--out", str(out), "--quiet"]) == 0
    data = np.load(out / "trajectory.npz")
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "eg.png").stat().st_size > 1000
    for key in ("t", "eg", "Q", "R", "T", "v", "w"):
        assert np.all(np.isfinite(data[key])), key
    assert data["Q"].shape == (121, 2, 2) and data["R"].shape == (121, 2, 2)
    # The files agree with the API run on the same start (not with numbers the CLI printed).
    p0 = px.classic_start(2, np.eye(2), __import__("jax").random.key(3), overlap_max=1e-6)
    traj = px.integrate(p0, 0.5, data["t"])
    np.testing.assert_allclose(data["eg"], np.asarray(traj.eg), rtol=0, atol=1e-12)
    assert summary["ode"]["status"] == "converged"
    assert summary["ode"]["final_eg"] < 1e-8
    plateau = summary["ode"]["plateau"]
    # K = M = 2 at eta = 0.5: the symmetric plateau sits near eps_g ~ 0.012 (0.0116 for
    # eta -> 0; the eta^2 term lifts it slightly) and the start asymmetry 1e-6 lets it exit.
    assert 0.009 < plateau["height"] < 0.016
    assert plateau["exit"] is not None and plateau["exit"] > plateau["entry"]
    assert summary["config"]["learning"]["eta"] == 0.5
    assert "jax" in summary["versions"] and "eg" in summary["conventions"]


def test_run_with_simulation(tmp_path):
    out = tmp_path / "sim"
    assert main(["run", str(_write(tmp_path, WITH_SIMULATION)), "--out", str(out), "--quiet"]) == 0
    data = np.load(out / "trajectory.npz")
    summary = json.loads((out / "summary.json").read_text())
    assert data["sim_eg"].shape == (2, 21)
    assert data["sim_Q"].shape == (2, 21, 2, 2)
    np.testing.assert_allclose(data["sim_t"], np.arange(21) * 0.2)
    assert np.all(np.isfinite(data["sim_eg"])) and np.all(np.isfinite(data["sim_theory_eg"]))
    # The networks realise the configured start exactly, so at alpha = 0 simulation, ODE and
    # ODE-from-simulation coincide (to round-off of the network construction).
    np.testing.assert_allclose(data["sim_eg"][:, 0], data["eg"][0], rtol=1e-9)
    np.testing.assert_allclose(data["sim_theory_eg"][:, 0], data["eg"][0], rtol=1e-9)
    assert summary["simulation"]["N"] == 100 and summary["simulation"]["seeds"] == 2
    # Segments are stitched: the records must be consistent with order parameters of a
    # single continuous run (eps_g recomputed from the saved overlaps).
    p = px.OrderParams(data["sim_Q"], data["sim_R"], np.broadcast_to(np.eye(2), (2, 21, 2, 2)))
    np.testing.assert_allclose(px.generalization_error(p), data["sim_eg"], rtol=1e-10)


def test_no_simulation_flag(tmp_path):
    out = tmp_path / "nosim"
    args = ["run", str(_write(tmp_path, WITH_SIMULATION)), "--out", str(out), "--quiet", "--no-simulation"]
    assert main(args) == 0
    assert "sim_eg" not in np.load(out / "trajectory.npz")


@pytest.mark.parametrize(
    "edit, message",
    [
        (("eta = 0.5", "eta = -0.1"), r"\[learning\] eta = -0.1"),
        (("eta = 0.5", "eta = nan"), r"eta"),
        (("K = 2", "K = 0"), r"\[model\] K = 0"),
        (('kind = "isotropic"', 'kind = "banana"'), r"kind = 'banana'"),
        (("[model]", '[model]\nactivation = "swish"'), r"unknown activation 'swish'"),
        (('kind = "isotropic"', 'kind = "correlated"\nc = 1.5'), r"correlation c=1.5"),
        (
            (
                'start = "classic"\nseed = 3\noverlap_max = 1e-6',
                'start = "explicit"\nQ = [[0.1, 0], [0, 0.1]]\nR = [[0.9, 0], [0, 0]]',
            ),
            r"not positive semi-definite",
        ),
        (
            (
                'start = "classic"\nseed = 3\noverlap_max = 1e-6',
                'start = "explicit"\nQ = [[1, 0], [0, 1]]\nR = [[0, 0, 0]]',
            ),
            r"R has shape",
        ),
        (
            ('kind = "isotropic"', 'kind = "isotropic"\nT = [[1, 0.9], [0.9, 1]]'),
            r"T only apply to other choices",
        ),
        (
            ("overlap_max = 1e-6", "overlap_max = 1e-6\nQ = [[1, 0], [0, 1]]"),
            r"Q only apply to other choices",
        ),
        (("eta = 0.5", 'eta = "0.5"'), r"eta = '0.5' is not a valid float"),
        (("horizon = 3000", "horizont = 3000"), r"unknown key"),
    ],
)
def test_bad_config_names_the_problem(tmp_path, capsys, edit, message):
    text = SMALL.replace(*edit)
    assert main(["run", str(_write(tmp_path, text)), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_missing_config_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml"), "--out", str(tmp_path), "--quiet"]) == 2
    assert "not found" in capsys.readouterr().err


def test_divergent_eta_is_reported_without_nan(tmp_path, capsys):
    # eta = 30: the eta^2 term of dQ/dalpha dominates and the norms Q_ii grow without bound;
    # the run must be flagged (status and stderr) and the files must hold no NaN.
    text = SMALL.replace("eta = 0.5", "eta = 30.0").replace("horizon = 3000", "horizon = 1e6")
    out = tmp_path / "div"
    assert main(["run", str(_write(tmp_path, text)), "--out", str(out), "--quiet"]) == 1
    assert "diverged" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ode"]["status"] == "diverged"
    data = np.load(out / "trajectory.npz")
    assert all(np.all(np.isfinite(data[k])) for k in ("t", "eg", "Q", "R"))


def test_help_lists_every_config_table(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for table in ("[model]", "[teacher]", "[student]", "[learning]", "[integration]", "[simulation]"):
        assert table in text


def test_analyze_writes_classified_phases(tmp_path, capsys):
    out = tmp_path / "an"
    assert main(["run", str(_write(tmp_path, SMALL)), "--out", str(out), "--quiet"]) == 0
    assert main(["analyze", str(out)]) == 0
    report = json.loads((out / "phases.json").read_text())
    kinds = [p["kind"] for p in report["phases"]]
    assert "plateau" in kinds and kinds[-1] == "convergence"
    plateau = next(p for p in report["phases"] if p["kind"] == "plateau")
    assert plateau["fixed_point"]["spectrum"]["escape_rate"] > 0
    assert set(report["rule"]) >= {"rho_min", "flat_slope", "centre_tol", "singular_tol"}
    assert (out / "phases.png").stat().st_size > 1000
    assert "plateau" in capsys.readouterr().out


def test_analyze_on_a_folder_without_results(tmp_path, capsys):
    assert main(["analyze", str(tmp_path)]) == 2
    assert "not a plateaux results folder" in capsys.readouterr().err


def test_compare_gd_and_ngd(tmp_path, capsys):
    out = tmp_path / "cmp"
    text = WITH_SIMULATION.replace("eta = 0.5", "eta = 0.1").replace("horizon = 3000", "horizon = 2000")
    assert main(["compare", str(_write(tmp_path, text)), "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "compare.json").read_text())
    table = report["table"]
    gd, ngd = table["ODE GD"], table["ODE NGD"]
    # Natural gradient removes the K = M = 2 symmetric plateau: NGD reaches the optimum while GD
    # is still on its plateau at the horizon.
    # (K = M = 2, eta = 0.1, start asymmetry 1e-6: GD sits on the plateau until alpha ~ 3000.)
    assert ngd["ends_at"] == "optimum" and ngd["time_to"]["0.001"] < 400
    assert gd["plateau"] is not None and gd["time_to"]["0.001"] is None
    assert "optimum not reached" in gd["ends_at"] or "still learning" in gd["ends_at"]
    assert set(table) >= {"simulation GD", "simulation NGD", "simulation adaptive NGD"}
    assert (out / "compare.png").stat().st_size > 1000
    assert "| ODE NGD |" in (out / "compare.md").read_text()
    assert "ODE GD" in capsys.readouterr().out


def test_compare_rejects_bad_adaptive_rate(tmp_path, capsys):
    args = ["compare", str(_write(tmp_path, SMALL)), "--out", str(tmp_path), "--adaptive-rate", "-1"]
    assert main(args) == 2
    assert "--adaptive-rate" in capsys.readouterr().err


def test_compare_says_when_a_run_ends_away_from_the_optimum(tmp_path):
    # At eta = 0.5 the natural-gradient ODE's eta^2 term (large where the Fisher block
    # <g'_i g'_j> is nearly singular) holds the student at a stable non-optimal fixed point;
    # the table must say so instead of assuming success.
    out = tmp_path / "cmp05"
    assert (
        main(["compare", str(_write(tmp_path, SMALL)), "--out", str(out), "--quiet", "--no-simulation"]) == 0
    )
    table = json.loads((out / "compare.json").read_text())["table"]
    assert table["ODE GD"]["ends_at"] == "optimum"
    assert "optimum not reached" in table["ODE NGD"]["ends_at"]
    assert table["ODE NGD"]["final_eg"] > 1e-3
