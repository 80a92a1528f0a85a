"""Studies across fits of one dataset: :mod:`cross_q` (are the transport and velocity parameters
the same at every q?)."""
