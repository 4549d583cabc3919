"""mft-hpc: the MFTCoder recipe as a Slurm-native batch framework."""

__version__ = "0.1.0"
