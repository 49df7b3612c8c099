# gridledger node image: the same set-up as on a developer machine (`make setup`),
# on Debian bookworm (Python 3.11) with the Go toolchain to build the pinned CometBFT.
FROM golang:1.24-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev make build-essential libleveldb-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/gridledger
COPY . .
RUN make setup PYTHON=python3 && rm -rf /root/.cache
ENV PATH=/opt/gridledger/.venv/bin:$PATH
EXPOSE 26657
ENTRYPOINT ["gridledger"]
CMD ["demo", "--home", "/data/demo", "--rpc-host", "0.0.0.0"]
