"""The ODR platform core: tenancy-aware database access, the plugin host, complaints and enterprises."""

import os

os.environ.setdefault("PICCOLO_CONF", "core.db.piccolo_conf")
