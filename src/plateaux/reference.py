"""Independent NumPy/SciPy reference implementation (no JAX).

This module exists to cross-check the JAX engine of ``plateaux`` in tests and
benchmarks. It is written deliberately differently from a vectorised tensor
implementation: scalar ``math`` closed forms, explicit Python loops over the
hidden units ``i, k`` (student) and ``n, m`` (teacher), a tensor-product
Gauss-Hermite quadrature and a Monte-Carlo estimator for checking the closed
forms, ``scipy.integrate.solve_ivp`` for the order-parameter ODEs and a plain
NumPy loop for finite-N online SGD. It is slow by design; use it on small
problems only.

Conventions (``/work/shared/THEORY.md`` sections 1-2)
------------------------------------------------------
* Activation ``g(x) = erf(x / sqrt 2)``, ``g'(x) = sqrt(2/pi) exp(-x^2/2)``.
* Student fields ``x_i = J_i . xi / sqrt N`` (i = 1..K), teacher fields
  ``y_n = B_n . xi / sqrt N`` (n = 1..M), ``xi ~ N(0, I_N)``.
* Outputs ``sigma = sum_i v_i g(x_i)``, ``tau = sum_n w_n g(y_n)`` (plus output
  noise of standard deviation ``s`` where stated). Default ``v = w = 1``; no
  ``1/K`` prefactor; time ``alpha = steps / N``.
* Order parameters ``Q = J J^T/N`` (K, K), ``R = J B^T/N`` (K, M),
  ``T = B B^T/N`` (M, M); joint covariance of ``(x_1..x_K, y_1..y_M)`` is
  ``C = [[Q, R], [R^T, T]]``.
* Online SGD step: ``J_i <- J_i + (eta/sqrt N) v_i g'(x_i) (tau - sigma) xi``.
* Generalisation error is measured against the *noise-free* teacher:
  ``eps_g = 1/2 <(sigma - tau)^2>`` with ``tau`` noiseless (add ``s^2/2`` for the
  error against noisy labels).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.integrate import solve_ivp
from scipy.special import erf as _erf

__all__ = [
    "g",
    "dg",
    "i2",
    "j2",
    "i3",
    "i4",
    "joint_covariance",
    "gaussian_average",
    "monte_carlo_average",
    "generalization_error",
    "ode_rhs",
    "pack_state",
    "unpack_state",
    "integrate_reference",
    "sgd_numpy",
]

_SQRT2 = math.sqrt(2.0)
_TWO_OVER_PI = 2.0 / math.pi
_SQRT_TWO_OVER_PI = math.sqrt(2.0 / math.pi)
_FOUR_OVER_PI2 = 4.0 / (math.pi * math.pi)


# ---------------------------------------------------------------------------
# activation
# ---------------------------------------------------------------------------
def g(x):
    """Activation ``g(x) = erf(x / sqrt 2)`` (elementwise)."""
    return _erf(np.asarray(x, dtype=float) / _SQRT2)


def dg(x):
    """Derivative ``g'(x) = sqrt(2/pi) exp(-x^2 / 2)`` (elementwise)."""
    x = np.asarray(x, dtype=float)
    return _SQRT_TWO_OVER_PI * np.exp(-0.5 * x * x)


# ---------------------------------------------------------------------------
# scalar closed forms for g = erf(./sqrt 2)
# ---------------------------------------------------------------------------
def _asin_clipped(z: float) -> float:
    """``arcsin`` with the argument clipped to [-1, 1] (rounding guard)."""
    if z > 1.0:
        z = 1.0
    elif z < -1.0:
        z = -1.0
    return math.asin(z)


def i2(c11: float, c12: float, c22: float) -> float:
    """``I2 = <g(u1) g(u2)> = (2/pi) arcsin(c12 / sqrt((1+c11)(1+c22)))``."""
    c11, c12, c22 = float(c11), float(c12), float(c22)
    return _TWO_OVER_PI * _asin_clipped(c12 / math.sqrt((1.0 + c11) * (1.0 + c22)))


def j2(c11: float, c12: float, c22: float) -> float:
    """``J2 = <g'(u1) g'(u2)> = (2/pi) / sqrt((1+c11)(1+c22) - c12^2)``."""
    c11, c12, c22 = float(c11), float(c12), float(c22)
    return _TWO_OVER_PI / math.sqrt((1.0 + c11) * (1.0 + c22) - c12 * c12)


