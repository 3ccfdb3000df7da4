"""The [conventions] and [initial] tables of a run configuration, and horizons in either unit.

Values are interpreted in the config's [`plateaux.Convention`][] and converted exactly to the
engine's canonical one by `parse_config`; see the README section "Conventions and round trips".
"""

from pathlib import Path

import numpy as np

from .._conventions import Convention
from .._io import load_text, read_convention
from .._order_params import OrderParams
from . import _config as _c  # partially initialised while _config imports this module: used at call time


def parse_convention(raw: dict) -> Convention:
    table = _c._check_table(raw, "conventions")
    _c._check_known(table, "conventions", {"output_scale", "time_unit", "lr_scale"})
    for key, value in table.items():
        if not isinstance(value, str):
            raise _c.ConfigError(f"[conventions] {key} = {value!r} must be a string")
    try:
        return Convention(**table)
    except ValueError as e:
        raise _c.ConfigError(f"[conventions] {e}") from None


def parse_initial(raw: dict, K: int, M: int, convention: Convention, base):
    """The start read from `[initial] from = "DIR"`, in the config's convention, and whether the
    files recorded their own convention (None, False without an [initial] table). Files with a
    `convention.json` are converted exactly from it; files without are in the config's."""
    if "initial" not in raw:
        return None, False
    table = _c._check_table(raw, "initial")
    _c._check_known(table, "initial", {"from"})
    where = _c._get(table, "from", "initial", str)
    path = Path(where).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    for name in ("teacher", "student"):
        if _c._check_table(raw, name):
            raise _c.ConfigError(
                f"[initial] from = {where!r} gives the whole start (Q, R, T, v, w): remove the "
                f"[{name}] table, whose keys would be ignored"
            )
    try:
        params = load_text(path)
        recorded = read_convention(path)
    except (OSError, ValueError) as e:
        raise _c.ConfigError(f"[initial] from = {where!r}: {e}") from None
    if (params.K, params.M) != (K, M):
        raise _c.ConfigError(
            f"[initial] from = {where!r} holds K = {params.K}, M = {params.M} "
            f"but [model] has K = {K}, M = {M}"
        )
    if recorded is not None and recorded.output_scale != convention.output_scale:
        params = convention.from_canonical(recorded.to_canonical(params).params).params
    return params, recorded is not None


def check_not_prescaled(params: OrderParams, convention: Convention, source: dict) -> None:
    """Refuse v (w) equal to s_K (s_M) times ones together with that output scale: the scale
    would be applied twice (v and w are always the convention's own second-layer weights)."""
    for field, n, where in (("v", params.K, source["v"]), ("w", params.M, source["w"])):
        s = convention.output_factor(n)
        value = np.asarray(getattr(params, field))
        if where is not None and s != 1.0 and np.allclose(value, s, rtol=1e-12, atol=0.0):
            raise _c.ConfigError(
                f"{where} {field} = {value.tolist()} already equals the output scale "
                f"{convention.output_scale} = {s:.6g}: with [conventions] output_scale = "
                f"{convention.output_scale!r} the output is multiplied by it, so it would be applied "
                f"twice. Give {field} in the convention's units (ones for a plain committee) or set "
                'output_scale = "none" (e.g. for nn2pp files, whose v and A already include it)'
            )


def parse_horizon(table: dict, where: str, to_alpha, default=...) -> float:
    """`horizon` (in the convention's time unit) or `horizon_alpha`, as alpha."""
    if "horizon" in table and "horizon_alpha" in table:
        raise _c.ConfigError(
            f"[{where}] gives both horizon (in the [conventions] time unit) and horizon_alpha; give one"
        )
    if "horizon_alpha" in table:
        return _c._get(table, "horizon_alpha", where, check=lambda x: x > 0)
    if "horizon" not in table and default is not ...:
        return default
    if "horizon" not in table:
        raise _c.ConfigError(f"missing required key [{where}] horizon (or horizon_alpha)")
    return to_alpha(_c._get(table, "horizon", where, check=lambda x: x > 0))
