"""Data: reading beamline files, simulating them, the normalised Dataset and per-angle weights."""
