"""The TOML run configuration: parsing, validation, and the objects it describes."""

import dataclasses
import math
import sys

import jax
import numpy as np

from .._conventions import CANONICAL, Convention
from .._initial import classic_start, correlated_teacher
from .._order_params import OrderParams, check_order_params
from ..activations import activation_from_name
from ._config_conventions import check_not_prescaled, parse_convention, parse_horizon, parse_initial

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_REFERENCE = """\
CONFIG.toml reference (every key; defaults in brackets):

  [model]        K (student hidden units), M (teacher hidden units), activation ["erf"]
                 teacher_activation (the teacher's g, if not the student's) [activation]
                 eta_v (learning rate > 0 of a trained second layer v; absent: v fixed) [absent]
                 weight_decay (hidden-layer weight decay lambda >= 0: dQ += -2 eta lambda Q,
                 dR += -eta lambda R; v does not decay) [0.0]
  [teacher]      kind = "isotropic" (T = I) | "correlated" (T = (1-c) I + c 11^T; needs c)
                        | "explicit" (needs T = [[...], ...]) ["isotropic"]
                 c (teacher correlation, for kind = "correlated")
                 T (M x M teacher overlaps, for kind = "explicit")
                 w (teacher second-layer weights, length M) [ones]
  [student]      start = "classic" (Saad & Solla: Q_ii ~ U[0, q_max], Q_ik, R_in ~ U[0, overlap_max])
                        | "explicit" (needs Q (K x K) and R (K x M)) ["classic"]
                 seed [0], q_max [0.5], overlap_max [1e-12]  (classic start)
                 v (student second-layer weights, length K) [ones]
  [learning]     eta (learning rate > 0; required), noise (output-noise std >= 0) [0.0]
  [integration]  horizon (final time, in [conventions] time_unit; required unless horizon_alpha)
                 or horizon_alpha (final alpha, whatever the time unit), num_saves (log-spaced saves) [400],
                 rtol [1e-8], atol [1e-10], max_steps [200000]
  [simulation]   optional finite-N online SGD overlay, started from networks that realise the
                 student start's overlaps exactly:
                 N (input dimension), seeds (number of runs) [4], seed (base PRNG seed) [1],
                 horizon or horizon_alpha [integration's], records (records per run) [200]
  [conventions]  optional; how the numbers above are meant (converted exactly to the engine's
                 convention before running; see plateaux.Convention):
                 output_scale = "none" | "1/K" | "1/sqrt(K)" ["none"]: sigma = s_K sum_i v_i g(x_i),
                        tau = s_M sum_n w_n g(y_n) (v, w of [student] / [teacher] are the user's)
                 time_unit = "alpha" | "eta*alpha" | "eta*alpha/K" ["alpha"]: unit of the horizons
                 lr_scale = "none" | "1/K" | "1/sqrt(K)" | "K" | "sqrt(K)" ["none"]: the step taken
                        is eta * lr_scale
  [initial]      optional: from = "DIR", a directory of text files Q.txt, R.txt, T.txt, v.txt, w.txt
                 (or nn2pp PREFIX_Q0.dat ...; see plateaux.load_text), in the [conventions]
                 convention; replaces [teacher] and [student] (which must then be absent).
                 `plateaux run` writes the start it used to OUT/initial/ in this form.
"""


class ConfigError(ValueError):
    """A configuration value is missing or invalid (the message names the key)."""


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    N: int
    seeds: int
    seed: int
    horizon: float
    records: int

    @property
    def n_steps(self) -> int:
        return self.records * self.record_every

    @property
    def record_every(self) -> int:
        return max(1, round(self.horizon * self.N / self.records))


@dataclasses.dataclass(frozen=True)
class RunConfig:
    raw: dict
    K: int
    M: int
    activation: str
    params0: OrderParams
    eta: float
    noise: float
    horizon: float
    num_saves: int
    rtol: float
    atol: float
    max_steps: int
    simulation: SimulationConfig | None
    convention: Convention = CANONICAL  # eta, horizons, params0 above are already canonical
    eta_user: float | None = None  # the learning rate as written in the config
    time_factor: float | None = None  # t (config's time unit) = time_factor * alpha
    teacher_activation: str | None = None  # None: the student's activation
    eta_v: float | None = None  # trained second layer (None: v fixed)
    weight_decay: float = 0.0

    def dynamics(self):
        """The configured order-parameter ODE ([`plateaux.OnlineSGD`][]): eta, noise, the
        (student, teacher) activations, eta_v and weight decay."""
        from ..dynamics import OnlineSGD

        teacher = None if self.teacher_activation is None else activation_from_name(self.teacher_activation)
        return OnlineSGD(
            self.eta,
            self.noise,
            activation_from_name(self.activation),
            teacher_activation=teacher,
            eta_v=self.eta_v,
            weight_decay=self.weight_decay,
        )

    def save_times(self) -> np.ndarray:
        from .._integrate import log_grid

        return log_grid(self.horizon, self.num_saves)


