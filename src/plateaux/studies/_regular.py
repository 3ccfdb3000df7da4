r"""The K = M = 2 schedule study of the README: best constant $\eta$, an optimised schedule
$\eta(\alpha)$ and natural gradient, on the time for $\epsilon_g$ to reach $10^{-3}$ (the
plateau exit) in the regular scenario.

Run `python -m plateaux.studies` (add `--fast` for a quick check). The start is
`px.scenarios.regular(2, overlap_max=1e-6)`: with the default initial asymmetry 1e-12, float64
rounding in the asymmetric directions (errors ~1e-16 per operation against a 1e-12 signal)
makes the exit time jitter by about $\pm0.5$ in $\alpha$ from one $\eta$ to the next
($\eta\to\eta + 10^{-7}$), which is as large as the gains to be measured; with 1e-6 the jitter
is below 1e-5.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .. import scenarios
from ..dynamics import OnlineSGD
from ..natural import NaturalGradientSGD
from ..schedules import Bounded, Scheduled
from ._design import best_constant, optimize_schedule
from ._outcomes import plateau_length, time_to_threshold

KNOTS = np.array([0.0, 0.5, 2.0, 8.0, 32.0, 64.0, 128.0, 192.0, 256.0])
CONSTANT_ETAS = np.round(np.arange(1.3, 2.201, 0.05), 2)
NGD_ETAS = np.array([0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.3])


@dataclasses.dataclass
class ScheduleStudy:
    """Results of [`schedule_study`][] (times in $\\alpha$)."""

    best_eta: float
    best_constant_time: float
    schedule: Bounded
    schedule_time: float
    losses: np.ndarray
    ngd_eta: float
    ngd_time: float
    constant_plateau: float
    schedule_plateau: float

    def table(self) -> str:
        gain = self.best_constant_time - self.schedule_time
        return "\n".join(
            [
                "| K = M = 2, T = I, time for eps_g to reach 1e-3 | eta | soft time | plateau length |",
                "|---|---|---|---|",
                f"| best constant eta (scan) | {self.best_eta:.2f} | {self.best_constant_time:.2f} "
                f"| {self.constant_plateau:.2f} |",
                f"| optimised schedule ({len(self.losses) - 1} Adam steps, eta <= "
                f"{float(self.schedule.eta_max):.1f}) | {_fmt(self.schedule(KNOTS))} | "
                f"{self.schedule_time:.2f} (-{gain:.2f}, {100 * gain / self.best_constant_time:.1f}%) "
                f"| {self.schedule_plateau:.2f} |",
                f"| natural gradient (best constant eta) | {self.ngd_eta:.2f} | {self.ngd_time:.2f} | |",
            ]
        )


def _fmt(values) -> str:
    return "[" + " ".join(f"{float(v):.2f}" for v in np.asarray(values)) + "]"


def schedule_study(
    *,
    steps: int = 150,
    learning_rate: float = 0.05,
    eta_max: float = 2.2,
    threshold: float = 1e-3,
    horizon: float = 1000.0,
    overlap_max: float = 1e-6,
    constant_etas=CONSTANT_ETAS,
    init=None,
) -> ScheduleStudy:
    r"""Best constant $\eta$ (scan over `constant_etas`), then Adam on a
    [`plateaux.schedules.Bounded`][] schedule (knots `KNOTS`, $\eta\le$ `eta_max`) started
    from it (or from `init`, values at the knots), minimising
    [`time_to_threshold`][]; natural gradient's best constant $\eta\le$ `eta_max` for
    comparison. All on the same start and horizon."""
    p0 = scenarios.regular(2, overlap_max=overlap_max).params0

    def exit_time(dynamics):
        return time_to_threshold(p0, dynamics, threshold, horizon)

    best_eta, _ = best_constant(lambda eta: exit_time(OnlineSGD(eta)), constant_etas)
    best_time = float(jax.jit(lambda eta: exit_time(OnlineSGD(eta)))(jnp.asarray(best_eta)))
    values = best_eta if init is None else init
    schedule0 = Bounded.from_values(KNOTS, values, eta_max)
    schedule, losses = optimize_schedule(
        lambda s: exit_time(Scheduled(OnlineSGD(1.0), s)),
        schedule0,
        steps=steps,
        optimizer=optax.adam(learning_rate),
    )
    ngd = NGD_ETAS[NGD_ETAS <= eta_max]
    ngd_eta, ngd_times = best_constant(lambda eta: exit_time(NaturalGradientSGD(eta)), ngd)
    plateau = jax.jit(lambda d: plateau_length(p0, d, horizon))
    return ScheduleStudy(
        best_eta=best_eta,
        best_constant_time=best_time,
        schedule=schedule,
        schedule_time=float(np.min(losses)),
        losses=losses,
        ngd_eta=ngd_eta,
        ngd_time=float(np.min(ngd_times)),
        constant_plateau=float(plateau(OnlineSGD(best_eta))),
        schedule_plateau=float(plateau(Scheduled(OnlineSGD(1.0), schedule))),
    )
