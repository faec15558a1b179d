"""Shared test settings."""

import pytest

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
