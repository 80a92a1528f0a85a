"""Simulated data with known truth: the spec (:mod:`~heterodyne.simulate.spec`), the c2-level and
frame-level maps (:mod:`~heterodyne.simulate.maps`, :mod:`~heterodyne.simulate.frames`) and the
beamline result file that holds them (:mod:`~heterodyne.simulate.aps_file`)."""
