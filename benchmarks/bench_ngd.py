"""Benchmark: finite-N natural gradient step, structured Fisher (JAX) vs a dense NumPy solve.

N = 500, K = 2 and 3 (teacher M = 2), eta = 0.1, erf, float64, one fresh Gaussian input per step.
plateaux: px.simulate(rule=plateaux.natural.NaturalGradient()), whose step builds the exact Fisher
in structured form (a K x K and a K^2 x K^2 eigen-solve, O(K^2 N) work). Reference (in this
process): a NumPy loop that forms the full KN x KN Fisher each step (closed-form blocks,
rank-2 Woodbury, O(K^2 N^2)) and solves G dJ = grad with numpy.linalg.solve (O((KN)^3)).
Ratio = NumPy time per step / JAX time per step. Also printed: the largest difference between one
step of each from the same weights and input (they compute the same update), and (full mode) a
jitted JAX step with the same dense solve, to separate "JAX vs NumPy" from "structured vs dense".
Compile time is reported apart. Nothing here asserts on a timing.

    python benchmarks/bench_ngd.py [--quick] [--device cpu|gpu]
"""

import math
import time

import _common as C
import numpy as np
from scipy.special import erf

N, M, ETA = 500, 2, 0.1


def dense_fisher_numpy(J, v):
    """The KN x KN Fisher of an erf soft committee machine, formed block by block in NumPy."""
    K, n = J.shape
    Jh = J / math.sqrt(n)
    G = np.empty((K * n, K * n))
    for i in range(K):
        for j in range(K):
            U = np.stack([Jh[i], Jh[j]], axis=1)  # (n, 2)
            A2 = np.eye(2) + U.T @ U
            block = np.eye(n) - U @ np.linalg.solve(A2, U.T)  # (I + U U^T)^{-1}
            G[i * n : (i + 1) * n, j * n : (j + 1) * n] = (
                v[i] * v[j] * (2 / math.pi) / math.sqrt(np.linalg.det(A2)) * block / n
            )
    return G


def ngd_numpy(J, B, v, w, eta, xis):
    """Dense natural gradient descent: form G and solve G dJ = grad every step."""
    K, n = J.shape
    J = J.copy()
    for xi in xis:
        x, y = J @ xi / math.sqrt(n), B @ xi / math.sqrt(n)
        err = w @ erf(y / math.sqrt(2)) - v @ erf(x / math.sqrt(2))
        grad = -np.outer(err * v * math.sqrt(2 / math.pi) * np.exp(-0.5 * x**2), xi) / math.sqrt(n)
        G = dense_fisher_numpy(J, v)
        J -= (eta / n) * np.linalg.solve(G, grad.reshape(-1)).reshape(K, n)
    return J


