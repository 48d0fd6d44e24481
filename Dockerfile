# Multi-stage build of the three binaries. The runtime image holds only the binaries, the
# system CA bundle (cloudsim's demo certificates are read from it) and an unprivileged user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p certifyclouds-api -p certifyclouds-worker -p cloudsim

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/certifyclouds certifyclouds \
    && mkdir -p /var/lib/certifyclouds /cloudsim \
    && chown certifyclouds /var/lib/certifyclouds /cloudsim
COPY --from=build /src/target/release/certifyclouds-api /usr/local/bin/
COPY --from=build /src/target/release/certifyclouds-worker /usr/local/bin/
COPY --from=build /src/target/release/cloudsim /usr/local/bin/
USER certifyclouds
WORKDIR /var/lib/certifyclouds
CMD ["certifyclouds-api"]
