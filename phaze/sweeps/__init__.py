"""Sweeps: many ordinary searches (cells) across models, cluster sizes, area budgets and
other settings, run serially, in local processes or on a Dask cluster, with one resumable
results store and reports (``sweep.csv``, plots).

* :func:`sweep` -- run the cells of a sweep file or a list of :class:`SweepCell`;
* :func:`load_sweep` -- read and validate a sweep file (TOML; ``docs/sweeps.md``);
* :func:`run_cell` -- one cell: one search, summarised as a record.
"""

from phaze.sweeps.cell import RECORD_FIELDS, run_cell
from phaze.sweeps.run import sweep
from phaze.sweeps.spec import SweepCell, SweepSpec, load_sweep, parse_sweep

__all__ = [
    "RECORD_FIELDS",
    "SweepCell",
    "SweepSpec",
    "load_sweep",
    "parse_sweep",
    "run_cell",
    "sweep",
]
