r"""A sweep: a grid of scenarios (rule x K x M x eta x c x noise x seed) and fixed settings.

Every scenario is a classic Saad & Solla start (`plateaux.classic_start` with the PRNG key
`jax.random.key(seed)`) against the correlated teacher $T = (1-c)I + c\,\mathbf 1\mathbf 1^T$
(`plateaux.correlated_teacher(M, c)`), learned with online SGD (`"sgd"`,
[`plateaux.OnlineSGD`][]) or natural gradient (`"ngd"`,
[`plateaux.natural.NaturalGradientSGD`][]). The same seed gives the same start for every
$\eta$, $c$ and rule, so rules and learning rates are compared from identical starts, and a
grid point reproduces `plateaux run` with the same settings.
"""

import dataclasses
import hashlib
import itertools
import json
import math
import sys

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

AXES = ("rule", "K", "M", "eta", "c", "noise", "seed")
RULES = ("sgd", "ngd")
_DEFAULTS = {"noise": 0.0, "seed": 0}
_SETTINGS = {
    "start": {"q_max": 0.5, "overlap_max": 1e-12},
    "integration": {"horizon": None, "num_saves": 200, "rtol": 1e-8, "atol": 1e-10, "max_steps": 200_000},
    "analysis": {"phases": True, "fixed_points": True},
}

SWEEP_REFERENCE = """\
SWEEP.toml reference (defaults in brackets):

  [grid]         each key a list of values (swept) or a single value; every key becomes a
                 dimension of the dataset (length 1 when fixed):
                 rule ("sgd" | "ngd"), K (student units >= 1), M (teacher units >= 1),
                 eta (> 0), c (teacher correlation in [0, 1)), noise (output-noise
                 std >= 0) [0.0], seed (classic-start PRNG seed >= 0) [0]
  [start]        classic start: q_max [0.5], overlap_max [1e-12]
  [integration]  horizon (final alpha; required), num_saves (log-spaced saves) [200],
                 rtol [1e-8], atol [1e-10], max_steps [200000]
  [analysis]     phases (segment every trajectory into classified phases) [true],
                 fixed_points (symmetric fixed point and its spectrum per rule, K, M, eta,
                 c, noise) [true]
"""


class SweepConfigError(ValueError):
    """A sweep configuration value is missing or invalid (the message names it)."""


def _check_axis(name: str, values: list) -> list:
    def bad(why):
        return SweepConfigError(f"[grid] {name} = {values!r}: {why}")

    if not values:
        raise bad("needs at least one value")
    if name == "rule":
        unknown = [v for v in values if v not in RULES]
        if unknown:
            raise bad(f"unknown rule(s) {unknown}; use {list(RULES)}")
    elif name in ("K", "M", "seed"):
        lower = 0 if name == "seed" else 1
        if any(isinstance(v, bool) or not isinstance(v, int) or v < lower for v in values):
            raise bad(f"needs integers >= {lower}")
        if name == "seed" and any(v >= 2**63 for v in values):
            raise bad("seeds must fit in 64 bits")
    else:
        if any(isinstance(v, (bool, str)) or not isinstance(v, (int, float)) for v in values):
            raise bad("needs numbers")
        values = [float(v) for v in values]
        ok = {
            "eta": (lambda x: x > 0, "eta > 0"),
            "c": (lambda x: 0 <= x < 1, "c in [0, 1)"),
            "noise": (lambda x: x >= 0, "noise >= 0"),
        }[name]
        wrong = [v for v in values if not (math.isfinite(v) and ok[0](v))]
        if wrong:
            raise bad(f"{wrong} out of range (need finite {ok[1]})")
    if len(set(values)) != len(values):
        raise bad("values must be distinct (they are coordinates)")
    return list(values)


