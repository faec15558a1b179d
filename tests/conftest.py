"""Shared test settings."""

import os

import pytest

# One CPU device per test process: pytest-xdist already puts a worker on every core, so splitting each worker's
# process into one device per core again (synjax's default, see synjax.cpu_flags) would only add threads.
# tests/test_cpu_flags.py checks the default in a process of its own.
os.environ.setdefault("SYNJAX_CPU_DEVICES", "1")

#: the test modules that check ``episode.gif`` in a results folder; elsewhere the runs skip drawing it
#: (2-5 s a run: a jitted episode, 200 rendered frames, GIF encoding), which keeps CI inside its time budget.
GIF_MODULES = {"test_eval", "test_eval_gif", "test_dqn", "test_pqn"}


@pytest.fixture(autouse=True, scope="module")
def _episode_gif_only_where_tested(request):
    if request.module.__name__.rsplit(".", 1)[-1] in GIF_MODULES:
        yield
        return
    from synjax.runs import episode_gif

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(episode_gif, "write_run_gif", lambda stage, build: None)
        yield
