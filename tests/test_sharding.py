"""Sharded batch solves: `shard_map` of a vmapped solve over 2 host devices equals the
single-device batch; bad input is refused before anything compiles.

The 2 CPU devices need `XLA_FLAGS=--xla_force_host_platform_device_count=2` before JAX
initialises, so that part runs in a fresh Python process.
"""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import plateaux as px
from plateaux.experiments._sharding import integrate_sharded, resolve_devices

_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    import plateaux as px
    from plateaux.experiments._sharding import integrate_sharded

    assert len(jax.devices()) == 2, jax.devices()
    T = px.correlated_teacher(2)
    keys = jax.vmap(jax.random.key)(jnp.arange(5))  # 5 members: one padded slot on 2 devices
    params0 = jax.vmap(lambda k: px.classic_start(2, T, k))(keys)
    # One eta per member, so the members need different numbers of steps: the shard with
    # the slow members runs longer without holding up the other one.
    eta = jnp.asarray([0.1, 0.9, 0.2, 0.8, 0.5])
    ts = px.log_grid(300.0, 16)
    sharded = integrate_sharded(params0, eta, ts, devices=2)
    single = px.integrate(params0, eta, ts)
    diff = jax.tree.map(lambda a, b: np.max(np.abs(np.asarray(a) - np.asarray(b))), sharded, single)
    print("MAXDIFF", max(float(x) for x in jax.tree.leaves(diff)))
    print("STEPS", np.asarray(sharded.num_steps).tolist(), np.asarray(single.num_steps).tolist())
    print("SHAPE", sharded.eg.shape)
    """
)


def test_sharded_equals_single_device():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if line.split(" ", 1)[0].isupper())
    # Each member's adaptive solve is the same computation on either layout; only XLA's
    # vectorisation of a different batch width may change the last bits (float64 eps ~ 2e-16,
    # a few hundred steps): 1e-12 is far below any solver tolerance.
    assert float(lines["MAXDIFF"]) < 1e-12, out.stdout
    steps_sharded, steps_single = eval(lines["STEPS"].replace("] [", "], ["))
    assert steps_sharded == steps_single and len(set(steps_single)) > 1
    assert lines["SHAPE"].strip() == "(5, 17)"


def test_horizon_number_gives_integrates_log_grid():
    # integrate_sharded takes ts exactly as px.integrate does: a number is a horizon.
    T = px.correlated_teacher(2)
    params0 = jax.vmap(lambda k: px.classic_start(2, T, k))(jax.vmap(jax.random.key)(np.arange(2)))
    sharded = integrate_sharded(params0, 0.1, 50.0, devices=1)
    np.testing.assert_array_equal(np.asarray(sharded.t[0]), px.log_grid(50.0))
    single = px.integrate(params0, 0.1, 50.0)
    np.testing.assert_allclose(np.asarray(sharded.eg), np.asarray(single.eg), rtol=0, atol=1e-12)


def test_refuses_bad_input():
    T = px.correlated_teacher(2)
    one = px.classic_start(2, T, jax.random.key(0))
    with pytest.raises(ValueError, match="needs a batch"):
        integrate_sharded(one, 0.1, 10.0)
    batch = jax.tree.map(lambda x: np.stack([x, x]), one)
    n = len(jax.local_devices())
    with pytest.raises(ValueError, match=f"devices={n + 1}"):
        integrate_sharded(batch, 0.1, 10.0, devices=n + 1)
    with pytest.raises(ValueError, match="devices must be"):
        resolve_devices("gpu")
    with pytest.raises(ValueError, match="eta"):
        integrate_sharded(batch, -0.1, 10.0)
    with pytest.raises(ValueError, match="batch shape"):
        integrate_sharded(batch, np.ones(3), 10.0)
    assert resolve_devices() == tuple(jax.local_devices())
