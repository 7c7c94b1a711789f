"""``python -m engine.loadtest ...``: ``callgate loadtest`` without the rest of the CLI (the
benchmarks and the tests run it so)."""

import sys

from .run import standalone

if __name__ == "__main__":
    sys.exit(standalone())
