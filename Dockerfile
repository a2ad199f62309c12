# One image with both binaries (rollcall, rollcall-moodle-sync) and the seed
# files in examples/. Static binaries (pure-Go SQLite, no cgo), run as a
# non-root user. .dockerignore keeps local databases, keys and .git out.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/rollcall ./cmd/rollcall-moodle-sync
# The working directory: the seed files, and room for an embedded database.
RUN mkdir -p /out/home/examples && cp examples/*.yaml /out/home/examples/

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rollcall /out/rollcall-moodle-sync /usr/local/bin/
# `rollcall seed examples/partners-connect-to-learn.yaml` works from the
# working directory, which the nonroot user (65532) owns (so the default
# sqlite:./rollcall.db can be written there too).
COPY --from=build --chown=65532:65532 /out/home /rollcall
WORKDIR /rollcall
ENV ROLLCALL_LISTEN=0.0.0.0:8080 \
    ROLLCALL_PUBLIC_URL=http://localhost:8080
EXPOSE 8080
USER nonroot
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/rollcall", "ready"]
ENTRYPOINT ["/usr/local/bin/rollcall"]
CMD ["serve"]
