"""Per-angle weights of the fits: estimated from the c2 maps (:mod:`.estimate`) and stored in
weights.json (:mod:`.weights_file`, read by every step after ``heterodyne weight``)."""
