"""Self-contained HTML reports: one page per dataset and a project index page.

:mod:`.collect` reads a dataset's saved results (see :mod:`.result_folder`), :mod:`.findings` derives the warnings,
:mod:`.run_times` reads Snakemake benchmark files, :mod:`.software_section` flags versions that
differ from requirements.lock, :mod:`.markup` holds the shared markup helpers,
:mod:`.dataset_page` and :mod:`.index_page` render the two kinds of page, :mod:`.study_tables`
writes the CSV tables over all datasets (parameters.csv, fit_quality.csv). Figures are embedded as
base64 PNG at screen resolution (:mod:`.screen_png`), so a page needs no network and no other file
to be viewed; the dataset page also links each figure's PDF.
"""
