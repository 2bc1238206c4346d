"""``provkit serve``: the desk page and the HTTP API, composed from each package's router.

:mod:`provenance.server.app` builds the FastAPI app (routers, status, errors, limits),
:mod:`provenance.server.desk` the verification desk page and its downloadable report,
:mod:`provenance.server.commands` the ``serve``, ``tokens`` and ``report`` commands.
"""