def i3(c11: float, c12: float, c13: float, c23: float, c33: float) -> float:
    """``I3 = <g'(u1) u2 g(u3)>``.

    ``I3 = (2/pi) / sqrt(L3) * (c23 (1+c11) - c12 c13) / (1+c11)``,
    ``L3 = (1+c11)(1+c33) - c13^2``.
    """
    c11, c12, c13, c23, c33 = (float(c) for c in (c11, c12, c13, c23, c33))
    a11 = 1.0 + c11
    l3 = a11 * (1.0 + c33) - c13 * c13
    return _TWO_OVER_PI / math.sqrt(l3) * (c23 * a11 - c12 * c13) / a11


def i4(
    c11: float,
    c12: float,
    c13: float,
    c14: float,
    c22: float,
    c23: float,
    c24: float,
    c33: float,
    c34: float,
    c44: float,
) -> float:
    """``I4 = <g'(u1) g'(u2) g(u3) g(u4)>``.

    ``I4 = (4/pi^2) / sqrt(L4) * arcsin(L0 / sqrt(L1 L2))`` with
    ``L4 = (1+c11)(1+c22) - c12^2``,
    ``L0 = L4 c34 - c23 c24 (1+c11) - c13 c14 (1+c22) + c12 c13 c24 + c12 c14 c23``,
    ``L1 = L4 (1+c33) - c23^2 (1+c11) - c13^2 (1+c22) + 2 c12 c13 c23``,
    ``L2 = L4 (1+c44) - c24^2 (1+c11) - c14^2 (1+c22) + 2 c12 c14 c24``.
    """
    c11, c12, c13, c14, c22, c23, c24, c33, c34, c44 = (
        float(c) for c in (c11, c12, c13, c14, c22, c23, c24, c33, c34, c44)
    )
    a11 = 1.0 + c11
    a22 = 1.0 + c22
    l4 = a11 * a22 - c12 * c12
    l0 = l4 * c34 - c23 * c24 * a11 - c13 * c14 * a22 + c12 * c13 * c24 + c12 * c14 * c23
    l1 = l4 * (1.0 + c33) - c23 * c23 * a11 - c13 * c13 * a22 + 2.0 * c12 * c13 * c23
    l2 = l4 * (1.0 + c44) - c24 * c24 * a11 - c14 * c14 * a22 + 2.0 * c12 * c14 * c24
    return _FOUR_OVER_PI2 / math.sqrt(l4) * _asin_clipped(l0 / math.sqrt(l1 * l2))


# index-based wrappers: pick the entries of a joint covariance C
def _i2_at(C, a, b):
    return i2(C[a][a], C[a][b], C[b][b])


def _j2_at(C, a, b):
    return j2(C[a][a], C[a][b], C[b][b])


def _i3_at(C, a, b, c):
    return i3(C[a][a], C[a][b], C[a][c], C[b][c], C[c][c])


def _i4_at(C, a, b, c, d):
    return i4(
        C[a][a],
        C[a][b],
        C[a][c],
        C[a][d],
        C[b][b],
        C[b][c],
        C[b][d],
        C[c][c],
        C[c][d],
        C[d][d],
    )


def joint_covariance(Q, R, T) -> np.ndarray:
    """Joint covariance ``C = [[Q, R], [R^T, T]]`` of ``(x_1..x_K, y_1..y_M)``."""
    Q = np.asarray(Q, dtype=float)
    R = np.asarray(R, dtype=float)
    T = np.asarray(T, dtype=float)
    return np.block([[Q, R], [R.T, T]])


# ---------------------------------------------------------------------------
# generic Gaussian averages (for checking closed forms)
# ---------------------------------------------------------------------------
def _sym_sqrt(C: np.ndarray) -> np.ndarray:
    """Symmetric square root ``S`` with ``S S = C`` (eigh, tiny negative eigenvalues clipped)."""
    C = np.asarray(C, dtype=float)
    C = 0.5 * (C + C.T)
    lam, V = np.linalg.eigh(C)
    scale = max(1.0, float(np.max(np.abs(lam))) if lam.size else 1.0)
    if np.any(lam < -1e-10 * scale):
        raise ValueError(f"covariance is not positive semi-definite: eigenvalues {lam}")
    lam = np.clip(lam, 0.0, None)
    return (V * np.sqrt(lam)) @ V.T


