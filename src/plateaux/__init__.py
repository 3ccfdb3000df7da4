"""plateaux: learning dynamics of two-layer networks near geometrical singularities.

Import as ``import plateaux as px``. Float64 is switched on at import: plateau lengths depend
on initial asymmetries of order 1e-12, which float32 cannot represent.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from ._generalization import generalization_error as generalization_error  # noqa: E402
from ._initial import classic_start as classic_start  # noqa: E402
from ._initial import correlated_teacher as correlated_teacher
from ._integrate import (  # noqa: E402
    integrate as integrate,
)
from ._integrate import (
    integrate_from_simulation as integrate_from_simulation,
)
from ._integrate import (
    log_grid as log_grid,
)
from ._network import (  # noqa: E402
    SoftCommittee as SoftCommittee,
)
from ._network import (
    networks_from_order_params as networks_from_order_params,
)
from ._network import (
    order_parameters as order_parameters,
)
from ._order_params import (  # noqa: E402
    OrderParams as OrderParams,
)
from ._order_params import (
    check_order_params as check_order_params,
)
from ._order_params import (
    flatten_learned as flatten_learned,
)
from ._order_params import (
    unflatten_learned as unflatten_learned,
)
from ._simulate import SimulationResult as SimulationResult  # noqa: E402
from ._simulate import simulate as simulate
from ._trajectory import Status as Status  # noqa: E402
from ._trajectory import Trajectory as Trajectory
from ._trajectory import take_time as take_time
from .activations import AbstractActivation as AbstractActivation  # noqa: E402
from .activations import Erf as Erf
from .dynamics import AbstractDynamics as AbstractDynamics  # noqa: E402
from .dynamics import OnlineSGD as OnlineSGD

__version__ = "0.1.0"
