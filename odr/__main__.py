"""``python -m odr ...``: the ``odr`` command (:func:`odr.cli.main`)."""

import sys

from odr.cli import main

sys.exit(main())