def gaussian_average(f: Callable[[np.ndarray], np.ndarray], C, order: int = 40) -> float:
    """``E[f(u)]`` for ``u ~ N(0, C)`` by tensor-product Gauss-Hermite quadrature.

    ``u = S z`` with ``S`` the symmetric square root of ``C`` and ``z`` on the
    tensor grid of ``order`` probabilists' Gauss-Hermite nodes per dimension
    (weights normalised to sum 1). ``C`` is ``n x n`` symmetric PSD (``n = 1..4``;
    singular ``C``, e.g. repeated fields, is fine). ``f`` maps an ``(n, P)``
    array of field values to ``(P,)``. Uses ``order**n`` points (memory!).
    Accuracy depends on the field variances: integrands with ``g'`` factors of
    fields with variance ~2-4 need ``order`` ~60-80 for ~1e-12; ``order=40``
    gives ~1e-10 at variances of order one.
    """
    C = np.atleast_2d(np.asarray(C, dtype=float))
    n = C.shape[0]
    if C.shape != (n, n):
        raise ValueError("C must be square")
    nodes, weights = hermegauss(order)
    weights = weights / math.sqrt(2.0 * math.pi)
    grids = np.meshgrid(*([nodes] * n), indexing="ij")
    z = np.stack([gr.ravel() for gr in grids], axis=0)  # (n, P)
    wgrids = np.meshgrid(*([weights] * n), indexing="ij")
    W = np.ones(z.shape[1])
    for wg in wgrids:
        W = W * wg.ravel()
    u = _sym_sqrt(C) @ z
    vals = np.asarray(f(u), dtype=float)
    return float(np.sum(W * vals))


def monte_carlo_average(
    f: Callable[[np.ndarray], np.ndarray],
    C,
    n_samples: int,
    rng: np.random.Generator,
    batch: int = 1_000_000,
):
    """Monte-Carlo estimate of ``E[f(u)]``, ``u ~ N(0, C)``.

    Returns ``(mean, standard_error)`` with ``standard_error = std / sqrt(n_samples)``
    (sample std, ddof=1). Samples are drawn in batches of at most ``batch``.
    """
    C = np.atleast_2d(np.asarray(C, dtype=float))
    n = C.shape[0]
    S = _sym_sqrt(C)
    total = 0.0
    total_sq = 0.0
    done = 0
    while done < n_samples:
        b = min(batch, n_samples - done)
        u = S @ rng.standard_normal((n, b))
        vals = np.asarray(f(u), dtype=float)
        total += float(np.sum(vals))
        total_sq += float(np.sum(vals * vals))
        done += b
    mean = total / n_samples
    var = max(total_sq - n_samples * mean * mean, 0.0) / max(n_samples - 1, 1)
    return mean, math.sqrt(var / n_samples)


# ---------------------------------------------------------------------------
# generalisation error and ODE right-hand side
# ---------------------------------------------------------------------------
def generalization_error(Q, R, T, v, w) -> float:
    """``eps_g = 1/2 <(sigma - tau)^2>`` against the noise-free teacher.

    ``eps_g = 1/2 [sum_ik v_i v_k I2(x_i,x_k) + sum_nm w_n w_m I2(y_n,y_m)
    - 2 sum_in v_i w_n I2(x_i,y_n)]``; for erf this is
    ``(1/pi)[sum_ik v_i v_k arcsin(Q_ik/sqrt((1+Q_ii)(1+Q_kk))) + ...]``.
    Add ``s^2/2`` for the error against labels with output noise std ``s``.
    """
    Q = np.asarray(Q, dtype=float)
    R = np.asarray(R, dtype=float)
    T = np.asarray(T, dtype=float)
    v = np.asarray(v, dtype=float)
    w = np.asarray(w, dtype=float)
    K, M = R.shape
    ss = 0.0
    for i in range(K):
        for k in range(K):
            ss += v[i] * v[k] * i2(Q[i, i], Q[i, k], Q[k, k])
    tt = 0.0
    for n in range(M):
        for m in range(M):
            tt += w[n] * w[m] * i2(T[n, n], T[n, m], T[m, m])
    st = 0.0
    for i in range(K):
        for n in range(M):
            st += v[i] * w[n] * i2(Q[i, i], R[i, n], T[n, n])
    return 0.5 * (ss + tt - 2.0 * st)


