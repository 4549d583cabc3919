"""Collect: every member's metrics into a leaderboard and the harness grouping files."""

from mft_hpc.collect.leaderboard import build_leaderboard, write_leaderboard
from mft_hpc.collect.metrics import MemberScores, read_run_scores

__all__ = ["MemberScores", "build_leaderboard", "read_run_scores", "write_leaderboard"]
