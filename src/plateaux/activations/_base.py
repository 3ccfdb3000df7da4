"""The activation family: `g`, `g'` and the Gaussian averages the order-parameter ODEs need."""

import abc

import equinox as eqx
from jaxtyping import Array, ArrayLike, Float

from ._quadrature import average2, average4, average_i3, check_order


class AbstractActivation(eqx.Module):
    r"""An activation $g$ with its derivative and the Gaussian averages of the ODEs.

    For jointly Gaussian fields $u \sim \mathcal N(0, C)$ (entries $c_{ab}$ of the covariance
    of the fields involved) the learning equations of soft committee machines need

    - $I_2(a, b) = \langle g(u_a) g(u_b) \rangle$,
    - $J_2(a, b) = \langle g'(u_a) g'(u_b) \rangle$,
    - $I_3(a, b, c) = \langle g'(u_a)\, u_b\, g(u_c) \rangle$,
    - $I_4(a, b, c, d) = \langle g'(u_a) g'(u_b) g(u_c) g(u_d) \rangle$.

    Every method broadcasts over its (array) arguments, so a whole tensor of averages is one
    call. Concrete activations are final. The averages default to Gauss-Hermite quadrature
    of order `order` per dimension (see `plateaux.activations.quadrature_report` for its
    accuracy at a given state); concrete classes override them with closed forms where they
    exist. `order` also sets the quadrature of mixed student/teacher blocks.

    **References:** Saad & Solla, Phys. Rev. E 52, 4225 (1995); Biehl & Schwarze,
    J. Phys. A 28, 643 (1995); Goldt et al., NeurIPS (2019).
    """

    name: eqx.AbstractVar[str]

    def __check_init__(self):
        if hasattr(self, "order"):
            check_order(self.order)

    @abc.abstractmethod
    def g(self, x: ArrayLike) -> Float[Array, "..."]:
        """The activation $g(x)$."""

    @abc.abstractmethod
    def dg(self, x: ArrayLike) -> Float[Array, "..."]:
        """Its derivative $g'(x)$."""

    def i2(self, c11, c12, c22) -> Float[Array, "..."]:
        r"""$\langle g(u_1) g(u_2)\rangle$ (default: 2-field quadrature)."""
        return average2(self.g, self.g, c11, c12, c22, quadrature_order(self))

    def j2(self, c11, c12, c22) -> Float[Array, "..."]:
        r"""$\langle g'(u_1) g'(u_2)\rangle$ (default: 2-field quadrature)."""
        return average2(self.dg, self.dg, c11, c12, c22, quadrature_order(self))

    def i3(self, c11, c12, c13, c23, c33) -> Float[Array, "..."]:
        r"""$\langle g'(u_1)\, u_2\, g(u_3)\rangle$ ($c_{22}$ does not enter; default: 2-field
        quadrature after regressing $u_2$ on $(u_1, u_3)$)."""
        return average_i3(self.dg, self.g, c11, c12, c13, c23, c33, quadrature_order(self))

    def i4(self, c11, c12, c13, c14, c22, c23, c24, c33, c34, c44) -> Float[Array, "..."]:
        r"""$\langle g'(u_1) g'(u_2) g(u_3) g(u_4)\rangle$ (default: 4-field quadrature)."""
        return average4(
            self.dg,
            self.dg,
            self.g,
            self.g,
            c11,
            c12,
            c13,
            c14,
            c22,
            c23,
            c24,
            c33,
            c34,
            c44,
            quadrature_order(self),
        )

    def i4_distinct(self, S, sig):
        r"""$I_4$ entries over *distinct* fields (used by the tensor builders), or None.

        `S`: covariance `(G, d, d)` of the distinct fields of `G` entries; `sig`: for the
        factors $(g'_1, g'_2, g_3, g_4)$ the field each acts on (`None` for the $g'$ factors:
        it varies within the group, the rule must not need it; the $g'$ fields are all fields
        not taken by $g_3, g_4$ plus possibly those). Return the `(G,)` averages, or None (the
        default) for Gauss-Hermite quadrature.
        """
        return None


DEFAULT_ORDER = 16


def quadrature_order(act: AbstractActivation) -> int:
    """The activation's Gauss-Hermite order: its `order` field if it has one (all built-in
    activations do), else `DEFAULT_ORDER` (16)."""
    return getattr(act, "order", DEFAULT_ORDER)


def as_pair(act) -> tuple[AbstractActivation, AbstractActivation]:
    """`(student, teacher)` activations from one activation (both alike) or a pair.

    **Raises:** `ValueError` for anything else.
    """
    if isinstance(act, AbstractActivation):
        return act, act
    pair = isinstance(act, (tuple, list)) and len(act) == 2
    if pair and all(isinstance(a, AbstractActivation) for a in act):
        return act[0], act[1]
    raise ValueError(f"expected an activation or a (student, teacher) pair of activations; got {act!r}")
