# Static, non-root latch image.
#   docker build -t latch .        (or podman build: the base images are fully qualified)
#   docker run -e LATCH_UPSTREAM=http://backend:4242 -p 8080:8080 -v latch-data:/var/lib/latch latch
# The config leaves auth.signing_key_file empty: latch creates
# /var/lib/latch/signing.key on first start, on the volume. Replicas share
# one key instead: mount it and set LATCH_AUTH_SIGNING_KEY_FILE.
FROM docker.io/library/golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.buildVersion=${VERSION}" -o /out/latch ./cmd/latch \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/latch /usr/local/bin/latch
COPY policies/model.conf policies/policy.csv policies/policy.tests /etc/latch/policies/
COPY config/latch.example.yaml /etc/latch/latch.yaml
COPY --from=build --chown=nonroot:nonroot /out/data /var/lib/latch
VOLUME /var/lib/latch
USER nonroot:nonroot
EXPOSE 8080 9091
ENTRYPOINT ["/usr/local/bin/latch", "serve"]
CMD ["--config", "/etc/latch/latch.yaml"]
