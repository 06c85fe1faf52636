"""Transfer: how principles become a region of the target's space, and how the target's results judge it.

* :mod:`~lapt.transfer.masks`: the Pydantic mask per space (the schema an agent fills in, and its validator);
* :mod:`~lapt.transfer.evidence`: op statistics of the source tasks' best architectures;
* :mod:`~lapt.transfer.target_evidence`: ops judged on the target against what the sources predicted;
* :mod:`~lapt.transfer.regions`: the region the target evidence supports.
"""
