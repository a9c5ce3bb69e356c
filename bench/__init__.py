"""The benchmark instrument: a deterministic data generator and the scenarios of ``make bench``.

See docs/performance.md. Nothing here is imported by the running application; ``manage.py generate`` calls
:mod:`bench.generate` from a repository checkout.
"""
