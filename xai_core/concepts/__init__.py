"""Concepts across a class (CRAFT-like): what the model sees in a whole class of images. Open `run.py`
first (`class_concepts`); `extract.py` batches the activations and factorises them (NMF, as DFF),
`scoring.py` splits the class logit among the concepts and removes them, `evidence.py` cuts the crops,
`results.py` holds `ClassConcepts` and `Concept`, `atlas.py` writes the results folder."""

from .atlas import atlas_html, concepts_summary, write_concept_results
from .results import ClassConcepts, Concept
from .run import EXACT, FIRST_ORDER, class_concepts

__all__ = ["ClassConcepts", "Concept", "EXACT", "FIRST_ORDER", "atlas_html", "class_concepts", "concepts_summary",
           "write_concept_results"]
