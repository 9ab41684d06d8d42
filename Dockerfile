# One small static image that is both the plugin (bcloud plugin operator,
# in the Deployment) and the sidecar of instance pods and recovery jobs
# (bcloud plugin instance|restore), plus the barman-cloud-* command links.
#   docker build --build-arg VERSION=$(git describe --tags --always) -t IMG .

ARG GO_VERSION=1.26.4

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
# Static, no cgo; timetzdata embeds the zone database for recovery targets
# given with a time zone, since the final image has no /usr/share/zoneinfo.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -tags timetzdata \
      -ldflags "-s -w -X github.com/bcloud-dev/bcloud/internal/cli.Version=${VERSION}" \
      -o /rootfs/usr/local/bin/bcloud ./cmd/bcloud
RUN set -e; cd /rootfs/usr/local/bin; \
    for c in wal-archive wal-restore check-wal-archive backup restore backup-list backup-show backup-delete backup-keep; do \
      ln -s bcloud barman-cloud-$c; \
    done; \
    /rootfs/usr/local/bin/bcloud --version; \
    mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs/controller /rootfs/plugins; \
    chmod 1777 /rootfs/tmp; \
    cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/; \
    echo 'root:x:0:0:root:/root:/sbin/nologin' > /rootfs/etc/passwd; \
    echo 'postgres:x:26:26:PostgreSQL:/var/lib/postgresql:/sbin/nologin' >> /rootfs/etc/passwd; \
    echo 'root:x:0:' > /rootfs/etc/group; \
    echo 'postgres:x:26:' >> /rootfs/etc/group

FROM scratch
COPY --from=build /rootfs/ /
ENV PATH=/usr/local/bin
# The CloudNativePG postgres user, so the sidecar can read PGDATA.
USER 26:26
ENTRYPOINT ["/usr/local/bin/bcloud"]
