import sys

from mft_hpc.cli.main import main

sys.exit(main())
