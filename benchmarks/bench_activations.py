"""Accuracy and cost of the activations' Gaussian averages (K = M = 2).

For each activation: the largest quadrature error estimate (`quadrature_report`, default order
against order 48) over random states (variances 0.2-1.5), and the time of one jitted
`OnlineSGD.vector_field` call (compile time apart). Run: `python benchmarks/bench_activations.py`.
"""

import sys
import time

import equinox as eqx
import jax
import numpy as np

import plateaux as px
from plateaux.activations import quadrature_report


def random_state(rng, K=2, M=2):
    A = rng.standard_normal((K + M, K + M))
    C = A @ A.T
    s = np.sqrt(rng.uniform(0.2, 1.5, K + M) / np.diag(C))
    C = C * np.outer(s, s)
    return px.OrderParams(C[:K, :K], C[:K, K:], C[K:, K:])


def main(n_states=5, reference_order=48):
    rng = np.random.default_rng(0)
    states = [random_state(rng) for _ in range(n_states)]
    cases = {
        "erf": px.Erf(),
        "linear": px.Linear(),
        "relu": px.ReLU(),
        "tanh": px.Tanh(),
        "tanh (order 24)": px.Tanh(order=24),
        "sigmoid": px.Sigmoid(),
        "sigmoid (order 8)": px.Sigmoid(order=8),
        "relu student, erf teacher": (px.ReLU(), px.Erf()),
        "erf student, tanh teacher": (px.Erf(), px.Tanh()),
    }
    field = eqx.filter_jit(lambda dynamics, p: dynamics.vector_field(p))
    print(f"{'activation':28s} {'max quad. error':>16s} {'compile s':>10s} {'call us':>9s}")
    for name, act in cases.items():
        err = max(quadrature_report(act, p, reference_order=reference_order)["max"] for p in states)
        student, teacher = px.activations.as_pair(act)
        kwargs = {} if student == teacher else {"teacher_activation": teacher}
        dyn = px.OnlineSGD(0.1, activation=student, **kwargs)
        t0 = time.perf_counter()
        jax.block_until_ready(field(dyn, states[0]))
        compile_s = time.perf_counter() - t0
        n = 50
        t0 = time.perf_counter()
        for p in states * (n // len(states)):
            jax.block_until_ready(field(dyn, p))
        call_us = (time.perf_counter() - t0) / n * 1e6
        print(f"{name:28s} {err:16.1e} {compile_s:10.1f} {call_us:9.0f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
