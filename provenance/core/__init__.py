"""The foundation layer, below every provkit package.

It imports nothing of provkit outside ``provenance.core`` (a test pins this), so
``provenance``, ``detect``, ``generate`` and ``policies`` may all build on it:

- ``errors``      the one exception family (``ProvkitError`` and its subclasses)
- ``workspace``   home directory, the one database coercion (``database``), migrations
- ``options``     CLI options (``--db``, ``--json``, ``-o/--out``, ``--force``, ``--trust``),
                  JSON output, the one progress bar
- ``plugins``     objects named by import path (``module:attr``)
- ``imageio``     sniffing, decoding with limits, the one encoder, listing image folders
- ``files``       atomic writes and moves, file SHA-256
- ``clock``       the current time and its ISO text
- ``about``       provkit's name and version
- ``vocabulary``  IPTC source types, training uses, status-code groups, verify states
- ``context``     the policy decision context's shape and the one ``asset`` builder
- ``offline``     no downloads: offline mode forced for every model load
- ``weights``     the SHA-256 of model weights, cached
- ``extras``      optional heavy libraries: ``require(extra, module)`` or a one-line
                  ``pip install 'provkit[extra]'`` error
"""