def _get(table: dict, key: str, where: str, kind=float, default=..., check=None, bound: str = ""):
    if key not in table:
        if default is ...:
            raise ConfigError(f"missing required key [{where}] {key}")
        return default
    value = table[key]
    try:
        if kind is int:
            if isinstance(value, (bool, str)) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            value = int(value)
        elif kind is float:
            if isinstance(value, (bool, str)):
                raise ValueError
            value = float(value)
        elif kind is str:
            if not isinstance(value, str):
                raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"[{where}] {key} = {value!r} is not a valid {kind.__name__}") from None
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"[{where}] {key} = {value!r} must be finite")
    if check is not None and not check(value):
        raise ConfigError(
            f"[{where}] {key} = {value!r} is out of range" + (f" (need {bound})" if bound else "")
        )
    return value


def _matrix(table: dict, key: str, where: str, shape: tuple) -> np.ndarray:
    if key not in table:
        raise ConfigError(f"missing required key [{where}] {key} (a {shape} array)")
    try:
        value = np.asarray(table[key], dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"[{where}] {key} must be a numeric array of shape {shape}") from None
    if value.shape != shape:
        raise ConfigError(f"[{where}] {key} has shape {value.shape}, expected {shape}")
    if not np.all(np.isfinite(value)):
        raise ConfigError(f"[{where}] {key} has non-finite entries")
    return value


def _check_known(table: dict, where: str, known: set) -> None:
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"unknown key(s) in [{where}]: {sorted(unknown)}; known: {sorted(known)}")


def _check_applicable(table: dict, where: str, selector: str, value: str, specific: dict) -> None:
    """Refuse keys that belong to another choice of `selector` (they would be silently ignored)."""
    if value not in specific:
        return  # the caller reports the unknown choice
    foreign = set().union(*specific.values()) - specific[value]
    stray = sorted(foreign & set(table))
    if stray:
        raise ConfigError(
            f"[{where}] {', '.join(stray)} only apply to other choices of {selector} than {value!r} "
            f"(they would be ignored); set {selector} accordingly or remove them"
        )


def _check_table(raw: dict, name: str) -> dict:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{name} must be a table ([{name}]); got {table!r}")
    return table


def _parse_model_extras(model: dict) -> dict:
    """[model] teacher_activation, eta_v, weight_decay."""
    teacher_activation = _get(model, "teacher_activation", "model", str, default=None)
    if teacher_activation is not None:
        try:
            activation_from_name(teacher_activation)
        except ValueError as e:
            raise ConfigError(f"[model] teacher_activation: {e}") from None
    return {
        "teacher_activation": teacher_activation,
        "eta_v": _get(model, "eta_v", "model", default=None, check=lambda x: x > 0, bound="> 0"),
        "weight_decay": _get(
            model, "weight_decay", "model", default=0.0, check=lambda x: x >= 0, bound=">= 0"
        ),
    }


