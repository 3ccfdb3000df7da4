"""`plateaux compare`: gradient descent vs natural gradient from the same start."""

import json
import math
import sys
import time
from pathlib import Path

import jax
import numpy as np

from .._integrate import integrate
from .._provenance import package_versions
from .._rules import SGD
from .._simulate import simulate
from .._trajectory import Status
from ..activations import activation_from_name
from ..analysis import find_plateau, segment
from ..dynamics import OnlineSGD
from ..natural import AdaptiveNaturalGradient, NaturalGradient, NaturalGradientSGD
from ._config import ConfigError, RunConfig
from ._run import convention_records, jsonable, seeded_networks, user_time

THRESHOLDS = (1e-2, 1e-3, 1e-4, 1e-6)
CONVERGED_EG = 1e-7


def time_to_reach(t: np.ndarray, eg: np.ndarray, threshold: float) -> float | None:
    """First saved time with eps_g below `threshold` (None if never)."""
    below = np.nonzero(eg < threshold)[0]
    return float(t[below[0]]) if below.size else None


def asymptotic_rate(t: np.ndarray, eg: np.ndarray) -> float | None:
    r"""$-d\ln\epsilon_g/d\alpha$ fitted where $10^{-7} < \epsilon_g < 10^{-4}$ after the last
    time the error was above $10^{-4}$ (the final exponential approach); None if too few points."""
    above = np.nonzero(eg >= 1e-4)[0]
    start = above[-1] + 1 if above.size else 0
    window = np.arange(start, t.size)
    window = window[(eg[window] > CONVERGED_EG) & (eg[window] < 1e-4)]
    if window.size < 3:
        return None
    return float(-np.polyfit(t[window], np.log(eg[window]), 1)[0])


def ode_metrics(traj, dynamics) -> dict:
    """The comparison table's row for one ODE trajectory."""
    reached = np.asarray(traj.t) <= float(traj.t_stop)
    t, eg = np.asarray(traj.t)[reached], np.asarray(traj.eg)[reached]
    plateau = find_plateau(t, eg)
    phases = segment(traj, dynamics)
    status = Status(int(traj.status))
    slow = [p for p in phases if p.fixed_point is not None]
    if status == Status.CONVERGED or eg[-1] < CONVERGED_EG:
        end = "optimum"
    elif slow and slow[-1].exit >= t[-1] * 0.99:
        end = f"{slow[-1].kind} at eps_g = {slow[-1].fixed_point.eg:.3g} at the horizon (optimum not reached)"
    else:
        end = f"still learning at the horizon (eps_g = {eg[-1]:.3g})"
    return {
        "status": status.name.lower(),
        "final_eg": float(eg[-1]),
        "ends_at": end,
        "plateau": None if plateau is None else plateau.to_dict(),
        "phases": [(p.kind, p.entry, p.exit) for p in phases],
        "quasi_plateau_duration": sum(p.exit - p.entry for p in phases if p.kind == "quasi-plateau"),
        "time_to": {f"{thr:g}": time_to_reach(t, eg, thr) for thr in THRESHOLDS},
        "asymptotic_rate": asymptotic_rate(t, eg) if end == "optimum" else None,
    }


