#!/usr/bin/env bash
# Renders envoy/envoy.compose.yaml (the docker-compose demo's Envoy configuration) from
# envoy/envoy.yaml, the one source. In compose, the echo and sign-in containers share Envoy's
# network namespace, so every address stays the same except the two Envoy itself listens on,
# which must accept connections from outside its container.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# GENERATED from envoy/envoy.yaml by scripts/render-compose-config.sh (make compose-config)."
  echo "# Edit envoy/envoy.yaml instead; tests fail when this file is stale."
  sed -e 's|socket_address: {address: 127.0.0.1, port_value: 10000}|socket_address: {address: 0.0.0.0, port_value: 10000}|' \
      -e 's|socket_address: {address: 127.0.0.1, port_value: 9901}|socket_address: {address: 0.0.0.0, port_value: 9901}|' \
      envoy/envoy.yaml
}
