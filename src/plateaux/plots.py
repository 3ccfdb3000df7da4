"""Figures (matplotlib, imported only by the command line and notebooks)."""

# No backend is forced here: importing this module from a notebook must not switch its
# backend. Without a display matplotlib falls back to a non-interactive one by itself.
import matplotlib.pyplot as plt
import numpy as np


def plot_eg(arrays: dict, summary: dict, path) -> None:
    r"""$\epsilon_g$ vs $\alpha$ on log axes: the ODE, and when present the finite-N runs
    (thin lines, mean, min-max band) with the ODE started from their own initial overlaps;
    the ODE's plateau (if any) shaded."""
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    t, eg = arrays["t"], arrays["eg"]
    t_stop = summary["ode"]["t_stop"]
    pos = (t > 0) & (eg > 0) & (t <= t_stop)  # after an early stop the saves only repeat
    ax.plot(t[pos], eg[pos], color="k", lw=2, label="ODE (N → ∞)", zorder=5)
    if summary["ode"]["status"] == "converged":
        ax.plot([t[pos][-1]], [eg[pos][-1]], "kv", ms=7, label=f"ODE converged (α = {t_stop:.4g})")
    if "sim_eg" in arrays:
        st, seg = arrays["sim_t"], arrays["sim_eg"]
        sel = st > 0
        n = summary["simulation"]["N"]
        for run in seg:
            ax.plot(st[sel], run[sel], color="tab:blue", lw=0.5, alpha=0.35)
        ax.fill_between(
            st[sel],
            seg.min(0)[sel],
            seg.max(0)[sel],
            color="tab:blue",
            alpha=0.15,
            label=f"simulations N = {n}: spread of {seg.shape[0]} seeds",
        )
        ax.plot(st[sel], seg.mean(0)[sel], color="tab:blue", lw=1.5, label="simulation mean")
        theory = arrays.get("sim_theory_eg")
        # The theory from the simulations' own starts is drawn where it differs from the
        # main ODE curve (it coincides when the networks realise the same overlaps).
        main_at_sim_t = np.interp(st, t, eg)
        if theory is not None and np.max(np.abs(theory.mean(0) - main_at_sim_t)) > 1e-3 * np.max(eg):
            ax.plot(
                st[sel],
                theory.mean(0)[sel],
                color="tab:orange",
                lw=1.2,
                ls="--",
                label="ODE from the simulations' initial overlaps",
            )
    plateau = summary["ode"].get("plateau")
    if plateau:
        end = plateau["exit"] if plateau["exit"] is not None else t[-1]
        ax.axvspan(plateau["entry"], end, color="0.85", zorder=0, label="ODE plateau")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\alpha$ (examples / N)")
    ax.set_ylabel(r"$\epsilon_g$")
    cfg = summary["config"]
    model, learning = cfg.get("model", {}), cfg.get("learning", {})
    ax.set_title(
        f"K = {model.get('K')}, M = {model.get('M')}, η = {learning.get('eta')}, "
        f"noise = {learning.get('noise', 0.0)}"
    )
    ax.legend(fontsize=8, loc="lower left")
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["plot_eg"]


PHASE_COLOURS = {
    "transient": "0.92",
    "transition": "0.92",
    "plateau": "tab:red",
    "quasi-plateau": "tab:purple",
    "convergence": "tab:green",
    "spurious minimum": "tab:brown",
    "unclassified": "tab:gray",
}


def plot_phases(traj, phases, distances: dict, summary: dict, path) -> None:
    """Three panels: eps_g with the phases shaded; distances to the singular set; the
    spectrum (real parts, symlog) of each slow phase's organising fixed point."""
    t, eg = np.asarray(traj.t), np.asarray(traj.eg)
    keep = (t > 0) & (t <= float(traj.t_stop))
    fig, axes = plt.subplots(3, 1, figsize=(7.5, 10), constrained_layout=True)
    ax = axes[0]
    pos = keep & (eg > 0)
    ax.plot(t[pos], eg[pos], "k", lw=1.8)
    seen = set()
    for p in phases:
        colour = PHASE_COLOURS.get(p.kind, "tab:gray")
        label = None if p.kind in seen else p.kind
        seen.add(p.kind)
        alpha = 0.5 if p.kind in ("transient", "transition") else 0.2
        ax.axvspan(max(p.entry, t[keep][0]), p.exit, color=colour, alpha=alpha, lw=0, label=label)
    ax.set(xscale="log", yscale="log", ylabel=r"$\epsilon_g$")
    ax.legend(fontsize=8, loc="lower left")
    cfg = summary["config"]
    ax.set_title(
        f"K = {cfg['model']['K']}, M = {cfg['model']['M']}, η = {cfg['learning']['eta']}, "
        f"teacher: {cfg.get('teacher', {}).get('kind', 'isotropic')}"
        + (f" c = {cfg['teacher']['c']}" if "c" in cfg.get("teacher", {}) else "")
    )
    ax = axes[1]
    for key, style in (("overlap_min", "-"), ("elimination_min", "--")):
        values = distances[key][keep]
        if np.all(np.isfinite(values)):
            ax.plot(t[keep], np.abs(values), style, label=key.replace("_min", " (min over units)"))
    ax.set(xscale="log", yscale="log", ylabel="distance to singular set", xlabel=r"$\alpha$")
    ax.legend(fontsize=8)
    ax = axes[2]
    slow = [p for p in phases if p.fixed_point is not None]
    for j, p in enumerate(slow):
        ev = p.fixed_point.spectrum.eigenvalues.real
        ax.scatter(np.full(ev.shape, j), ev, color=PHASE_COLOURS.get(p.kind, "tab:gray"), s=18)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_yscale("symlog", linthresh=1e-6)
    ax.set_xticks(range(len(slow)), [f"{p.kind}\nα≈{p.entry:.3g}–{p.exit:.3g}" for p in slow], fontsize=8)
    ax.set_ylabel("Re λ at the phase's fixed point")
    fig.savefig(path, dpi=110)
    plt.close(fig)
