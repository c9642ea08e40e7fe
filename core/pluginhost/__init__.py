"""The plugin host: discovery, registration, per-node activation and contained hook calls."""
