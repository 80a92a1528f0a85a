"""Joint multi-angle Consensus Monte Carlo: pooled points split into shards (``pooling``), the
sampling coordinates shared by all shards (``coordinates``), the log density of one shard
(``model``), whitened NUTS on a shard (``sampling``) and on the shards of a dataset (``shards``),
R-hat and ESS (``convergence``), sampler diagnostics and pass criteria (``diagnostics``), the
consensus combination and summary (``combine``), the consensus against NLSQ and the prior
(``compare``), the draws files (``draws_file``), the summary files (``summary_file``), the check
of one combine's shard files (``shard_set``), the joint multi-q posterior (``joint_q``) with its
inputs (``joint_q_inputs``), and the combine steps from input files to record and draws
(``steps``)."""
