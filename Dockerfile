# Floodgate: a static gateway binary on a minimal, non-root image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/floodgate ./cmd/gateway \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/floodgate-timeseries ./cmd/timeseries

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/floodgate /usr/local/bin/floodgate
COPY --from=build /out/floodgate-timeseries /usr/local/bin/floodgate-timeseries
COPY config/example.yaml /etc/floodgate/floodgate.yaml
USER nonroot:nonroot
EXPOSE 8080 9901
# The image has no shell or curl: the gateway binary checks itself by asking
# its own admin /readyz (503 while shutting down or while an origin has no
# instances). It reads admin.listen from the same config and FLOODGATE_*
# environment as the server, so keep -config in step with CMD.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/floodgate", "health", "-config", "/etc/floodgate/floodgate.yaml"]
ENTRYPOINT ["/usr/local/bin/floodgate"]
CMD ["-config", "/etc/floodgate/floodgate.yaml", "-log-format", "json"]
