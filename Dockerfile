# Builds the server in one stage and runs it from a slim image in the next.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY src ./src
COPY migrations ./migrations
COPY tests ./tests
COPY load-tests ./load-tests
RUN cargo build --release --locked --bin tutoring

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 tutoring
COPY --from=build /src/target/release/tutoring /usr/local/bin/tutoring
USER tutoring
ENV BIND_ADDR=0.0.0.0:8080
EXPOSE 8080
# SIGTERM drains in-flight requests, then the process exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tutoring"]
