"""Joint multi-angle NLSQ fit of the heterodyne model to the full (t1 < t2) meshgrid.

Modules: :mod:`problem` (masked, sigma-weighted pair residuals with contrast/offset solved
linearly), :mod:`settings` (the ``nlsq`` config section), :mod:`nlsq_solver` (the ``nlsq``
trust-region-reflective solver), :mod:`uncertainty` (chunked normal equations, covariance),
:mod:`multistart` (Latin-hypercube starts), :mod:`joint_fit` (the whole fit) and :mod:`results`
(nlsq.json / nlsq.h5); the joint fit over several q bins: :mod:`joint_q` (shared physics, per-q
fractions), :mod:`joint_q_layout` (its parameter vector) and :mod:`joint_q_results` (its files).
"""
