"""The experiment engine: what the chapters run their experiments with. It knows no chapter.

=================================  ========================================================================
:mod:`~sparsenb.lab.grid`          attack grids declared as data (victims x attacks x gradients x eps), run
                                   in batches, every adversarial image checked, per-image outcomes stored
:mod:`~sparsenb.lab.store`         the result store: any computation, checkpoints and attack cells, keyed by
                                   what computed them (arguments, data, the code it imports)
:mod:`~sparsenb.lab.transfer`      the store packed into a few files on one machine and merged on another
:mod:`~sparsenb.lab.bundle`        a build's results to publish: a card per audited network, per-image outcomes,
                                   checked adversarial examples, and the stored work pages can be rebuilt from
:mod:`~sparsenb.lab.audit`         the worst case per image over every attack, the gradient-masking
                                   checklist, robust accuracy per (defense, eps)
:mod:`~sparsenb.lab.stats`         summaries and power-law fits of Monte Carlo draws, paired comparisons
:mod:`~sparsenb.lab.timing`        what training costs, measured in one run
:mod:`~sparsenb.lab.paper`         the paper's numbers, and ours beside them with a verdict
=================================  ========================================================================
"""
