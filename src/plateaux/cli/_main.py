"""Argument parsing and dispatch for the `plateaux` command."""

import argparse
import sys
from pathlib import Path

from ._config import CONFIG_REFERENCE, ConfigError, load_config

DESCRIPTION = """\
plateaux: exact online-learning dynamics of soft committee machines (order-parameter ODEs,
N -> infinity) next to finite-N simulations of the same learning rule.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plateaux", description=DESCRIPTION)
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"plateaux {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="integrate the ODE for CONFIG (and simulate finite-N networks if configured)",
        description=(
            "Integrate the order-parameter ODE described by CONFIG.toml and, if the config has "
            "a [simulation] table, simulate finite-N networks from the same start. Writes "
            "OUT/trajectory.npz (t, eg, Q, R, T, v, w; sim_* arrays for simulations), "
            "OUT/summary.json (config echo, conventions, final eps_g, plateau height / entry / "
            "exit, solver statistics, versions) and OUT/eg.png (eps_g vs alpha, log axes)."
        ),
        epilog=CONFIG_REFERENCE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("config", metavar="CONFIG.toml", type=Path, help="experiment configuration")
    run.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="results folder (created if needed; existing result files are overwritten)",
    )
    run.add_argument(
        "--no-simulation",
        action="store_true",
        help="skip the [simulation] table even if the config has one (ODE only)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument(
        "--analyze",
        action="store_true",
        help="also segment the ODE trajectory into classified phases (as `plateaux analyze`)",
    )
    analyze = sub.add_parser(
        "analyze",
        help="split a run's ODE trajectory into phases and classify plateau vs quasi-plateau",
        description=(
            "Read DIR/trajectory.npz and DIR/summary.json written by `plateaux run`, split the "
            "ODE trajectory into phases (transient, plateau, quasi-plateau, spurious minimum, "
            "convergence, unclassified), find each slow phase's organising fixed point and its "
            "spectrum, and write DIR/phases.json and DIR/phases.png (eps_g with phases shaded, "
            "distances to the singular set, spectra). The rule and its thresholds are in "
            "phases.json and documented in plateaux.analysis.segment."
        ),
    )
    analyze.add_argument("dir", metavar="DIR", type=Path, help="results folder of `plateaux run`")
    compare = sub.add_parser(
        "compare",
        help="gradient descent vs natural gradient from the same start (ODE, and simulations)",
        description=(
            "Integrate the online-SGD and the natural-gradient order-parameter ODEs from the start "
            "in CONFIG.toml and, if it has a [simulation] table, simulate finite-N networks with "
            "SGD, exact natural gradient and adaptive natural gradient from the same networks. "
            "Writes DIR/compare.json and DIR/compare.md (a table: plateau entry / exit / height, "
            "quasi-plateau duration, time to reach eps_g = 1e-2, 1e-3, 1e-4, 1e-6, asymptotic rate, "
            "final error and whether the run ends at the optimum), DIR/compare.npz (curves) and "
            "DIR/compare.png."
        ),
        epilog=CONFIG_REFERENCE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("config", metavar="CONFIG.toml", type=Path, help="experiment configuration")
    compare.add_argument("--out", required=True, type=Path, metavar="DIR", help="results folder")
    compare.add_argument(
        "--adaptive-rate",
        type=float,
        default=None,
        metavar="EPS",
        help="estimation rate of adaptive natural gradient (default 0.1 / (K N))",
    )
    compare.add_argument("--no-simulation", action="store_true", help="ODEs only")
    compare.add_argument("--quiet", action="store_true", help="no progress output")
    from ._sweep import add_parser as add_sweep_parser

    add_sweep_parser(sub)
    return parser


def _print_phases(report: dict) -> None:
    for p in report["phases"]:
        eg = p["eg_exit"]
        eg_text = "< 1e-7" if eg < 1e-7 else f"{eg:.3g}"  # below that eps_g is round-off
        line = f"  {p['kind']:16s} alpha {p['entry']:10.4g} -> {p['exit']:10.4g}   eps_g {eg_text}"
        if p.get("predicted_length"):
            line += f"   length {p['measured_length']:.4g} (predicted {p['predicted_length']:.4g})"
        print(line)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `plateaux` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "sweep":
        from ._sweep import run as run_sweep_command

        return run_sweep_command(args)
    if args.command == "analyze":
        from ._analyze import analyze_run

        try:
            report = analyze_run(args.dir)
        except ConfigError as e:
            print(f"plateaux: error: {e}", file=sys.stderr)
            return 2
        _print_phases(report)
        print(f"phases in {args.dir}/ (phases.json, phases.png)")
        return 0
    if args.command == "compare" and args.adaptive_rate is not None and not args.adaptive_rate > 0:
        print(f"plateaux: error: --adaptive-rate must be > 0; got {args.adaptive_rate}", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config)
    except ConfigError as e:
        print(f"plateaux: error in {args.config}: {e}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"plateaux: error: --out {args.out} exists and is not a folder", file=sys.stderr)
        return 2
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"plateaux: error: cannot create --out {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    if args.no_simulation:
        import dataclasses

        cfg = dataclasses.replace(cfg, simulation=None)
    if args.command == "compare":
        from ._compare import compare_experiment

        try:
            summary = compare_experiment(cfg, args.out, quiet=args.quiet, adaptive_rate=args.adaptive_rate)
        except ConfigError as e:  # settings compare cannot honour (e.g. a trained second layer)
            print(f"plateaux: error in {args.config}: {e}", file=sys.stderr)
            return 2
        print((args.out / "compare.md").read_text(), end="")
        print(f"comparison in {args.out}/ (compare.json, compare.md, compare.npz, compare.png)")
        return 0
    from ._run import run_experiment

    summary = run_experiment(cfg, args.out, quiet=args.quiet)
    ode = summary["ode"]
    if ode["status"] == "converged":
        # Below the early-stopping threshold eps_g is round-off (it can even be -1e-10).
        final = f"< 1e-7 (converged at alpha = {ode['t_stop']:.6g})"
    else:
        final = f"= {ode['final_eg']:.6g}  [{ode['status']} at alpha = {ode['t_stop']:.6g}]"
    lines = [f"final eps_g (ODE) {final}"]
    if ode["plateau"]:
        p = ode["plateau"]
        exit_text = "not left before the horizon" if p["exit"] is None else f"exit alpha = {p['exit']:.4g}"
        lines.append(f"plateau: eps_g = {p['height']:.4g}, entry alpha = {p['entry']:.4g}, {exit_text}")
    if "simulation" in summary:
        s = summary["simulation"]
        lines.append(
            f"final eps_g (simulation mean over {s['seeds']} seeds, N = {s['N']}) = {s['final_eg_mean']:.6g}"
        )
    lines.append(f"results in {args.out}/ (trajectory.npz, summary.json, eg.png)")
    print("\n".join(lines))
    if args.analyze and "error" not in ode:
        from ._analyze import analyze_run

        try:
            _print_phases(analyze_run(args.out))
        except ConfigError as e:
            print(f"plateaux: error: {e}", file=sys.stderr)
            return 2
        print(f"phases in {args.out}/ (phases.json, phases.png)")
    if "error" in ode:
        print(f"plateaux: error: {ode['error']}", file=sys.stderr)
        return 1
    if "simulation_error" in summary:
        print(f"plateaux: error: {summary['simulation_error']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
