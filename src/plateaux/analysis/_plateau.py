r"""Locate the plateau of a generalization-error curve (a summary heuristic).

A *plateau* here is the longest stretch of a log-spaced $\epsilon_g(\alpha)$ curve that is flat
on log-log axes, $|d\ln\epsilon_g/d\ln\alpha| <$ `flatness`, over at least a factor
`min_factor` in $\alpha$, at an error above `floor`. Its *exit* is the first
time after it where $\epsilon_g$ falls below `drop` times the plateau height. This only
finds stalls in the error; telling a plateau from a quasi-plateau needs the spectra (see the
singularity tools).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class PlateauInfo:
    """A flat phase of $\\epsilon_g$: median `height`, `entry` and `exit` times (`exit` is
    `None` when the curve is still on the plateau at the end) and its rule's thresholds."""

    height: float
    entry: float
    exit: float | None
    flatness: float
    drop: float

    @property
    def length(self) -> float | None:
        return None if self.exit is None else self.exit - self.entry

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"length": self.length}


def mask_runs(mask: np.ndarray):
    """Yield `(start, end)` (inclusive) of every maximal run of True in a 1-d boolean mask."""
    start = None
    for i, m in enumerate(np.append(mask, False)):
        if m and start is None:
            start = i
        elif not m and start is not None:
            yield start, i - 1
            start = None


def find_plateau(
    t,
    eg,
    *,
    flatness: float = 0.1,
    min_factor: float = 3.0,
    drop: float = 0.5,
    floor: float = 1e-7,
    min_time: float = 1.0,
) -> PlateauInfo | None:
    r"""Find the plateau of $\epsilon_g(\alpha)$ sampled on an increasing grid `t`.

    Rule: on points with $\alpha > 0$ compute the log-log slope
    $s = d\ln\epsilon_g/d\ln\alpha$; flat runs are maximal runs with $|s| <$ `flatness`
    spanning a factor $\ge$ `min_factor` in $\alpha$ with $\epsilon_g >$ `floor`
    (so a converged tail, resolved only to about the solver's `rtol`, is not a plateau) that last beyond
    $\alpha =$ `min_time` (so the initial instant, flat on a log axis because nothing has
    moved yet, is not one). The longest run wins.

    **Returns:** a [`PlateauInfo`][] or `None` if no run qualifies.
    """
    t, eg = np.asarray(t, dtype=float), np.asarray(eg, dtype=float)
    if t.shape != eg.shape or t.ndim != 1:
        raise ValueError(f"t and eg must be 1-d arrays of equal length; got {t.shape}, {eg.shape}")
    keep = (t > 0) & np.isfinite(eg) & (eg > 0)
    if keep.sum() < 3:
        return None
    t_pos, eg_pos = t[keep], eg[keep]
    slope = np.gradient(np.log(eg_pos), np.log(t_pos))
    flat = (np.abs(slope) < flatness) & (eg_pos > floor)
    runs = [
        (start, end)
        for start, end in mask_runs(flat)
        if t_pos[end] / t_pos[start] >= min_factor and t_pos[end] > min_time
    ]
    best = max(runs, key=lambda run: t_pos[run[1]] / t_pos[run[0]], default=None)
    if best is None:
        return None
    s, e = best
    height = float(np.median(eg_pos[s : e + 1]))
    below = np.nonzero(eg_pos[e:] < drop * height)[0]
    exit_time = float(t_pos[e + below[0]]) if below.size else None
    return PlateauInfo(height, float(t_pos[s]), exit_time, flatness, drop)
