"""The `mft-hpc` command line."""