def parse_config(raw: dict, base=None) -> RunConfig:
    r"""Validate a configuration dictionary (parsed TOML) into a [`RunConfig`][].

    The values are converted to the engine's canonical convention (THEORY.md section 1) with
    the config's [conventions] (see [`plateaux.Convention`][]): `params0` holds $v = s_K\hat v$,
    $w = s_M\hat w$, `eta` the step $\ell_K\hat\eta$, horizons are in $\alpha$. `base`: the
    folder that a relative `[initial] from` is relative to (the config file's folder).
    """
    _check_known(
        raw,
        "top level",
        {"model", "teacher", "student", "learning", "integration", "simulation", "conventions", "initial"},
    )
    model = _check_table(raw, "model")
    _check_known(model, "model", {"K", "M", "activation", "teacher_activation", "eta_v", "weight_decay"})
    K = _get(model, "K", "model", int, check=lambda x: x >= 1)
    M = _get(model, "M", "model", int, check=lambda x: x >= 1)
    activation = _get(model, "activation", "model", str, default="erf")
    try:
        activation_from_name(activation)
    except ValueError as e:
        raise ConfigError(f"[model] activation: {e}") from None
    model_extras = _parse_model_extras(model)
    convention = parse_convention(raw)
    initial, self_described = parse_initial(raw, K, M, convention, base)

    teacher = _check_table(raw, "teacher")
    _check_known(teacher, "teacher", {"kind", "c", "T", "w"})
    kind = _get(teacher, "kind", "teacher", str, default="isotropic")
    _check_applicable(
        teacher, "teacher", "kind", kind, {"isotropic": set(), "correlated": {"c"}, "explicit": {"T"}}
    )
    if kind == "isotropic":
        T = np.eye(M)
    elif kind == "correlated":
        c = _get(teacher, "c", "teacher")
        try:
            T = np.asarray(correlated_teacher(M, c))
        except ValueError as e:
            raise ConfigError(f"[teacher] {e}") from None
    elif kind == "explicit":
        T = _matrix(teacher, "T", "teacher", (M, M))
    else:
        raise ConfigError(
            f"[teacher] kind = {kind!r} is unknown; use 'isotropic', 'correlated' or 'explicit'"
        )
    w = _matrix(teacher, "w", "teacher", (M,)) if "w" in teacher else None
    if not np.allclose(T, T.T, atol=1e-12) or np.min(np.linalg.eigvalsh((T + T.T) / 2)) < -1e-10:
        raise ConfigError(f"[teacher] T must be symmetric positive semi-definite; got {T.tolist()}")

    student = _check_table(raw, "student")
    _check_known(student, "student", {"start", "seed", "q_max", "overlap_max", "Q", "R", "v"})
    start = _get(student, "start", "student", str, default="classic")
    _check_applicable(
        student,
        "student",
        "start",
        start,
        {"classic": {"seed", "q_max", "overlap_max"}, "explicit": {"Q", "R"}},
    )
    v = _matrix(student, "v", "student", (K,)) if "v" in student else None
    if start == "classic":
        seed = _get(student, "seed", "student", int, default=0)
        q_max = _get(student, "q_max", "student", default=0.5, check=lambda x: x > 0)
        overlap_max = _get(student, "overlap_max", "student", default=1e-12, check=lambda x: x >= 0)
        try:
            key = jax.random.key(seed)
        except (OverflowError, ValueError, TypeError):
            raise ConfigError(f"[student] seed = {seed} must fit in 64 bits") from None
        try:
            params0 = classic_start(K, T, key, q_max=q_max, overlap_max=overlap_max, v=v, w=w)
        except ValueError as e:
            raise ConfigError(f"[student] classic start: {e}") from None
    elif start == "explicit":
        Q = _matrix(student, "Q", "student", (K, K))
        R = _matrix(student, "R", "student", (K, M))
        params0 = OrderParams(Q, R, T, v, w)
    else:
        raise ConfigError(f"[student] start = {start!r} is unknown; use 'classic' or 'explicit'")
    try:
        check_order_params(params0, "student start")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    explicit = {"v": "[student]" if v is not None else None, "w": "[teacher]" if w is not None else None}
    if initial is not None:
        params0 = initial
        files = None if self_described else f"[initial] files ({raw['initial']['from']})"
        explicit = {"v": files, "w": files}
    check_not_prescaled(params0, convention, explicit)

    learning = _check_table(raw, "learning")
    _check_known(learning, "learning", {"eta", "noise"})
    eta = _get(learning, "eta", "learning", check=lambda x: x > 0)
    noise = _get(learning, "noise", "learning", default=0.0, check=lambda x: x >= 0)
    eta_user = eta
    try:
        time_factor = convention.time_factor(eta, K)
    except ValueError as e:
        raise ConfigError(f"[conventions] {e}") from None
    # eta_v -> s_K^2 l_K eta_v; weight decay (J <- (1 - eta lambda / N) J) keeps its lambda.
    params0, eta, _, eta_v = convention.to_canonical(params0, eta, eta_v=model_extras["eta_v"])
    model_extras["eta_v"] = eta_v

    def to_alpha(t):
        return t / time_factor

    integ = _check_table(raw, "integration")
    _check_known(integ, "integration", {"horizon", "horizon_alpha", "num_saves", "rtol", "atol", "max_steps"})
    horizon = parse_horizon(integ, "integration", to_alpha)
    num_saves = _get(integ, "num_saves", "integration", int, default=400, check=lambda x: x >= 2)
    rtol = _get(integ, "rtol", "integration", default=1e-8, check=lambda x: 0 < x < 1)
    atol = _get(integ, "atol", "integration", default=1e-10, check=lambda x: 0 < x < 1)
    max_steps = _get(integ, "max_steps", "integration", int, default=200_000, check=lambda x: x >= 1)

    simulation = None
    if "simulation" in raw:
        sim = _check_table(raw, "simulation")
        _check_known(sim, "simulation", {"N", "seeds", "seed", "horizon", "horizon_alpha", "records"})
        simulation = SimulationConfig(
            N=_get(sim, "N", "simulation", int, check=lambda x: x >= K + M, bound=f">= K + M = {K + M}"),
            seeds=_get(sim, "seeds", "simulation", int, default=4, check=lambda x: x >= 1),
            seed=_get(sim, "seed", "simulation", int, default=1),
            horizon=parse_horizon(sim, "simulation", to_alpha, default=horizon),
            records=_get(sim, "records", "simulation", int, default=200, check=lambda x: x >= 1),
        )
    if simulation is not None and simulation.horizon * simulation.N < simulation.records:
        raise ConfigError(
            f"[simulation] records = {simulation.records} exceeds horizon x N = "
            f"{simulation.horizon * simulation.N:g} steps: lower records or raise horizon"
        )
    return RunConfig(
        raw,
        K,
        M,
        activation,
        params0,
        eta,
        noise,
        horizon,
        num_saves,
        rtol,
        atol,
        max_steps,
        simulation,
        convention=convention,
        eta_user=eta_user,
        time_factor=time_factor,
        **model_extras,
    )


def load_config(path) -> RunConfig:
    """Read and validate a TOML configuration file."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    from pathlib import Path

    return parse_config(raw, base=Path(path).parent)
