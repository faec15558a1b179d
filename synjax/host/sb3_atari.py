"""Atari with a host-side action repeat: ALE v5 games stepped from Python with the semantics of Stable-Baselines3's
``make_atari_env`` (its ``AtariWrapper``) and ``VecFrameStack``, to reproduce runs made that way.

The original notebook wrapped ``ALE/Breakout-v5`` (which repeats each action for ``frame_skip`` = 4 frames with
sticky actions) in SB3's wrapper, which repeats that ``action_repeat`` = 4 more times. ALE's own vector
environment (:class:`synjax.host.envs.AtariEnv`) with 16 frames per action differs from that in four ways, all
reproduced here:

- the observation is the max of the *last two ALE steps'* RGB frames (frames 12 and 16 of a 16-frame action),
  then grayscale and an area resize to 84x84, not the max of the last two frames;
- a new game starts with 1..``noop_max`` no-op ALE steps, then the actions FIRE and 2 (when the game has FIRE);
- a lost life is followed, unseen by the agent, by a no-op action, FIRE and action 2 (SB3's pseudo-reset through
  ``EpisodicLifeEnv`` and ``FireResetEnv``), in training and in evaluation alike, since SB3 evaluates with the same
  wrapper; points scored in those steps count in the game's true score (SB3's ``Monitor`` sees them) but are no
  training reward (SB3's resets drop them);
- the frame stack restarts (zeros, then the new frame) after every lost life and every game, as ``VecFrameStack``
  does at each reset.

``episodic_life`` only decides whether a lost life is a terminal transition for training. The no-op count is
drawn from the game's own ``np_random`` (seeded by the first reset), as SB3's ``NoopResetEnv`` does.
"""

from __future__ import annotations

import numpy as np
import threadpoolctl

from synjax.host.envs import AtariEnv, AtariSettings, HostEnv, _require, check_game

