"""The scaled error function $g(x) = \\mathrm{erf}(x/\\sqrt 2)$ and its closed-form averages."""

import math

import equinox as eqx
import jax.numpy as jnp
import jax.scipy.special as jss

from ._arcsin import arcsin
from ._base import AbstractActivation

_TWO_OVER_PI = 2.0 / math.pi


def _safe_arcsin(x):
    # Round-off can push a correlation coefficient of a PSD covariance a hair past +-1.
    # arcsin: a vectorisable float64 Cephes approximation, ~10x cheaper than jnp.arcsin on CPU.
    return arcsin(jnp.clip(x, -1.0, 1.0))


class Erf(AbstractActivation):
    r"""$g(x) = \mathrm{erf}(x/\sqrt 2)$, $g'(x) = \sqrt{2/\pi}\, e^{-x^2/2}$.

    Closed forms (Saad & Solla 1995; Biehl & Schwarze 1995), with $c_{ab}$ the covariance
    entries of the fields involved:

    - $I_2 = \frac{2}{\pi}\arcsin\frac{c_{12}}{\sqrt{(1+c_{11})(1+c_{22})}}$
    - $J_2 = \frac{2}{\pi}\left[(1+c_{11})(1+c_{22}) - c_{12}^2\right]^{-1/2}$
    - $I_3 = \frac{2}{\pi}\frac{1}{\sqrt{\Lambda_3}}\frac{c_{23}(1+c_{11}) - c_{12}c_{13}}{1+c_{11}}$,
      $\Lambda_3 = (1+c_{11})(1+c_{33}) - c_{13}^2$
    - $I_4 = \frac{4}{\pi^2}\frac{1}{\sqrt{\Lambda_4}}\arcsin\frac{\Lambda_0}{\sqrt{\Lambda_1\Lambda_2}}$
      with $\Lambda_4 = (1+c_{11})(1+c_{22}) - c_{12}^2$,
      $\Lambda_0 = \Lambda_4 c_{34} - c_{23}c_{24}(1+c_{11}) - c_{13}c_{14}(1+c_{22})
      + c_{12}c_{13}c_{24} + c_{12}c_{14}c_{23}$,
      $\Lambda_1 = \Lambda_4(1+c_{33}) - c_{23}^2(1+c_{11}) - c_{13}^2(1+c_{22})
      + 2c_{12}c_{13}c_{23}$, $\Lambda_2$ = $\Lambda_1$ with $3\to4$.

    All denominators are determinants of $I + C$ restricted to a few fields, hence positive
    for any positive semi-definite $C$.

    **Arguments:** `order`: Gauss-Hermite order per dimension, used only for blocks mixed with
    a different teacher/student activation.
    """

    name = "erf"
    order: int = eqx.field(static=True, default=16, kw_only=True)

    def g(self, x):
        return jss.erf(x / math.sqrt(2.0))

    def dg(self, x):
        return math.sqrt(_TWO_OVER_PI) * jnp.exp(-0.5 * x**2)

    def i2(self, c11, c12, c22):
        return _TWO_OVER_PI * _safe_arcsin(c12 / jnp.sqrt((1.0 + c11) * (1.0 + c22)))

    def j2(self, c11, c12, c22):
        return _TWO_OVER_PI / jnp.sqrt((1.0 + c11) * (1.0 + c22) - c12**2)

    def i3(self, c11, c12, c13, c23, c33):
        lambda3 = (1.0 + c11) * (1.0 + c33) - c13**2
        return _TWO_OVER_PI / jnp.sqrt(lambda3) * (c23 * (1.0 + c11) - c12 * c13) / (1.0 + c11)

    def i4(self, c11, c12, c13, c14, c22, c23, c24, c33, c34, c44):
        lambda4 = (1.0 + c11) * (1.0 + c22) - c12**2
        lambda0 = (
            lambda4 * c34
            - c23 * c24 * (1.0 + c11)
            - c13 * c14 * (1.0 + c22)
            + c12 * c13 * c24
            + c12 * c14 * c23
        )
        lambda1 = lambda4 * (1.0 + c33) - c23**2 * (1.0 + c11) - c13**2 * (1.0 + c22) + 2.0 * c12 * c13 * c23
        lambda2 = lambda4 * (1.0 + c44) - c24**2 * (1.0 + c11) - c14**2 * (1.0 + c22) + 2.0 * c12 * c14 * c24
        return (4.0 / math.pi**2) / jnp.sqrt(lambda4) * _safe_arcsin(lambda0 / jnp.sqrt(lambda1 * lambda2))
