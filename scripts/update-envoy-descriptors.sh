#!/usr/bin/env bash
# Makes the protobuf descriptor sets weft-proxy embeds from the one the locked `envoy-types`
# crate was generated from, so Envoy's proto3 JSON/YAML (bootstraps, typed_config `@type`s)
# is read against exactly the messages the prost types implement: `envoy.bin` (every
# message, comments stripped) and `proxy.bin` (only what the served types need, which is what
# stays in memory). Run after changing the envoy-types version; `cargo test -p weft-proxy`
# checks they agree with Cargo.lock and with each other.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(awk '/^name = "envoy-types"$/ {getline; gsub(/[version =" ]/, ""); print}' Cargo.lock)
cargo fetch -q
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/envoy-types-"$version" | head -n 1)
cargo run -q -p weft-proxy --example trim_descriptors -- \
  "$src/src/generated/types.bin" crates/weft-proxy/descriptors
echo "$version" > crates/weft-proxy/descriptors/envoy-types.version
echo "made descriptors of envoy-types $version"
