r"""One chunk of a sweep: a batch of scenarios of one shape and rule, solved in one `vmap`.

[`run_chunk`][] is a top-level function of plain data (a dict of Python numbers and lists),
returning NumPy arrays, so any executor (a local loop, a process pool, Dask workers) can ship
it. It imports plateaux itself, which switches float64 on in a fresh worker process.
"""

import math

import numpy as np

PHASE_KINDS = (
    "transient",
    "plateau",
    "quasi-plateau",
    "spurious minimum",
    "convergence",
    "transition",
    "unclassified",
)
NO_PHASE = -1


def _dynamics(rule: str, eta: float, noise: float):
    import plateaux as px

    if rule == "sgd":
        return px.OnlineSGD(eta, noise)
    if rule == "ngd":
        return px.natural.NaturalGradientSGD(eta, noise)
    raise ValueError(f"unknown rule {rule!r}; use 'sgd' or 'ngd'")


def _start(K: int, M: int, c: float, seed: int, start: dict):
    import jax

    import plateaux as px

    T = px.correlated_teacher(M, c)
    key = jax.random.key(seed)
    return px.classic_start(K, T, key, q_max=start["q_max"], overlap_max=start["overlap_max"])


def _symmetric_guess(K: int, M: int, T):
    import plateaux as px

    return px.OrderParams(np.full((K, K), 0.3) + 0.01 * np.eye(K), np.full((K, M), 0.3), T)


def _fixed_point_summary(dynamics, K, M, T) -> dict:
    """The symmetric fixed point (all student units equal, the plateau saddle of the classic
    start) of `dynamics` and its spectrum; NaN where Newton fails."""
    from .. import analysis as pa

    out = {"sym_eg": math.nan, "sym_escape_rate": math.nan, "sym_relative_escape": math.nan}
    out |= {"sym_unstable": -1, "sym_converged": False}
    try:
        point = pa.find_fixed_point(dynamics, _symmetric_guess(K, M, T), symmetric=True)
    except ValueError:  # a non-finite Jacobian at the root
        return out
    if not point.converged:
        return out
    spec = point.spectrum
    return {
        "sym_eg": point.eg,
        "sym_escape_rate": spec.escape_rate,
        "sym_relative_escape": spec.escape_rate / max(spec.scale, 1e-300),
        "sym_unstable": spec.index,
        "sym_converged": True,
    }


def _phase_summary(traj, dynamics) -> list:
    from .. import analysis as pa

    try:
        return pa.segment(traj, dynamics)
    except ValueError:  # too short to segment (e.g. diverged at once)
        return []


def run_chunk(task: dict) -> dict:
    r"""Solve one chunk: `task` has `config` (a [`Sweep.config`][]), `rule`, `K`, `M`,
    `members` (rows `[flat index, eta, c, noise, seed]`) and `batch` (the compiled batch size;
    the last member is repeated to fill it, so every chunk of a bucket reuses one compilation);
    optional `devices` (a number of local devices, or `"all"`): shard the batch over them
    ([`plateaux.experiments.integrate_sharded`][], one adaptive loop per device).

    **Returns:** a dict of NumPy arrays with a leading member axis: `index` (flat grid index),
    `eg`, `Q`, `R`, `t_stop`, `status`, `num_steps`, `eg_final`, `plateau_*`, and with the
    analysis options `phase_*`, `*_duration` and `sym_*` (the dataset variables of the README).
    """
    import jax
    import jax.numpy as jnp

    import plateaux as px

    from .._integrate import log_grid
    from ..analysis import find_plateau

    config, rule, K, M = task["config"], task["rule"], task["K"], task["M"]
    members = [tuple(row) for row in task["members"]]
    n = len(members)
    rows = members + [members[-1]] * (task["batch"] - n)
    integ = config["integration"]
    grid = log_grid(integ["horizon"], integ["num_saves"])
    starts = [_start(K, M, c, seed, config["start"]) for _, _, c, _, seed in rows]
    dynamics = [_dynamics(rule, eta, noise) for _, eta, _, noise, _ in rows]
    stack = lambda *xs: jnp.stack(xs)  # noqa: E731
    solve, options = px.integrate, {}
    if task.get("devices") is not None:
        from ._sharding import integrate_sharded

        devices = task["devices"]
        solve, options = integrate_sharded, {"devices": None if devices == "all" else devices}
    traj = solve(
        jax.tree.map(stack, *starts),
        jax.tree.map(stack, *dynamics),
        grid,
        rtol=integ["rtol"],
        atol=integ["atol"],
        max_steps=integ["max_steps"],
        throw=False,
        batched_dynamics=True,
        **options,
    )
    traj = jax.tree.map(lambda x: np.asarray(x)[:n], traj)
    out = {
        "index": np.array([m[0] for m in members], dtype=np.int64),
        "eg": traj.eg,
        "Q": traj.params.Q,
        "R": traj.params.R,
        "t_stop": traj.t_stop,
        "status": traj.status.astype(np.int8),
        "num_steps": traj.num_steps.astype(np.int64),
    }
    scalars: dict[str, list] = {}
    phase_rows = []
    fixed_points: dict = {}
    for i in range(n):
        reached = grid <= traj.t_stop[i]
        t, eg = grid[reached], traj.eg[i][reached]
        row = {"eg_final": float(eg[-1])}
        # A diverged or unfinished solve has no phases to report (NaN, not a spurious plateau).
        failed = int(traj.status[i]) in (int(px.Status.DIVERGED), int(px.Status.MAX_STEPS))
        plateau = None if failed else find_plateau(t, eg)
        row["plateau_height"] = math.nan if plateau is None else plateau.height
        row["plateau_entry"] = math.nan if plateau is None else plateau.entry
        row["plateau_exit"] = math.nan if plateau is None or plateau.exit is None else plateau.exit
        member = jax.tree.map(lambda x: x[i], traj)
        if config["analysis"]["phases"]:
            phases = [] if failed else _phase_summary(member, dynamics[i])
            phase_rows.append(phases)
            for name, kind in (("plateau_duration", "plateau"), ("quasi_plateau_duration", "quasi-plateau")):
                row[name] = math.nan if failed else sum(p.exit - p.entry for p in phases if p.kind == kind)
        if config["analysis"]["fixed_points"]:
            _, eta, c, noise, _ = members[i]
            if (eta, c, noise) not in fixed_points:
                T = np.asarray(starts[i].T)
                fixed_points[(eta, c, noise)] = _fixed_point_summary(dynamics[i], K, M, T)
            row |= fixed_points[(eta, c, noise)]
        for key, value in row.items():
            scalars.setdefault(key, []).append(value)
    out |= {key: np.asarray(values) for key, values in scalars.items()}
    if config["analysis"]["phases"]:
        out |= _phase_arrays(phase_rows)
    return out


def _phase_arrays(phase_rows: list) -> dict:
    """Phases per member, padded to the longest list (kind -1 and NaN times beyond it)."""
    n, width = len(phase_rows), max((len(p) for p in phase_rows), default=0)
    kind = np.full((n, width), NO_PHASE, dtype=np.int8)
    fields = ("entry", "exit", "eg_exit", "relative_escape")
    values = {f: np.full((n, width), np.nan) for f in fields}
    for i, phases in enumerate(phase_rows):
        for j, phase in enumerate(phases):
            kind[i, j] = PHASE_KINDS.index(phase.kind)
            for f in fields:
                value = getattr(phase, f)
                values[f][i, j] = np.nan if value is None else value
    return {"phase_kind": kind} | {f"phase_{f}": v for f, v in values.items()}
