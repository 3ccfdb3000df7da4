"""Batch experiments on top of the engine: sweeps over grids of scenarios (vmapped, chunked,
resumable) and where they run (executors). The core engine never imports this package.

```python
from plateaux.experiments import Sweep, run_sweep, load_sweep

ds = run_sweep(Sweep.from_toml("examples/sweep.toml"), "results/sweep")  # an xarray.Dataset
```
"""

from ._executors import (
    AbstractExecutor as AbstractExecutor,
    ChunkError as ChunkError,
    DaskExecutor as DaskExecutor,
    LocalExecutor as LocalExecutor,
)
from ._sharding import integrate_sharded as integrate_sharded
from ._spec import (
    AXES as AXES,
    SWEEP_REFERENCE as SWEEP_REFERENCE,
    Sweep as Sweep,
    SweepConfigError as SweepConfigError,
)
from ._store import SweepMismatchError as SweepMismatchError
from ._sweep import load_sweep as load_sweep, plan as plan, run_sweep as run_sweep
from ._worker import PHASE_KINDS as PHASE_KINDS, run_chunk as run_chunk
