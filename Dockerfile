# The pummel image for Kubernetes (`pummel k8s render --image ...`): pummel at
# /usr/local/bin/pummel on Debian slim, running as an unprivileged user.
#
#   docker build -t registry.example/pummel:0.1 .
#
# Stage 1 builds the release binary; no protoc or cmake is needed (the protobuf messages are
# compiled by protox, in Rust; aws-lc-sys builds with the C compiler the image has).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pummel \
    && install -m 0755 target/release/pummel /pummel

# Stage 2: the binary and CA certificates (for https:// targets), nothing else.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin pummel
COPY --from=build /pummel /usr/local/bin/pummel
USER 10001
ENTRYPOINT ["/usr/local/bin/pummel"]
CMD ["--help"]
