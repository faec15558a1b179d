"""Per-seed comparison of two methods (synjax.runs.compare) and its strip plot."""

from __future__ import annotations

import numpy as np
import pytest

from synjax.runs.compare import compare_seeds, main


def test_compare_seeds_statistics():
    same = compare_seeds([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    assert same["welch_p"] == pytest.approx(1.0) and same["mannwhitney_p"] == pytest.approx(1.0)
    apart = compare_seeds([10.0, 11.0, 12.0, 13.0, 14.0], [1.0, 2.0, 3.0, 4.0, 5.0], below=6)
    assert apart["welch_p"] < 1e-3 and apart["mannwhitney_p"] < 0.02
    assert apart["a"]["mean"] == 12.0 and apart["b"]["median"] == 3.0
    assert apart["below"]["a"] == 0 and apart["below"]["b"] == 5 and apart["below"]["fisher_p"] < 0.01
    low, high = apart["a"]["ci95"]
    assert low < 12.0 < high


def test_compare_seeds_refuses_too_few_or_non_finite_scores():
    with pytest.raises(ValueError, match="at least 2 finite"):
        compare_seeds([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2 finite"):
        compare_seeds([1.0, np.nan], [1.0, 2.0])


def test_compare_script_prints_and_plots(tmp_path, capsys):
    plot = tmp_path / "seeds.png"
    argv = [
        "--a",
        "ours",
        "16",
        "2",
        "13",
        "--b",
        "theirs",
        "11",
        "16",
        "15",
        "--below",
        "10",
        "--plot",
        str(plot),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "ours: 10.33" in out and "seeds below 10: ours 1, theirs 0" in out
    assert plot.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit):
        main(["--a", "ours", "1", "x", "--b", "theirs", "1", "2"])
    assert "takes a name then numbers" in capsys.readouterr().err
