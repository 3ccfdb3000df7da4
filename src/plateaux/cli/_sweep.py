"""`plateaux sweep`: run a grid of scenarios (vmapped, chunked, resumable) into one dataset."""

import argparse
import sys
from pathlib import Path

DESCRIPTION = (
    "Integrate the order-parameter ODE for every scenario of the grid in SWEEP.toml (rule x K x M "
    "x eta x c x noise x seed). Scenarios of one rule and shape are solved together in one vmap, "
    "in chunks; each finished chunk is written atomically to DIR/chunks/, so rerunning the same "
    "command after an interruption resumes where it stopped (a different config in DIR is "
    "refused). The result is one NetCDF4 dataset, DIR/sweep.nc (xarray: "
    "plateaux.experiments.load_sweep(DIR)), with eps_g(alpha), Q, R, status, plateau and phase "
    "summaries and the symmetric fixed point's spectrum for every grid point."
)


def add_parser(sub) -> None:
    from ..experiments import SWEEP_REFERENCE

    sweep = sub.add_parser(
        "sweep",
        help="run a grid of scenarios (vmapped, chunked, resumable) into one NetCDF dataset",
        description=DESCRIPTION,
        epilog=SWEEP_REFERENCE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("config", metavar="SWEEP.toml", type=Path, help="sweep configuration")
    sweep.add_argument("--out", required=True, type=Path, metavar="DIR", help="results folder")
    sweep.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        metavar="N",
        help="scenarios per chunk (one vmapped solve; bounds memory) [64, or the folder's]",
    )
    sweep.add_argument("--overwrite", action="store_true", help="discard the results of another sweep in DIR")
    sweep.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="run chunks on a Dask distributed cluster (scheduler address, or 'local' for a "
        "local cluster of one worker per core)",
    )
    sweep.add_argument(
        "--devices",
        default=None,
        metavar="N|all",
        help="shard each chunk over N local devices (or all), one adaptive loop per device",
    )
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..experiments import ChunkError, Sweep, SweepConfigError, SweepMismatchError, run_sweep

    try:
        sweep = Sweep.from_toml(args.config)
    except SweepConfigError as e:
        print(f"plateaux: error in {args.config}: {e}", file=sys.stderr)
        return 2
    if args.chunk_size is not None and args.chunk_size < 1:
        print(f"plateaux: error: --chunk-size must be >= 1; got {args.chunk_size}", file=sys.stderr)
        return 2
    devices = args.devices
    if devices is not None and devices != "all":
        if not devices.isdigit() or int(devices) < 1:
            print(
                f"plateaux: error: --devices must be a positive integer or 'all'; got {devices}",
                file=sys.stderr,
            )
            return 2
        devices = int(devices)
    executor = None
    if args.dask is not None:
        from ..experiments import DaskExecutor

        executor = DaskExecutor(None if args.dask == "local" else args.dask)
    try:
        ds = run_sweep(
            sweep,
            args.out,
            executor=executor,
            chunk_size=args.chunk_size,
            progress=not args.quiet,
            overwrite=args.overwrite,
            devices=devices,
        )
    except SweepMismatchError as e:
        print(f"plateaux: error: {e}", file=sys.stderr)
        return 2
    except SweepConfigError as e:
        print(f"plateaux: error: {e}", file=sys.stderr)
        return 2
    except ChunkError as e:
        print(f"plateaux: error: {e}\nfinished chunks are kept in {args.out}/chunks/", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: finished chunks are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        if executor is not None:
            executor.close()
    status = ds["status"].values
    counts = {name: int((status == code).sum()) for code, name in _status_names()}
    text = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
    print(f"{status.size} scenarios ({text}); dataset in {args.out}/sweep.nc")
    return 0


def _status_names():
    from .._trajectory import Status

    return [(s.value, s.name.lower()) for s in Status]
