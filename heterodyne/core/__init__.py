"""Physics of the two-component heterodyne model (He et al., PNAS 2024 and 2025, SI Eq. S-95 of 2025)."""
