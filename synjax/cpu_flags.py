"""XLA CPU settings synjax applies before JAX starts its CPU backend.

jaxlib 0.10 hands every convolution on CPU to YNNPACK ("individual convolution" fusions). For the Nature CNN that
is up to 3x slower than XLA's own convolution. Gradient of the actor-critic on 256 / 64 / 20 stacked 84x84 frames,
2-core CPU, ms per call: YNNPACK 551 / 70 / 19.6, XLA's own 170 / 34 / 15.5, PyTorch 148 / 52 / 14.8
(``python scripts/bench_host.py --sections cnn``, 2026-11-29). :func:`prefer_xla_convolutions` removes only that
fusion type (dots, elementwise ops and reductions keep their defaults). It changes no result beyond float rounding.
"""

from __future__ import annotations

import os

#: Removes YNNPACK's convolution fusion from XLA CPU's defaults (the flag exists in jaxlib 0.10.x).
CONV_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"
_FLAG_NAME = "xla_cpu_experimental_ynn_fusion_type"
_JAXLIB_SERIES = "0.10."


def prefer_xla_convolutions(environ: dict[str, str] | None = None, jaxlib_version: str | None = None) -> bool:
    """Add :data:`CONV_FLAG` to ``XLA_FLAGS`` and return True, unless the user already set that flag, the jaxlib is
    not the 0.10 series the flag was measured with (an unknown XLA flag aborts the process), or JAX's backends are
    already running (then the flag could no longer take effect). To keep jaxlib's YNNPACK convolutions, name the
    flag yourself: ``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=+individual_convolution``.
    """
    environ = os.environ if environ is None else environ
    if jaxlib_version is None:
        import jaxlib

        jaxlib_version = jaxlib.__version__
    flags = environ.get("XLA_FLAGS", "")
    if _FLAG_NAME in flags or not jaxlib_version.startswith(_JAXLIB_SERIES) or _backends_started():
        return False
    environ["XLA_FLAGS"] = f"{flags} {CONV_FLAG}".strip()
    return True


def _backends_started() -> bool:
    from jax._src import xla_bridge  # present in the jaxlib 0.10 series this module acts on

    return bool(xla_bridge.backends_are_initialized())
