"""`python -m vllm`: the stand-in's command line (see vllm/__init__.py)."""

import sys

from vllm import main

sys.exit(main())
