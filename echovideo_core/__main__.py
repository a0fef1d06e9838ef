"""`python -m echovideo_core` is the same CLI as `echovideo`."""
import sys

from echovideo_core.cli import main

sys.exit(main())
