"""``lapt bench``: the paper's protocol, LAPT against baselines on the same seeds, with tables and plots.

Layout: :mod:`~lapt.bench.plan` (configuration, pairs, jobs), :mod:`~lapt.bench.oracle` (the best region,
a ceiling), :mod:`~lapt.bench.methods` (one job = one method on one pair with one seed),
:mod:`~lapt.bench.runner` (process pool, data files), :mod:`~lapt.bench.files` (``results.csv`` and
``curves.json``), :mod:`~lapt.bench.report` (``summary.md``) and :mod:`~lapt.bench.plots` (PNG figures).
Like the CLI it is a composition root: it runs the graph through :mod:`lapt.api`.
"""
