"""Workflows callable from Python (the command line is a thin front end over them).

* :mod:`neurovis.runs.layer`: :func:`~neurovis.runs.layer.run_layer`, a whole-layer audit
  (one report per unit plus a sortable index; sharded under torchrun, resumable, batch
  halved on out-of-memory).
* :mod:`neurovis.runs.facets`: :func:`~neurovis.runs.facets.run_facets` (one unit,
  resumable) and :func:`~neurovis.runs.facets.run_sample` (any condition) -> a report folder.
* :mod:`neurovis.runs.inpaint`: :func:`~neurovis.runs.inpaint.run_inpaint` (PPGN-context).
* :mod:`neurovis.runs.setup`: devices, natural images, chain starts, the unit check.
* :mod:`neurovis.runs.output`: the output folder's checks and lock.
* :mod:`neurovis.runs.workfolder`: the work folder ``<out>.partial`` and the run lock.

Nothing is imported here: ``import neurovis.runs.layer`` loads what a workflow needs.
"""