def ode_rhs(Q, R, T, v, w, eta, noise: float = 0.0, eta_squared: bool = True):
    """Order-parameter ODEs of online SGD (N -> infinity), explicit loops.

    With ``delta_i = v_i g'(x_i)(tau - sigma)``, ``tau = sum_n w_n g(y_n)``,
    ``sigma = sum_j v_j g(x_j)`` and averages over ``(x, y) ~ N(0, C)``:

    * ``dR_in/dalpha = eta <delta_i y_n>
      = eta v_i [sum_m w_m I3(x_i, y_n, y_m) - sum_j v_j I3(x_i, y_n, x_j)]``
    * ``dQ_ik/dalpha = eta (<delta_i x_k> + <delta_k x_i>) + eta^2 <delta_i delta_k>
      + eta^2 s^2 v_i v_k J2(x_i, x_k)``, with
      ``<delta_i x_k> = v_i [sum_m w_m I3(x_i, x_k, y_m) - sum_j v_j I3(x_i, x_k, x_j)]``,
      ``<delta_i delta_k> = v_i v_k [sum_nm w_n w_m I4(x_i,x_k,y_n,y_m)
      - 2 sum_nj w_n v_j I4(x_i,x_k,y_n,x_j) + sum_jl v_j v_l I4(x_i,x_k,x_j,x_l)]``.

    ``noise`` is the output-noise standard deviation ``s``. ``eta_squared=False``
    drops every ``eta^2`` term (noise term included): the gradient-flow limit.
    Returns ``(dQ, dR)`` with shapes ``(K, K)`` and ``(K, M)``.
    """
    Q = np.asarray(Q, dtype=float)
    R = np.asarray(R, dtype=float)
    T = np.asarray(T, dtype=float)
    v = [float(a) for a in np.asarray(v, dtype=float)]
    w = [float(a) for a in np.asarray(w, dtype=float)]
    eta = float(eta)
    s2 = float(noise) ** 2
    K, M = R.shape
    C = joint_covariance(Q, R, T).tolist()  # nested lists: fast scalar indexing
    xs = list(range(K))  # student field indices in C
    ys = list(range(K, K + M))  # teacher field indices in C

    def d_times_u(i, u):
        """<delta_i u> for the field with index u in C."""
        acc = 0.0
        for m in range(M):
            acc += w[m] * _i3_at(C, xs[i], u, ys[m])
        for j in range(K):
            acc -= v[j] * _i3_at(C, xs[i], u, xs[j])
        return v[i] * acc

    def d_times_d(i, k):
        """<delta_i delta_k> (noise-free teacher)."""
        a, b = xs[i], xs[k]
        acc = 0.0
        for n in range(M):
            for m in range(M):
                acc += w[n] * w[m] * _i4_at(C, a, b, ys[n], ys[m])
        for n in range(M):
            for j in range(K):
                acc -= 2.0 * w[n] * v[j] * _i4_at(C, a, b, ys[n], xs[j])
        for j in range(K):
            for l in range(K):
                acc += v[j] * v[l] * _i4_at(C, a, b, xs[j], xs[l])
        return v[i] * v[k] * acc

    dR = np.zeros((K, M))
    for i in range(K):
        for n in range(M):
            dR[i, n] = eta * d_times_u(i, ys[n])

    dQ = np.zeros((K, K))
    for i in range(K):
        for k in range(i, K):
            val = eta * (d_times_u(i, xs[k]) + d_times_u(k, xs[i]))
            if eta_squared:
                val += eta * eta * d_times_d(i, k)
                if s2 != 0.0:
                    val += eta * eta * s2 * v[i] * v[k] * _j2_at(C, xs[i], xs[k])
            dQ[i, k] = val
            dQ[k, i] = val
    return dQ, dR


# ---------------------------------------------------------------------------
# ODE integration in minimal coordinates
# ---------------------------------------------------------------------------
def pack_state(Q, R) -> np.ndarray:
    """Minimal coordinates: upper triangle of ``Q`` (row-major, incl. diagonal), then ``R`` row-major."""
    Q = np.asarray(Q, dtype=float)
    R = np.asarray(R, dtype=float)
    K = Q.shape[0]
    iu = np.triu_indices(K)
    return np.concatenate([Q[iu], R.ravel()])


def unpack_state(y, K: int, M: int):
    """Inverse of :func:`pack_state`: returns symmetric ``Q`` (K, K) and ``R`` (K, M)."""
    y = np.asarray(y, dtype=float)
    nq = K * (K + 1) // 2
    Q = np.zeros((K, K))
    p = 0
    for i in range(K):
        for k in range(i, K):
            Q[i, k] = y[p]
            Q[k, i] = y[p]
            p += 1
    R = y[nq : nq + K * M].reshape(K, M).copy()
    return Q, R


