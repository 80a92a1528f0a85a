"""Physics of the two-component heterodyne model (He et al., PNAS 2024, Eq. S-95)."""
