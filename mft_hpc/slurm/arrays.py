"""Split arrays larger than the cluster's MaxArraySize into several Slurm arrays.

Each piece is submitted as its own array with indices 0..len-1, so the caller's element k maps to
(piece p, index k - start_p). An array that is aftercorr-dependent on a split parent is split at
the parent's boundaries, so element i of each dependent piece still pairs with element i of the
matching parent piece.
"""

from __future__ import annotations

from mft_hpc.slurm.dependency import Dependency
from mft_hpc.slurm.job_states import master_id


def split_ranges(count: int, max_size: int) -> list[range]:
    """[0, count) in consecutive pieces of at most ``max_size`` elements."""
    if max_size < 1:
        raise ValueError("max_size must be >= 1")
    return [range(start, min(start + max_size, count)) for start in range(0, count, max_size)]


def parent_pieces(element_ids: tuple[str, ...]) -> list[range]:
    """The pieces of a (possibly split) array given its flat element ids ``A_0..A_k, B_0..``.

    Raises ValueError when the ids are not whole arrays in order (aftercorr could not pair them).
    """
    pieces: list[range] = []
    start = 0
    while start < len(element_ids):
        master = master_id(element_ids[start])
        if element_ids[start] == master:  # a 1-element "array" is submitted as a plain job
            pieces.append(range(start, start + 1))
            start += 1
            continue
        end = start
        while end < len(element_ids) and master_id(element_ids[end]) == master:
            if element_ids[end] != f"{master}_{end - start}":
                raise ValueError(
                    f"aftercorr needs whole arrays in index order; got {element_ids[end]} at position {end}"
                )
            end += 1
        pieces.append(range(start, end))
        start = end
    return pieces


def plan_pieces(count: int, max_size: int, dependencies: list[Dependency]) -> list[range]:
    """How to split an array of ``count`` elements given its dependencies."""
    corr = [dep for dep in dependencies if dep.kind == "aftercorr"]
    if not corr:
        return split_ranges(count, max_size)
    plans = {tuple((r.start, r.stop) for r in parent_pieces(dep.job_ids)) for dep in corr}
    if len(plans) != 1:
        raise ValueError("aftercorr parents of one array are split differently")
    pieces = [range(a, b) for a, b in plans.pop()]
    if not pieces or pieces[-1].stop != count:
        parent_count = pieces[-1].stop if pieces else 0
        raise ValueError(f"aftercorr needs as many elements as the parent array ({count} vs {parent_count})")
    return pieces


def piece_throttles(parallelism: int, pieces: int) -> list[int]:
    """Share one ``%N`` throttle among the pieces of a split array, so that together they never
    run more than ``parallelism`` elements (at least 1 each)."""
    base, extra = divmod(parallelism, pieces)
    return [max(1, base + (1 if index < extra else 0)) for index in range(pieces)]


def piece_dependencies(dependencies: list[Dependency], piece: range) -> list[Dependency]:
    """Dependencies of one piece: aftercorr narrowed to the parent's matching piece."""
    narrowed: list[Dependency] = []
    for dep in dependencies:
        if dep.kind == "aftercorr":
            ids = dep.job_ids[piece.start:piece.stop]
            # a plain parent job (1-element piece) pairs with a plain dependent: afterok says that
            kind = "afterok" if len(ids) == 1 and ids[0] == master_id(ids[0]) else "aftercorr"
            narrowed.append(Dependency(kind, ids))
        else:
            narrowed.append(dep)
    return narrowed
