"""Uniforms from raw ``jax.random.bits`` words.

On CPU the threefry hash dominates the cost of small draws, so hot loops draw one block of uint32 words with a
single ``jax.random.bits`` call and slice their uniforms out of it with :func:`uniform_from_bits`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def uniform_from_bits(bits: jax.Array, width: int = 24, offset: int | None = None) -> jax.Array:
    """float32 uniforms in [0, 1) on a grid of ``2**-width`` from uint32 words.

    Args:
      bits: uint32 random words, any shape.
      width: how many bits of each word make the uniform, 1..24 (float32 holds 24 exactly; ``jax.random.uniform``
        keeps 23).
      offset: lowest bit used; default ``32 - width`` (the top ``width`` bits). ``offset=0`` takes the low bits,
        so one word gives two 16-bit uniforms: ``uniform_from_bits(w, 16)`` and ``uniform_from_bits(w, 16, 0)``.
    Returns:
      float32, shape of ``bits``: ``((bits >> offset) mod 2**width) * 2**-width``.
    """
    if not 1 <= width <= 24:
        raise ValueError(f"width={width!r} is invalid: must be an integer in 1..24 (bits exact in float32)")
    offset = 32 - width if offset is None else int(offset)
    if not 0 <= offset <= 32 - width:
        raise ValueError(f"offset={offset!r} is invalid: must be in 0..{32 - width} for width={width}")
    word = bits >> offset if offset else bits
    if offset + width < 32:
        word = word & jnp.uint32((1 << width) - 1)
    return word.astype(jnp.float32) * jnp.float32(2.0**-width)
