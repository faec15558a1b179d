"""Gymnasium's ``Taxi-v4`` in JAX, behind the gymnax 1.0 interface.

The dynamics equal Gymnasium 1.3's ``TaxiEnv`` (checked transition by transition in ``tests/test_taxi.py``):
a 5x5 grid with walls, four landmarks R, G, Y, B, 500 states encoded as
``((taxi_row * 5 + taxi_col) * 5 + pass_loc) * 4 + dest_idx`` (``pass_loc == 4``: in the taxi), 6 actions
(0 south, 1 north, 2 east, 3 west, 4 pickup, 5 drop-off), reward -1 a step, +20 for the correct drop-off (which
terminates), -10 for an illegal pickup or drop-off; truncation after ``max_steps_in_episode`` (200) steps.

The stochastic variants are *params*, not constructor arguments, so that one compiled ``step`` serves them all:

- ``is_rainy``: a move whose intended direction is open goes that way with ``rainy_probability`` and to either
  lateral direction with ``(1 - rainy_probability) / 2`` each; a lateral move into a wall or the grid edge leaves
  the taxi where it is. A move whose intended direction is blocked leaves the taxi in place whatever the weather
  (no lateral drift). Pickup and drop-off stay deterministic.
- ``fickle_passenger``: at reset the passenger turns fickle with ``fickle_probability``; a fickle passenger picks
  a new destination, uniformly among the three others, on the first step in which the taxi changes position while
  the passenger sat in it at the start of that step. It happens at most once an episode.

The tables of the dynamics are built once, with NumPy, from the map (see ``_build_tables``); the JAX step looks
them up. ``transition_table`` exposes the same tables as an MDP for exact planning.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from synjax.envs.params import check_flag, check_positive_int, check_probability, make_validated
from synjax.envs.random_bits import uniform_from_bits

MAP: tuple[str, ...] = (
    "+---------+",
    "|R: | : :G|",
    "| : | : : |",
    "| : : : : |",
    "| | : | : |",
    "|Y| : |B: |",
    "+---------+",
)
#: (row, col) of the landmarks R, G, Y, B; index = passenger location / destination id.
LOCS: tuple[tuple[int, int], ...] = ((0, 0), (0, 4), (4, 0), (4, 3))
LOC_NAMES = ("R", "G", "Y", "B")
NUM_ROWS = 5
NUM_COLS = 5
NUM_STATES = 500
NUM_ACTIONS = 6
IN_TAXI = 4
SOUTH, NORTH, EAST, WEST, PICKUP, DROPOFF = range(NUM_ACTIONS)
ACTION_NAMES = ("South", "North", "East", "West", "Pickup", "Dropoff")
_STEP = {SOUTH: (1, 0), NORTH: (-1, 0), EAST: (0, 1), WEST: (0, -1)}
#: (left, right) of each heading, Gymnasium's convention (south: east, west; north: west, east; ...).
_LATERAL = {SOUTH: (EAST, WEST), NORTH: (WEST, EAST), EAST: (NORTH, SOUTH), WEST: (SOUTH, NORTH)}


def encode(taxi_row, taxi_col, pass_loc, dest_idx):
    """State id in [0, 500) of ``(taxi_row, taxi_col, pass_loc, dest_idx)``; ints or arrays (any shape)."""
    return ((taxi_row * NUM_COLS + taxi_col) * 5 + pass_loc) * 4 + dest_idx


def decode(s):
    """Inverse of :func:`encode`: ``s -> (taxi_row, taxi_col, pass_loc, dest_idx)``; ints or arrays."""
    dest_idx = s % 4
    s = s // 4
    pass_loc = s % 5
    s = s // 5
    return s // NUM_COLS, s % NUM_COLS, pass_loc, dest_idx


def _is_open(row: int, col: int, direction: int) -> bool:
    """Whether a taxi at (row, col) can move in ``direction`` (not into the grid edge, not through a wall)."""
    if direction == SOUTH:
        return row < NUM_ROWS - 1
    if direction == NORTH:
        return row > 0
    # In MAP, the character between column c and c + 1 of grid row r is MAP[1 + r][2 * c + 2].
    if direction == EAST:
        return MAP[1 + row][2 * col + 2] == ":"
    return MAP[1 + row][2 * col] == ":"


def _moved(row: int, col: int, direction: int) -> tuple[int, int]:
    """Position after trying to move; a blocked move stays put."""
    if not _is_open(row, col, direction):
        return row, col
    dr, dc = _STEP[direction]
    return row + dr, col + dc


class _Tables(NamedTuple):
    outcomes: np.ndarray  # (500, 6, 3) int32: next state if the taxi goes (intended, left, right)
    reward: np.ndarray  # (500, 6) float32
    terminal: np.ndarray  # (500, 6) bool
    mask: np.ndarray  # (500, 6) int8: Gymnasium's action_mask
    start_states: np.ndarray  # (300,) int32


def _build_tables() -> _Tables:
    outcomes = np.zeros((NUM_STATES, NUM_ACTIONS, 3), np.int32)
    reward = np.full((NUM_STATES, NUM_ACTIONS), -1.0, np.float32)
    terminal = np.zeros((NUM_STATES, NUM_ACTIONS), bool)
    mask = np.zeros((NUM_STATES, NUM_ACTIONS), np.int8)
    starts = []
    for s in range(NUM_STATES):
        row, col, pass_loc, dest = decode(s)
        taxi = (row, col)
        if pass_loc < IN_TAXI and pass_loc != dest:
            starts.append(s)
        for a in (SOUTH, NORTH, EAST, WEST):
            mask[s, a] = _is_open(row, col, a)
            if _is_open(row, col, a):
                ways = (a, *_LATERAL[a])
                outcomes[s, a] = [encode(*_moved(row, col, d), pass_loc, dest) for d in ways]
            else:  # blocked: no move, and no lateral drift in the rain either
                outcomes[s, a] = s
        # Pickup: legal only at the waiting passenger's landmark.
        if pass_loc < IN_TAXI and taxi == LOCS[pass_loc]:
            outcomes[s, PICKUP] = encode(row, col, IN_TAXI, dest)
            mask[s, PICKUP] = 1
        else:
            outcomes[s, PICKUP] = s
            reward[s, PICKUP] = -10.0
        # Drop-off: +20 and done at the destination; at another landmark the passenger steps out there (-1).
        if pass_loc == IN_TAXI and taxi == LOCS[dest]:
            outcomes[s, DROPOFF] = encode(row, col, dest, dest)
            reward[s, DROPOFF] = 20.0
            terminal[s, DROPOFF] = True
        elif pass_loc == IN_TAXI and taxi in LOCS:
            outcomes[s, DROPOFF] = encode(row, col, LOCS.index(taxi), dest)
        else:
            outcomes[s, DROPOFF] = s
            reward[s, DROPOFF] = -10.0
        mask[s, DROPOFF] = pass_loc == IN_TAXI and taxi in LOCS
    for table in (outcomes, reward, terminal, mask):
        table.setflags(write=False)
    return _Tables(outcomes, reward, terminal, mask, np.asarray(starts, np.int32))


_TABLES = _build_tables()


def start_states() -> np.ndarray:
    """The 300 start state ids (passenger waiting at a landmark that is not the destination), sorted, int32."""
    return _TABLES.start_states.copy()


def action_mask(obs) -> jax.Array:
    """Gymnasium's ``action_mask`` of state id(s) ``obs`` (any shape): int8 array ``obs.shape + (6,)``.

    1 where the action changes the state: an open move, a legal pickup, a drop-off at a landmark.
    """
    return jnp.asarray(_TABLES.mask)[jnp.asarray(obs, jnp.int32)]


class TransitionTable(NamedTuple):
    """Taxi as a finite MDP; unpacks as ``P, R, T = transition_table(...)``.

    P: (500, 6, 500) float64, ``P[s, a, s2]`` = probability of ``s2`` after action ``a`` in ``s``; rows sum to 1.
    R: (500, 6) float64, expected reward of ``(s, a)`` (the reward does not depend on ``s2`` in Taxi).
    T: (500, 6) bool, ``(s, a)`` ends the episode (the correct drop-off). It is a flag per ``(s, a)`` because
       only the deterministic drop-off terminates, so every ``s2`` with ``P > 0`` is terminal when it is set.
    """

    P: np.ndarray
    R: np.ndarray
    T: np.ndarray


def transition_table(is_rainy: bool = False, rainy_probability: float = 0.8) -> TransitionTable:
    """The exact MDP of Taxi-v4 (Gymnasium's ``P``, summed over duplicate outcomes), see :class:`TransitionTable`.

    The fickle passenger is left out: it is not Markov in the observed state (it depends on the hidden draw
    at reset and on whether it has happened yet), so a table over the 500 observations cannot hold it.
    """
    check_probability("rainy_probability", rainy_probability)
    p = float(rainy_probability) if is_rainy else 1.0
    is_move = (np.arange(NUM_ACTIONS) <= WEST)[None, :, None]
    weights = np.where(is_move, [p, (1 - p) / 2, (1 - p) / 2], [1.0, 0.0, 0.0])
    P = np.zeros((NUM_STATES, NUM_ACTIONS, NUM_STATES))
    s_idx, a_idx = np.meshgrid(np.arange(NUM_STATES), np.arange(NUM_ACTIONS), indexing="ij")
    for k in range(3):
        np.add.at(P, (s_idx, a_idx, _TABLES.outcomes[..., k]), weights[..., k])
    return TransitionTable(P, _TABLES.reward.astype(np.float64), _TABLES.terminal.copy())


# ---------------------------------------------------------------------------------------------- params


@struct.dataclass
class EnvState(environment.EnvState):
    """Taxi state; scalars (int32 unless said). ``time`` counts the steps of the episode so far."""

    taxi_row: jax.Array  # 0..4, 0 is the top row
    taxi_col: jax.Array  # 0..4, 0 is the left column
    pass_loc: jax.Array  # 0..3 waiting at LOCS[pass_loc], 4 in the taxi
    dest_idx: jax.Array  # 0..3
    fickle_pending: jax.Array  # bool: the passenger will change destination on the next move they ride
    last_action: jax.Array  # -1 after reset; for render only


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Taxi-v4 params; every field may be traced (one compiled step serves all values).

    Constructing it with concrete values checks them (ValueError naming the field and the allowed range).
    """

    max_steps_in_episode: int = 200
    is_rainy: bool = False
    rainy_probability: float = 0.8
    fickle_passenger: bool = False
    fickle_probability: float = 0.3

    def __post_init__(self):
        check_positive_int("max_steps_in_episode", self.max_steps_in_episode)
        check_flag("is_rainy", self.is_rainy)
        check_probability("rainy_probability", self.rainy_probability)
        check_flag("fickle_passenger", self.fickle_passenger)
        check_probability("fickle_probability", self.fickle_probability)


PARAM_FIELDS = tuple(EnvParams.__dataclass_fields__)


def make_params(**kwargs: Any) -> EnvParams:
    """Validated :class:`EnvParams` from keyword overrides of the defaults (scalars cast to the field's type).

    Raises:
      ValueError: an unknown field (the message lists the allowed ones) or a value out of range.
    """
    return make_validated(EnvParams, "Taxi", **kwargs)


# ---------------------------------------------------------------------------------------------- environment


class Taxi(environment.Environment[EnvState, EnvParams]):
    """Gymnasium ``Taxi-v4`` with the gymnax 1.0 interface.

    Observation: int32 scalar state id in [0, 500). Action: int in [0, 6). Reward: float32.
    ``step`` auto-resets; its ``info`` holds ``action_mask`` (int8 (6,)) of the returned observation (the reset
    one after an episode end), ``final_action_mask`` of ``final_observation``, and ``prob`` (float32), the
    probability of the sampled transition as in Gymnasium's info. After ``reset`` use :func:`action_mask`.
    """

    make_params = staticmethod(make_params)

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    @property
    def name(self) -> str:
        return "Taxi-v4"

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @functools.partial(jax.jit, static_argnames=("self",))
    def step(
        self,
        key: jax.Array,
        state: EnvState,
        action: int | jax.Array,
        params: EnvParams | None = None,
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """gymnax's auto-resetting step (same outputs), with ``info["action_mask"]`` of the observation it returns.

        It draws the transition's and the reset's random numbers in one PRNG call instead of gymnax's key split
        and separate calls: that halves the cost of a Taxi step on CPU.
        """
        params = self.default_params if params is None else params
        bits = jax.random.bits(key, (4,), jnp.uint32)
        obs_st, state_st, reward, terminated, info = self._transition(bits[:2], state, action, params)
        truncated = self.is_truncated(state_st, params)
        done = jnp.logical_or(terminated, truncated)
        obs_re, state_re = self._start(bits[2:], params)
        state = jax.tree.map(lambda r, s: jax.lax.select(done, r, s), state_re, state_st)
        obs = jax.lax.select(done, obs_re, obs_st)
        info = {
            "action_mask": action_mask(obs),
            "final_action_mask": info["action_mask"],
            "prob": info["prob"],
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": obs_st,
        }
        return obs, state, reward, terminated, truncated, info

    def step_env(
        self, key: jax.Array, state: EnvState, action: int | jax.Array, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        """One transition without reset. Shapes: all scalars."""
        return self._transition(jax.random.bits(key, (2,), jnp.uint32), state, action, params)

    def _transition(
        self, bits: jax.Array, state: EnvState, action: int | jax.Array, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, Any]]:
        """:meth:`step_env` from two random uint32 words (the rain draw and the fickle draw)."""
        action = jnp.asarray(action, jnp.int32)
        s = encode(state.taxi_row, state.taxi_col, state.pass_loc, state.dest_idx)

        # Which of (intended, left, right) happens: Gymnasium's categorical draw over their probabilities.
        # (A blocked move has all three outcomes equal to s; it still draws, so ``prob`` is Gymnasium's.)
        rainy = jnp.logical_and(jnp.asarray(params.is_rainy, bool), action <= WEST)
        p_intended = jnp.where(rainy, jnp.asarray(params.rainy_probability, jnp.float32), 1.0)
        p_lateral = (1.0 - p_intended) / 2.0
        u = uniform_from_bits(bits[0])
        outcome = (u >= p_intended).astype(jnp.int32) + (u >= p_intended + p_lateral).astype(jnp.int32)
        prob = jnp.where(outcome == 0, p_intended, p_lateral)
        next_s = jnp.asarray(_TABLES.outcomes)[s, action, outcome]
        reward = jnp.asarray(_TABLES.reward)[s, action]
        terminated = jnp.asarray(_TABLES.terminal)[s, action]
        row, col, pass_loc, dest = decode(next_s)

        # Fickle passenger: fires on the first change of position that the passenger rides through.
        moved = jnp.logical_or(row != state.taxi_row, col != state.taxi_col)
        fires = state.fickle_pending & (state.pass_loc == IN_TAXI) & moved
        # Uniform over the three other destinations.
        other_dest = (state.dest_idx + 1 + (bits[1] % 3).astype(jnp.int32)) % 4
        dest = jnp.where(fires, other_dest, dest)

        next_state = EnvState(
            time=state.time + 1,
            taxi_row=row,
            taxi_col=col,
            pass_loc=pass_loc,
            dest_idx=dest,
            fickle_pending=jnp.logical_and(state.fickle_pending, jnp.logical_not(fires)),
            last_action=action,
        )
        obs = self.observe(None, next_state, action, params)
        info = {"action_mask": action_mask(obs), "prob": prob.astype(jnp.float32)}
        return obs, next_state, reward, terminated, info

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """Uniform over the 300 start states; the fickle draw is made here, as in Gymnasium."""
        return self._start(jax.random.bits(key, (2,), jnp.uint32), params)

    def _start(self, bits: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """:meth:`reset_env` from two random uint32 words (start state, fickle draw).

        One PRNG call serves both draws: on CPU the threefry hash dominates a Taxi step's cost.
        ``bits % 300`` is uniform up to a relative bias of 300 / 2**32.
        """
        start_states = jnp.asarray(_TABLES.start_states)
        s = start_states[(bits[0] % start_states.shape[0]).astype(jnp.int32)]
        row, col, pass_loc, dest = decode(s)
        fickle = jnp.logical_and(
            jnp.asarray(params.fickle_passenger, bool),
            uniform_from_bits(bits[1]) < params.fickle_probability,
        )
        state = EnvState(
            time=jnp.int32(0),
            taxi_row=row,
            taxi_col=col,
            pass_loc=pass_loc,
            dest_idx=dest,
            fickle_pending=fickle,
            last_action=jnp.int32(-1),
        )
        return self.observe(None, state, None, params), state

    def observe(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams) -> jax.Array:
        """The int32 state id."""
        del key, action, params
        return jnp.asarray(encode(state.taxi_row, state.taxi_col, state.pass_loc, state.dest_idx), jnp.int32)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """Delivered: the passenger is out at their destination."""
        del params
        return state.pass_loc == state.dest_idx

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(NUM_STATES)

    def state_space(self, params: EnvParams | None = None) -> spaces.Dict:
        params = self.default_params if params is None else params
        return spaces.Dict(
            {
                "taxi_row": spaces.Discrete(NUM_ROWS),
                "taxi_col": spaces.Discrete(NUM_COLS),
                "pass_loc": spaces.Discrete(5),
                "dest_idx": spaces.Discrete(4),
                "fickle_pending": spaces.Discrete(2),
                "last_action": spaces.Discrete(NUM_ACTIONS),
                "time": spaces.Discrete(int(params.max_steps_in_episode) + 1),
            }
        )

    def render(self, state: EnvState, color: bool = False) -> str:
        """Text picture of an (unbatched) state, see :func:`render`."""
        return render(state, color=color)


def _ansi(text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m"


def render(state: EnvState, color: bool = False) -> str:
    """Text picture of an unbatched state.

    ``color=True`` gives exactly Gymnasium's ``ansi`` render (map with ANSI colours: taxi yellow, or green when
    carrying; waiting passenger blue; destination magenta; then the last action, if any). ``color=False`` gives
    plain text: the taxi's cell shows ``T`` (empty) or ``@`` (carrying), the waiting passenger's landmark letter
    is lower-case, and a last line spells the state out.
    """
    row, col = int(state.taxi_row), int(state.taxi_col)
    pass_loc, dest = int(state.pass_loc), int(state.dest_idx)
    last = int(state.last_action)
    cells = [list(line) for line in MAP]

    def paint(r: int, c: int, fn) -> None:
        cells[1 + r][2 * c + 1] = fn(cells[1 + r][2 * c + 1])

    if color:
        if pass_loc == IN_TAXI:
            paint(row, col, lambda ch: _ansi("_" if ch == " " else ch, "42"))
        else:
            paint(row, col, lambda ch: _ansi(ch, "43"))
            paint(*LOCS[pass_loc], lambda ch: _ansi(ch, "34;1"))
        paint(*LOCS[dest], lambda ch: _ansi(ch, "35"))
        tail = f"  ({ACTION_NAMES[last]})\n" if 0 <= last < NUM_ACTIONS else "\n"
        return "\n".join("".join(line) for line in cells) + "\n" + tail
    if pass_loc < IN_TAXI:
        paint(*LOCS[pass_loc], lambda ch: LOC_NAMES[pass_loc].lower())
    paint(row, col, lambda ch: "@" if pass_loc == IN_TAXI else "T")
    where = "in taxi" if pass_loc == IN_TAXI else f"at {LOC_NAMES[pass_loc]}"
    action = f"  ({ACTION_NAMES[last]})" if 0 <= last < NUM_ACTIONS else ""
    lines = ["".join(line) for line in cells]
    lines.append(f"taxi ({row}, {col}), passenger {where}, destination {LOC_NAMES[dest]}{action}")
    return "\n".join(lines) + "\n"