def _setting(table: dict, where: str, key: str, default):
    value = table.get(key, default)
    if value is None:
        raise SweepConfigError(f"missing required key [{where}] {key}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise SweepConfigError(f"[{where}] {key} = {value!r} must be true or false")
        return value
    is_int = isinstance(default, int) or key == "num_saves"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or (is_int and value != int(value)):
        kind = "integer" if is_int else "number"
        raise SweepConfigError(f"[{where}] {key} = {value!r} is not a valid {kind}")
    value = int(value) if is_int else float(value)
    ok = {
        "q_max": value > 0,
        "overlap_max": value >= 0,
        "horizon": value > 0,
        "num_saves": value >= 2,
        "rtol": 0 < value < 1,
        "atol": 0 < value < 1,
        "max_steps": value >= 1,
    }[key]
    if not (math.isfinite(value) and ok):
        raise SweepConfigError(f"[{where}] {key} = {value!r} is out of range")
    return value


@dataclasses.dataclass(frozen=True)
class Sweep:
    r"""A validated sweep: `grid` maps each axis of [`AXES`][] to its list of values;
    `settings` holds the `start`, `integration` and `analysis` tables with defaults filled in.

    Build one with [`Sweep.from_toml`][] or [`Sweep.from_dict`][] (a parsed TOML document);
    [`config`][] is the canonical form written into the results and [`hash`][] its SHA-256.
    """

    grid: dict
    settings: dict

    @classmethod
    def from_dict(cls, raw: dict) -> "Sweep":
        """Validate a configuration (a parsed TOML document). **Raises:** `SweepConfigError`."""
        if not isinstance(raw, dict):
            raise SweepConfigError(f"a sweep config must be a table; got {type(raw).__name__}")
        unknown = set(raw) - {"grid", *_SETTINGS}
        if unknown:
            raise SweepConfigError(f"unknown table(s) {sorted(unknown)}; known: {['grid', *_SETTINGS]}")
        table = raw.get("grid")
        if not isinstance(table, dict):
            raise SweepConfigError("missing table [grid] (the swept axes)")
        unknown = set(table) - set(AXES)
        if unknown:
            raise SweepConfigError(f"unknown key(s) in [grid]: {sorted(unknown)}; known: {list(AXES)}")
        grid = {}
        for name in AXES:
            if name not in table and name not in _DEFAULTS:
                raise SweepConfigError(f"missing required key [grid] {name}")
            value = table.get(name, _DEFAULTS.get(name))
            grid[name] = _check_axis(name, value if isinstance(value, list) else [value])
        settings = {}
        for where, defaults in _SETTINGS.items():
            sub = raw.get(where, {})
            if not isinstance(sub, dict):
                raise SweepConfigError(f"{where} must be a table ([{where}]); got {sub!r}")
            unknown = set(sub) - set(defaults)
            if unknown:
                known = list(defaults)
                raise SweepConfigError(f"unknown key(s) in [{where}]: {sorted(unknown)}; known: {known}")
            settings[where] = {key: _setting(sub, where, key, default) for key, default in defaults.items()}
        return cls(grid, settings)

    @classmethod
    def from_toml(cls, path) -> "Sweep":
        """Read and validate a TOML sweep file. **Raises:** `SweepConfigError`."""
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError:
            raise SweepConfigError(f"sweep config not found: {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SweepConfigError(f"{path} is not valid TOML: {e}") from None
        except OSError as e:
            raise SweepConfigError(f"cannot read {path}: {e.strerror or e}") from None
        return cls.from_dict(raw)

    @property
    def config(self) -> dict:
        """The canonical configuration (every key explicit), as written into the results."""
        return {"grid": self.grid, **self.settings}

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical configuration (JSON, sorted keys)."""
        text = json.dumps(self.config, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def shape(self) -> tuple:
        return tuple(len(self.grid[a]) for a in AXES)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def save_times(self) -> np.ndarray:
        """The saving grid: 0 and `num_saves` log-spaced times up to the horizon."""
        from .._integrate import log_grid

        return log_grid(self.settings["integration"]["horizon"], self.settings["integration"]["num_saves"])

    def buckets(self) -> list[tuple[tuple, list[tuple[int, dict]]]]:
        """Scenarios grouped by shape and rule `(rule, K, M)`, each with its members
        `(flat index, {eta, c, noise, seed})` in grid order (seed fastest)."""
        out = []
        for rule, K, M in itertools.product(self.grid["rule"], self.grid["K"], self.grid["M"]):
            members = []
            for eta, c, noise, seed in itertools.product(*(self.grid[a] for a in AXES[3:])):
                point = dict(rule=rule, K=K, M=M, eta=eta, c=c, noise=noise, seed=seed)
                index = np.ravel_multi_index(tuple(self.grid[a].index(point[a]) for a in AXES), self.shape)
                members.append((int(index), {"eta": eta, "c": c, "noise": noise, "seed": seed}))
            out.append(((rule, K, M), members))
        return out
