"""Training of the spiking classifier as a :class:`synjax.trainer.Trainer`: ``make_train(config)``, one step an epoch.

All data sit on the device as constants of the jitted functions. One epoch is a ``lax.scan`` over minibatches
(a fresh permutation per epoch; the last, partial batch is padded and masked so every image counts once), followed
by a full pass over the validation and test sets; ``make_train(config)(key)`` scans the epochs, and the runner's
``jit(vmap(...))`` trains every seed at once.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from synjax.checks import require
from synjax.classify import datasets
from synjax.classify.config import ClassifyConfig
from synjax.classify.model import SpikingClassifier, encode, loss_per_sample, predict
from synjax.runner.progress import report
from synjax.snn.spyx_neurons import surrogate, trainable
from synjax.trainer import Trainer, TrainOutput


def load_data(config: ClassifyConfig) -> datasets.Dataset:
    """The config's data set, classes and fixed split (see :mod:`synjax.classify.datasets`)."""
    return datasets.load(config.dataset, config.class_list, config.data_dir or None, config.download)


def build_model(
    config: ClassifyConfig, in_features: int, num_classes: int, key: jax.Array
) -> SpikingClassifier:
    """A freshly initialized :class:`SpikingClassifier` for ``config``."""
    return SpikingClassifier(
        in_features,
        tuple(config.hidden),
        num_classes,
        neuron=config.neuron,
        output=config.output,
        beta=config.beta,
        alpha=config.alpha,
        gamma=config.gamma,
        threshold=config.threshold,
        activation=surrogate(config.surrogate, config.surrogate_k),
        rngs=nnx.Rngs(params=key),
    )


def param_filter(config: ClassifyConfig):
    """nnx filter of the trained parameters: every ``nnx.Param``, decays included only with ``train_decay``."""
    return nnx.Param if config.train_decay else trainable


def pure_dict(state: nnx.State) -> dict:
    """``nnx.State`` -> nested dict of arrays with string keys (msgpack-safe), for the results folder."""

    def convert(tree):
        if isinstance(tree, dict):
            return {str(k): convert(v) for k, v in tree.items()}
        return tree

    return convert(nnx.to_pure_dict(state))


def restore_model(config: ClassifyConfig, params: dict, seed: int | None = None) -> SpikingClassifier:
    """Rebuild the model from a saved ``pure_dict`` (string keys), taking seed ``seed`` of a leading seed axis.

    Args:
      config: the run's config.
      params: ``TrainOutput.params`` or :func:`synjax.runs.results.load_params` of a results folder.
      seed: index into the leading seed axis; None when the arrays have no seed axis.
    """
    linears = params["linears"]
    first, last = linears["0"]["kernel"], linears[str(len(config.hidden))]["kernel"]
    model = build_model(config, first.shape[-2], last.shape[-1], jax.random.key(0))
    state = nnx.state(model)

    def pick(tree, template):
        if isinstance(template, dict):
            return {k: pick(tree[str(k)], v) for k, v in template.items()}
        value = jnp.asarray(tree if seed is None else tree[seed])
        if value.shape != template.shape:
            raise ValueError(
                f"saved parameter of shape {value.shape} does not fit the model's {template.shape}"
            )
        return value

    nnx.replace_by_pure_dict(state, pick(params, nnx.to_pure_dict(state)))
    nnx.update(model, state)
    return model


def make_forward(config: ClassifyConfig, graphdef: nnx.GraphDef, frozen: nnx.State):
    """``forward(params, x (B, D), key, record_hidden=False) -> (spikes, membrane, hidden)``, see the model."""

    def forward(params, x, key, record_hidden=False):
        model = nnx.merge(graphdef, params, frozen)
        inputs = encode(x, config.encoding, config.time_steps, key)
        return model(inputs, config.time_steps, record_hidden=record_hidden)

    return forward


