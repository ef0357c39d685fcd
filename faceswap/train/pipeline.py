"""The input pipeline: batches of :class:`faceswap.train.batches.BatchSource` made while the step trains."""

from __future__ import annotations

from faceswap.train.batches import BATCH_KEYS, BatchSource, default_workers


def make_dataset(source: BatchSource, start: int = 0, pipeline: int = 0, workers: int | None = None):
    """An endless ``tf.data.Dataset`` of ``source``'s batches ``start, start + 1, ...``.

    Batches are made by ``workers`` parallel calls (default:
    :func:`default_workers`) and prefetched, so augmentation overlaps the
    training step; the order stays deterministic. Elements are dicts of
    ``uint8`` tensors (:data:`BATCH_KEYS`).
    """
    from faceswap.runtime import tf

    workers = workers or default_workers()
    size, count = source.input_size, source.batch_size
    shapes = {key: (count, size, size, 2 if key.startswith("mask") else 3) for key in BATCH_KEYS}

    def make(number):
        batch = source.batch(int(number), pipeline)
        return [batch[key] for key in BATCH_KEYS]

    def to_dict(number):
        arrays = tf.numpy_function(make, [number], [tf.uint8] * len(BATCH_KEYS), stateful=False)
        for array, key in zip(arrays, BATCH_KEYS, strict=True):
            array.set_shape(shapes[key])
        return dict(zip(BATCH_KEYS, arrays, strict=True))

    dataset = tf.data.Dataset.range(start, 2**62)
    dataset = dataset.map(to_dict, num_parallel_calls=workers, deterministic=True)
    dataset = dataset.prefetch(max(2, workers))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options)
