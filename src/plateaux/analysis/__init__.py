"""Analysis of trajectories: plateau location (and, later, fixed points and spectra)."""

from ._plateau import PlateauInfo as PlateauInfo, find_plateau as find_plateau
