r"""Batched ODE solves sharded over the local devices: `shard_map` of a vmapped solve.

A vmapped adaptive solve steps its whole batch until the slowest member is done. Sharding the
batch axis over devices with `jax.shard_map` gives every device its own shard and its own
adaptive while-loop (there is no collective inside, so no device waits for another's
steps): the batch is padded to a multiple of the device count, each device runs
[`plateaux.integrate`][] on its shard, and the padding is dropped.
"""

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from .._integrate import _as_grid, _raise_on_failure, integrate
from .._order_params import OrderParams, check_order_params
from .._trajectory import Trajectory
from ..dynamics import AbstractDynamics, OnlineSGD

_AXIS = "batch"


def resolve_devices(devices=None) -> tuple:
    """`None`: every local device of the default backend; an int $n$: the first $n$ of them;
    otherwise a sequence of `jax.Device`s. **Raises:** `ValueError` naming the bad value."""
    local = jax.local_devices()
    if devices is None:
        return tuple(local)
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(local):
            raise ValueError(f"devices={devices}: this process has {len(local)} local device(s): {local}")
        return tuple(local[: int(devices)])
    if isinstance(devices, Sequence) and devices and all(isinstance(d, jax.Device) for d in devices):
        if len(set(devices)) != len(devices):
            raise ValueError(f"devices lists a device twice: {list(devices)}")
        return tuple(devices)
    raise ValueError(f"devices must be None, a positive int or a sequence of jax.Device; got {devices!r}")


def _is_member(x) -> bool:
    return eqx.is_array(x) and x.ndim > 0


def integrate_sharded(
    params0: OrderParams,
    eta,
    ts,
    *,
    devices=None,
    noise=0.0,
    throw: bool = True,
    batched_dynamics: bool = False,
    **integrate_kwargs,
) -> Trajectory:
    r"""[`plateaux.integrate`][] of a batch, with the batch sharded over devices.

    The leading batch axes of `params0` are flattened to one axis of length $B$, padded (with
    copies of the first member) to a multiple of the number of devices $D$, and split into
    $D$ shards; `jax.shard_map` runs one vmapped adaptive solve per device, each with its own
    step count, and the padding is dropped. The result equals `plateaux.integrate` on the
    whole batch (same solver and tolerances; a member's steps do not depend on the others).

    **Arguments:**

    - `params0`: initial [`plateaux.OrderParams`][] with at least one leading batch axis.
    - `eta`, `ts`, `noise`, `batched_dynamics` and further keyword arguments (`rtol`,
      `atol`, `max_steps`, `stop_eg`, ...): as for [`plateaux.integrate`][]. An array `eta`
      or `noise` of the batch shape (or a batched dynamics) is sharded with the batch.
    - `devices`: `None` (every local device), a number $n$ (the first $n$ local devices) or
      a sequence of `jax.Device`s.
    - `throw`: raise on a diverged or unfinished member, as `plateaux.integrate` does.

    **Returns:** a [`plateaux.Trajectory`][] with the batch shape of `params0`.

    **Raises:** `ValueError` on an unbatched `params0`, bad `devices` or invalid input (as
    [`plateaux.integrate`][]); `RuntimeError` as `plateaux.integrate` with `throw=True`.
    """
    if not isinstance(params0, OrderParams):
        raise TypeError(f"params0 must be a plateaux.OrderParams; got {type(params0).__name__}")
    batch = params0.R.shape[:-2]
    if not batch:
        raise ValueError(
            f"integrate_sharded needs a batch of initial states (a leading batch axis); got R of shape "
            f"{params0.R.shape}: use plateaux.integrate for one trajectory"
        )
    devices = resolve_devices(devices)
    if "progress" in integrate_kwargs:
        raise ValueError("progress bars are not available for sharded solves")
    check_order_params(params0, "params0")  # eagerly: a clear error before anything compiles
    grid = tuple(float(t) for t in _as_grid(ts))  # an array, or a horizon as in integrate
    n = math.prod(batch)
    if isinstance(eta, AbstractDynamics):
        noise = float(np.asarray(noise))  # integrate insists on 0 here; keep it concrete
        message_dynamics = eta
    elif eqx.is_array_like(eta):
        for name, x in (("eta", eta), ("noise", noise)):
            if np.ndim(x) and np.shape(x) != batch:
                raise ValueError(
                    f"{name} has shape {np.shape(x)}; it must be a scalar or the batch shape {batch}"
                )
        batched_dynamics = batched_dynamics or bool(np.ndim(eta) or np.ndim(noise))
        message_dynamics = OnlineSGD(eta, noise)  # validates eta and noise eagerly
        eta, noise = (jnp.asarray(x, dtype=float) for x in (eta, noise))
        if batched_dynamics:
            eta, noise = (jnp.broadcast_to(x, batch) for x in (eta, noise))
    else:  # e.g. a learning-rate schedule: integrate knows what to do with it
        message_dynamics = eta
    rates = (eta, noise)
    mask = jax.tree.map(_is_member if batched_dynamics else (lambda _: False), rates)
    member_rates, shared_rates = eqx.partition(rates, mask)
    for path, leaf in jax.tree_util.tree_flatten_with_path(member_rates)[0]:
        if leaf.shape[: len(batch)] != batch:
            raise ValueError(
                f"batched dynamics field {jax.tree_util.keystr(path)} has shape {leaf.shape}; "
                f"it must start with the batch shape {batch} of params0 (or be a scalar)"
            )
    members = jax.tree.map(lambda x: x.reshape((n,) + x.shape[len(batch) :]), (params0, member_rates))
    pad = (-n) % len(devices)
    if pad:  # copies of the first member: valid states, dropped again below
        members = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]), members)
    kwargs = tuple(sorted(integrate_kwargs.items()))
    traj = _sharded_solve(devices, members, shared_rates, grid, batched_dynamics, kwargs)
    traj = jax.tree.map(lambda x: x[:n].reshape(batch + x.shape[1:]), traj)
    if throw:
        _raise_on_failure(traj, message_dynamics)
    return traj


@eqx.filter_jit
def _sharded_solve(devices, members, shared, grid, batched_dynamics, kwargs):
    mesh = Mesh(np.asarray(devices, dtype=object), (_AXIS,))
    member_arrays, member_static = eqx.partition(members, eqx.is_array)
    shared_arrays, shared_static = eqx.partition(shared, eqx.is_array)

    def body(member_arrays, shared_arrays):
        params0, member_rates = eqx.combine(member_arrays, member_static)
        eta, noise = eqx.combine(member_rates, shared_arrays, shared_static)
        return integrate(
            params0,
            eta,
            np.asarray(grid),
            noise=noise,
            throw=False,
            batched_dynamics=batched_dynamics,
            **dict(kwargs),
        )

    replicated = PartitionSpec()
    sharded = jax.shard_map(
        body,
        mesh=mesh,
        in_specs=(
            jax.tree.map(lambda _: PartitionSpec(_AXIS), member_arrays),
            jax.tree.map(lambda _: replicated, shared_arrays),
        ),
        out_specs=PartitionSpec(_AXIS),
        check_vma=False,
    )
    return sharded(member_arrays, shared_arrays)
