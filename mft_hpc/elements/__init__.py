"""What runs on the compute nodes: one typed, picklable callable per stage element.

The controller builds an element with everything its stage needs (its typed config section, the run
directory's paths) and submits it through ``Submitter``; submitit pickles it and calls it on a node
with no arguments. An element only reads and writes the run directory.
"""

from mft_hpc.elements.collect import CollectElement
from mft_hpc.elements.evaluate import EvaluateElement
from mft_hpc.elements.generate import GenerateElement
from mft_hpc.elements.train import TrainElement

__all__ = ["CollectElement", "EvaluateElement", "GenerateElement", "TrainElement"]
