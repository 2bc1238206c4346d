"""Generator backends: each turns a GenerationRequest into raw images for sealing.

``builtin`` (CPPN abstract art, no weights), ``diffusers`` (local pipelines), ``gan`` and
``vae`` (latent-to-image torch modules) and ``callable`` (any ``f(request)``). Look one up
with :func:`get_backend`; none of them imports torch until it is used.
"""

from provkit.generate.backends.base import BACKENDS, Backend, get_backend, register_backend

__all__ = ["BACKENDS", "Backend", "get_backend", "register_backend"]
