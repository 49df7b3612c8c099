# gridledger node image: the same set-up as on a developer machine (`make setup`),
# on Debian bookworm (Python 3.11) with the Go toolchain to build the pinned CometBFT.
# One container runs one node: `gridledger node start` supervises the ABCI app and CometBFT
# (SIGTERM from `docker stop` stops CometBFT first, then the app).
# docker-compose.yml runs the 4-validator testnet with this image; see README, section Docker.
FROM golang:1.24-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev make build-essential libleveldb-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/gridledger
# .dockerignore keeps host build output and local chains (with their keys) out of the image.
COPY . .
RUN make setup PYTHON=python3 && rm -rf /root/.cache
ENV PATH=/opt/gridledger/.venv/bin:$PATH PYTHONUNBUFFERED=1
# app metrics, p2p, RPC, ABCI (container-internal), CometBFT metrics
EXPOSE 26655 26656 26657 26659
STOPSIGNAL SIGTERM
ENTRYPOINT ["gridledger"]
# Without a command: a single-validator demo chain.
CMD ["demo", "--home", "/data/demo", "--rpc-host", "0.0.0.0"]
