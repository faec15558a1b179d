"""One greedy episode of a saved policy, as frames and as an animated GIF (``episode.gif``, ``synjax eval --gif``).

- :func:`record_episode`: plays one deterministic episode of a :class:`synjax.runs.saved_policy.Policy` in one jitted
  scan and keeps every state, the last one before any auto-reset (``step_env``: the environment must be a gymnax
  ``Environment``, as every registered one is).
- :func:`episode_frames`: RGB frames (H, W, 3) uint8 of an episode, drawn by

  - gymnax's own visualization where it has one: classic control (gymnax's adapters to Gymnasium's
    ``rgb_array`` renderer, one Gymnasium environment for the whole episode; needs pygame) and the games of
    ``gymnax.visualize.Visualizer`` (MinAtar, Catch, mazes: its matplotlib figure, drawn per frame);
  - small Pillow renderers of synjax's environments: Taxi-v4 (grid, walls, landmarks, passenger, destination,
    taxi) and ShowerEnv (the temperature so far against the comfort band);
  - a wrapper with an ``env`` attribute (``CartPole-masked-v1``) is drawn as the environment it wraps.
- :func:`write_gif`: frames to an animated GIF (Pillow).
- :func:`write_run_gif`: ``episode.gif`` of run 0's final policy into a results folder being written.

Pillow comes with matplotlib; where it is missing, :func:`unavailable` says so, the results folders go without
``episode.gif`` and ``synjax eval --gif`` is refused before anything runs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from synjax.runs import results, saved_policy
from synjax.runs.saved_policy import Builder, Policy

#: frames of the GIF in every results folder (an episode longer than this is cut).
RUN_GIF_FRAMES = 200
#: the file in every JAX-environment run's results folder.
RUN_GIF = "episode.gif"

#: environments gymnax draws through Gymnasium's classic-control renderer (gymnax.visualize.vis_gym).
GYM_ENVS = ("Acrobot-v1", "CartPole-v1", "Pendulum-v1", "MountainCar-v0", "MountainCarContinuous-v0")
#: the other environments ``gymnax.visualize.Visualizer`` (gymnax 1.0) draws.
VISUALIZER_ENVS = (
    "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "Seaquest-MinAtar", "SpaceInvaders-MinAtar",
    "Pong-misc", "Catch-bsuite", "PointRobot-misc", "MetaMaze-misc", "FourRooms-misc",
)  # fmt: skip
#: environments with a renderer of their own here.
OWN_ENVS = ("Taxi-v4", "ShowerEnv")

CAPTION_HEIGHT = 14
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (200, 200, 200)


@dataclasses.dataclass
class Episode:
    """One recorded episode of ``T`` steps.

    Attributes:
      states: T + 1 unbatched environment states: the start, then the state after each step (the last one is
        where the episode ended, not the auto-reset).
      observations: (T + 1, *obs_shape) the policy's observations of those states.
      actions: (T, ...) the actions taken.
      rewards: (T,) float32.
      terminated: the episode ended in a terminal state.
      truncated: the environment cut it (both False: cut at ``max_steps``).
    """

    states: list[Any]
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool
    truncated: bool

    @property
    def returns(self) -> np.ndarray:
        """(T + 1,) the return so far at each state (0 at the start)."""
        return np.concatenate([[0.0], np.cumsum(self.rewards, dtype=np.float64)])


def record_episode(policy: Policy, params: Any, seed: int = 0, max_steps: int = RUN_GIF_FRAMES) -> Episode:
    """One deterministic episode of ``policy`` (a :class:`synjax.runs.saved_policy.Policy`) with one run's ``params``
    (no leading run axis), from ``jax.random.key(seed)``, at most ``max_steps`` steps."""
    env, env_params = policy.env, policy.env_params

    def play(p, key):
        k_reset, k_run = jax.random.split(key)
        obs, state = env.reset(k_reset, env_params)

        def step(c, k):
            obs, state, carry, done = c
            action, carry = policy.act(p, obs[None], carry)
            obs2, state2, reward, terminated, _ = env.step_env(k, state, action[0], env_params)
            truncated = env.is_truncated(state2, env_params)
            keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(done, o, n), new, old)
            c = (keep(obs2, obs), keep(state2, state), carry, done | terminated | truncated)
            return c, (obs2, state2, action[0], reward, terminated, truncated)

        init = (obs, state, policy.initial_carry(p, (1,)), jnp.bool_(False))
        _, out = jax.lax.scan(step, init, jax.random.split(k_run, max_steps))
        return obs, state, out

    obs, state, out = jax.jit(play)(params, jax.random.key(seed))
    obs_seq, state_seq, actions, rewards, terminated, truncated = jax.tree.map(np.asarray, out)
    ended = np.flatnonzero(terminated | truncated)
    length = int(ended[0]) + 1 if ended.size else max_steps
    steps = [jax.tree.map(lambda x, t=t: x[t], state_seq) for t in range(length)]  # none after the end
    states = [jax.tree.map(np.asarray, state), *steps]
    return Episode(
        states=states,
        observations=np.concatenate([np.asarray(obs)[None], obs_seq[:length]]),
        actions=actions[:length],
        rewards=rewards[:length].astype(np.float32),
        terminated=bool(ended.size) and bool(terminated[length - 1]),
        truncated=bool(ended.size) and bool(truncated[length - 1]),
    )


# ------------------------------------------------------------------------------------------------ what draws


def _drawn_env(env: Any) -> Any:
    """``env``, or the environment it wraps (``env.env``, repeatedly) if only that one has a renderer."""
    while _name(env) not in (*OWN_ENVS, *GYM_ENVS, *VISUALIZER_ENVS) and hasattr(env, "env"):
        env = env.env
    return env


def _name(env: Any) -> str:
    return str(getattr(env, "name", type(env).__name__))


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def unavailable(env: Any) -> str | None:
    """Why no GIF of ``env`` can be drawn here, as a phrase (None: one can)."""
    if not _installed("PIL"):
        return "drawing a GIF needs Pillow, which is not installed (pip install pillow)"
    name = _name(_drawn_env(env))
    if name in GYM_ENVS and not _installed("pygame"):
        return (f"{name} is drawn by Gymnasium's classic-control renderer, which needs pygame, not installed "
                "(pip install 'gymnasium[classic-control]')")  # fmt: skip
    if name not in (*OWN_ENVS, *GYM_ENVS, *VISUALIZER_ENVS):
        drawn = ", ".join((*OWN_ENVS, *GYM_ENVS, *VISUALIZER_ENVS))
        return f"no renderer draws {_name(env)} (one draws {drawn})"
    return None


def episode_frames(env: Any, env_params: Any, episode: Episode) -> tuple[list[np.ndarray], int]:
    """``(frames (H, W, 3) uint8, one per state of episode, milliseconds per frame)``; see :func:`unavailable`
    for what can be drawn."""
    why = unavailable(env)
    if why is not None:
        raise ValueError(f"cannot draw {_name(env)}: {why}")
    drawn = _drawn_env(env)
    name = _name(drawn)
    if name == "Taxi-v4":
        return [taxi_frame(s, r) for s, r in zip(episode.states, episode.returns)], 250
    if name == "ShowerEnv":
        return shower_frames(episode, int(env_params.max_steps_in_episode)), 100
    if name in GYM_ENVS:
        return _gym_frames(name, env_params, episode), 50  # gymnax's Visualizer: 50 ms for classic control
    return _visualizer_frames(drawn, env_params, episode), 100


def write_gif(path: str | os.PathLike, frames: list[np.ndarray], frame_ms: int = 100) -> Path:
    """Animated GIF (looping) of ``frames``, each (H, W, 3) or (H, W) uint8, ``frame_ms`` each; returns the path."""
    from PIL import Image

    path = Path(path)
    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    images[0].save(
        path, format="GIF", save_all=True, append_images=images[1:], duration=int(frame_ms), loop=0
    )
    return path


def write_episode_gif(path: str | os.PathLike, policy: Policy, params: Any, seed: int = 0,
                      max_steps: int = RUN_GIF_FRAMES) -> Episode:  # fmt: skip
    """Record one episode of ``policy`` with one run's ``params`` (:func:`record_episode`) and write it to
    ``path`` as a GIF; returns the episode."""
    episode = record_episode(policy, params, seed, max_steps)
    frames, frame_ms = episode_frames(policy.env, policy.env_params, episode)
    write_gif(path, frames, frame_ms)
    return episode


def write_run_gif(stage: str | os.PathLike, build: Builder) -> Path | None:
    """``stage / episode.gif``: one greedy episode (seed 0) of run 0's policy, read back from the results folder
    being written (its config.json and params.msgpack; ``build``: the experiment's
    :data:`~synjax.runs.saved_policy.Builder`), at most :data:`RUN_GIF_FRAMES` frames. Nothing when
    Pillow or a renderer of the environment is missing, or when the run's config says ``gif: false``
    (``--no-gif``); a failure to draw is reported on stderr and the results folder is written without the GIF (a
    picture never costs a run its results)."""
    stage = Path(stage)
    if not results.load_config(stage).get("gif", True):
        return None
    try:
        policy, params, _ = saved_policy.load(stage, build)
        if unavailable(policy.env) is not None:
            return None
        first = jax.tree.map(lambda x: jnp.asarray(x[0]), params)
        write_episode_gif(stage / RUN_GIF, policy, first, seed=0, max_steps=RUN_GIF_FRAMES - 1)
    except Exception as e:  # noqa: BLE001 (see the docstring)
        (stage / RUN_GIF).unlink(missing_ok=True)
        print(f"synjax: {RUN_GIF} not written ({type(e).__name__}: {e})", file=sys.stderr)
        return None
    return stage / RUN_GIF


# ------------------------------------------------------------------------------------------------- drawing


def _font():
    from PIL import ImageFont

    return ImageFont.load_default()


def caption(frame: np.ndarray, text: str) -> np.ndarray:
    """``frame`` (H, W, 3) with a white strip above it holding ``text``."""
    from PIL import Image, ImageDraw

    h, w = frame.shape[:2]
    image = Image.new("RGB", (w, h + CAPTION_HEIGHT), WHITE)
    image.paste(Image.fromarray(np.asarray(frame, np.uint8)), (0, CAPTION_HEIGHT))
    ImageDraw.Draw(image).text((3, 1), text, fill=BLACK, font=_font())
    return np.asarray(image)


#: Taxi: pixels per grid cell; landmark fills R, G, Y, B.
TAXI_CELL = 36
TAXI_LANDMARK_COLORS = ((255, 190, 190), (190, 240, 190), (255, 245, 160), (190, 200, 255))


def taxi_frame(state: Any, ret: float = 0.0) -> np.ndarray:
    """One unbatched Taxi state as an RGB image: walls black, the landmarks R G Y B tinted, the destination framed
    magenta, a waiting passenger a blue disc, the taxi yellow (green while carrying); caption: step, return and
    the last action."""
    from PIL import Image, ImageDraw

    from synjax.envs import taxi

    cell, pad = TAXI_CELL, 4
    size = taxi.NUM_COLS * cell + 2 * pad
    image = Image.new("RGB", (size, taxi.NUM_ROWS * cell + 2 * pad), WHITE)
    draw = ImageDraw.Draw(image)
    box = lambda r, c, inset=0: (pad + c * cell + inset, pad + r * cell + inset,
                                 pad + (c + 1) * cell - inset, pad + (r + 1) * cell - inset)  # fmt: skip
    row, col = int(state.taxi_row), int(state.taxi_col)
    pass_loc, dest, last = int(state.pass_loc), int(state.dest_idx), int(state.last_action)
    for i, (r, c) in enumerate(taxi.LOCS):
        draw.rectangle(box(r, c), fill=TAXI_LANDMARK_COLORS[i])
    for r in range(taxi.NUM_ROWS):
        for c in range(taxi.NUM_COLS):
            draw.rectangle(box(r, c), outline=GREY)
    draw.rectangle(box(*taxi.LOCS[dest], 1), outline=(200, 0, 200), width=3)
    carrying = pass_loc == taxi.IN_TAXI
    draw.rounded_rectangle(box(row, col, 7), radius=5, fill=(0, 160, 60) if carrying else (245, 190, 0),
                           outline=BLACK)  # fmt: skip
    if not carrying:
        draw.ellipse(box(*taxi.LOCS[pass_loc], 12), fill=(30, 60, 220), outline=BLACK)
    for i, (r, c) in enumerate(taxi.LOCS):
        draw.text((pad + c * cell + 2, pad + r * cell + 1), taxi.LOC_NAMES[i], fill=BLACK, font=_font())
    for r in range(taxi.NUM_ROWS):  # in MAP, the character between columns c and c + 1 of row r
        for c in range(taxi.NUM_COLS - 1):
            if taxi.MAP[1 + r][2 * c + 2] == "|":
                x = pad + (c + 1) * cell
                draw.line((x, pad + r * cell, x, pad + (r + 1) * cell), fill=BLACK, width=4)
    draw.rectangle((pad - 2, pad - 2, size - pad + 1, taxi.NUM_ROWS * cell + pad + 1), outline=BLACK, width=3)
    action = f" {taxi.ACTION_NAMES[last]}" if 0 <= last < taxi.NUM_ACTIONS else ""
    return caption(np.asarray(image), f"t={int(state.time)} return {ret:.5g}{action}")


def shower_frames(episode: Episode, max_steps: int = 60) -> list[np.ndarray]:
    """ShowerEnv: per state, the temperature so far (blue line, the current one a red dot) against the comfort
    band (green, 37-39 degrees) over the episode's time axis; caption: step, temperature and return."""
    from PIL import Image, ImageDraw

    from synjax.envs import shower

    temps = np.array([int(s.temperature) for s in episode.states])
    lo = min(int(temps.min()), shower.COMFORT_LOW - 5) - 1
    hi = max(int(temps.max()), shower.COMFORT_HIGH + 5) + 1
    w, h, left, right, top, bottom = 220, 140, 24, 6, 6, 14
    x_of = lambda t: left + (w - left - right) * t / max(1, max_steps)
    y_of = lambda temp: top + (h - top - bottom) * (hi - temp) / (hi - lo)
    font = _font()
    frames = []
    for t, (temp, ret) in enumerate(zip(temps, episode.returns)):
        image = Image.new("RGB", (w, h), WHITE)
        draw = ImageDraw.Draw(image)
        draw.rectangle((left, y_of(shower.COMFORT_HIGH + 0.5), w - right, y_of(shower.COMFORT_LOW - 0.5)),
                       fill=(200, 240, 200))  # fmt: skip
        draw.rectangle((left, top, w - right, h - bottom), outline=BLACK)
        for value in (lo, hi):
            draw.text((2, y_of(value) - 6), str(value), fill=BLACK, font=font)
        band = f"{shower.COMFORT_LOW}-{shower.COMFORT_HIGH}"
        draw.text((w - right - 34, y_of(shower.COMFORT_HIGH + 0.5) - 12), band, fill=(0, 120, 0), font=font)
        draw.text((left, h - bottom + 1), "0", fill=BLACK, font=font)
        draw.text((w - right - 14, h - bottom + 1), str(max_steps), fill=BLACK, font=font)
        points = [(x_of(i), y_of(v)) for i, v in enumerate(temps[: t + 1])]
        if len(points) > 1:
            draw.line(points, fill=(30, 60, 220), width=2)
        x, y = points[-1]
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=(220, 30, 30))
        frames.append(caption(np.asarray(image), f"ShowerEnv t={t} T={temp} return {ret:.5g}"))
    return frames


