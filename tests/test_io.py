"""Round trips: plain-text order parameters and weights, simulation -> text -> ODE, [initial]."""

import json

import numpy as np
import pytest

import plateaux as px
from plateaux.cli import main

from .helpers import NUM_SAVES, random_order_params, specialised_start


def _same(a: px.OrderParams, b: px.OrderParams) -> bool:
    return all(np.array_equal(np.asarray(getattr(a, k)), np.asarray(getattr(b, k))) for k in "QRTvw")


@pytest.mark.parametrize("layout", ["plateaux", "nn2pp"])
def test_text_round_trip_is_bitwise(tmp_path, rng, getkey, layout):
    p = random_order_params(rng, 3, 2)  # random digits: every bit of the mantissa matters
    p = px.OrderParams(p.Q, p.R + 1e-300, p.T, np.asarray(p.v) * np.pi, -np.asarray(p.w) / 3)
    nets = px.networks_from_order_params(p, 40, getkey())
    prefix = "run" if layout == "nn2pp" else None
    px.save_text(tmp_path, p, nets, layout=layout, prefix=prefix, convention=px.Convention("1/K"))
    q = px.load_text(tmp_path)  # layout detected
    assert _same(p, q)
    student, teacher = px.load_text_networks(tmp_path)
    assert np.array_equal(student.weights, nets[0].weights) and np.array_equal(
        teacher.weights, nets[1].weights
    )
    assert px.read_convention(tmp_path) == px.Convention("1/K")
    if layout == "nn2pp":  # Armadillo csv_ascii names and separators, as nn2pp --store writes
        names = {f.name for f in tmp_path.iterdir()}
        assert {"run_Q0.dat", "run_R0.dat", "run_T0.dat", "run_A0.dat", "run_v0.dat"} <= names
        assert "run_teacher_w.dat" in names and "," in (tmp_path / "run_R0.dat").read_text()
        assert len((tmp_path / "run_v0.dat").read_text().split()) == 3  # one value per line


def test_hand_written_files_rows_commas_and_comments(tmp_path):
    (tmp_path / "Q.txt").write_text("# student overlaps\n0.5, 0.1\n0.1 0.4\n")
    (tmp_path / "R.txt").write_text("0.2 0.0\n0.0 0.3\n")
    (tmp_path / "T.txt").write_text("1 0\n0 1\n")
    (tmp_path / "v.txt").write_text("1 2\n")  # a row is fine for a vector
    (tmp_path / "w.txt").write_text("1\n1\n")
    p = px.load_text(tmp_path)
    assert np.array_equal(p.Q, [[0.5, 0.1], [0.1, 0.4]]) and np.array_equal(p.v, [1.0, 2.0])


def _write_valid(d, K=2, M=2):
    px.save_text(d, px.OrderParams(np.eye(K) * 0.5, np.zeros((K, M)), np.eye(M)))


@pytest.mark.parametrize(
    "name, text, error, match",
    [
        ("R.txt", "0.1 0.2 0.3\n0.1 0.2 0.3\n", ValueError, r"R\.txt has shape \(2, 3\).*must be 2 x 2"),
        ("Q.txt", "0.5 0.2\n0.1 0.5\n", ValueError, r"Q\.txt is not symmetric"),
        ("v.txt", "1\n1\n1\n", ValueError, r"v\.txt has shape \(3, 1\)"),
        ("w.txt", None, FileNotFoundError, r"missing file .*w\.txt"),
        ("T.txt", "1 x\n0 1\n", ValueError, r"T\.txt, line 1"),
        ("Q.txt", "0.5 nan\nnan 0.5\n", ValueError, r"Q\.txt has non-finite"),
        ("R.txt", "2 0\n0 2\n", ValueError, r"not positive semi-definite.*Q\.txt, R\.txt, T\.txt"),
        ("T.txt", "1 0\n0\n", ValueError, r"T\.txt: rows have different lengths"),
    ],
)
def test_bad_files_name_the_file(tmp_path, name, text, error, match):
    _write_valid(tmp_path)
    if text is None:
        (tmp_path / name).unlink()
    else:
        (tmp_path / name).write_text(text)
    with pytest.raises(error, match=match):
        px.load_text(tmp_path)


