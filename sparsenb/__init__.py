"""sparsenb: the package behind the executable book on sparsifying front ends.

The package stands on four floors; a module imports only from its own floor
and the floors below (``tests/test_layout.py`` checks it):

=============  ===============================================================================
ground         :mod:`~sparsenb.checks` (argument validation), :mod:`~sparsenb.cache` (the cache
               folder, atomic writes, the fingerprints that key every stored result),
               :mod:`~sparsenb.distributed` (processes under ``torchrun``)
library        :mod:`~sparsenb.data`, :mod:`~sparsenb.basis` (orthonormal bases, :math:`\\psi_k`,
               :math:`\\gamma`), :mod:`~sparsenb.frontend` (:math:`H_K`, :math:`S_K`, :math:`P_K`, the
               front end and the defended model), :mod:`~sparsenb.models`,
               :mod:`~sparsenb.evaluation`, :mod:`~sparsenb.training`, :mod:`~sparsenb.attacks`,
               :mod:`~sparsenb.certify`, :mod:`~sparsenb.theory` (the paper's theorems, maths only)
lab            :mod:`sparsenb.lab`: attack grids, the result store, the audit, statistics,
               timing and the paper's numbers; it knows no chapter
chapters       :mod:`sparsenb.chapters`: one module per page of the book, one function per section
book           :mod:`sparsenb.book`: executing and building the book (``sparsenb-book``)
=============  ===============================================================================

``chapters`` and ``book`` both stand on ``lab`` and never import each other:
a page in ``book/`` calls both.
"""
__version__ = "0.1.0"
