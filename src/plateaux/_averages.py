r"""Tensors of Gaussian averages over the joint fields $(x_1..x_K, y_1..y_M)$.

All tensors are built from the joint covariance $C = [[Q, R], [R^T, T]]$. Student indices run
over the first $K$ fields; "any" indices over all $K + M$.

`act` is either one [`plateaux.AbstractActivation`][] (student and teacher alike) or a pair
`(student_act, teacher_act)`. A factor $g(u_c)$ uses the student's $g$ for $c < K$ and the
teacher's for $c \ge K$; $g'$ factors of student fields use the student's $g'$ (of teacher
fields, in $J_2$, the teacher's). Blocks whose functions all come from one activation use its
closed forms where it has them; mixed blocks use Gauss-Hermite quadrature at the larger of
the two activations' orders.

Quadrature $I_4$ tensors exploit the symmetries $I_4(i,k,c,d) = I_4(k,i,c,d) = I_4(i,k,d,c)$
and integrate every entry over its *distinct* fields only (an entry with $i = k$ or $c = i$
is a 3-field integral, and so on), grouped by pattern so that each group is one batched
quadrature.
"""

import dataclasses
import itertools

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .activations import AbstractActivation, as_pair
from .activations._base import quadrature_order
from .activations._quadrature import average2, average_i3, gaussian_average


def _alike(student, teacher) -> bool:
    """Same functions g, g' (the quadrature order does not matter): closed forms apply."""
    if student == teacher:
        return True
    if not (hasattr(student, "order") and hasattr(teacher, "order")):
        return False
    return dataclasses.replace(student, order=1) == dataclasses.replace(teacher, order=1)


def _need_k(pair, K):
    student, teacher = pair
    if not _alike(student, teacher) and K is None:
        raise ValueError(
            f"K (number of student fields) is required when student and teacher activations differ; "
            f"got {student.name!r} and {teacher.name!r}"
        )


def _order(*acts) -> int:
    return max(quadrature_order(a) for a in acts)


def _pairwise(act, fname, C, K):
    """[f(u_a) f(u_b)] over all field pairs with the per-side function `fname` ("g" or "dg")."""
    student, teacher = pair = as_pair(act)
    _need_k(pair, K)
    d = jnp.diagonal(C, axis1=-2, axis2=-1)
    method = "i2" if fname == "g" else "j2"
    if _alike(student, teacher):
        return getattr(student, method)(d[..., :, None], C, d[..., None, :])
    ds, dt = d[..., :K], d[..., K:]
    Css, Cst, Ctt = C[..., :K, :K], C[..., :K, K:], C[..., K:, K:]
    ss = getattr(student, method)(ds[..., :, None], Css, ds[..., None, :])
    tt = getattr(teacher, method)(dt[..., :, None], Ctt, dt[..., None, :])
    st = average2(
        getattr(student, fname),
        getattr(teacher, fname),
        ds[..., :, None],
        Cst,
        dt[..., None, :],
        _order(student, teacher),
    )
    top = jnp.concatenate([ss, st], axis=-1)
    bottom = jnp.concatenate([jnp.swapaxes(st, -1, -2), tt], axis=-1)
    return jnp.concatenate([top, bottom], axis=-2)


def i2_matrix(act, C: Float[Array, "*b n n"], K: int | None = None) -> Float[Array, "*b n n"]:
    r"""$[I_2]_{ab} = \langle g(u_a) g(u_b)\rangle$ over all field pairs (batch axes allowed).

    **Raises:** `ValueError` if the student and teacher activations differ and `K` is None.
    """
    return _pairwise(act, "g", C, K)


def j2_matrix(act, C: Float[Array, "*b n n"], K: int | None = None) -> Float[Array, "*b n n"]:
    r"""$[J_2]_{ab} = \langle g'(u_a) g'(u_b)\rangle$ over all field pairs (teacher fields with
    the teacher's $g'$).

    **Raises:** `ValueError` if the student and teacher activations differ and `K` is None.
    """
    return _pairwise(act, "dg", C, K)


def i3_arguments(d, C, K: int) -> tuple:
    r"""The covariance entries $(c_{11}, c_{12}, c_{13}, c_{23}, c_{33})$ of $I_3(x_i, u_b, u_c)$
    on the grid $(i, b, c)$, from the diagonal `d` and `C` (field axes first; any trailing
    batch axes are carried along)."""
    a = slice(0, K)
    return (d[a, None, None], C[a, :, None], C[a, None, :], C[None, :, :], d[None, None, :])


def i4_arguments(d, C, K: int) -> tuple:
    r"""The ten covariance entries of $I_4(x_i, x_k, u_c, u_d)$ on the grid $(i, k, c, d)$, from
    the diagonal `d` and `C` (field axes first; trailing batch axes are carried along)."""
    s = slice(0, K)
    return (
        d[s, None, None, None],
        C[s, s][:, :, None, None],
        C[s, :][:, None, :, None],
        C[s, :][:, None, None, :],
        d[None, s, None, None],
        C[s, :][None, :, :, None],
        C[s, :][None, :, None, :],
        d[None, None, :, None],
        C[None, None, :, :],
        d[None, None, None, :],
    )