def main():
    args = C.parser(__doc__.splitlines()[0]).parse_args()
    device = C.setup_device(args.device)

    import jax
    import jax.numpy as jnp

    import plateaux as px
    from plateaux.natural import NaturalGradient, fisher_matrix

    quick = args.quick
    header = C.describe(device) + f", mode={'quick' if quick else 'full'}"
    print(header)
    budget = 1.0 if quick else 3.0
    n_jax = 5 * N if quick else 40 * N  # steps per timed JAX call
    n_np = 3 if quick else 10  # steps per timed NumPy call
    rows, summary = [], []
    rule = NaturalGradient()

    for K in (2, 3):
        k_s, k_t, k_run, k_xi = jax.random.split(jax.random.key(K), 4)
        teacher = px.SoftCommittee.gaussian(M, N, k_t)
        student = px.SoftCommittee.gaussian(K, N, k_s, scale=0.5)
        J0, B0 = np.asarray(student.weights), np.asarray(teacher.weights)
        v, w = np.ones(K), np.ones(M)

        # Same update? One step from the same weights and input.
        xi = np.asarray(jax.random.normal(k_xi, (N,)))
        J_np = ngd_numpy(J0, B0, v, w, ETA, [xi])
        label = teacher(jnp.asarray(xi))
        st = rule.update(jnp.asarray(J0), rule.init(student, ETA), student, jnp.asarray(xi), label, ETA)
        diff = float(np.max(np.abs(np.asarray(st[0]) - J_np)))

        # Reference: dense NumPy.
        xis = np.asarray(jax.random.normal(k_xi, (n_np, N)))
        t_np, _, reps_np, _ = C.time_call(lambda: ngd_numpy(J0, B0, v, w, ETA, xis), budget, 0, 1)
        us_np = t_np / n_np * 1e6
        rows.append(dict(what=f"K={K}: NumPy, form + solve KN x KN", K=K, steps=n_np, reps=reps_np, us=us_np,
                         ratio=1.0, diff=diff))  # fmt: skip

        # plateaux: the public call (compile = first call minus a warm call).
        def call(n=n_jax):
            return px.simulate(student, teacher, ETA, n, k_run, record_every=N, rule=rule)

        t0 = time.perf_counter()
        C.block(call())
        t_first = time.perf_counter() - t0
        t_api, _, reps, res = C.time_call(call, budget, 0)
        us = t_api / n_jax * 1e6
        rows.append(dict(what=f"K={K}: px.simulate(rule=NaturalGradient())", K=K, compile=t_first - t_api,
                         steps=n_jax, reps=reps, us=us, ratio=us_np / us))  # fmt: skip
        summary.append(
            dict(
                name=f"NGD step N={N}, K={K}: structured (JAX) vs dense (NumPy)",
                jax=f"{1e6 / us:,.0f} steps/s",
                ref=f"{1e6 / us_np:,.1f} steps/s (NumPy dense)",
                ratio=us_np / us,
                target="(none)",
                met=None,
            )
        )
        assert np.all(np.isfinite(np.asarray(res.eg)))

        if not quick:
            # Analysis: JAX with the same dense solve (form the KN x KN Fisher, jnp.linalg.solve).
            def dense_steps(J, xs):
                def step(J, xi):
                    s = px.SoftCommittee(J)
                    x = J @ xi / math.sqrt(N)
                    err = teacher(xi) - s(xi)
                    grad = -jnp.outer(err * s.activation.dg(x), xi) / math.sqrt(N)
                    dJ = jnp.linalg.solve(fisher_matrix(s), grad.reshape(-1)).reshape(J.shape)
                    return J - (ETA / N) * dJ, None

                return jax.lax.scan(step, J, xs)[0]

            xs = jnp.asarray(xis)
            t_lo, t_co, exe = C.lower_and_compile(jax.jit(dense_steps), student.weights, xs)
            t_d, _, reps_d, _ = C.time_call(lambda: exe(student.weights, xs), budget)
            us_d = t_d / n_np * 1e6
            rows.append(dict(what=f"K={K}: JAX dense solve (analysis)", K=K, compile=t_lo + t_co, steps=n_np,
                             reps=reps_d, us=us_d, ratio=us_np / us_d))  # fmt: skip

    cols = [
        ("what", f"N={N}, M={M}, eta={ETA}, float64"),
        ("compile", "compile [s]"),
        ("steps", "steps/call"),
        ("reps", "reps"),
        ("us", "us/step"),
        ("ratio", "vs NumPy"),
        ("diff", "max|dJ diff|, 1 step"),
    ]
    print()
    print(C.table(rows, cols))
    print(
        "compile: for px.simulate the first call minus a warm call; for the jitted dense step "
        "jax.jit(...).lower(...).compile(). The step-difference column compares one NumPy dense step "
        "with the structured JAX step from the same weights and input (round-off only)."
    )
    print(f"end of run: {C.load()}")
    C.write_json(args.json, "bench_ngd.py", "quick" if quick else "full", header, summary,
                 [dict(columns=cols, rows=rows)])  # fmt: skip


if __name__ == "__main__":
    main()
