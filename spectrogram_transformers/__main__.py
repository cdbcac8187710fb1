"""`python -m spectrogram_transformers ...` is the same as the `spectrogram-transformers` command."""

import sys

from .cli import main

sys.exit(main())