def _gym_frames(name: str, env_params: Any, episode: Episode) -> list[np.ndarray]:
    """Classic control through gymnax's adapters (``vis_gym.set_gym_params``, ``get_gym_state``) to one Gymnasium
    ``rgb_array`` environment, halved to 300 x 200; caption: step and return."""
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # pygame starts no sound or window (and prints nothing)
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import gymnasium
    from gymnax.visualize import vis_gym
    from PIL import Image

    env = gymnasium.make(name, render_mode="rgb_array")
    frames = []
    try:
        env.reset(seed=0)
        raw = env.unwrapped
        vis_gym.set_gym_params(raw, name, env_params)
        for t, (state, ret) in enumerate(zip(episode.states, episode.returns)):
            raw.state = vis_gym.get_gym_state(state, name)
            if name == "Pendulum-v1":
                raw.last_u = np.asarray(state.last_u, np.float64)
            image = Image.fromarray(np.asarray(env.render()))
            small = np.asarray(image.resize((image.width // 2, image.height // 2), Image.BILINEAR))
            frames.append(caption(small, f"{name} t={t} return {ret:.5g}"))
    finally:
        env.close()
    return frames


def _visualizer_frames(env: Any, env_params: Any, episode: Episode) -> list[np.ndarray]:
    """gymnax's ``Visualizer`` (its figure, ``init`` and ``update``), drawn per state at 50 dpi (300 x 250)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from gymnax.visualize import Visualizer

    vis = Visualizer(env, env_params, episode.states, episode.returns)
    try:
        vis.fig.set_dpi(50)
        vis.init()
        frames = []
        for t in range(len(episode.states)):
            vis.update(t)
            vis.fig.canvas.draw()
            frames.append(np.asarray(vis.fig.canvas.buffer_rgba())[..., :3].copy())
    finally:
        plt.close(vis.fig)
    return frames
