"""Concepts across a class (CRAFT-like): what the model sees in a whole class of images. Open `run.py`
first (`class_concepts`); `extract.py` batches the activations and factorises them (NMF, as DFF),
`scoring.py` splits the class logit among the concepts and removes them, `evidence.py` cuts the crops,
`results.py` holds `ClassConcepts` and `Concept`, `atlas.py` writes the results folder;
`dataset_mode.py` does it per class at the end of a dataset run (`dataset.run(..., concepts=K)`)."""

from .atlas import atlas_html, concepts_summary, write_concept_results
from .dataset_mode import MIN_IMAGES, class_folder, dataset_concepts
from .results import ClassConcepts, Concept
from .run import EXACT, FIRST_ORDER, class_concepts

__all__ = ["ClassConcepts", "Concept", "EXACT", "FIRST_ORDER", "MIN_IMAGES", "atlas_html", "class_concepts",
           "class_folder", "concepts_summary", "dataset_concepts", "write_concept_results"]
