r"""The rectified linear unit $g(x) = \max(0, x)$: closed forms for $I_2$, $J_2$, $I_3$."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from ._base import AbstractActivation
from ._orthant import orthant_m2
from ._quadrature import _stack_cov


def _safe_div(a, b):
    ok = b > 0
    return jnp.where(ok, a / jnp.where(ok, b, 1.0), 0.0)


def _angle(c11, c12, c22):
    """theta = arccos(rho) in [0, pi]; 0/0 (a vanishing field) -> pi/2, whose terms vanish."""
    rho = _safe_div(c12, jnp.sqrt(c11 * c22))
    return jnp.arccos(jnp.clip(rho, -1.0, 1.0))


class ReLU(AbstractActivation):
    r"""$g(x) = \max(0, x)$, $g'(x) = \Theta(x)$ (with $g'(0) = 0$, as `jax.nn.relu`).

    With $\rho_{ab} = c_{ab}/\sqrt{c_{aa}c_{bb}}$ and $\theta_{ab} = \arccos\rho_{ab}$:

    - $I_2 = \frac{\sqrt{c_{11}c_{22}}}{2\pi}\left(\sin\theta_{12}
      + (\pi - \theta_{12})\cos\theta_{12}\right)$ (the order-1 arc-cosine kernel,
      Cho & Saul 2009);
    - $J_2 = \frac{\pi - \theta_{12}}{2\pi} = \frac14 + \frac{\arcsin\rho_{12}}{2\pi}$;
    - $I_3 = c_{12}\,\frac{\sqrt{c_{11}c_{33} - c_{13}^2}}{2\pi c_{11}}
      + c_{23}\,\frac{\pi - \theta_{13}}{2\pi}$. *Derivation:* Stein's lemma
      $\langle u_2 h(u_1, u_3)\rangle = c_{12}\langle\partial_1 h\rangle + c_{23}\langle
      \partial_3 h\rangle$ with $h = \Theta(u_1)\max(0, u_3)$ gives
      $\langle\delta(u_1)\max(0, u_3)\rangle = p_{u_1}(0)\,\langle\max(0,u_3)\,|\,u_1 = 0\rangle
      = \frac{1}{\sqrt{2\pi c_{11}}}\sqrt{\frac{c_{33} - c_{13}^2/c_{11}}{2\pi}}$ and
      $\langle\Theta(u_1)\Theta(u_3)\rangle = J_2(c_{11}, c_{13}, c_{33})$.
    - $I_4 = \langle u_3u_4\,\mathbb 1[u_1, .., u_4 > 0]\rangle$, an orthant moment: reduced by
      Stein's lemma to orthant probabilities, closed up to three fields and a smooth 1-d
      Gauss-Legendre integral (Plackett's identity) for four (see `_orthant.py`). Tensor
      builders integrate each entry over its distinct fields only. (Tensor-product
      Gauss-Hermite, the generic path, converges only like 1/order on the steps of $g'$.)

    A field of zero variance ($c_{aa} = 0$) is identically 0, where $g = g' = 0$: every
    average with it vanishes ($I_3$ is discontinuous there: its limit $c_{11}\to0$ keeps
    the $\delta$ term).

    **Arguments:** `order`: Gauss-Hermite order per dimension for blocks mixed with another
    activation (slow, algebraic convergence there when a $g'$ step enters: check them with
    `plateaux.activations.quadrature_report`).
    """

    name = "relu"
    order: int = eqx.field(static=True, default=16, kw_only=True)

    def g(self, x):
        return jax.nn.relu(x)

    def dg(self, x):
        return jnp.where(x > 0, 1.0, 0.0)

    def i2(self, c11, c12, c22):
        theta = _angle(c11, c12, c22)
        return jnp.sqrt(c11 * c22) / (2.0 * math.pi) * (jnp.sin(theta) + (math.pi - theta) * jnp.cos(theta))

    def j2(self, c11, c12, c22):
        nonzero = (c11 > 0) & (c22 > 0)
        return jnp.where(nonzero, (math.pi - _angle(c11, c12, c22)) / (2.0 * math.pi), 0.0)

    def i3(self, c11, c12, c13, c23, c33):
        cond_var = jnp.clip(c11 * c33 - c13**2, 0.0, None)
        delta_term = c12 * _safe_div(jnp.sqrt(cond_var), c11) / (2.0 * math.pi)
        return jnp.where(c11 > 0, delta_term, 0.0) + c23 * self.j2(c11, c13, c33)

    def i4(self, c11, c12, c13, c14, c22, c23, c24, c33, c34, c44):
        # The orthant reduction needs distinct fields. Positively collinear fields (rho = 1)
        # share their indicator: a g'-field collinear with a later field is dropped from the
        # orthant, u4 = lam u3 gives lam <u3^2 1[...]>. Every drop pattern is evaluated and
        # the one that applies is selected (static shapes).
        S = _stack_cov([c11, c12, c13, c14], [c12, c22, c23, c24], [c13, c23, c33, c34], [c14, c24, c34, c44])

        def same(a, b):
            return S[..., a, b] >= (1.0 - 1e-12) * jnp.sqrt(S[..., a, a] * S[..., b, b])

        drop1 = same(0, 1) | same(0, 2) | same(0, 3)
        drop2 = same(1, 2) | same(1, 3)
        drop4 = same(2, 3)
        lam = _safe_div(jnp.sqrt(S[..., 3, 3]), jnp.sqrt(S[..., 2, 2]))
        out = jnp.zeros(S.shape[:-2])
        for d1 in (False, True):
            for d2 in (False, True):
                for d4 in (False, True):
                    keep = [j for j, drop in ((0, d1), (1, d2), (2, False), (3, d4)) if not drop]
                    sub = S[..., keep, :][..., :, keep]
                    a = keep.index(2)
                    val = orthant_m2(sub, a, a) * lam if d4 else orthant_m2(sub, a, keep.index(3))
                    here = (drop1 == d1) & (drop2 == d2) & (drop4 == d4)
                    out = jnp.where(here, val, out)
        return out

    def i4_distinct(self, S, sig):
        # g'(u_a) g'(u_b) g(u_c) g(u_d) = u_c u_d 1[all distinct fields > 0].
        return orthant_m2(S, sig[2], sig[3])
