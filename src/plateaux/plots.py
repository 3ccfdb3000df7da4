"""Figures (matplotlib, imported only by the command line and notebooks)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
