"""The composition root: the only package that imports every layer.

It holds the Litestar app factory (:mod:`odr.app`, mounting each area's list of route handlers), the
``odr`` command (:mod:`odr.cli` and one module per group of commands) and the process start-up
(:mod:`odr.processes`: serve, worker, migrate; :mod:`odr.demo`: the demo provinces). Nothing imports
``odr``; see the README's "How it is built" for what each layer may import.
"""