def _simulate_rules(cfg: RunConfig, rules: dict, quiet: bool) -> dict:
    sim_cfg = cfg.simulation
    students, teachers, k_runs = seeded_networks(cfg)
    keys = jax.random.split(k_runs, sim_cfg.seeds)
    out = {}
    for name, rule in rules.items():
        started = time.perf_counter()
        result = jax.vmap(
            lambda s, t, k: simulate(
                s,
                t,
                cfg.eta,
                sim_cfg.n_steps,
                k,
                record_every=sim_cfg.record_every,
                noise=cfg.noise,
                rule=rule,
            )
        )(students, teachers, keys)
        eg = np.asarray(result.eg)
        out[name] = {"t": np.asarray(result.t[0]), "eg": eg}
        if not quiet:
            print(f"  simulated {name}: {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    return out


def compare_experiment(
    cfg: RunConfig, out: Path, *, quiet: bool = False, adaptive_rate: float | None = None
) -> dict:
    """GD and NGD (ODE; and simulations, with adaptive NGD, when configured) from one start.

    Writes `DIR/compare.json` (the table), `DIR/compare.md` (the same as a Markdown table),
    `DIR/compare.npz` (curves) and `DIR/compare.png`.
    """
    extras = {"eta_v": cfg.eta_v, "teacher_activation": cfg.teacher_activation}
    extras = {k: v for k, v in extras.items() if v is not None} | (
        {"weight_decay": cfg.weight_decay} if cfg.weight_decay else {}
    )
    if extras:
        raise ConfigError(
            f"plateaux compare runs GD vs NGD with a fixed second layer, one activation and no weight "
            f"decay; remove [model] {', '.join(sorted(extras))} (use `plateaux run` for them)"
        )
    out.mkdir(parents=True, exist_ok=True)
    ts = cfg.save_times()
    dynamics = {
        "GD": OnlineSGD(cfg.eta, cfg.noise, activation_from_name(cfg.activation)),
        "NGD": NaturalGradientSGD(cfg.eta, cfg.noise),
    }
    curves, table = {}, {}
    for name, dyn in dynamics.items():
        if not quiet:
            print(f"integrating {name} to alpha = {cfg.horizon:g}", file=sys.stderr, flush=True)
        traj = integrate(
            cfg.params0, dyn, ts, rtol=cfg.rtol, atol=cfg.atol, max_steps=cfg.max_steps, throw=False
        )
        curves[f"ode_{name}_t"], curves[f"ode_{name}_eg"] = np.asarray(traj.t), np.asarray(traj.eg)
        if Status(int(traj.status)) == Status.DIVERGED:
            table[f"ODE {name}"] = {"status": "diverged", "t_stop": float(traj.t_stop)}
            continue
        table[f"ODE {name}"] = ode_metrics(traj, dyn)
    summary = {"config": cfg.raw, **convention_records(cfg), "table": table, "versions": package_versions()}
    if cfg.simulation is not None:
        N, K = cfg.simulation.N, cfg.K
        rate = 0.1 / (K * N) if adaptive_rate is None else adaptive_rate
        rules = {"GD": SGD(), "NGD": NaturalGradient(), "adaptive NGD": AdaptiveNaturalGradient(rate)}
        sims = _simulate_rules(cfg, rules, quiet)
        for name, sim in sims.items():
            mean = sim["eg"].mean(axis=0)
            curves[f"sim_{name}_t"], curves[f"sim_{name}_eg"] = sim["t"], sim["eg"]
            plateau = find_plateau(sim["t"], mean)
            table[f"simulation {name}"] = {
                "final_eg": float(mean[-1]),
                "plateau": None if plateau is None else plateau.to_dict(),
                "time_to": {f"{thr:g}": time_to_reach(sim["t"], mean, thr) for thr in THRESHOLDS},
            }
        summary["simulation"] = {"N": N, "seeds": cfg.simulation.seeds, "adaptive_rate": rate}
    if cfg.time_factor is not None and cfg.time_factor != 1.0:  # times in the config's unit too
        for row in table.values():
            if "time_to" in row:
                row["time_to_user"] = {k: user_time(cfg, x) for k, x in row["time_to"].items()}
    (out / "compare.json").write_text(json.dumps(summary, indent=2, default=jsonable) + "\n")
    (out / "compare.md").write_text(markdown_table(table))
    np.savez(out / "compare.npz", **{k.replace(" ", "_"): v for k, v in curves.items()})
    _plot(curves, cfg, out / "compare.png")
    return summary


def _fmt(x) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}" if isinstance(x, float) and math.isfinite(x) else str(x)


def markdown_table(table: dict) -> str:
    """One row per run: plateau entry / exit / height, quasi-plateau duration, time to reach
    each threshold, asymptotic rate, final error and where it ends."""
    head = ["run", "plateau entry", "plateau exit", "plateau eps_g", "quasi-plateau duration"]
    head += [f"alpha to {thr:g}" for thr in THRESHOLDS] + ["asymptotic rate", "final eps_g", "ends at"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in table.items():
        p = row.get("plateau") or {}
        cells = [name, _fmt(p.get("entry")), _fmt(p.get("exit")), _fmt(p.get("height"))]
        cells.append(_fmt(row.get("quasi_plateau_duration")))
        cells += [_fmt(row.get("time_to", {}).get(f"{thr:g}")) for thr in THRESHOLDS]
        cells += [
            _fmt(row.get("asymptotic_rate")),
            _fmt(row.get("final_eg")),
            row.get("ends_at", row.get("status", "-")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot(curves: dict, cfg: RunConfig, path) -> None:
    from ..plots import plt

    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    colours = {"GD": "tab:blue", "NGD": "tab:red", "adaptive NGD": "tab:green"}
    for name, colour in colours.items():
        if f"ode_{name}_t" in curves:
            t, eg = curves[f"ode_{name}_t"], curves[f"ode_{name}_eg"]
            keep = (t > 0) & (eg > 0)
            ax.plot(t[keep], eg[keep], color=colour, lw=2, label=f"ODE {name}")
        if f"sim_{name}_t" in curves:
            t, eg = curves[f"sim_{name}_t"], curves[f"sim_{name}_eg"].mean(axis=0)
            keep = (t > 0) & (eg > 0)
            ax.plot(t[keep], eg[keep], color=colour, lw=1, ls="--", label=f"simulation {name} (mean)")
    ax.set(xscale="log", yscale="log", xlabel=r"$\alpha$", ylabel=r"$\epsilon_g$")
    ax.set_title(f"GD vs natural gradient: K = {cfg.K}, M = {cfg.M}, η = {cfg.eta}")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)
