"""Design principles as data: the library that keeps every set, the files they travel in, and their
transfer to another space.

* :mod:`~lapt.principles.store`: the SQLite principle library, with provenance;
* :mod:`~lapt.principles.files`: principle sets read from a file or the library (``--principles``);
* :mod:`~lapt.principles.cross_space`: a set from one space carried into another that shares op names.
"""
