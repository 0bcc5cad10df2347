"""`localise`: does each map of an explanation point at the object? The object (a box, a mask or a
`GroundTruth`, in the original image's pixels) is aligned with the maps through the explanation's
`Geometry`, then every map and the two baselines (the random map, a centre prior) are scored."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import InvalidGroundTruthError
from ..explain import Explanation
from ..faithfulness.baseline import RANDOM, random_map
from ..models import Geometry
from .align import BoxArg, aligned_mask
from .scores import Scores, centre_prior, pointing_radius, score_maps
from .truth import GroundTruth

#: The centre-prior baseline's name among the scored maps (the random map's is `faithfulness.RANDOM`).
CENTRE = "centre"


@dataclass(frozen=True)
class Localisation:
    """Result of `localise`.

    `mask`: the object on the picture, bool [H, W] (the maps' shape): recompute any score from it
    and `explanation.maps`. `scores`: {map: `Scores`} for each method's map, then "random" (the
    random baseline map) and "centre" (the centre prior); a map that does not beat the centre prior
    shows nothing about the model, since objects sit near the centre of most photos. `radius`: the
    pointing game's tolerance in the maps' pixels. `outside`: True when the crop cuts the whole
    object away (every score is then NaN). `notes`: sentences about the ground truth (clipped boxes,
    a scaled or empty mask, an object outside the crop)."""

    mask: np.ndarray
    scores: dict[str, Scores]
    radius: float
    outside: bool
    notes: tuple[str, ...]


def localise(explanation: Explanation, box: Optional[BoxArg] = None, mask=None, *,
             truth: Optional[GroundTruth] = None, on_picture: bool = False) -> Localisation:
    """Score `explanation`'s maps (an `Explanation`) against the object given once, in the original
    image's pixels: `box` (x0, y0, x1, y1; left and top inclusive, right and bottom exclusive; or a
    sequence of boxes: their union), `mask` (a 2-D array, a mask file, its bytes or a PIL image:
    > 0 is the object; any size, stretched over the image) or `truth` (a `GroundTruth` from
    `read_ground_truth`). `on_picture`: the box or mask is in the model's picture's own pixels
    (the maps' pixels, e.g. a box drawn on the picture), so no resize or crop is applied to it.
    Returns a `Localisation`. Raises `InvalidGroundTruthError` for neither or several, an empty
    box, a box outside the image, or a mask that cannot be read."""
    shape = explanation.image.shape[:2]
    geometry = explanation.geometry
    notes: list[str] = []
    if on_picture:  # the picture is its own original: the same alignment, with nothing to resize or crop
        geometry = Geometry.identity((shape[1], shape[0]))
    elif geometry is None:
        geometry = Geometry.identity((shape[1], shape[0]))
        notes.append("The explanation does not record how its picture was made, so the ground truth is taken in "
                     "the picture's own pixels.")
    if geometry.picture[::-1] != tuple(shape):
        raise InvalidGroundTruthError(f"The explanation's picture is {shape[1]}x{shape[0]} but its geometry says "
                                      f"{geometry.picture[0]}x{geometry.picture[1]}; explain the image again.")
    aligned = aligned_mask(geometry, box, mask, truth)
    object_mask = aligned.mask
    notes.extend(aligned.notes)
    outside = aligned.present and not object_mask.any()
    if outside:
        notes.append("The object lies outside the model's crop of the image, so no map can point at it (every "
                     "score is left empty).")
    maps = {**explanation.maps, RANDOM: _random_map(tuple(shape)), CENTRE: centre_prior(tuple(shape))}
    for name, cam in explanation.maps.items():
        if cam.shape != tuple(shape):
            raise InvalidGroundTruthError(f"The map of {name} is {cam.shape[1]}x{cam.shape[0]}, not the picture's "
                                          f"{shape[1]}x{shape[0]}; explain the image again.")
    radius = pointing_radius(tuple(shape))
    return Localisation(object_mask, score_maps(maps, object_mask, radius, fixed=(RANDOM, CENTRE)), radius, outside, tuple(notes))


@functools.lru_cache(maxsize=8)
def _random_map(shape: tuple[int, int]) -> np.ndarray:
    """`faithfulness`' random baseline map (the one the faithfulness scores use), one read-only
    array per shape."""
    cam = random_map(shape)
    cam.flags.writeable = False
    return cam


__all__ = ["CENTRE", "Localisation", "localise"]
