"""The search inside a region: the session that keeps a strategy across graph steps, and the metrics of
its outcome (evaluations to the optimum, incumbent curves).

The strategies themselves (random, REA, the step outside the region) are in :mod:`lapt.strategies`.
"""
