# faceswap on a cloud machine with an NVIDIA GPU: train there, copy the model folder back,
# convert anywhere (see README, "Running on a GPU").
#
#   docker build -t faceswap .
#   docker run --gpus all -v "$PWD/work:/work" faceswap train /work/faces_a /work/faces_b -m /work/models/ab
#
# The base image ships TensorFlow built for CUDA with its CUDA and cuDNN libraries, so pip
# keeps that TensorFlow and only adds faceswap's other dependencies. Another TensorFlow
# release: docker build --build-arg TF_VERSION=2.20.0 -t faceswap .
ARG TF_VERSION=2.21.0
FROM tensorflow/tensorflow:${TF_VERSION}-gpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/faceswap
COPY pyproject.toml README.md ./
COPY faceswap ./faceswap
RUN python -m pip install . \
    && faceswap --version

WORKDIR /work
ENTRYPOINT ["faceswap"]
CMD ["--help"]
