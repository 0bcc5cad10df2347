"""The version of what xai_core computes. `RESULTS_VERSION` is bumped by any change that changes a
map or a score (a formula, a normalisation, a resize, a default option, the faithfulness metrics):
a results folder's rows record the version that computed them (`results_version`), and a rerun
into a folder written with another version says so and keeps those rows unless asked to refresh
them (`dataset.run(..., refresh=True)`, `batch --refresh`).

`tests/test_results_version.py` holds it to that: it hashes a fixed set of maps and scores against
the (version, hash) pair recorded in `tests/results_version.json` and fails when the hash changed
while the version did not."""

#: 1: the first recorded version (rows written before it have no `results_version`).
RESULTS_VERSION = 1

__all__ = ["RESULTS_VERSION"]
