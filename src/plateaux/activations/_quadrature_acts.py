r"""Activations whose Gaussian averages all come from quadrature: tanh, sigmoid, user functions."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._base import AbstractActivation


class Tanh(AbstractActivation):
    r"""$g(x) = \tanh x$, $g'(x) = 1 - \tanh^2 x$; all averages by Gauss-Hermite quadrature.

    **Arguments:** `order`: Gauss-Hermite order per dimension.
    """

    name = "tanh"
    order: int = eqx.field(static=True, default=16, kw_only=True)

    def g(self, x):
        return jnp.tanh(x)

    def dg(self, x):
        return 1.0 - jnp.tanh(x) ** 2


class Sigmoid(AbstractActivation):
    r"""$g(x) = 1/(1 + e^{-x})$, $g'(x) = g(x)(1 - g(x))$; all averages by quadrature.

    **Arguments:** `order`: Gauss-Hermite order per dimension.
    """

    name = "sigmoid"
    order: int = eqx.field(static=True, default=16, kw_only=True)

    def g(self, x):
        return jax.nn.sigmoid(x)

    def dg(self, x):
        s = jax.nn.sigmoid(x)
        return s * (1.0 - s)


class Custom(AbstractActivation):
    r"""Any elementwise `jnp` function $g$; $g'$ by forward-mode autodiff, every average by
    Gauss-Hermite quadrature.

    ```python
    act = px.Custom(lambda x: jnp.tanh(x) + 0.1 * x, name="leaky-tanh")
    ```

    **Arguments:** `fn` (a callable, applied elementwise), `name` (a label), `order`
    (Gauss-Hermite order per dimension). Quadrature converges fast for smooth `fn`, slowly
    for kinks and steps: check it with `plateaux.activations.quadrature_report`.

    **Raises:** `ValueError` if `fn` is not callable or `order` is not a positive integer.
    """

    fn: Callable = eqx.field(static=True)
    name: str = eqx.field(static=True, default="custom")
    order: int = eqx.field(static=True, default=16, kw_only=True)

    def __check_init__(self):
        if not callable(self.fn):
            raise ValueError(f"Custom activation needs a callable fn; got fn={self.fn!r}")
        # Gaussian fields reach every real x: fn must act elementwise and be finite there.
        probe = np.linspace(-6.0, 6.0, 25)
        try:
            values = np.asarray(self.fn(jnp.asarray(probe)), dtype=float)
        except Exception as e:
            raise ValueError(f"Custom activation {self.name!r}: fn failed on an array of inputs: {e}") from e
        if values.shape != probe.shape:
            raise ValueError(
                f"Custom activation {self.name!r}: fn must act elementwise (output shape = input shape); "
                f"got shape {values.shape} for an input of shape {probe.shape}"
            )
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(
                f"Custom activation {self.name!r}: fn is not finite at x={probe[bad][0]:g} "
                "(Gaussian fields take every real value)"
            )

    def g(self, x):
        return jnp.asarray(self.fn(jnp.asarray(x, dtype=float)), dtype=float)

    def dg(self, x):
        x = jnp.asarray(x, dtype=float)
        return jax.jvp(self.g, (x,), (jnp.ones_like(x),))[1]
