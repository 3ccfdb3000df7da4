"""`plateaux run`: integrate the ODE (and simulate finite-N networks), write the results."""

import json
import math
import sys
import time
from pathlib import Path

import jax
import numpy as np

from .._integrate import integrate, integrate_from_simulation
from .._network import networks_from_order_params
from .._provenance import CANONICAL_FORMULAS, package_versions
from .._simulate import simulate
from .._trajectory import Status
from ..activations import activation_from_name
from ..analysis import find_plateau
from ..dynamics import OnlineSGD
from ._config import RunConfig


def convention_records(cfg: RunConfig) -> dict:
    """The `conventions` (formulas, in the config's convention) and `convention` (the choice and
    the factors to the engine's canonical one) records of every results file."""
    conv = cfg.convention
    formulas = CANONICAL_FORMULAS | ({} if conv.is_canonical else conv.describe())
    formulas["activation"] = _activation_words(cfg)
    formulas |= {"arrays": "results arrays are canonical (alpha, v, w) unless named *_user"}
    eta_v_user = (cfg.raw.get("model") or {}).get("eta_v")  # as written in the config
    return {"conventions": formulas, "convention": conv.record(cfg.K, cfg.M, cfg.eta_user, eta_v_user)}


def _activation_words(cfg: RunConfig) -> str:
    teacher = cfg.teacher_activation or cfg.activation
    if teacher == cfg.activation:
        return f"g = {cfg.activation} (student and teacher)"
    return f"student g = {cfg.activation}, teacher g = {teacher}"


def user_time(cfg: RunConfig, alpha):
    """Times alpha in the config's time unit (None passes through)."""
    if alpha is None or cfg.time_factor is None:
        return None
    return alpha * cfg.time_factor


def export_initial(cfg: RunConfig, out: Path) -> None:
    """Write the start to `out/initial/` as text, in the config's convention, so that
    `[initial] from = "OUT/initial"` (with the same [conventions]) replays the run."""
    from .._io import save_text

    params = cfg.convention.from_canonical(cfg.params0).params
    meta = {"written_by": "plateaux run", "canonical_v": cfg.params0.v, "canonical_w": cfg.params0.w}
    save_text(out / "initial", params, convention=cfg.convention, meta=meta)


