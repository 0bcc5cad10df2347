"""Localisation: does the map point at the object? Open `localise_maps.py` first (`localise`, `Localisation`);
`scores.py` holds the four scores and the centre prior, `align.py` puts ground truth on the picture
through `Explanation.geometry`, `truth.py` and `formats.py` read it (mask folder, CSV, COCO, VOC) and
`read.py` picks the reader for a path, `outline.py` writes the object's outline for a gallery."""

from .align import Aligned, BoxArg, aligned_mask, read_mask
from .formats import read_coco, read_voc, read_voc_folder
from .localise_maps import CENTRE, Localisation, localise
from .outline import outline_polygons, outline_text
from .read import ground_truth_digest, read_ground_truth
from .scores import (POINTING_TOLERANCE, Scores, centre_prior, dilate, energy, iou, pointing_game, pointing_radius,
                     rank_accuracy, score_map, score_maps)
from .truth import Box, GroundTruth, GroundTruths, read_csv_boxes, read_mask_folder

__all__ = ["Aligned", "Box", "BoxArg", "CENTRE", "GroundTruth", "GroundTruths", "Localisation", "POINTING_TOLERANCE",
           "Scores", "aligned_mask", "centre_prior", "dilate", "energy", "ground_truth_digest", "iou", "localise", "outline_polygons",
           "outline_text", "pointing_game",
           "pointing_radius", "rank_accuracy", "read_coco", "read_csv_boxes", "read_ground_truth", "read_mask",
           "read_mask_folder", "read_voc", "read_voc_folder", "score_map", "score_maps"]
