"""The input pipeline: batches of :class:`faceswap.train.batches.BatchSource` made while the step trains.

On TensorFlow, :func:`make_dataset` is a ``tf.data`` pipeline (which
``tf.distribute`` can split over devices); on the other backends
:func:`make_batches` is a ``keras.utils.PyDataset`` whose worker threads run
the numpy augmentation ahead of the step. Both yield the same batches in the
same order: batch ``k`` depends only on the seed and ``k``.
"""

from __future__ import annotations

from typing import Any

from faceswap.train.batches import BATCH_KEYS, BatchSource, default_workers


def make_dataset(source: BatchSource, start: int = 0, pipeline: int = 0, workers: int | None = None):
    """An endless ``tf.data.Dataset`` of ``source``'s batches ``start, start + 1, ...`` (TensorFlow only).

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


def make_batches(source: BatchSource, start: int = 0, workers: int | None = None, pipeline: int = 0) -> Any:
    """An endless ``keras.utils.PyDataset`` of ``source``'s batches ``start, start + 1, ...`` (any backend).

    ``workers`` threads (default: :func:`default_workers`, at least 2 so that
    one always works ahead of the step) make the batches, in order; items are
    dicts of ``uint8`` numpy arrays (:data:`BATCH_KEYS`).
    """
    from faceswap.runtime import keras

    class Batches(keras.utils.PyDataset):
        @property
        def num_batches(self) -> None:  # endless: fit() stops it
            return None

        def __getitem__(self, index: int) -> dict:
            return source.batch(start + index, pipeline)

    threads = max(2, workers or default_workers())
    return Batches(workers=threads, use_multiprocessing=False, max_queue_size=2 * threads)


def training_batches(
    source: BatchSource, start: int = 0, workers: int | None = None, pipeline: int = 0
) -> Any:
    """The pipeline of this backend (:func:`make_dataset` on TensorFlow, else :func:`make_batches`).

    ``pipeline`` numbers the input pipeline of this process among those of a
    run over several processes: each makes different batches.
    """
    from faceswap.runtime import BACKEND

    if BACKEND == "tensorflow":
        return make_dataset(source, start, pipeline, workers=workers)
    return make_batches(source, start, workers, pipeline)
