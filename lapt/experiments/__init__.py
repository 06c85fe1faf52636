"""``lapt bench``: the paper's protocol, LAPT against baselines on the same seeds, with tables and plots.

Layout: :mod:`~lapt.experiments.plan` (configuration, pairs, jobs), :mod:`~lapt.experiments.oracle` (the best region,
a ceiling), :mod:`~lapt.experiments.methods` (one job = one method on one pair with one seed),
:mod:`~lapt.experiments.runner` (process pool, data files), :mod:`~lapt.experiments.files` (``results.csv`` and
``curves.json``), :mod:`~lapt.experiments.report` (``summary.md``) and :mod:`~lapt.experiments.plots` (PNG figures).
Like the CLI it is a composition root: it runs the graph through :mod:`lapt.api`.
"""
