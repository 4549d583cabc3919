"""One module per config section; the root model is in mft_hpc.config.schema."""
