"""Benchmark: order-parameter ODE, px.integrate (diffrax Tsit5) vs scipy solve_ivp reference.

A. One trajectory, K = M = 3, T = I, eta = 0.1, classic start, to alpha = 5000 at rtol 1e-8,
   atol 1e-10. Target: >= 20x faster than the faster SciPy method after compilation.
B. A batch of classic starts, K = M = 2, T = I, eta = 0.1, to alpha = 2000 (one vmapped solve)
   vs SciPy per trajectory. Target: >= 50x throughput at batch 256.

Ratios are against plateaux.reference.integrate_reference run in this process. Compile time is
reported apart (jax.jit(...).lower(...).compile()). Nothing here asserts on a timing.

    python benchmarks/bench_ode.py [--quick] [--device cpu|gpu]
"""

import time

import _common as C

RTOL, ATOL = 1e-8, 1e-10
ETA = 0.1


def main():
    args = C.parser(__doc__.splitlines()[0]).parse_args()
    device = C.setup_device(args.device)

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    import plateaux as px
    from plateaux import reference as ref

    quick = args.quick
    header = C.describe(device) + f", mode={'quick' if quick else 'full'}"
    print(header)
    summary, tables = [], []

    def scipy_solve(p, ts, method, rtol=RTOL, atol=ATOL):
        return ref.integrate_reference(
            np.asarray(p.Q), np.asarray(p.R), np.asarray(p.T), np.asarray(p.v), np.asarray(p.w),
            ETA, ts, rtol=rtol, atol=atol, method=method,
        )  # fmt: skip

    # ------------------------------------------------------------------ A: one trajectory
    K = 3
    T = px.correlated_teacher(K)
    p0 = px.classic_start(K, T, jax.random.key(0))
    horizon = 5000.0
    ts = px.log_grid(horizon, 200)
    eta = jnp.asarray(ETA)
    budget = 1.0 if quick else 3.0

    solve = jax.jit(lambda p, e: px.integrate(p, e, ts, rtol=RTOL, atol=ATOL, throw=False))
    t_lower, t_compile, exe = C.lower_and_compile(solve, p0, eta)
    t_exe, _, n_exe, traj = C.time_call(lambda: exe(p0, eta), budget)

    t0 = time.perf_counter()
    C.block(px.integrate(p0, ETA, ts, rtol=RTOL, atol=ATOL))
    t_api_first = time.perf_counter() - t0
    t_api, _, n_api, traj_api = C.time_call(
        lambda: px.integrate(p0, ETA, ts, rtol=RTOL, atol=ATOL), budget, warmup=0
    )
    assert int(traj.status) == int(px.Status.REACHED_HORIZON), traj.status  # not a timing check
    eg_jax = np.asarray(traj.eg)
    steps, rej = int(traj.num_steps), int(traj.num_rejected_steps)

    # Exact count of vector-field evaluations (solver stages + the stop rule), one untimed run.
    counter = [0]

    class Counting(px.AbstractDynamics):
        inner: px.OnlineSGD
        learn_v: bool = eqx.field(static=True, default=False)

        @property
        def activation(self):
            return self.inner.activation

        def vector_field(self, params):
            jax.debug.callback(lambda: counter.__setitem__(0, counter[0] + 1))
            return self.inner.vector_field(params)

    n_rhs_jax = None
    if not quick:
        C.block(px.integrate(p0, Counting(px.OnlineSGD(ETA)), ts, rtol=RTOL, atol=ATOL))
        jax.effects_barrier()
        n_rhs_jax = counter[0]

    sci = {}
    for method in ("RK45", "DOP853"):
        t_best, _, n_rep, out = C.time_call(
            lambda m=method: scipy_solve(p0, ts, m), budget, warmup=0, min_repeats=1
        )
        assert out["success"], out["message"]
        sci[method] = dict(t=t_best, n=n_rep, out=out)
    best = min(sci, key=lambda m: sci[m]["t"])
    t_ref = sci[best]["t"]

    tight = None
    if not quick:  # an accuracy yardstick for both: DOP853 at rtol 1e-12, atol 1e-14
        tight = scipy_solve(p0, ts, "DOP853", rtol=1e-12, atol=1e-14)["eg"]

    def err(eg):
        return None if tight is None else float(np.max(np.abs(eg - tight)))

    rows_a = [
        dict(
            what="px.integrate, compiled exe",
            t=t_exe * 1e3,
            reps=n_exe,
            steps=steps,
            rej=rej,
            nfev=n_rhs_jax,
            d_jax=0.0,
            d_tight=err(eg_jax),
            ratio=t_ref / t_exe,
        ),
        dict(
            what="px.integrate, public call",
            t=t_api * 1e3,
            reps=n_api,
            steps=steps,
            rej=rej,
            nfev=n_rhs_jax,
            d_jax=float(np.max(np.abs(np.asarray(traj_api.eg) - eg_jax))),
            d_tight=err(eg_jax),
            ratio=t_ref / t_api,
        ),
    ]
    for method, s in sci.items():
        eg = s["out"]["eg"]
        rows_a.append(
            dict(
                what=f"scipy solve_ivp {method}",
                t=s["t"] * 1e3,
                reps=s["n"],
                steps=None,
                rej=None,
                nfev=s["out"]["nfev"],
                d_jax=float(np.max(np.abs(eg - eg_jax))),
                d_tight=err(eg),
                ratio=t_ref / s["t"],
            )
        )
    cols_a = [
        ("what", "A: K=M=3, alpha 0->5000, rtol 1e-8"),
        ("t", "time [ms]"),
        ("reps", "reps"),
        ("steps", "steps"),
        ("rej", "rejected"),
        ("nfev", "RHS evals"),
        ("d_jax", "max|eg-eg_jax|"),
        ("d_tight", "max|eg-eg_tight|"),
        ("ratio", f"speed-up vs {best}"),
    ]
    print()
    print(C.table(rows_a, cols_a))
    print(
        f"compile: trace+lower {t_lower:.2f} s, XLA compile {t_compile:.2f} s; first public call "
        f"(trace+compile+run) {t_api_first:.2f} s. Status {px.Status(int(traj.status)).name}, "
        f"t_stop {float(traj.t_stop):g}, eg(5000) = {eg_jax[-1]:.6g}."
    )
    if n_rhs_jax is not None:
        print(
            f"JAX RHS evals: {n_rhs_jax} = Tsit5 stages (6 per step + 1, FSAL: {6 * steps + 1}) "
            f"+ stop-rule evaluations ({n_rhs_jax - 6 * steps - 1})."
        )
    if tight is not None:
        print("eg_tight: scipy DOP853 at rtol 1e-12, atol 1e-14 (accuracy yardstick).")
    tables.append(dict(columns=cols_a, rows=rows_a))
    for label, t in (("compiled exe", t_exe), ("public call", t_api)):
        summary.append(
            dict(
                name=f"ODE K=M=3 single, {label}",
                jax=f"{t * 1e3:.1f} ms",
                ref=f"{t_ref * 1e3:.0f} ms ({best})",
                ratio=t_ref / t,
                target=">= 20x",
                met=t_ref / t >= 20,
            )
        )
    summary.append(
        dict(
            name="ODE K=M=3 single, compile",
            jax=f"{t_lower + t_compile:.2f} s",
            ref="-",
            ratio=None,
            target="(apart)",
            met=None,
        )
    )

    # ------------------------------------------------------------------ B: batches
    K = 2
    T = px.correlated_teacher(K)
    horizon_b = 2000.0
    ts_b = px.log_grid(horizon_b, 100)
    sizes = (16,) if quick else (1, 16, 64, 256, 1024)
    n_sci = 2 if quick else 8
    keys = jax.random.split(jax.random.key(1), max(sizes))
    starts = jax.vmap(lambda k: px.classic_start(K, T, k))(keys)  # OrderParams, leading axis

    def first(n):
        return jax.tree.map(lambda x: x[:n], starts)

    solve_b = jax.jit(lambda p, e: px.integrate(p, e, ts_b, rtol=RTOL, atol=ATOL, throw=False))
    sci_b = {}
    starts_np = [jax.tree.map(lambda x: np.asarray(x[i]), starts) for i in range(n_sci)]
    for method in ("RK45", "DOP853"):
        # Best of `passes` passes over the n_sci starts; per trajectory = pass time / n_sci.
        t_pass, _, passes, outs = C.time_call(
            lambda m=method: [scipy_solve(p, ts_b, m) for p in starts_np], budget, 0, 1 if quick else 2
        )
        assert all(o["success"] for o in outs)
        sci_b[method] = dict(
            t=t_pass / n_sci,
            passes=passes,
            nfev=float(np.mean([o["nfev"] for o in outs])),
            eg=[o["eg"] for o in outs],
        )
    best_b = min(sci_b, key=lambda m: sci_b[m]["t"])
    t_ref_b = sci_b[best_b]["t"]

    rows_b = []
    eg_batch = None
    for B in sizes:
        pB = first(B)
        t_lo, t_co, exe_b = C.lower_and_compile(solve_b, pB, eta)
        t_best, _, n_rep, tr = C.time_call(lambda: exe_b(pB, eta), budget)
        assert np.all(np.asarray(tr.status) == int(px.Status.REACHED_HORIZON))
        if B >= n_sci and eg_batch is None:
            eg_batch = np.asarray(tr.eg[:n_sci])
        ns = np.asarray(tr.num_steps)
        rows_b.append(
            dict(
                what=f"px.integrate batch {B}",
                B=B,
                compile=t_lo + t_co,
                t=t_best * 1e3,
                reps=n_rep,
                per=t_best / B * 1e3,
                tput=B / t_best,
                steps=f"{int(np.median(ns))}/{int(ns.max())}",
                ratio=t_ref_b / (t_best / B),
            )
        )
    # The public call at batch 256 (eager: validation + dispatch + failure check included);
    # skipped in quick mode (one compilation less).
    if not quick:
        B_api = 256
        p_api = first(B_api)
        t0 = time.perf_counter()
        C.block(px.integrate(p_api, ETA, ts_b, rtol=RTOL, atol=ATOL))
        t_api_first_b = time.perf_counter() - t0
        t_best, _, n_rep, _ = C.time_call(
            lambda: px.integrate(p_api, ETA, ts_b, rtol=RTOL, atol=ATOL), budget, 0
        )
        rows_b.append(
            dict(
                what=f"px.integrate batch {B_api}, public call",
                B=B_api,
                compile=t_api_first_b - t_best,
                t=t_best * 1e3,
                reps=n_rep,
                per=t_best / B_api * 1e3,
                tput=B_api / t_best,
                steps=None,
                ratio=t_ref_b / (t_best / B_api),
            )
        )
    for method, s in sci_b.items():
        d = max(float(np.max(np.abs(e - eg_batch[i]))) for i, e in enumerate(s["eg"]))
        rows_b.append(
            dict(
                what=f"scipy {method} ({n_sci} starts, per traj)",
                B=1,
                compile=None,
                t=s["t"] * 1e3,
                reps=s["passes"],
                per=s["t"] * 1e3,
                tput=1 / s["t"],
                steps=f"nfev {s['nfev']:.0f}",
                ratio=t_ref_b / s["t"],
                d=d,
            )
        )
    cols_b = [
        ("what", "B: K=M=2, alpha 0->2000, rtol 1e-8"),
        ("compile", "compile [s]"),
        ("t", "call [ms]"),
        ("reps", "reps"),
        ("per", "per traj [ms]"),
        ("tput", "traj/s"),
        ("steps", "steps med/max"),
        ("d", "max|eg-eg_jax|"),
        ("ratio", f"throughput vs {best_b}"),
    ]
    print()
    print(C.table(rows_b, cols_b))
    print(
        "compile: jax.jit(...).lower(...).compile() per batch shape; for the public call, first "
        "call minus a warm call. A vmapped adaptive solve steps every member until the slowest "
        f"finishes (steps med/max). max|eg-eg_jax|: the first {n_sci} starts, SciPy vs the JAX batch."
    )
    tables.append(dict(columns=cols_b, rows=rows_b))
    for r in rows_b:
        if r["B"] == 256 and not r["what"].startswith("scipy"):
            label = "public call" if "public" in r["what"] else "compiled exe"
            summary.append(
                dict(
                    name=f"ODE K=M=2 batch 256, {label}",
                    jax=f"{r['tput']:.0f} traj/s",
                    ref=f"{1 / t_ref_b:.1f} traj/s ({best_b})",
                    ratio=r["ratio"],
                    target=">= 50x",
                    met=r["ratio"] >= 50,
                )
            )
    big = max(rows_b, key=lambda r: r["ratio"] if not r["what"].startswith("scipy") else 0)
    if big["B"] != 256:
        summary.append(
            dict(
                name=f"ODE K=M=2 batch {big['B']} (best)",
                jax=f"{big['tput']:.0f} traj/s",
                ref=f"{1 / t_ref_b:.1f} traj/s ({best_b})",
                ratio=big["ratio"],
                target="(info)",
                met=None,
            )
        )

    print(f"end of run: {C.load()}")
    C.write_json(args.json, "bench_ode.py", "quick" if quick else "full", header, summary, tables)


if __name__ == "__main__":
    main()
