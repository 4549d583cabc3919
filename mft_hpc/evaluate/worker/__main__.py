"""``python3 -I <this folder> [--scratch DIR | --probe | --prebuild DIR]``: the sandbox's entry point.

Run as a folder, this file is a top-level script: it imports the folder as a package (its modules
import each other relatively), whatever the folder is called and wherever it lies.
"""

import os
import sys

if __package__:   # python -m mft_hpc.evaluate.worker
    package = __package__
else:
    folder = os.path.dirname(os.path.abspath(__file__))
    sys.path[0] = os.path.dirname(folder)
    package = os.path.basename(folder)
sys.exit(__import__(f"{package}.main", fromlist=["main"]).main(sys.argv))