def i3_tensor(act, C: Float[Array, "n n"], K: int) -> Float[Array, "K n n"]:
    r"""$[I_3]_{i b c} = \langle g'(x_i)\, u_b\, g(u_c)\rangle$, $i$ a student field."""
    student, teacher = as_pair(act)
    d = jnp.diagonal(C)
    a = slice(0, K)
    out = student.i3(*i3_arguments(d, C, K))
    if _alike(student, teacher):
        return out
    # Columns c >= K: the teacher's g with the student's g'.
    t = slice(K, None)
    mixed = average_i3(
        student.dg,
        teacher.g,
        d[a, None, None],
        C[a, :, None],
        C[a, None, t],
        C[None, :, t],
        d[None, None, t],
        _order(student, teacher),
    )
    return jnp.concatenate([out[:, :, :K], mixed], axis=-1)


def _has_closed_i4(act: AbstractActivation) -> bool:
    # Activations with a distinct-field rule (ReLU) go through the grouped path instead.
    cls = type(act)
    return cls.i4 is not AbstractActivation.i4 and cls.i4_distinct is AbstractActivation.i4_distinct


def _closed_i4(act, C, K):
    return act.i4(*i4_arguments(jnp.diagonal(C), C, K))  # axes (i, k, c, d)


def _i4_groups(K: int, n: int, needed):
    """Group the entries (i <= k, c <= d) with `needed(c, d)` by their pattern of distinct
    fields. Returns {(dim, signature): (fields (G, dim), entries (G, 4))}; the signature says,
    per factor (g'_i, g'_k, g_c, g_d), which distinct field it acts on."""
    groups: dict = {}
    for i, k in itertools.combinations_with_replacement(range(K), 2):
        for c, dd in itertools.combinations_with_replacement(range(n), 2):
            if not needed(c, dd):
                continue
            # Fields ordered (c, d, the rest): the g-factors sit at positions 0 and 0/1.
            fields = [c] + ([dd] if dd != c else []) + sorted({i, k} - {c, dd})
            sig = tuple(fields.index(x) for x in (i, k, c, dd))
            # Which g the g-factors use (student: 0, teacher: 1) is part of the pattern.
            key = (len(fields), sig, int(c >= K), int(dd >= K))
            groups.setdefault(key, ([], []))
            groups[key][0].append(fields)
            groups[key][1].append((i, k, c, dd))
    return {key: (np.array(f), np.array(e)) for key, (f, e) in groups.items()}


def _quadrature_i4(student, teacher, C, K, needed):
    n = C.shape[-1]
    order = _order(student, teacher)
    hook = type(student).i4_distinct is not AbstractActivation.i4_distinct
    # With a distinct-field rule only the g-factor positions matter: merge those groups.
    merged: dict = {}
    for (dim, sig, tc, td), (fields, entries) in _i4_groups(K, n, needed).items():
        one_act = _alike(student, teacher) or not (tc or td)
        key = (dim, (None, None) + sig[2:], tc, td, True) if (hook and one_act) else (dim, sig, tc, td, False)
        f0, e0 = merged.get(key, (np.zeros((0, dim), int), np.zeros((0, 4), int)))
        merged[key] = (np.concatenate([f0, fields]), np.concatenate([e0, entries]))
    all_vals, all_entries = [], []
    for (dim, sig, tc, td, use_hook), (fields, entries) in merged.items():
        S = C[fields[:, :, None], fields[:, None, :]]
        if use_hook:
            vals = student.i4_distinct(S, sig)
        else:
            gc = teacher.g if tc else student.g
            gd = teacher.g if td else student.g

            def integrand(u, z, sig=sig, gc=gc, gd=gd):
                dgs = student.dg(u[..., sig[0]]) * student.dg(u[..., sig[1]])
                return dgs * gc(u[..., sig[2]]) * gd(u[..., sig[3]])

            one_act = _alike(student, teacher) or not (tc or td)
            vals = gaussian_average(integrand, S, quadrature_order(student) if one_act else order)
        all_vals.append(vals)
        all_entries.append(entries)
    vals = jnp.concatenate(all_vals)
    i, k, c, dd = np.concatenate(all_entries).T
    out = jnp.zeros((K, K, n, n), dtype=C.dtype)
    for a, b, e, f in ((i, k, c, dd), (k, i, c, dd), (i, k, dd, c), (k, i, dd, c)):
        out = out.at[a, b, e, f].set(vals)
    return out


def i4_tensor(act, C: Float[Array, "n n"], K: int) -> Float[Array, "K K n n"]:
    r"""$[I_4]_{i k c d} = \langle g'(x_i) g'(x_k) g(u_c) g(u_d)\rangle$, $i, k$ student fields."""
    student, teacher = as_pair(act)
    n = C.shape[-1]
    same = _alike(student, teacher)
    if _has_closed_i4(student):
        out = _closed_i4(student, C, K)
        if same:
            return out
        quad = _quadrature_i4(student, teacher, C, K, lambda c, d: c >= K or d >= K)
        mask = np.zeros((n, n), dtype=bool)
        mask[K:, :] = mask[:, K:] = True
        return jnp.where(mask, quad, out)
    return _quadrature_i4(student, teacher, C, K, lambda c, d: True)
