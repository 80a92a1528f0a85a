"""Joint multi-angle Consensus Monte Carlo: pooled points split into shards (``pooling``), the
sampling coordinates shared by all shards (``coordinates``), the log density of one shard
(``model``), whitened NUTS on a shard (``sampling``), R-hat and ESS (``convergence``), sampler
diagnostics and pass criteria (``diagnostics``), the consensus combination and summary
(``combine``), the consensus against NLSQ and the prior (``compare``) and the draws files
(``draws_file``)."""
