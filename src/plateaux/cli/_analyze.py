"""`plateaux analyze DIR`: segment a saved trajectory into classified phases."""

import json
import zipfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from .._order_params import OrderParams
from .._trajectory import Status, Trajectory
from ..analysis import PhaseRule, segment, singular_distances
from ..dynamics import OnlineSGD
from ._config import ConfigError, parse_config
from ._run import jsonable


def load_run(out: Path) -> tuple[Trajectory, OnlineSGD, dict]:
    """Rebuild the ODE trajectory and its dynamics from a `plateaux run` results folder."""
    try:
        summary = json.loads((out / "summary.json").read_text())
        data = dict(np.load(out / "trajectory.npz"))
    except FileNotFoundError as e:
        raise ConfigError(f"{out} is not a plateaux results folder ({e.filename} missing)") from None
    except (OSError, ValueError, zipfile.BadZipFile) as e:  # JSONDecodeError is a ValueError
        raise ConfigError(f"cannot read the results in {out}: {e}") from None
    try:
        if "initial" in summary.get("config", {}):  # replay from the run's own copy of the start
            summary["config"] = summary["config"] | {"initial": {"from": str(out / "initial")}}
        return _rebuild(summary, data)
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(
            f"{out} does not hold a complete `plateaux run` result ({type(e).__name__}: {e})"
        ) from None


def _rebuild(summary: dict, data: dict):
    cfg = parse_config(summary["config"])
    S = data["t"].shape[0]
    params = OrderParams(
        data["Q"],
        data["R"],
        np.broadcast_to(data["T"], (S,) + data["T"].shape),
        np.broadcast_to(data["v"], (S,) + data["v"].shape),
        np.broadcast_to(data["w"], (S,) + data["w"].shape),
    )
    ode = summary["ode"]
    status = Status[ode["status"].upper()]
    traj = Trajectory(
        t=jnp.asarray(data["t"]),
        params=params,
        eg=jnp.asarray(data["eg"]),
        t_stop=jnp.asarray(ode["t_stop"]),
        status=jnp.asarray(int(status)),
        num_steps=jnp.asarray(ode["solver"]["num_steps"]),
        num_accepted_steps=jnp.asarray(ode["solver"]["num_accepted_steps"]),
        num_rejected_steps=jnp.asarray(ode["solver"]["num_rejected_steps"]),
    )
    dynamics = cfg.dynamics()
    return traj, dynamics, summary


def _with_user_times(phase: dict, factor) -> dict:
    """Entry and exit also in the run's time unit (`t = factor * alpha`), when it is not alpha."""
    if factor is None or factor == 1.0:
        return phase
    user = {k + "_user": None if phase.get(k) is None else phase[k] * factor for k in ("entry", "exit")}
    return phase | user


def analyze_run(out: Path, rule: PhaseRule | None = None) -> dict:
    """Segment the run in `out`, write `phases.json` and `phases.png`; return the report."""
    import dataclasses

    traj, dynamics, summary = load_run(out)
    rule = PhaseRule() if rule is None else rule
    try:
        phases = segment(traj, dynamics, rule)
    except ValueError as e:
        raise ConfigError(f"cannot segment the run in {out}: {e}") from None
    distances = singular_distances(traj.params)
    factor = (summary.get("convention") or {}).get("factors", {}).get("t_over_alpha")
    report = {
        "rule": dataclasses.asdict(rule),
        "convention": summary.get("convention"),
        "phases": [_with_user_times(p.summary(), factor) for p in phases],
        "counts": {kind: sum(p.kind == kind for p in phases) for kind in {p.kind for p in phases}},
    }
    (out / "phases.json").write_text(json.dumps(report, indent=2, default=jsonable) + "\n")
    from ..plots import plot_phases

    plot_phases(traj, phases, {k: np.asarray(v) for k, v in distances.items()}, summary, out / "phases.png")
    return report
