"""The foundation layer, below every provkit package.

It imports nothing of provkit outside ``provenance.core`` (a test pins this), so
``provenance``, ``detect``, ``generate`` and ``policies`` may all build on it:

- ``errors``      the one exception family (``ProvkitError`` and its subclasses)
- ``workspace``   home directory, the one database handle, migrations
- ``options``     CLI options, JSON output, the progress bar, exit helpers
- ``plugins``     objects named by import path (``module:attr``)
- ``imageio``     sniffing, decoding with limits, encoding, listing image folders
- ``files``       atomic writes and moves
- ``offline``     no downloads: offline mode forced for every model load
- ``weights``     the SHA-256 of model weights, cached
- ``extras``      optional heavy libraries: ``require(extra, module)`` or a one-line
                  ``pip install 'provkit[extra]'`` error
"""
