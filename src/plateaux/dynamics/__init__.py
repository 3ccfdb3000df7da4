"""Averaged learning equations (vector fields on order parameters)."""

from ._base import AbstractDynamics as AbstractDynamics
from ._sgd import OnlineSGD as OnlineSGD
