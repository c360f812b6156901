# hookworker container image.
#
#   docker build -t hookworker:latest .
#   docker run --rm hookworker:latest help
#
# On a machine that cannot pull golang/distroless, use scripts/build-images --local
# (builds the binary on the host and packages it FROM scratch).
#
# Plain Dockerfile syntax only: builds with BuildKit and with the classic builder.

# Base images can be overridden for a registry mirror, e.g.
#   --build-arg BUILDER_IMAGE=mirror.example/golang:1.26
ARG GO_VERSION=1.26
ARG BUILDER_IMAGE=golang:${GO_VERSION}
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

# --- build ------------------------------------------------------------------
FROM ${BUILDER_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false

# Module download in its own layer: only go.mod/go.sum changes invalidate it.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
# VERSION (e.g. --build-arg VERSION=v1.2.3) is what `hookworker version` and
# hookworker_build_info report; empty: the module's build info.
ARG VERSION=
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" \
        -o /out/hookworker ./cmd/hookworker \
 && mkdir -p /out/data

# --- runtime ----------------------------------------------------------------
# distroless static: CA certificates, /etc/passwd with nonroot (65532), tzdata, no shell.
FROM ${RUNTIME_IMAGE}
ARG VERSION=
LABEL org.opencontainers.image.title="hookworker" \
      org.opencontainers.image.description="WHMCS events from NATS JetStream to backup providers" \
      org.opencontainers.image.source="https://github.com/hookworker/hookworker" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /out/hookworker /hookworker
# /data owned by the runtime user, so a fresh named volume mounted there is writable.
COPY --from=build --chown=65532:65532 /out/data /data

# In a container the listeners must not be loopback-only. Set HOOKWORKER_OPS_TOKEN
# when running: the ops page is then reachable from outside the container.
ENV HOOKWORKER_METRICS_ADDR=0.0.0.0:9464 \
    HOOKWORKER_OPS_ADDR=0.0.0.0:8080 \
    HOOKWORKER_DATA_DIR=/data

USER 65532:65532
# 9464: /metrics /healthz /readyz   8080: ops page
EXPOSE 9464 8080
ENTRYPOINT ["/hookworker"]
CMD ["run"]
