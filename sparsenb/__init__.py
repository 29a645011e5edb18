"""sparsenb: the package behind the executable book on sparsifying front ends.

Modules, one concept each: :mod:`sparsenb.basis` (orthonormal bases),
:mod:`sparsenb.frontend` (H_K, S_K, P_K and the front end module),
:mod:`sparsenb.theory` (the quantities of the paper's theorems),
:mod:`sparsenb.models`, :mod:`sparsenb.attacks`, :mod:`sparsenb.training`,
:mod:`sparsenb.evaluation`, :mod:`sparsenb.data` (MNIST from a local folder),
:mod:`sparsenb.lab.paper` (the paper's numbers), :mod:`sparsenb.cache` and
:mod:`sparsenb.book` (executing and building the book).
"""
__version__ = "0.1.0"