def _log(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def seeded_networks(cfg: RunConfig):
    """Per seed, a student and teacher realising the configured start exactly (stacked along a
    leading seed axis), and the PRNG key for the runs. `run` and `compare` share them."""
    sim_cfg = cfg.simulation
    act = activation_from_name(cfg.activation)
    teacher_act = None if cfg.teacher_activation is None else activation_from_name(cfg.teacher_activation)
    k_nets, k_runs = jax.random.split(jax.random.key(sim_cfg.seed))
    pairs = [
        networks_from_order_params(cfg.params0, sim_cfg.N, k, act, teacher_activation=teacher_act)
        for k in jax.random.split(k_nets, sim_cfg.seeds)
    ]
    students = jax.tree.map(lambda *xs: np.stack(xs), *[s for s, _ in pairs])
    teachers = jax.tree.map(lambda *xs: np.stack(xs), *[t for _, t in pairs])
    return students, teachers, k_runs


def _simulate_with_progress(cfg: RunConfig, dynamics: OnlineSGD, quiet: bool):
    """Run all seeds (vmapped) in segments, printing progress between segments."""
    sim_cfg = cfg.simulation
    students, teachers, k_runs = seeded_networks(cfg)
    segments = math.gcd(sim_cfg.records, 20)
    records_per_segment = sim_cfg.records // segments
    steps_per_segment = records_per_segment * sim_cfg.record_every

    @jax.jit
    def run_segment(students, teachers, keys):
        return jax.vmap(
            lambda s, t, k: simulate(
                s,
                t,
                dynamics.eta,
                steps_per_segment,
                k,
                record_every=sim_cfg.record_every,
                noise=dynamics.noise,
                eta_v=dynamics.eta_v,
                weight_decay=dynamics.weight_decay,
            )
        )(students, teachers, keys)

    pieces = []
    started = time.perf_counter()
    for segment in range(segments):
        keys = jax.random.split(jax.random.fold_in(k_runs, segment), sim_cfg.seeds)
        result = run_segment(students, teachers, keys)
        students = result.student
        pieces.append(result)
        done = (segment + 1) / segments
        elapsed = time.perf_counter() - started
        note = " (includes compilation)" if segment == 0 else ""
        _log(
            f"  simulation {done:6.1%} (alpha {done * sim_cfg.horizon:.4g}): "
            f"{elapsed:.1f}s elapsed{note}, ~{elapsed / done * (1 - done):.0f}s left",
            quiet,
        )

    # Each segment's first record repeats the previous segment's last one.
    def stitch(get):
        parts = [np.asarray(get(pieces[0]))] + [np.asarray(get(p))[:, 1:] for p in pieces[1:]]
        return np.concatenate(parts, axis=1)

    t = np.arange(sim_cfg.records + 1) * (sim_cfg.record_every / sim_cfg.N)
    return pieces[0], {
        "sim_t": t,
        "sim_eg": stitch(lambda p: p.eg),
        "sim_Q": stitch(lambda p: p.params.Q),
        "sim_R": stitch(lambda p: p.params.R),
    } | ({"sim_v": stitch(lambda p: p.params.v)} if dynamics.learn_v else {})


def _plateau_dict(t, eg):
    info = find_plateau(t, eg)
    return None if info is None else info.to_dict()


def run_experiment(cfg: RunConfig, out: Path, *, quiet: bool = False) -> dict:
    """Run the configured experiment and write `trajectory.npz`, `summary.json`, `eg.png`."""
    out.mkdir(parents=True, exist_ok=True)
    dynamics = cfg.dynamics()
    ts = cfg.save_times()
    _log(f"integrating the order-parameter ODE to alpha = {cfg.horizon:g}", quiet)
    started = time.perf_counter()
    traj = integrate(
        cfg.params0,
        dynamics,
        ts,
        rtol=cfg.rtol,
        atol=cfg.atol,
        max_steps=cfg.max_steps,
        progress=not quiet,
        throw=False,
    )
    ode_seconds = time.perf_counter() - started
    status = Status(int(traj.status))
    arrays = {
        "t": np.asarray(traj.t),
        "eg": np.asarray(traj.eg),
        "Q": np.asarray(traj.Q),
        "R": np.asarray(traj.R),
        "T": np.asarray(cfg.params0.T),
        # v(alpha), shape (S, K), when the second layer is trained; else the fixed v, shape (K,)
        "v": np.asarray(traj.params.v if dynamics.learn_v else cfg.params0.v),
        "w": np.asarray(cfg.params0.w),
    }
    reached = arrays["t"] <= float(traj.t_stop)
    summary = {
        "config": cfg.raw,
        **convention_records(cfg),
        "ode": {
            "status": status.name.lower(),
            "t_stop": float(traj.t_stop),
            "t_stop_user": user_time(cfg, float(traj.t_stop)),
            "final_eg": float(arrays["eg"][reached][-1]),
            "plateau": _plateau_dict(arrays["t"][reached], arrays["eg"][reached]),
            "solver": {
                "method": "Tsit5 + PIDController",
                "rtol": cfg.rtol,
                "atol": cfg.atol,
                "num_steps": int(traj.num_steps),
                "num_accepted_steps": int(traj.num_accepted_steps),
                "num_rejected_steps": int(traj.num_rejected_steps),
            },
            "wall_seconds": ode_seconds,
        },
        "versions": package_versions(),
    }
    plateau = summary["ode"]["plateau"]
    if plateau is not None:
        summary["ode"]["plateau_user"] = {k: user_time(cfg, plateau.get(k)) for k in ("entry", "exit")}
    if status in (Status.DIVERGED, Status.MAX_STEPS):
        # Keep the reached part; the rest is NaN and the status says why.
        kept = ("t", "eg", "Q", "R") + (("v",) if dynamics.learn_v else ())
        arrays |= {k: arrays[k][reached] for k in kept}  # no NaN in files
        summary["ode"]["error"] = f"integration {status.name.lower()} at alpha = {float(traj.t_stop):.6g}" + (
            " (eta too large?)" if status == Status.DIVERGED else " (raise integration.max_steps)"
        )
    if cfg.simulation is not None and status not in (Status.DIVERGED,):
        sim_cfg = cfg.simulation
        _log(
            f"simulating {sim_cfg.seeds} networks with N = {sim_cfg.N} for {sim_cfg.n_steps:,} steps each",
            quiet,
        )
        started = time.perf_counter()
        first, sim_arrays = _simulate_with_progress(cfg, dynamics, quiet)
        sim_seconds = time.perf_counter() - started
        sim_Q = sim_arrays["sim_Q"]
        if not np.all(np.isfinite(sim_arrays["sim_eg"])) or np.max(np.abs(sim_Q)) > 1e4:
            summary["simulation_error"] = (
                "finite-N simulation diverged (non-finite or |Q| > 1e4): eta too large?"
            )
        _log("integrating the ODE from the simulated networks' initial overlaps", quiet)
        theory = integrate_from_simulation(
            first,
            sim_arrays["sim_t"],
            rtol=cfg.rtol,
            atol=cfg.atol,
            max_steps=cfg.max_steps,
            throw=False,
        )
        sim_arrays["sim_theory_eg"] = np.asarray(theory.eg)
        arrays |= sim_arrays
        mean_eg = sim_arrays["sim_eg"].mean(axis=0)
        summary["simulation"] = {
            "N": sim_cfg.N,
            "seeds": sim_cfg.seeds,
            "steps_per_seed": sim_cfg.n_steps,
            "record_every": sim_cfg.record_every,
            "final_eg_mean": float(mean_eg[-1]),
            "final_eg_std": float(sim_arrays["sim_eg"][:, -1].std(ddof=1)) if sim_cfg.seeds > 1 else None,
            "plateau_of_mean": _plateau_dict(sim_arrays["sim_t"], mean_eg),
            "wall_seconds": sim_seconds,
            "steps_per_second": sim_cfg.n_steps * sim_cfg.seeds / sim_seconds,
        }
    if "simulation_error" in summary:
        arrays = {k: v for k, v in arrays.items() if not k.startswith("sim_")}  # no NaN in files
    for stale in ("phases.json", "phases.png"):  # from an earlier run into the same folder
        (out / stale).unlink(missing_ok=True)
    if cfg.time_factor is not None:
        arrays["t_user"] = arrays["t"] * cfg.time_factor
        if "sim_t" in arrays:
            arrays["sim_t_user"] = arrays["sim_t"] * cfg.time_factor
    export_initial(cfg, out)
    _log("writing results and the figure", quiet)
    np.savez(out / "trajectory.npz", **arrays)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=jsonable) + "\n")
    from ..plots import plot_eg

    plot_eg(arrays, summary, out / "eg.png")
    return summary


def jsonable(x):
    """JSON encoder fallback for numpy scalars/arrays and complex numbers (results files)."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, complex):
        return [x.real, x.imag]
    raise TypeError(f"cannot write {type(x).__name__} to JSON")
