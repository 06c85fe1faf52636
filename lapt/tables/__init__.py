"""Benchmark tables: the metrics of every architecture of a space, looked up instead of trained.

* :mod:`lapt.tables.base`: :class:`~lapt.tables.base.BenchmarkTable` (dense columns in a cell space's
  enumeration order) and :class:`~lapt.tables.base.Metrics`;
* :mod:`lapt.tables.builtin`: the tables shipped in ``lapt/data`` (NAS-Bench-201, TransNAS-Bench-101 micro,
  NB201 latency), each verified against its sha256 on load;
* :mod:`lapt.tables.user`: the table a user space file declares (a CSV, dense or sparse);
* :mod:`lapt.tables.registry`: which table a space is evaluated with.

The package's ``__init__`` imports nothing, so the spaces (which read a user table's CSV) and the tables
(which are laid out by a space) never import each other in a circle.
"""
