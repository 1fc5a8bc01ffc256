#!/usr/bin/env bash
# Copies the protobuf descriptor set that the locked `envoy-types` crate was generated from
# into crates/weft-proxy/descriptors/, so Envoy's proto3 JSON/YAML (bootstraps, typed_config
# `@type`s) is read against exactly the messages the prost types implement. Run after
# changing the envoy-types version; `cargo test -p weft-proxy` checks they agree.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(awk '/^name = "envoy-types"$/ {getline; gsub(/[version =" ]/, ""); print}' Cargo.lock)
cargo fetch -q
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/envoy-types-"$version" | head -n 1)
cp "$src/src/generated/types.bin" crates/weft-proxy/descriptors/envoy.bin
echo "$version" > crates/weft-proxy/descriptors/envoy-types.version
echo "copied descriptors of envoy-types $version"
