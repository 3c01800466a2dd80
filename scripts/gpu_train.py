"""`python3 -m scripts.gpu_train`: the recipe for one lent GPU call (export.training.gpu_recipe)."""

import sys

from export.training.gpu_recipe import main

if __name__ == "__main__":
    sys.exit(main())