#: Observation side (SB3's ``WarpFrame`` default).
SIZE = 84
NOOP, FIRE, ACTION_2 = 0, 1, 2


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float32 weights of an area resize: output pixel i averages input [i, i+1) * n_in / n_out,
    partly covered pixels by their covered fraction (OpenCV's ``INTER_AREA`` when shrinking)."""
    scale = n_in / n_out
    edges = np.arange(n_out + 1) * scale
    pixel = np.arange(n_in)
    overlap = np.minimum(edges[1:, None], pixel + 1) - np.maximum(edges[:-1, None], pixel)
    return (np.clip(overlap, 0, None) / scale).astype(np.float32)


_WEIGHTS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def warp(frame: np.ndarray) -> np.ndarray:
    """``(H, W, 3) uint8 RGB -> (84, 84) uint8``: ITU-R 601 luminance (Pillow), then an area resize; within 1 of
    SB3's ``WarpFrame`` (OpenCV), which Pillow's own box filter is not (up to 42 apart at edges, measured)."""
    from PIL import Image

    h, w = frame.shape[:2]
    if (h, w) not in _WEIGHTS:
        _WEIGHTS[h, w] = area_weights(h, SIZE), area_weights(w, SIZE).T.copy()
    rows, cols = _WEIGHTS[h, w]
    gray = np.asarray(Image.fromarray(frame).convert("L"), np.float32)
    return np.rint(rows @ gray @ cols).astype(np.uint8)


class _Game:
    """One ALE game behind SB3's wrapper chain (sticky actions inside ALE; no-op reset; max-and-skip over
    ``action_repeat`` ALE steps; episodic life; fire reset; warp). Frames are (84, 84) uint8."""

    def __init__(self, settings: AtariSettings):
        ale_env = _require("ale_py.env", "ale-py")
        self.env = ale_env.AtariEnv(
            game=settings.game,
            obs_type="rgb",
            frameskip=settings.frame_skip,
            repeat_action_probability=settings.sticky,
            max_num_frames_per_episode=settings.max_frames,
        )
        self.repeat = settings.action_repeat
        self.frame_skip = settings.frame_skip
        self.actions = self.env.ale.getMinimalActionSet()  # what ale_py's env maps action indices to
        self.noop_max = settings.noop_max
        meanings = self.env.get_action_meanings()
        self.has_fire = len(meanings) >= 3 and meanings[FIRE] == "FIRE"
        shape = self.env.observation_space.shape
        self._last_two = np.zeros((2, *shape), np.uint8)  # kept across actions, as SB3's MaxAndSkipEnv buffer
        self.lives = 0

    def act(self, action: int) -> tuple[np.ndarray, float, bool, bool]:
        """One agent action repeated ``action_repeat`` ALE steps: (frame, reward, terminated, truncated).

        Calls the emulator as ``ale_py``'s ``AtariEnv.step`` does, without its per-step bookkeeping, and copies
        the screen only for the last two ALE steps (the pooled ones)."""
        ale, code = self.env.ale, self.actions[action]
        total, terminated, truncated = 0.0, False, False
        for i in range(self.repeat):
            for _ in range(self.frame_skip):
                total += ale.act(code, 1.0)
            terminated, truncated = ale.game_over(with_truncation=False), ale.game_truncated()
            if i >= self.repeat - 2:
                ale.getScreenRGB(self._last_two[i - (self.repeat - 2)])
            if terminated or truncated:
                break
        return warp(self._last_two.max(axis=0)), total, bool(terminated), bool(truncated)

    def _fire_steps(self, frame: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """FIRE and action 2 after a (pseudo-)reset; a game that ends there restarts. (frame, reward, game ended)."""
        reward, ended = 0.0, False
        if self.has_fire:
            for action in (FIRE, ACTION_2):
                frame, r, terminated, truncated = self.act(action)
                reward += r
                if terminated or truncated:
                    frame, ended = self.new_game(), True
        self.lives = self.env.ale.lives()
        return frame, reward, ended

    def new_game(self, seed: int | None = None) -> np.ndarray:
        """Reset the emulator (seeded when ``seed`` is given) and play 1..noop_max single no-op ALE steps (SB3's
        ``NoopResetEnv`` sits inside its action repeat); returns the frame."""
        obs, _ = self.env.reset(seed=seed)
        noops = int(self.env.np_random.integers(1, self.noop_max + 1)) if self.noop_max > 0 else 0
        for _ in range(noops):
            obs, _, terminated, truncated, _ = self.env.step(NOOP)
            if terminated or truncated:
                obs, _ = self.env.reset()
        self.lives = self.env.ale.lives()
        return warp(obs)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """A whole new game with its FIRE start: the first frame."""
        return self._fire_steps(self.new_game(seed))[0]  # the new game's own start: nothing to report

    def after_life_loss(self) -> tuple[np.ndarray, float, bool]:
        """SB3's pseudo-reset after a lost life (no-op, then FIRE and action 2): (frame, reward, game ended)."""
        frame, reward, terminated, truncated = self.act(NOOP)
        if terminated or truncated:
            return self.reset(), reward, True
        frame, more, ended = self._fire_steps(frame)
        return frame, reward + more, ended


class SB3AtariEnv(HostEnv):
    """``num_envs`` games of :class:`_Game`, stepped one after another in Python, with frame stacks restarted at
    every lost life and game (see the module docstring). Observations (N, frame_stack, 84, 84) uint8."""

    def __init__(self, settings: AtariSettings, num_envs: int):
        check_game(settings.game)
        self.settings = settings
        self.num_envs = num_envs
        self.games = [_Game(settings) for _ in range(num_envs)]
        self.obs_shape = (settings.frame_stack, SIZE, SIZE)
        self.continuous = False
        self.action_dim = int(self.games[0].env.action_space.n)
        self._stack = np.zeros((num_envs, *self.obs_shape), np.uint8)
        self._unseen = np.zeros(num_envs, np.float64)  # this step's pseudo-reset points: score only
        # warp's two small matrix products run 4x faster on one BLAS thread than on OpenBLAS's default pool,
        # whose threads fight the emulator and XLA for the cores (0.26 vs 1.0 ms per frame, measured on 2 cores).
        self._blas = threadpoolctl.ThreadpoolController()
        super().__init__()

    def _restart_stack(self, i: int, frame: np.ndarray) -> None:
        self._stack[i] = 0
        self._stack[i, -1] = frame

    def _reset(self, seed: int) -> np.ndarray:
        with self._blas.limit(limits=1, user_api="blas"):
            for i, game in enumerate(self.games):
                self._restart_stack(i, game.reset(seed + i))
        return self._stack.copy()

    def _step(self, actions: np.ndarray):
        with self._blas.limit(limits=1, user_api="blas"):
            return self._step_games(actions)

    def _step_games(self, actions: np.ndarray):
        n = self.num_envs
        raw = np.zeros(n, np.float64)
        terminated, truncated, game_over = (np.zeros(n, bool) for _ in range(3))
        final_obs = np.empty_like(self._stack)
        self._unseen = np.zeros(n, np.float64)
        for i, (game, action) in enumerate(zip(self.games, np.asarray(actions, np.int64))):
            frame, raw[i], term, trunc = game.act(int(action))
            lives = game.env.ale.lives()
            life_lost = 0 < lives < game.lives
            game.lives = lives
            self._stack[i, :-1] = self._stack[i, 1:]
            self._stack[i, -1] = frame
            final_obs[i] = self._stack[i]
            truncated[i] = trunc
            terminated[i] = term or (life_lost and self.settings.episodic_life)
            game_over[i] = term or trunc
            if game_over[i]:
                self._restart_stack(i, game.reset())
            elif life_lost:
                frame, reward, ended = game.after_life_loss()
                raw[i] += reward  # the true score counts every point ...
                self._unseen[i] = reward  # ... training does not see the pseudo-reset's (rare)
                game_over[i] = ended
                self._restart_stack(i, frame)
        return self._stack.copy(), raw, terminated, truncated, final_obs, game_over

    def _train_reward(self, raw: np.ndarray) -> np.ndarray:
        return AtariEnv._train_reward(self, raw - self._unseen)