def make_loss(config: ClassifyConfig, forward):
    """``loss(params, x, y, mask, key) -> (masked mean loss, (loss sum, correct count))`` for one batch."""

    def loss(params, x, y, mask, key):
        spikes, membrane, _ = forward(params, x, key)
        per_sample = loss_per_sample(config.loss, spikes, membrane, y)
        correct = (predict(config.readout, spikes, membrane) == y) & mask
        total = jnp.sum(jnp.where(mask, per_sample, 0.0))
        return total / jnp.maximum(mask.sum(), 1), (total, correct.sum())

    return loss


def make_evaluate(config: ClassifyConfig, forward, split: datasets.Split):
    """``evaluate(params, key) -> (mean loss, accuracy, predictions (N,))`` on a whole split, in chunks."""
    n = len(split)
    chunk = max(1, min(config.eval_batch_size, n))
    num_chunks = max(1, math.ceil(n / chunk))
    x = jnp.asarray(split.x)
    y = jnp.asarray(split.y)
    idx = (jnp.arange(num_chunks * chunk) % max(n, 1)).reshape(num_chunks, chunk)
    mask = (jnp.arange(num_chunks * chunk) < n).reshape(num_chunks, chunk)

    def evaluate(params, key):
        if n == 0:
            return jnp.float32(jnp.nan), jnp.float32(jnp.nan), jnp.zeros((0,), jnp.int32)

        def one(inp):
            i, m, k = inp
            spikes, membrane, _ = forward(params, x[i], k)
            per_sample = loss_per_sample(config.loss, spikes, membrane, y[i])
            return jnp.where(m, per_sample, 0.0), predict(config.readout, spikes, membrane).astype(jnp.int32)

        losses, preds = jax.lax.map(one, (idx, mask, jax.random.split(key, num_chunks)))
        preds = preds.reshape(-1)[:n]
        return losses.sum() / n, jnp.mean(preds == y), preds

    return evaluate


