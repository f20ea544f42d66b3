# Multi-stage build of a static metrics-server binary on a minimal image.
#   docker build --build-arg VERSION=$(git describe --tags --always) --build-arg GIT_COMMIT=$(git rev-parse HEAD) .
FROM golang:1.26 AS build
ARG VERSION=v0.0.0-unknown
ARG GIT_COMMIT=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w \
        -X k8s.io/component-base/version.gitVersion=${VERSION} \
        -X k8s.io/component-base/version.gitCommit=${GIT_COMMIT} \
        -X k8s.io/client-go/pkg/version.gitVersion=${VERSION}" \
      -o /out/metrics-server ./cmd/metrics-server

FROM gcr.io/distroless/static:nonroot
ARG VERSION=v0.0.0-unknown
ARG GIT_COMMIT=unknown
# `make image` builds the same image without Docker (test/ociimage); TestBuilderAgreesWithDockerfile keeps them in step.
LABEL org.opencontainers.image.version=${VERSION} org.opencontainers.image.revision=${GIT_COMMIT}
COPY --from=build /out/metrics-server /metrics-server
USER 65534:65534
ENTRYPOINT ["/metrics-server"]
