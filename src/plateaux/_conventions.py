r"""Normalisation conventions of the literature, with exact converters to the engine's own.

The engine (THEORY.md section 1) works in one *canonical* convention: outputs
$\sigma = \sum_i v_i g(x_i)$ and $\tau = \sum_n w_n g(y_n)$ (no prefactor), the hidden step
$J_i \leftarrow J_i + \frac{\eta}{\sqrt N} v_i g'(x_i)(\tau - \sigma)\xi$ with the raw $\eta$, a
trained second layer $v_i \leftarrow v_i + \frac{\eta_v}{N} g(x_i)(\tau - \sigma)$, and time
$\alpha = \mu/N$. Papers differ in three independent choices, which a [`Convention`][] names:

- `output_scale` in `none`, `1/K`, `1/sqrt(K)`: $\sigma = s_K\sum_i\hat v_i g(x_i)$ and
  $\tau = s_M\sum_n\hat w_n g(y_n)$ (the user's quantities carry a hat);
- `lr_scale` in `none`, `1/K`, `1/sqrt(K)`, `K`, `sqrt(K)`: the step taken is $\hat\eta\,\ell_K$
  (both layers);
- `time_unit` in `alpha`, `eta*alpha`, `eta*alpha/K`: $\hat t = c\,\alpha$ with
  $c = 1, \hat\eta, \hat\eta/K$.

($s_K = 1, 1/K, 1/\sqrt K$; the teacher uses its own $M$; $K$ is always the *student's*
number of hidden units; $\hat\eta$ in the time unit is the user's learning rate as written,
before `lr_scale`.)

**Derivation of the converters.** The squared error $\epsilon = (\sigma - \tau)^2/2$ is the
same function of the inputs in both descriptions when $v = s_K\hat v$ and $w = s_M\hat w$, so
$\epsilon_g$, the hidden weights and hence $Q, R, T$ are unchanged. The user's hidden step is
$$J_i \leftarrow J_i - \hat\eta\ell_K\,\nabla_{J_i}\epsilon
= J_i + \frac{\hat\eta\ell_K}{\sqrt N}\, s_K\hat v_i\, g'(x_i)(\tau - \sigma)\,\xi
= J_i + \frac{\eta}{\sqrt N}\, v_i\, g'(x_i)(\tau - \sigma)\,\xi$$
with $\eta = \ell_K\hat\eta$: the output scale is absorbed by $v$, the learning rate only
carries `lr_scale`. A trained second layer follows
$\hat v_i \leftarrow \hat v_i + \frac{\hat\eta_v\ell_K}{N} s_K g(x_i)(\tau - \sigma)$;
multiplying by $s_K$ gives the canonical rule for $v = s_K\hat v$ with
$\eta_v = s_K^2\ell_K\hat\eta_v$. Output noise on the label and $\epsilon_g$ are not rescaled;
hidden-layer weight decay $J\leftarrow(1 - \eta\lambda/N)J$ keeps its $\lambda$ (it acts on $J$,
which the output scale leaves alone, and is multiplied by the step actually taken).
Time: $\alpha = \hat t / c$. Every step is a multiplication, so the converters are exact up to
float round-off and [`Convention.from_canonical`][] inverts [`Convention.to_canonical`][].

**References:** Saad & Solla, Phys. Rev. E 52, 4225 (1995) (no output scale, time $\alpha$);
Biehl & Schwarze, J. Phys. A 28, 643 (1995) ($1/\sqrt K$ outputs); Goldt et al., NeurIPS 2019
(nn2pp: canonical, with `--normalise` / `--meanfield` putting $1/K$, $1/\sqrt K$ into $v$).
"""

import dataclasses
import math
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._order_params import OrderParams

_OUTPUT_SCALES = {"none": lambda n: 1.0, "1/K": lambda n: 1.0 / n, "1/sqrt(K)": lambda n: 1.0 / math.sqrt(n)}
_LR_SCALES = {
    "none": lambda K: 1.0,
    "1/K": lambda K: 1.0 / K,
    "1/sqrt(K)": lambda K: 1.0 / math.sqrt(K),
    "K": lambda K: float(K),
    "sqrt(K)": lambda K: math.sqrt(K),
}
_TIME_UNITS = ("alpha", "eta*alpha", "eta*alpha/K")


