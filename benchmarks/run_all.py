"""Run every benchmark script (each in its own process) and print one combined table.

    python benchmarks/run_all.py [--quick] [--device cpu|gpu]

Each script's own tables are printed as it runs; the combined table at the end lists the
headline rows (JAX, reference, ratio, target, met). Nothing here asserts on a timing; the exit
status is non-zero only if a script failed to run.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import _common as C

SCRIPTS = ("bench_ode.py", "bench_sim.py", "bench_ngd.py", "bench_throughput.py")


def main():
    args = C.parser(__doc__.splitlines()[0]).parse_args()
    C.setup_device(args.device)  # fail once, clearly, if the platform is missing
    here = os.path.dirname(os.path.abspath(__file__))
    results, failed = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for script in SCRIPTS:
            out = os.path.join(tmp, script + ".json")
            cmd = [sys.executable, os.path.join(here, script), "--device", args.device, "--json", out]
            if args.quick:
                cmd.append("--quick")
            print(f"\n=== {' '.join(cmd[1:])}", flush=True)
            t0 = time.perf_counter()
            rc = subprocess.call(cmd)
            wall = time.perf_counter() - t0
            if rc != 0 or not os.path.exists(out):
                failed.append(f"{script} (exit status {rc})")
                continue
            with open(out) as f:
                res = json.load(f)
            res["wall"] = wall
            results.append(res)

    rows = []
    for res in results:
        for r in res["summary"]:
            rows.append(dict(r, script=res["script"]))
    cols = [
        ("name", "benchmark"),
        ("jax", "plateaux (JAX)"),
        ("ref", "NumPy/SciPy reference"),
        ("ratio", "ratio"),
        ("target", "target"),
        ("met", "met"),
    ]
    print()
    print("=" * 20 + " combined")
    if results:
        print(results[0]["header"])
    print(C.table(rows, cols))
    print(
        "wall time: "
        + ", ".join(f"{r['script']} {r['wall']:.0f} s" for r in results)
        + ". Ratio = reference time / JAX time (same process, best of repeats, compile excluded)."
    )
    if failed:
        print("FAILED: " + ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
