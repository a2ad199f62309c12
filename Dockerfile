# Build a static binary (pure-Go SQLite, no cgo) and run it as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/rollcall ./cmd/rollcall

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rollcall /usr/local/bin/rollcall
ENV ROLLCALL_LISTEN=0.0.0.0:8080
EXPOSE 8080
USER nonroot
ENTRYPOINT ["/usr/local/bin/rollcall"]
CMD ["serve"]
