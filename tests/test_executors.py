"""Executors: Dask distributed on a local cluster gives the local executor's results; a chunk
that raises is reported with its index, on either executor."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plateaux as px
from plateaux.experiments._executors import ChunkError, DaskExecutor, LocalExecutor

distributed = pytest.importorskip("distributed")

HORIZON = 200.0  # through the start of the plateau: a few hundred solver steps per chunk


def integrate_chunk(item):
    """A sweep-like chunk: a few K = M = 2 classic starts (one per seed) at one eta."""
    T = px.correlated_teacher(2)
    keys = jax.vmap(jax.random.key)(jnp.asarray(item["seeds"]))
    params0 = jax.vmap(lambda k: px.classic_start(2, T, k))(keys)
    traj = px.integrate(params0, item["eta"], px.log_grid(HORIZON, 16))
    return {"eg": np.asarray(traj.eg), "num_steps": np.asarray(traj.num_steps)}


ITEMS = [{"seeds": [2 * i, 2 * i + 1], "eta": eta} for i, eta in enumerate((0.1, 0.3, 0.5, 0.7))]


@pytest.fixture(scope="module")
def client():
    """One cheap local cluster for the module: 2 single-threaded worker processes."""
    import cloudpickle

    # The workers cannot import this test module; ship its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_dask_equals_local(client):
    with DaskExecutor(client=client) as executor:
        pending = executor.map(integrate_chunk, ITEMS)  # submitted: the workers start now
        local = dict(LocalExecutor().map(integrate_chunk, ITEMS))  # meanwhile, here
        remote = list(pending)
    indices = [i for i, _ in remote]
    assert sorted(indices) == list(range(len(ITEMS)))
    for i, result in remote:
        # The same compiled program on the same CPU type: identical up to round-off of a
        # different XLA thread split (none expected; 1e-13 leaves room for it).
        np.testing.assert_allclose(result["eg"], local[i]["eg"], rtol=0, atol=1e-13)
        np.testing.assert_array_equal(result["num_steps"], local[i]["num_steps"])
    # The chunks are different scenarios: a mixed-up index would not go unnoticed.
    assert not np.allclose(local[0]["eg"], local[3]["eg"])
    assert client.has_what()  # still connected: the executor does not close a client it did not open


def _fails_on_chunk_2(item):
    if item == 2:
        raise ValueError(f"bad item {item}")
    return item * 10


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_chunk_error_names_the_chunk(kind, request):
    if kind == "local":
        executor = LocalExecutor()
    else:
        executor = DaskExecutor(client=request.getfixturevalue("client"))
    results = {}
    expected = r"chunk 2 \(_fails_on_chunk_2\(2\)\) failed: ValueError: bad item 2"
    with pytest.raises(ChunkError, match=expected) as info:
        for i, result in executor.map(_fails_on_chunk_2, [0, 1, 2, 3]):
            results[i] = result
    assert info.value.index == 2 and info.value.item == 2
    assert isinstance(info.value.__cause__, ValueError)
    assert all(results[i] == 10 * i for i in results) and 2 not in results
    if kind == "local":  # in order: the chunks before the failing one were delivered
        assert results == {0: 0, 1: 10}


def test_engine_error_inside_a_chunk(client):
    """A real engine error (eta out of range) on a worker comes back with the chunk named."""
    items = ITEMS[:1] + [{"seeds": [0, 1], "eta": -1.0}]
    with DaskExecutor(client=client) as executor:
        with pytest.raises(ChunkError, match=r"chunk 1 .*eta=-1\.0"):
            list(executor.map(integrate_chunk, items))


def test_dask_executor_arguments():
    with pytest.raises(ValueError, match="address or a client"):
        DaskExecutor("tcp://127.0.0.1:1", client=object())
