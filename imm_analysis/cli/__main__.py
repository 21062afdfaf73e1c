"""``python -m imm_analysis.cli``: the same as the ``imm-analysis`` command."""

import sys

from imm_analysis.cli import main

sys.exit(main())
