"""``python -m faceswap`` behaves exactly like the ``faceswap`` console script."""

import sys

from faceswap.cli import main

if __name__ == "__main__":
    sys.exit(main())
