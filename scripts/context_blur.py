"""`python -m scripts.context_blur`: the context-blur experiment (export.eval.context_blur)."""

import sys

from export.eval.context_blur import main

if __name__ == "__main__":
    sys.exit(main())
