import sys

from vqblur.cli import main

sys.exit(main())
