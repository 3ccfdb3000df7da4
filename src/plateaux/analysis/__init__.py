"""Analysis: singular distances, fixed points, spectra, plateau location."""

from ._fixed_points import (
    FixedPoint as FixedPoint,
    continuation as continuation,
    find_fixed_point as find_fixed_point,
    random_states as random_states,
    search_fixed_points as search_fixed_points,
)
from ._phases import Phase as Phase, PhaseRule as PhaseRule, classify as classify, segment as segment
from ._plateau import PlateauInfo as PlateauInfo, find_plateau as find_plateau
from ._singular import singular_distances as singular_distances, symmetry_breaking as symmetry_breaking
from ._spectrum import (
    Spectrum as Spectrum,
    coordinate_names as coordinate_names,
    jacobian as jacobian,
    predicted_plateau_length as predicted_plateau_length,
    spectrum as spectrum,
)