def integrate_reference(
    Q0,
    R0,
    T,
    v,
    w,
    eta,
    ts,
    noise: float = 0.0,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    method: str = "DOP853",
    eta_squared: bool = True,
):
    """Integrate :func:`ode_rhs` with ``scipy.integrate.solve_ivp``.

    The state is :func:`pack_state` ``(Q, R)``; ``T``, ``v``, ``w`` are fixed.
    ``ts[0]`` is the start time and the solution is reported at every ``ts``.
    Returns a dict with ``t`` (n_t,), ``Q`` (n_t, K, K), ``R`` (n_t, K, M),
    ``eg`` (n_t,) (noise-free teacher), ``nfev``, ``success``, ``message``.
    """
    Q0 = np.asarray(Q0, dtype=float)
    R0 = np.asarray(R0, dtype=float)
    T = np.asarray(T, dtype=float)
    ts = np.asarray(ts, dtype=float)
    K, M = R0.shape

    def fun(_t, y):
        Q, R = unpack_state(y, K, M)
        dQ, dR = ode_rhs(Q, R, T, v, w, eta, noise=noise, eta_squared=eta_squared)
        return pack_state(dQ, dR)

    sol = solve_ivp(
        fun,
        (float(ts[0]), float(ts[-1])),
        pack_state(Q0, R0),
        method=method,
        t_eval=ts,
        rtol=rtol,
        atol=atol,
    )
    n_t = sol.y.shape[1]
    Qs = np.zeros((n_t, K, K))
    Rs = np.zeros((n_t, K, M))
    eg = np.zeros(n_t)
    for p in range(n_t):
        Qs[p], Rs[p] = unpack_state(sol.y[:, p], K, M)
        eg[p] = generalization_error(Qs[p], Rs[p], T, v, w)
    return {
        "t": sol.t,
        "Q": Qs,
        "R": Rs,
        "eg": eg,
        "nfev": int(sol.nfev),
        "success": bool(sol.success),
        "message": sol.message,
    }


# ---------------------------------------------------------------------------
# finite-N online SGD
# ---------------------------------------------------------------------------
def sgd_numpy(
    J,
    B,
    v,
    w,
    eta,
    n_steps: int,
    rng: np.random.Generator,
    record_every: int,
    noise: float = 0.0,
):
    """Plain NumPy loop of finite-N online SGD on ``(sigma - tau)^2 / 2``.

    Each step: ``xi ~ N(0, I_N)``, ``x = J xi / sqrt N``, ``y = B xi / sqrt N``,
    ``tau = w . g(y) + noise * z`` (``z ~ N(0,1)``, drawn after ``xi`` and only
    if ``noise != 0``), ``sigma = v . g(x)``,
    ``J_i <- J_i + (eta / sqrt N) v_i g'(x_i) (tau - sigma) xi``.
    ``J`` is (K, N) (not modified in place), ``B`` is (M, N). Records
    ``alpha = step / N``, ``Q = J J^T / N``, ``R = J B^T / N`` and the closed-form
    ``eps_g`` (noise-free teacher, ``T = B B^T / N``) at step 0 and every
    ``record_every`` steps. Returns a dict with ``alpha``, ``Q``, ``R``, ``eg``,
    ``J`` (final weights).
    """
    J = np.array(J, dtype=float, copy=True)
    B = np.asarray(B, dtype=float)
    v = np.asarray(v, dtype=float)
    w = np.asarray(w, dtype=float)
    K, N = J.shape
    sqrtN = math.sqrt(N)
    T = B @ B.T / N
    step_size = float(eta) / sqrtN

    alphas, Qs, Rs, egs = [], [], [], []

    def record(step):
        Q = J @ J.T / N
        R = J @ B.T / N
        alphas.append(step / N)
        Qs.append(Q)
        Rs.append(R)
        egs.append(generalization_error(Q, R, T, v, w))

    record(0)
    for step in range(1, n_steps + 1):
        xi = rng.standard_normal(N)
        x = J @ xi / sqrtN
        y = B @ xi / sqrtN
        tau = float(w @ g(y))
        if noise != 0.0:
            tau += noise * rng.standard_normal()
        sigma = float(v @ g(x))
        err = tau - sigma
        coeff = step_size * err * v * dg(x)  # (K,)
        J += np.outer(coeff, xi)
        if step % record_every == 0:
            record(step)

    return {
        "alpha": np.array(alphas),
        "Q": np.array(Qs),
        "R": np.array(Rs),
        "eg": np.array(egs),
        "J": J,
    }
