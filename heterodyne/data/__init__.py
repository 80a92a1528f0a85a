"""Data: reading beamline files and the normalised Dataset (simulated files: :mod:`heterodyne.simulate`)."""