def make_train(config: ClassifyConfig, data: datasets.Dataset | None = None) -> Trainer:
    """One seed's training as a :class:`Trainer` (pure, jittable, vmappable pieces), one step per epoch.

    Args:
      config: a ``ClassifyConfig``.
      data: the data set; loaded from the config when None (tests pass small synthetic ones).
    Returns:
      a ``Trainer`` whose output has ``steps`` = epochs 1..E; ``metrics`` (E,) ``train_loss``, ``train_acc``
      (running over each epoch's batches), ``val_loss``, ``val_acc``, ``test_loss``, ``test_acc`` (after each
      epoch); ``final`` the last epoch's ``test_acc``, ``val_acc``, ``train_acc``, ``test_loss``; ``params`` every
      parameter of the trained model (``pure_dict``); ``extras``: ``confusion`` (C, C) test counts
      [true, predicted], and the record of test image 0: ``raster_hidden`` (T, H) first hidden layer spikes,
      ``raster_membrane`` (T, C) and ``raster_spikes`` (T, C) of the output layer, ``raster_pred`` ().
      Its state is ``{"params", "opt_state", "frozen" (the fixed nnx state), "epoch_key", "eval_key"}``.
    """
    data = data if data is not None else load_data(config)
    n, d, c = len(data.train), data.num_features, data.num_classes
    batch, epochs = config.batch_size, config.epochs
    require(batch <= n, "batch_size", batch, f"at most the {n} training images of {data.name}")
    num_batches = math.ceil(n / batch)
    x_train, y_train = jnp.asarray(data.train.x), jnp.asarray(data.train.y)
    optimizer = optax.adam(config.lr)
    total = epochs * num_batches
    every = max(1, total // 200)
    abstract = nnx.eval_shape(lambda: build_model(config, d, c, jax.random.key(0)))
    graphdef = nnx.split(abstract, param_filter(config), ...)[0]

    def pieces(frozen):
        forward = make_forward(config, graphdef, frozen)
        return forward, make_evaluate(config, forward, data.val), make_evaluate(config, forward, data.test)

    def init(key):
        init_key, epoch_key, eval_key = jax.random.split(key, 3)
        _, params, frozen = nnx.split(build_model(config, d, c, init_key), param_filter(config), ...)
        opt_state = optimizer.init(params)
        return {"params": params, "opt_state": opt_state, "frozen": frozen, "epoch_key": epoch_key,
                "eval_key": eval_key}  # fmt: skip

    def step(state, e):
        params, eval_key = state["params"], state["eval_key"]
        # Adam's count is e * num_batches here; taken from the shared epoch index it stays unbatched under vmap
        # (as in one scan over the epochs), which keeps the numbers bit for bit those of an unchunked run
        opt_state = optax.tree_utils.tree_set(state["opt_state"], count=e * num_batches)
        forward, eval_val, eval_test = pieces(state["frozen"])
        grad_fn = jax.value_and_grad(make_loss(config, forward), has_aux=True)

        def batch_step(carry, inp):
            params, opt_state = carry
            done, idx, mask, k = inp
            (_, (loss_sum, correct)), grads = grad_fn(params, x_train[idx], y_train[idx], mask, k)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            report(done, every=every)
            return (params, opt_state), (loss_sum, correct)

        k_perm, k_batches = jax.random.split(jax.random.fold_in(state["epoch_key"], e))
        perm = jax.random.permutation(k_perm, n)
        idx = perm[jnp.arange(num_batches * batch) % n].reshape(num_batches, batch)
        mask = (jnp.arange(num_batches * batch) < n).reshape(num_batches, batch)
        done = e * num_batches + jnp.arange(1, num_batches + 1)
        inputs = (done, idx, mask, jax.random.split(k_batches, num_batches))
        (params, opt_state), (loss_sums, corrects) = jax.lax.scan(batch_step, (params, opt_state), inputs)
        val_loss, val_acc, _ = eval_val(params, eval_key)
        test_loss, test_acc, _ = eval_test(params, eval_key)
        # a step count that depends on test_acc (it adds 0) keeps this report after the epoch's batches; a
        # data-independent one is scheduled first by XLA and hides the per-batch progress
        report((e + 1) * num_batches + (test_acc < 0).astype(jnp.int32), test_acc)
        row = {
            "train_loss": loss_sums.sum() / n,
            "train_acc": corrects.sum() / n,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
        }
        return {**state, "params": params, "opt_state": opt_state}, row

    def finish(state, metrics):
        params, frozen, eval_key = state["params"], state["frozen"], state["eval_key"]
        forward, _, eval_test = pieces(frozen)
        _, _, test_pred = eval_test(params, eval_key)
        confusion = jnp.zeros((c, c), jnp.int32).at[jnp.asarray(data.test.y), test_pred].add(1)
        extras: dict[str, Any] = {"confusion": confusion}
        if len(data.test):
            spikes, membrane, hidden = forward(
                params, jnp.asarray(data.test.x[:1]), eval_key, record_hidden=True
            )
            if spikes is None:
                spikes = jnp.zeros_like(membrane)
            extras.update(
                raster_hidden=hidden[:, 0],
                raster_membrane=membrane[:, 0],
                raster_spikes=spikes[:, 0],
                raster_pred=predict(config.readout, None if config.output == "LI" else spikes, membrane)[0],
            )
        final = {k: metrics[k][-1] for k in ("test_acc", "val_acc", "train_acc", "test_loss")}
        return TrainOutput(
            params=pure_dict(_state(graphdef, params, frozen)),
            steps=jnp.arange(1, epochs + 1, dtype=jnp.int32),
            metrics=metrics,
            final=final,
            extras=extras,
        )

    return Trainer(init=init, step=step, finish=finish, num_steps=epochs)


def _state(graphdef, params, frozen) -> nnx.State:
    return nnx.state(nnx.merge(graphdef, params, frozen))
