r"""Natural gradient learning of soft committee machines.

- Fisher information: [`fisher_matrix`][] (exact, erf, dense), [`fisher_structure`][] /
  [`FisherStructure`][] (exact, structured: $K\times K$ and $K^2\times K^2$ solves),
  [`fisher_monte_carlo`][] (any activation), [`natural_gradient`][].
- Finite-N rules for [`plateaux.simulate`][]: [`NaturalGradient`][] (exact Fisher),
  [`AdaptiveNaturalGradient`][] (online estimate of $G^{-1}$).
- The $N\to\infty$ order-parameter ODE: [`NaturalGradientSGD`][] (an
  [`plateaux.AbstractDynamics`][], so [`plateaux.integrate`][] and [`plateaux.analysis`][] work on it),
  and [`diagnose`][] (where along a trajectory the Fisher is near-singular or regularised).
"""

from ._fisher import (
    FisherReport as FisherReport,
    FisherStructure as FisherStructure,
    fisher_matrix as fisher_matrix,
    fisher_monte_carlo as fisher_monte_carlo,
    fisher_structure as fisher_structure,
    natural_gradient as natural_gradient,
    output_gradient as output_gradient,
)
from ._ode import NaturalGradientSGD as NaturalGradientSGD, diagnose as diagnose
from ._rules import AdaptiveNaturalGradient as AdaptiveNaturalGradient, NaturalGradient as NaturalGradient
