"""synjax.cpu_flags: the XLA CPU convolution setting applied at import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from synjax import cpu_flags


@pytest.fixture
def fresh_backend(monkeypatch):
    monkeypatch.setattr(cpu_flags, "_backends_started", lambda: False)


def test_adds_the_flag_and_keeps_the_users_flags(fresh_backend):
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert cpu_flags.prefer_xla_convolutions(env, "0.10.2")
    assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=2 {cpu_flags.CONV_FLAG}"
    empty: dict[str, str] = {}
    assert cpu_flags.prefer_xla_convolutions(empty, "0.10.0")
    assert empty["XLA_FLAGS"] == cpu_flags.CONV_FLAG


@pytest.mark.parametrize(
    "env, version",
    [
        ({"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type="}, "0.10.2"),  # the user's own choice wins
        ({}, "0.11.0"),  # a jaxlib the flag was not checked with: an unknown XLA flag would abort the process
        ({}, "0.9.2"),
    ],
)
def test_leaves_flags_alone(fresh_backend, env, version):
    before = dict(env)
    assert not cpu_flags.prefer_xla_convolutions(env, version)
    assert env == before


def test_does_nothing_once_jax_runs(monkeypatch):
    monkeypatch.setattr(cpu_flags, "_backends_started", lambda: True)
    env: dict[str, str] = {}
    assert not cpu_flags.prefer_xla_convolutions(env, "0.10.2")
    assert env == {}


def test_importing_synjax_sets_the_flags_before_jax_starts():
    code = ("import os, synjax, jax; jax.numpy.ones(1).block_until_ready(); print(os.environ['XLA_FLAGS']); "
            "print(jax.device_count())")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", cpu_flags.DEVICES_ENV)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    flags, count = out.stdout.split("\n")[:2]
    cores = cpu_flags.usable_cores()
    assert flags == cpu_flags.CONV_FLAG + (f" {cpu_flags.DEVICES_FLAG}={cores}" if cores > 1 else "")
    assert int(count) == cores  # one CPU device per core


def test_one_device_per_core(fresh_backend):
    env: dict[str, str] = {"XLA_FLAGS": "--a=1"}
    assert cpu_flags.one_device_per_core(env, cores=4) == 4
    assert env["XLA_FLAGS"] == f"--a=1 {cpu_flags.DEVICES_FLAG}=4"
    asked = {cpu_flags.DEVICES_ENV: "3"}
    assert cpu_flags.one_device_per_core(asked, cores=8) == 3
    assert asked["XLA_FLAGS"] == f"{cpu_flags.DEVICES_FLAG}=3"


@pytest.mark.parametrize(
    "env, cores",
    [
        ({cpu_flags.DEVICES_ENV: "1"}, 8),  # the user keeps JAX's single CPU device
        ({}, 1),  # one core: nothing to split
        ({"XLA_FLAGS": f"{cpu_flags.DEVICES_FLAG}=4"}, 2),  # the user's own count wins
        ({"JAX_NUM_CPU_DEVICES": "2"}, 8),
    ],
)
def test_device_count_left_alone(fresh_backend, env, cores):
    before = dict(env)
    assert cpu_flags.one_device_per_core(env, cores=cores) == 0
    assert env == before


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_bad_device_count_is_refused(fresh_backend, value):
    with pytest.raises(ValueError, match="SYNJAX_CPU_DEVICES=.* must be a whole number >= 1"):
        cpu_flags.one_device_per_core({cpu_flags.DEVICES_ENV: value}, cores=2)