def test_weights_must_realise_the_overlaps(tmp_path, getkey):
    p = specialised_start("K2M2")
    student, teacher = px.networks_from_order_params(p, 30, getkey())
    with pytest.raises(ValueError, match=r"do not realise the overlaps \(Q = J J\^T / N"):
        px.save_text(tmp_path, p, (2 * student.weights, teacher.weights))
    px.save_text(tmp_path, p, (student, teacher))
    np.savetxt(tmp_path / "B.txt", -np.asarray(teacher.weights))  # R flips sign
    with pytest.raises(ValueError, match=r"J\.txt, B\.txt: .*R = J B\^T / N"):
        px.load_text(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing directory"):
        px.load_text(tmp_path / "nowhere")


def test_simulation_to_text_to_ode_equals_integrate_from_simulation(tmp_path, getkey):
    p = specialised_start("K3M2")
    N = 60
    student, teacher = px.networks_from_order_params(p, N, getkey())
    sim = px.simulate(student, teacher, 0.5, 40 * N, getkey(), record_every=4 * N)
    ts = np.linspace(0.0, 40.0, NUM_SAVES)
    px.save_order_params(tmp_path / "start", sim, index=0)
    meta = json.loads((tmp_path / "start" / "meta.json").read_text())
    assert meta["source"] == "SimulationResult" and meta["alpha"] == 0.0 and meta["N"] == N
    restarted = px.integrate(px.load_text(tmp_path / "start"), meta["eta"], ts)
    direct = px.integrate_from_simulation(sim, ts)
    assert np.array_equal(restarted.eg, direct.eg)  # the text round trip is exact
    # The last record with the final weights: a consistent state to continue from.
    px.save_order_params(tmp_path / "end", sim, index=-1, networks=(sim.student, teacher))
    s_end, _ = px.load_text_networks(tmp_path / "end")
    assert np.array_equal(s_end.weights, sim.student.weights)
    assert _same(px.load_text(tmp_path / "end"), px.take_time(sim.params, -1))
    # A batch needs a member; it is picked exactly.
    batched = px.OrderParams(*(np.stack([np.asarray(x)] * 2) for x in (sim.Q, sim.R, sim.T, sim.v, sim.w)))
    with pytest.raises(ValueError, match="pass member="):
        px.save_order_params(tmp_path / "b", batched)
    px.save_order_params(tmp_path / "b", batched, index=3, member=1)
    assert _same(px.load_text(tmp_path / "b"), px.take_time(sim.params, 3))


def test_cli_initial_from_directory_replays_a_run(tmp_path):
    config = """
[model]
K = 2
M = 2
[student]
start = "explicit"
Q = [[0.6, 0.05], [0.05, 0.4]]
R = [[0.7, 0.0], [0.05, 0.5]]
v = [1.0, 0.8]
[learning]
eta = 0.5
[integration]
horizon = 20
num_saves = 80
"""
    first = tmp_path / "a.toml"
    first.write_text(config)
    assert main(["run", str(first), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    replay = (
        config.split("[student]")[0] + "[learning]\neta = 0.5\n[integration]\nhorizon = 20\nnum_saves = 80\n"
    )
    (tmp_path / "b.toml").write_text(replay + '[initial]\nfrom = "a/initial"\n')  # relative to the config
    assert main(["run", str(tmp_path / "b.toml"), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a, b = np.load(tmp_path / "a" / "trajectory.npz"), np.load(tmp_path / "b" / "trajectory.npz")
    for key in ("eg", "Q", "R", "v", "w"):
        assert np.array_equal(a[key], b[key]), key
    # [initial] with a [student] table, or a K that the files do not have: refused.
    (tmp_path / "c.toml").write_text(config + '[initial]\nfrom = "a/initial"\n')
    assert main(["run", str(tmp_path / "c.toml"), "--out", str(tmp_path / "c"), "--quiet"]) == 2
    (tmp_path / "d.toml").write_text(replay.replace("K = 2", "K = 3") + '[initial]\nfrom = "a/initial"\n')
    assert main(["run", str(tmp_path / "d.toml"), "--out", str(tmp_path / "d"), "--quiet"]) == 2
