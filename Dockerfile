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
ENTRYPOINT ["/usr/local/bin/floodgate"]
CMD ["-config", "/etc/floodgate/floodgate.yaml", "-log-format", "json"]
