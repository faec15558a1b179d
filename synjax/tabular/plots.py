"""Policy-map pictures of any (500, 6) Taxi value table: the greedy action in every taxi cell, walls drawn."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from synjax.envs import taxi

# Arrow (dx, dy) in plot coordinates (y grows downwards because the axis is inverted) per move action.
_ARROWS = {taxi.SOUTH: (0.0, 0.3), taxi.NORTH: (0.0, -0.3), taxi.EAST: (0.3, 0.0), taxi.WEST: (-0.3, 0.0)}
_LETTERS = {taxi.PICKUP: "P", taxi.DROPOFF: "D"}


def _walls() -> list[tuple[float, float, float, float]]:
    """Wall segments (x0, y0, x1, y1) in cell units: the map's '|' between cells, and the border."""
    segments = [(0, 0, 5, 0), (0, 5, 5, 5), (0, 0, 0, 5), (5, 0, 5, 5)]
    for row in range(taxi.NUM_ROWS):
        for col in range(taxi.NUM_COLS - 1):
            if taxi.MAP[1 + row][2 * col + 2] == "|":
                segments.append((col + 1, row, col + 1, row + 1))
    return segments


def draw_policy_map(ax, q: np.ndarray, pass_loc: int, dest: int, title: str | None = None) -> None:
    """Draw the greedy policy of ``q`` for one passenger location and destination onto ``ax``.

    Args:
      q: (500, 6) value table (any of synjax's: tabular Q, STDP weights).
      pass_loc: 0..3 the passenger waits at landmark R, G, Y, B; 4 the passenger rides in the taxi.
      dest: 0..3 destination landmark.
    Cells are shaded by max_a q (the state value); arrows are moves, "P"/"D" pickup/drop-off; the waiting
    passenger's landmark is ringed blue, the destination magenta.
    """
    q = np.asarray(q, np.float64)
    if q.shape != (taxi.NUM_STATES, taxi.NUM_ACTIONS):
        raise ValueError(f"q has shape {q.shape}; expected ({taxi.NUM_STATES}, {taxi.NUM_ACTIONS})")
    if not (0 <= pass_loc <= 4 and 0 <= dest <= 3):
        raise ValueError(f"pass_loc={pass_loc} must be in 0..4 and dest={dest} in 0..3")
    rows, cols = np.meshgrid(np.arange(5), np.arange(5), indexing="ij")
    states = taxi.encode(rows, cols, pass_loc, dest)  # (5, 5)
    value = q[states].max(-1)
    action = q[states].argmax(-1)
    ax.imshow(value, cmap="viridis", extent=(0, 5, 5, 0), alpha=0.55)
    for r in range(5):
        for c in range(5):
            a = int(action[r, c])
            x, y = c + 0.5, r + 0.5
            if a in _ARROWS:
                dx, dy = _ARROWS[a]
                ax.annotate(
                    "",
                    xy=(x + dx, y + dy),
                    xytext=(x - dx, y - dy),
                    arrowprops={"arrowstyle": "-|>", "lw": 1.8, "color": "black"},
                )
            else:
                ax.text(
                    x, y, _LETTERS[a], ha="center", va="center", fontsize=14, fontweight="bold", color="red"
                )
    for i, (r, c) in enumerate(taxi.LOCS):
        ax.text(c + 0.1, r + 0.22, taxi.LOC_NAMES[i], fontsize=10, fontweight="bold", color="white")
    if pass_loc < 4:
        r, c = taxi.LOCS[pass_loc]
        ax.add_patch(plt.Rectangle((c + 0.04, r + 0.04), 0.92, 0.92, fill=False, ec="tab:blue", lw=3))
    r, c = taxi.LOCS[dest]
    ax.add_patch(plt.Rectangle((c + 0.1, r + 0.1), 0.8, 0.8, fill=False, ec="magenta", lw=3, ls="--"))
    for x0, y0, x1, y1 in _walls():
        ax.plot([x0, x1], [y0, y1], color="black", lw=4, solid_capstyle="butt")
    ax.set_xlim(0, 5)
    ax.set_ylim(5, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    where = "in the taxi" if pass_loc == 4 else f"at {taxi.LOC_NAMES[pass_loc]}"
    ax.set_title(
        title if title is not None else f"passenger {where}, destination {taxi.LOC_NAMES[dest]}", fontsize=10
    )


def plot_policy_map(
    path: str | Path, q: np.ndarray, pass_loc: int | Sequence[int], dest: int, title: str = ""
) -> None:
    """Write the greedy-policy map of ``q`` (500, 6) to ``path`` (PNG).

    Args:
      pass_loc: one passenger location (0..3 waiting at R/G/Y/B, 4 in the taxi) or several, one panel each
        (e.g. ``(0, 4)``: the pickup phase and the delivery phase of the same trip).
      dest: destination landmark 0..3.
      title: figure title.
    """
    locs = [pass_loc] if np.isscalar(pass_loc) else list(pass_loc)
    fig, axes = plt.subplots(1, len(locs), figsize=(3.6 * len(locs), 3.9), squeeze=False)
    for ax, loc in zip(axes[0], locs):
        draw_policy_map(ax, q, int(loc), int(dest))
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
