"""Imported first by the root tasks.py, for its side effect: bytecode caching back on.

invoke turns it off for the whole process (so that no .pyc lands beside a
tasks.py); for this package that meant ~100 modules compiled again on every
`inv` (0.1-0.3 s of each command). The user's PYTHONDONTWRITEBYTECODE still
decides.
"""

import os
import sys

sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
