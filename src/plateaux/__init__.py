"""plateaux: learning dynamics of two-layer networks near geometrical singularities.

Import as ``import plateaux as px``. Float64 is switched on at import: plateau lengths depend
on initial asymmetries of order 1e-12, which float32 cannot represent.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from . import (
    analysis as analysis,
    natural as natural,
    scenarios as scenarios,
    schedules as schedules,
    studies as studies,
)
from ._conventions import CANONICAL as CANONICAL, Convention as Convention
from ._generalization import generalization_error as generalization_error
from ._initial import (
    classic_start as classic_start,
    correlated_teacher as correlated_teacher,
)
from ._integrate import (
    integrate as integrate,
    integrate_from_simulation as integrate_from_simulation,
    log_grid as log_grid,
)
from ._io import (
    load_text as load_text,
    load_text_networks as load_text_networks,
    read_convention as read_convention,
    save_order_params as save_order_params,
    save_text as save_text,
)
from ._network import (
    SoftCommittee as SoftCommittee,
    networks_from_order_params as networks_from_order_params,
    order_parameters as order_parameters,
)
from ._order_params import (
    OrderParams as OrderParams,
    check_order_params as check_order_params,
    flatten_learned as flatten_learned,
    unflatten_learned as unflatten_learned,
)
from ._rules import SGD as SGD, AbstractUpdateRule as AbstractUpdateRule
from ._simulate import (
    SimulationResult as SimulationResult,
    simulate as simulate,
)
from ._trajectory import (
    Status as Status,
    Trajectory as Trajectory,
    take_time as take_time,
)
from .activations import (
    AbstractActivation as AbstractActivation,
    Custom as Custom,
    Erf as Erf,
    Linear as Linear,
    ReLU as ReLU,
    Sigmoid as Sigmoid,
    Tanh as Tanh,
)
from .dynamics import (
    AbstractDynamics as AbstractDynamics,
    OnlineSGD as OnlineSGD,
)

__version__ = "0.1.0"
