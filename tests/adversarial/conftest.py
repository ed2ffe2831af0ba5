"""The adversarial suite: hostile messages and servers, one table row per case.

With pytest's importlib import mode test directories are not on `sys.path`; the shared
oracles in `adversarial_support.py` are imported from here.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
