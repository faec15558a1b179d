"""XLA CPU settings synjax applies before JAX starts its CPU backend.

One JAX device per core (:func:`one_device_per_core`). XLA runs one device's program on about one core: the
elementwise loops of a small network do not spread over threads. The runner shards a sweep's seeds over the
devices, so with one device per core every core trains its share of the seeds. PPO on CartPole-v1, SpikingJelly's
settings, 64 seeds, 2-core CPU, total agent steps/s with 1 device / 2 devices: ANN 42,388 / 74,309; SNN T = 4
26,451 / 50,452; SNN T = 16 10,389 / 16,577 (2026-12-07; ``python scripts/bench_spiking_rl.py speed`` measures it).

jaxlib 0.10 hands every convolution on CPU to YNNPACK ("individual convolution" fusions). For the Nature CNN that
is up to 3x slower than XLA's own convolution. Gradient of the actor-critic on 256 / 64 / 20 stacked 84x84 frames,
2-core CPU, ms per call: YNNPACK 551 / 70 / 19.6, XLA's own 170 / 34 / 15.5, PyTorch 148 / 52 / 14.8
(``python scripts/bench_host.py --sections cnn``, 2026-11-29). :func:`prefer_xla_convolutions` removes only that
fusion type (dots, elementwise ops and reductions keep their defaults). It changes no result beyond float rounding.
"""

from __future__ import annotations

import os

#: XLA's flag for the number of CPU devices; ``SYNJAX_CPU_DEVICES`` is synjax's own setting of it
DEVICES_FLAG = "--xla_force_host_platform_device_count"
DEVICES_ENV = "SYNJAX_CPU_DEVICES"
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


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def one_device_per_core(environ: dict[str, str] | None = None, cores: int | None = None) -> int:
    """Ask XLA for one CPU device per core (``cores``: :func:`usable_cores`), or for ``SYNJAX_CPU_DEVICES``
    of them, by adding :data:`DEVICES_FLAG` to ``XLA_FLAGS``; return the count asked for, 0 where nothing was
    changed: the user set the flag or ``JAX_NUM_CPU_DEVICES`` themselves, the count is 1, or JAX's backends already
    run. ``SYNJAX_CPU_DEVICES=1`` keeps JAX's single CPU device.

    Raises:
      ValueError: ``SYNJAX_CPU_DEVICES`` is not a whole number >= 1.
    """
    environ = os.environ if environ is None else environ
    wanted = environ.get(DEVICES_ENV, "")
    if wanted and not (wanted.isdigit() and int(wanted) >= 1):
        raise ValueError(f"{DEVICES_ENV}={wanted!r} is invalid: must be a whole number >= 1 (CPU devices; 1 keeps "
                         "JAX's single CPU device)")  # fmt: skip
    count = int(wanted) if wanted else (cores or usable_cores())
    flags = environ.get("XLA_FLAGS", "")
    if count <= 1 or DEVICES_FLAG in flags or "JAX_NUM_CPU_DEVICES" in environ or _backends_started():
        return 0
    environ["XLA_FLAGS"] = f"{flags} {DEVICES_FLAG}={count}".strip()
    return count
