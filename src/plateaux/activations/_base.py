"""The activation family: `g`, `g'` and the Gaussian averages the order-parameter ODEs need."""

import abc

import equinox as eqx
from jaxtyping import Array, ArrayLike, Float


class AbstractActivation(eqx.Module):
    r"""An activation $g$ with its derivative and the Gaussian averages of the ODEs.

    For jointly Gaussian fields $u \sim \mathcal N(0, C)$ (entries $c_{ab}$ of the covariance
    of the fields involved) the learning equations of soft committee machines need

    - $I_2(a, b) = \langle g(u_a) g(u_b) \rangle$,
    - $J_2(a, b) = \langle g'(u_a) g'(u_b) \rangle$,
    - $I_3(a, b, c) = \langle g'(u_a)\, u_b\, g(u_c) \rangle$,
    - $I_4(a, b, c, d) = \langle g'(u_a) g'(u_b) g(u_c) g(u_d) \rangle$.

    Every method broadcasts over its (array) arguments, so a whole tensor of averages is one
    call. Concrete activations are final; closed forms live in the concrete class.

    **References:** Saad & Solla, Phys. Rev. E 52, 4225 (1995); Biehl & Schwarze,
    J. Phys. A 28, 643 (1995); Goldt et al., NeurIPS (2019).
    """

    name: eqx.AbstractClassVar[str]

    @abc.abstractmethod
    def g(self, x: ArrayLike) -> Float[Array, "..."]:
        """The activation $g(x)$."""

    @abc.abstractmethod
    def dg(self, x: ArrayLike) -> Float[Array, "..."]:
        """Its derivative $g'(x)$."""

    @abc.abstractmethod
    def i2(self, c11, c12, c22) -> Float[Array, "..."]:
        r"""$\langle g(u_1) g(u_2)\rangle$."""

    @abc.abstractmethod
    def j2(self, c11, c12, c22) -> Float[Array, "..."]:
        r"""$\langle g'(u_1) g'(u_2)\rangle$."""

    @abc.abstractmethod
    def i3(self, c11, c12, c13, c23, c33) -> Float[Array, "..."]:
        r"""$\langle g'(u_1)\, u_2\, g(u_3)\rangle$ ($c_{22}$ does not enter)."""

    @abc.abstractmethod
    def i4(self, c11, c12, c13, c14, c22, c23, c24, c33, c34, c44) -> Float[Array, "..."]:
        r"""$\langle g'(u_1) g'(u_2) g(u_3) g(u_4)\rangle$."""
