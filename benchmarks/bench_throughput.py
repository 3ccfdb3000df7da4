"""Benchmark: batched ODE throughput vs batch size, simulation sample-steps/s, compile times.

ODE: classic starts of the regular scenario (K = M = 2, T = I, eta = 0.1, seeds 0..B-1),
to alpha = 2000 with the default tolerances (rtol 1e-8, atol 1e-10), saved on
px.log_grid(2000, 100); one batched px.integrate per batch size B (1, 4, 16, 64, 256, 1024,
4096), compiled apart (jax.jit(...).lower(...).compile()). Target: >= 1000 trajectories/s
on 2 CPU cores. Simulation: finite-N online SGD (N = 500, K = M = 2, eta = 0.5), seeds
vmapped. Ratios against plateaux.reference (SciPy solve_ivp per trajectory, NumPy SGD loop)
run in this process. Nothing here asserts on a timing.

    python benchmarks/bench_throughput.py [--quick] [--device cpu|gpu]
"""

import time

import _common as C

ETA = 0.1
HORIZON = 2000.0
TARGET = 1000.0  # trajectories per second, 2 CPU cores


def main():
    p = C.parser(__doc__.splitlines()[0])
    args = p.parse_args()
    device = C.setup_device(args.device)

    import jax
    import jax.numpy as jnp
    import numpy as np

    import plateaux as px
    from plateaux import reference as ref

    quick = args.quick
    header = C.describe(device) + f", {len(jax.devices())} device(s), mode={'quick' if quick else 'full'}"
    print(header)
    budget = 0.5 if quick else 2.0
    summary, tables = [], []

    # ------------------------------------------------------------------ ODE throughput
    K = 2
    T = px.correlated_teacher(K)
    ts = px.log_grid(HORIZON, 100)
    sizes = (1, 16, 256) if quick else (1, 4, 16, 64, 256, 1024, 4096)
    keys = jax.vmap(jax.random.key)(jnp.arange(max(sizes)))
    starts = jax.vmap(lambda k: px.classic_start(K, T, k))(keys)
    eta = jnp.asarray(ETA)
    solve = jax.jit(lambda p, e: px.integrate(p, e, ts, throw=False))

    n_sci = 2 if quick else 4
    t_sci, _, passes, outs = C.time_call(
        lambda: [
            ref.integrate_reference(
                *(np.asarray(x[i]) for x in (starts.Q, starts.R, starts.T, starts.v, starts.w)),
                ETA, ts, rtol=1e-8, atol=1e-10, method="RK45",
            )
            for i in range(n_sci)
        ],
        budget, 0, 1,
    )  # fmt: skip
    assert all(o["success"] for o in outs)
    ref_tput = n_sci / t_sci

    rows = []
    for B in sizes:
        pB = jax.tree.map(lambda x: x[:B], starts)
        t_lo, t_co, exe = C.lower_and_compile(solve, pB, eta)
        t_best, _, reps, traj = C.time_call(lambda: exe(pB, eta), budget)
        assert np.all(np.asarray(traj.status) == int(px.Status.REACHED_HORIZON))  # not a timing check
        ns = np.asarray(traj.num_steps)
        if B >= n_sci:  # same answer as the reference (solver-tolerance agreement)
            d = max(float(np.max(np.abs(np.asarray(traj.eg[i]) - outs[i]["eg"]))) for i in range(n_sci))
        else:
            d = None
        rows.append(
            dict(
                B=B,
                compile=t_lo + t_co,
                t=t_best * 1e3,
                reps=reps,
                tput=B / t_best,
                steps=f"{int(np.median(ns))}/{int(ns.max())}",
                d=d,
                ratio=(B / t_best) / ref_tput,
            )
        )
    rows.append(dict(B="SciPy", t=t_sci / n_sci * 1e3, reps=passes, tput=ref_tput, ratio=1.0, steps="RK45"))
    cols = [
        ("B", "ODE batch B (K=M=2, alpha 2000)"),
        ("compile", "compile [s]"),
        ("t", "call [ms]"),
        ("reps", "reps"),
        ("tput", "traj/s"),
        ("steps", "steps med/max"),
        ("d", "max|eg-eg_scipy|"),
        ("ratio", "vs SciPy"),
    ]
    print()
    print(C.table(rows, cols))
    print(
        "traj/s = B / (best call time), compile excluded; SciPy = plateaux.reference.integrate_reference "
        f"(solve_ivp RK45, same tolerances) per trajectory over {n_sci} starts."
    )
    tables.append(dict(columns=cols, rows=rows))
    best = max((r for r in rows if r["B"] != "SciPy"), key=lambda r: r["tput"])
    summary.append(
        dict(
            name=f"ODE K=M=2 to 2000, batch {best['B']} (best)",
            jax=f"{best['tput']:,.0f} traj/s",
            ref=f"{ref_tput:.1f} traj/s (RK45)",
            ratio=best["ratio"],
            target=f">= {TARGET:.0f} traj/s" if args.device == "cpu" else "(report)",
            met=best["tput"] >= TARGET if args.device == "cpu" else None,
        )
    )

    # ------------------------------------------------------------------ simulation throughput
    N = 500
    steps_sim = 2_000 if quick else 8_000  # steps per seed per timed call
    record = 1_000
    seeds = (1, 8) if quick else (1, 8, 64)
    k_s, k_t = jax.random.split(jax.random.key(0))
    teacher = px.SoftCommittee.gaussian(K, N, k_t)
    student = px.SoftCommittee.gaussian(K, N, k_s, scale=0.1)
    sim_rows = []

    def simulate(keys, e):
        one = lambda k: px.simulate(student, teacher, e, steps_sim, k, record_every=record).eg  # noqa: E731
        return jax.vmap(one)(keys)

    for S in seeds:
        ks = jax.vmap(jax.random.key)(jnp.arange(S))
        t_lo, t_co, exe = C.lower_and_compile(jax.jit(simulate), ks, jnp.asarray(0.5))
        t_best, _, reps, _ = C.time_call(lambda: exe(ks, jnp.asarray(0.5)), budget)
        tput = S * steps_sim / t_best
        sim_rows.append(dict(S=S, compile=t_lo + t_co, t=t_best * 1e3, reps=reps, tput=tput))
    J0, B0, ones = np.asarray(student.weights), np.asarray(teacher.weights), np.ones(K)
    rng = np.random.default_rng(0)
    t_np, _, reps_np, _ = C.time_call(
        lambda: ref.sgd_numpy(J0, B0, ones, ones, 0.5, steps_sim, rng, record), budget, 0, 1
    )
    np_tput = steps_sim / t_np
    for r in sim_rows:
        r["ratio"] = r["tput"] / np_tput
    sim_rows.append(dict(S="NumPy", compile=None, t=t_np * 1e3, reps=reps_np, tput=np_tput, ratio=1.0))
    cols_s = [
        ("S", f"SGD seeds S (N={N}, K=M=2, {steps_sim:,} steps each)"),
        ("compile", "compile [s]"),
        ("t", "call [ms]"),
        ("reps", "reps"),
        ("tput", "sample-steps/s"),
        ("ratio", "vs NumPy"),
    ]
    print()
    print(C.table(sim_rows, cols_s))
    print("sample-steps/s = seeds x steps / (best call time); NumPy: plateaux.reference.sgd_numpy, one seed.")
    tables.append(dict(columns=cols_s, rows=sim_rows))
    best_s = max((r for r in sim_rows if r["S"] != "NumPy"), key=lambda r: r["tput"])
    summary.append(
        dict(
            name=f"SGD N={N} K=M=2, {best_s['S']} seeds (best)",
            jax=f"{best_s['tput']:,.0f} steps/s",
            ref=f"{np_tput:,.0f} steps/s",
            ratio=best_s["ratio"],
            target="(report)",
            met=None,
        )
    )
    compile_row = max(rows[:-1], key=lambda r: r["compile"])
    summary.append(
        dict(
            name="ODE batch compile (max over B)",
            jax=f"{compile_row['compile']:.2f} s",
            ref="-",
            ratio=None,
            target="(apart)",
            met=None,
        )
    )
    print(f"end of run: {C.load()}; wall {time.perf_counter() - T0:.0f} s")
    C.write_json(args.json, "bench_throughput.py", "quick" if quick else "full", header, summary, tables)


T0 = time.perf_counter()

if __name__ == "__main__":
    main()
