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


def test_importing_synjax_sets_the_flag_before_jax_starts():
    code = "import os, synjax, jax; jax.numpy.ones(1).block_until_ready(); print(os.environ['XLA_FLAGS'])"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == cpu_flags.CONV_FLAG
