"""Joint multi-angle Consensus Monte Carlo: pooled points split into shards (``pooling``), the
NumPyro model of one shard (``model``), NUTS on a shard (``sampling``), R-hat and ESS
(``convergence``), sampler diagnostics and pass criteria (``diagnostics``), the consensus
combination and summary (``combine``), the consensus against NLSQ and the prior (``compare``) and
the draws files (``draws_file``)."""
