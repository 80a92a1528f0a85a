"""Figures of one dataset, drawn only from saved results (restyling never refits).

One module per figure family (:mod:`.c2_maps`, :mod:`.one_time_cuts`, :mod:`.noise_vs_lag`,
:mod:`.physics_curves`, :mod:`.cmc_posteriors`, :mod:`.nlsq_vs_cmc`), the shared look in
:mod:`.style`, the saved CMC result in :mod:`.saved_results`. Caption templates
live in ``captions/``. Journal figures (vector PDF, one column wide) for ``heterodyne paper``:
:mod:`.paper_plan` (which figures, from which files), :mod:`.paper` (drawing), :mod:`.paper_style`
(fonts, letters, PDF metadata), :mod:`.paper_readme`.
"""
