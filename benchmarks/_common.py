"""Shared helpers of the benchmark scripts: device selection, timing, tables, JSON rows.

Not a test helper: nothing here asserts on a timing.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="JAX platform (default: cpu)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run in well under 30 s")
    p.add_argument("--json", metavar="PATH", help="also write the result rows to PATH (used by run_all.py)")
    return p


def setup_device(name: str):
    """Select the JAX platform before any computation; exit with a clear message if absent.

    Must run before `import plateaux` (which only flips float64 on, but keep it first anyway).
    """
    import jax

    jax.config.update("jax_platform_name", name)
    try:
        devices = jax.devices()
    except RuntimeError as err:
        sys.exit(f"--device {name}: JAX has no '{name}' backend on this machine ({err}).")
    if not devices or devices[0].platform != name:
        sys.exit(f"--device {name}: JAX returned devices {devices}, none of platform '{name}'.")
    return devices[0]


def describe(device) -> str:
    import jax
    import numpy as np
    import scipy

    return (
        f"device={device.device_kind} ({device.platform}), jax {jax.__version__}, numpy {np.__version__}, "
        f"scipy {scipy.__version__}, python {platform.python_version()}, x64={jax.config.jax_enable_x64}, "
        f"{os.cpu_count()} CPUs, {load()}"
    )


def load() -> str:
    """The 1-minute load average: other processes on the machine distort every timing here."""
    try:
        return f"load avg {os.getloadavg()[0]:.2f}"
    except OSError:
        return "load avg n/a"


def block(x):
    import jax

    return jax.block_until_ready(x)


def time_call(fn, budget_s: float = 3.0, warmup: int = 1, min_repeats: int = 2, max_repeats: int = 20):
    """Time `fn()` (its result blocked on) after `warmup` untimed calls: repeat until about
    `budget_s` seconds are spent, at least `min_repeats` and at most `max_repeats` times.

    Returns `(min_s, median_s, repeats, last_result)`: the minimum ("best of") is the
    headline number everywhere (least disturbed by other load on the machine), for JAX and
    for the NumPy/SciPy reference alike.
    """
    out = None
    for _ in range(warmup):
        out = block(fn())
    times = []
    while len(times) < max_repeats and (len(times) < min_repeats or sum(times) < budget_s):
        t0 = time.perf_counter()
        out = block(fn())
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), len(times), out


def lower_and_compile(jitted, *args):
    """`(trace+lower seconds, compile seconds, compiled executable)` of `jax.jit` function."""
    t0 = time.perf_counter()
    lowered = jitted.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, compiled


def fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    x = float(x)
    if x != x:
        return "nan"
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1e5 or a < 1e-3:
        return f"{x:.2e}"
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


def table(rows, columns, title=None) -> str:
    """A small aligned text table: `rows` are dicts, `columns` are `(key, header)` pairs."""
    cells = [[header for _, header in columns]] + [[fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(c[j]) for c in cells) for j in range(len(columns))]

    def line(c):
        first = c[0].ljust(widths[0])
        return "  ".join([first] + [c[j].rjust(widths[j]) for j in range(1, len(c))])

    out = [] if title is None else [title]
    out.append(line(cells[0]))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(c) for c in cells[1:])
    return "\n".join(out)


def write_json(path, script: str, mode: str, header: str, summary: list, tables: list):
    """Rows for run_all.py: `summary` rows have keys name, value, unit, ratio, target, met, note."""
    if path:
        with open(path, "w") as f:
            json.dump(
                {"script": script, "mode": mode, "header": header, "summary": summary, "tables": tables},
                f,
                indent=1,
                default=float,
            )