class Converted(NamedTuple):
    """Result of a conversion: `(params, eta, t, eta_v)` (unpacks as a tuple)."""

    params: OrderParams
    eta: Any
    t: Any
    eta_v: Any


def _single_eta(eta, what: str) -> float:
    """`eta` as one finite positive float, or a ValueError saying why a time unit needs it."""
    if callable(eta) or isinstance(eta, eqx.Module):
        raise ValueError(
            f"time_unit = {what!r} depends on eta, but the learning rate is a schedule "
            f"({type(eta).__name__}), not a single value; use time_unit = 'alpha'"
        )
    if isinstance(eta, jax.core.Tracer):
        raise ValueError(f"time_unit = {what!r} needs a concrete eta (not a traced value)")
    values = np.unique(np.asarray(eta, dtype=float))
    if values.size != 1:
        raise ValueError(
            f"time_unit = {what!r} depends on eta, but the run has several learning rates "
            f"{values.tolist()}; use time_unit = 'alpha' (or one run per eta)"
        )
    value = float(values[0])
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"eta must be finite and > 0; got eta={value}")
    return value


@dataclasses.dataclass(frozen=True)
class Convention:
    r"""A normalisation convention (output scale, learning-rate scale, time unit); hashable and
    JSON round-trippable ([`to_dict`][] / [`from_dict`][]). The defaults are the engine's
    canonical convention. See the module docstring for the definitions and the derivation of
    the converters.

    **Arguments:**

    - `output_scale`: `"none"`, `"1/K"` or `"1/sqrt(K)"` ($\sigma = s_K\sum_i\hat v_i g(x_i)$,
      teacher likewise with its $M$).
    - `time_unit`: `"alpha"`, `"eta*alpha"` or `"eta*alpha/K"` (user's $\hat\eta$, student $K$).
    - `lr_scale`: `"none"`, `"1/K"`, `"1/sqrt(K)"`, `"K"` or `"sqrt(K)"`: the user's learning
      rates $\hat\eta$, $\hat\eta_v$ mean the steps $\hat\eta\ell_K$, $\hat\eta_v\ell_K$.

    **Raises:** `ValueError` naming an unknown value and the known ones.
    """

    output_scale: str = "none"
    time_unit: str = "alpha"
    lr_scale: str = "none"

    def __post_init__(self):
        for name, value, known in (
            ("output_scale", self.output_scale, tuple(_OUTPUT_SCALES)),
            ("time_unit", self.time_unit, _TIME_UNITS),
            ("lr_scale", self.lr_scale, tuple(_LR_SCALES)),
        ):
            if not isinstance(value, str) or value not in known:
                raise ValueError(f"unknown {name} {value!r}; use one of {list(known)}")

    # -- factors ------------------------------------------------------------------------------

    @property
    def is_canonical(self) -> bool:
        """True for the engine's own convention (no conversion at all)."""
        return self == Convention()

    @property
    def time_depends_on_eta(self) -> bool:
        return self.time_unit != "alpha"

    def output_factor(self, n: int) -> float:
        r"""$s_n$: the output prefactor of a network with `n` hidden units."""
        return _OUTPUT_SCALES[self.output_scale](int(n))

    def lr_factor(self, K: int) -> float:
        r"""$\ell_K$: canonical $\eta = \ell_K\hat\eta$."""
        return _LR_SCALES[self.lr_scale](int(K))

    def eta_v_factor(self, K: int) -> float:
        r"""Canonical $\eta_v = s_K^2\ell_K\hat\eta_v$."""
        return self.output_factor(K) ** 2 * self.lr_factor(K)

    def time_factor(self, eta=None, K: int | None = None) -> float:
        r"""$c$ with $\hat t = c\,\alpha$: 1, $\hat\eta$ or $\hat\eta/K$ (the user's $\hat\eta$).

        **Raises:** `ValueError` if the unit depends on $\eta$ and `eta` is missing, a schedule
        or several values (a sweep), or if it needs `K` and `K` is missing.
        """
        if self.time_unit == "alpha":
            return 1.0
        if eta is None:
            raise ValueError(f"time_unit = {self.time_unit!r} needs the learning rate eta")
        c = _single_eta(eta, self.time_unit)
        if self.time_unit == "eta*alpha/K":
            if K is None:
                raise ValueError("time_unit = 'eta*alpha/K' needs K")
            c /= int(K)
        return c

    def to_alpha(self, t, eta=None, K: int | None = None):
        r"""Times in the user's unit $\to\alpha = \hat t/c$ (arrays stay arrays)."""
        return _scale(t, 1.0 / self.time_factor(eta, K)) if self.time_depends_on_eta else t

    def from_alpha(self, alpha, eta=None, K: int | None = None):
        r"""$\alpha\to\hat t = c\,\alpha$."""
        return _scale(alpha, self.time_factor(eta, K)) if self.time_depends_on_eta else alpha

    # -- converters ---------------------------------------------------------------------------

    def to_canonical(self, params: OrderParams, eta=None, t=None, eta_v=None) -> Converted:
        r"""The user's run in the engine's convention.

        $Q, R, T$ unchanged; $v = s_K\hat v$, $w = s_M\hat w$; $\eta = \ell_K\hat\eta$;
        $\eta_v = s_K^2\ell_K\hat\eta_v$; $\alpha = \hat t/c(\hat\eta)$. `eta`, `t`, `eta_v`
        may be None (passed through); `t` may be a number or an array of times.

        **Returns:** [`Converted`][]`(params, eta, t, eta_v)` in the canonical convention.
        """
        K, M = params.K, params.M
        out = eqx.tree_at(
            lambda p: (p.v, p.w),
            params,
            (params.v * self.output_factor(K), params.w * self.output_factor(M)),
        )
        t_c = None if t is None else self.to_alpha(t, eta, K)
        eta_c = _scale_eta(eta, self.lr_factor(K), self.lr_scale)
        eta_v_c = None if eta_v is None else _scale(eta_v, self.eta_v_factor(K))
        return Converted(out, eta_c, t_c, eta_v_c)

    def from_canonical(self, params: OrderParams, eta=None, t=None, eta_v=None) -> Converted:
        r"""Inverse of [`to_canonical`][]: `params`, `eta` ($\eta$), `t` ($\alpha$), `eta_v` in
        the engine's convention $\to$ the user's ($\hat v = v/s_K$, $\hat\eta = \eta/\ell_K$,
        $\hat t = c(\hat\eta)\,\alpha$, $\hat\eta_v = \eta_v/(s_K^2\ell_K)$)."""
        K, M = params.K, params.M
        out = eqx.tree_at(
            lambda p: (p.v, p.w),
            params,
            (params.v / self.output_factor(K), params.w / self.output_factor(M)),
        )
        eta_u = _scale_eta(eta, 1.0 / self.lr_factor(K), self.lr_scale)
        t_u = None if t is None else self.from_alpha(t, eta_u, K)
        eta_v_u = None if eta_v is None else _scale(eta_v, 1.0 / self.eta_v_factor(K))
        return Converted(out, eta_u, t_u, eta_v_u)

    def networks_to_canonical(self, student, teacher):
        r"""[`plateaux.SoftCommittee`][] pair written with the user's $\hat v$, $\hat w$ $\to$ the
        same functions in the canonical convention ($v = s_K\hat v$, $w = s_M\hat w$)."""
        s = eqx.tree_at(lambda n: n.v, student, student.v * self.output_factor(student.K))
        t = eqx.tree_at(lambda n: n.v, teacher, teacher.v * self.output_factor(teacher.K))
        return s, t

    def integrate(
        self,
        params: OrderParams,
        eta,
        ts,
        *,
        eta_v=None,
        noise=0.0,
        activation=None,
        eta_squared: bool = True,
        **kwargs,
    ):
        r"""[`plateaux.integrate`][] of online SGD for a run written in this convention.

        `params`, `eta`, `ts` (times in the user's unit, or a horizon) and `eta_v` are converted
        with [`to_canonical`][]; the returned [`plateaux.Trajectory`][] is converted back: its
        `t` and `t_stop` are in the user's unit (`t` is the given grid itself when `ts` is an
        array) and its `v`, `w` are the user's $\hat v$, $\hat w$. `eps_g` needs no conversion.
        Other keyword arguments go to [`plateaux.integrate`][].
        """
        from ._integrate import _as_grid, integrate
        from .dynamics import OnlineSGD

        K = params.K
        grid_u = np.asarray(ts, dtype=float)
        if grid_u.ndim == 0:  # a horizon in the user's unit: log grid in alpha
            grid_c = _as_grid(float(self.to_alpha(float(grid_u), eta, K)))
            grid_u = np.asarray(self.from_alpha(grid_c, eta, K))
        else:
            grid_c = np.asarray(self.to_alpha(grid_u, eta, K))
        p_c, eta_c, _, eta_v_c = self.to_canonical(params, eta, None, eta_v)
        dyn_kwargs = {} if eta_v_c is None else {"eta_v": eta_v_c}
        dynamics = OnlineSGD(eta_c, noise, activation, eta_squared=eta_squared, **dyn_kwargs)
        traj = integrate(p_c, dynamics, grid_c, **kwargs)
        series = self.from_canonical(traj.params).params
        t_stop = self.from_alpha(traj.t_stop, eta, K)
        return eqx.tree_at(
            lambda tr: (tr.t, tr.params, tr.t_stop), traj, (jnp.asarray(grid_u), series, t_stop)
        )

    # -- records ------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """`{"output_scale", "time_unit", "lr_scale"}` (JSON-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Convention":
        """Inverse of [`to_dict`][]; `ValueError` names unknown keys or values."""
        if not isinstance(d, dict):
            raise ValueError(f"a convention must be a table/dict; got {d!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown convention key(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    def describe(self) -> dict:
        """Human-readable formulas of this convention (for results files)."""
        s = {"none": "", "1/K": "(1/K) ", "1/sqrt(K)": "(1/sqrt(K)) "}[self.output_scale]
        s_m = s.replace("K", "M")
        lr = {
            "none": "eta",
            "1/K": "eta/K",
            "1/sqrt(K)": "eta/sqrt(K)",
            "K": "eta*K",
            "sqrt(K)": "eta*sqrt(K)",
        }
        return {
            "output": f"sigma = {s}sum_i v_i g(x_i), tau = {s_m}sum_n w_n g(y_n)",
            "time": {
                "alpha": "alpha = examples / N",
                "eta*alpha": "t = eta * alpha (alpha = examples / N)",
                "eta*alpha/K": "t = eta * alpha / K (alpha = examples / N)",
            }[self.time_unit],
            "learning_rate": f"J_i -= ({lr[self.lr_scale]}) grad_(J_i) eps with grad = "
            f"(sigma - tau) {s}v_i g'(x_i) xi / sqrt(N)",
        }

    def record(self, K: int, M: int, eta=None, eta_v=None) -> dict:
        """The results-file record: the three choices, their formulas and the factors that map
        the user's numbers to the engine's (canonical) ones."""
        rec = self.to_dict() | {"formulas": self.describe()}
        factors = {
            "v_canonical_over_v": self.output_factor(K),
            "w_canonical_over_w": self.output_factor(M),
            "eta_canonical_over_eta": self.lr_factor(K),
            "eta_v_canonical_over_eta_v": self.eta_v_factor(K),
        }
        try:
            factors["t_over_alpha"] = self.time_factor(eta, K)
        except ValueError:
            factors["t_over_alpha"] = None
        rec["factors"] = factors
        if eta is not None and not callable(eta):
            rec["eta"] = eta
            rec["eta_canonical"] = _scale(eta, self.lr_factor(K))
        if eta_v is not None:
            rec["eta_v"] = eta_v
            rec["eta_v_canonical"] = _scale(eta_v, self.eta_v_factor(K))
        return rec


CANONICAL = Convention()


def _scale_eta(eta, factor: float, lr_scale: str):
    """A learning rate times `factor`; a schedule (callable) passes only when the factor is 1."""
    if eta is None:
        return None
    if callable(eta) or isinstance(eta, eqx.Module):
        if factor == 1.0:
            return eta
        raise ValueError(
            f"lr_scale = {lr_scale!r} with a learning-rate schedule ({type(eta).__name__}): scale the "
            "schedule's values yourself and use lr_scale = 'none'"
        )
    return _scale(eta, factor)


def _scale(x, factor: float):
    """`x * factor` keeping Python floats as floats and arrays as arrays."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x) * factor
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np.asarray(x, dtype=float) * factor
    return jnp.asarray(x, dtype=float) * factor
