#!/usr/bin/env python3
"""Prints an Envoy configuration with tollgate's Wasm filter replaced by the native module.

    scripts/native-config.py envoy/envoy.yaml > .run/envoy.native.yaml

The filter's JSON configuration, its place in the chain and everything else stay as written;
the Wasm VM's settings become the dynamic module's (`tollgate_native`, found through
ENVOY_DYNAMIC_MODULES_SEARCH_PATH; the secrets come from Envoy's own environment, and the
stats keep the .wasm's names under `metrics_namespace: wasmcustom`). `make run NATIVE=1`
uses it, and tests/e2e_native.rs runs its output.
"""
import re
import sys


def native(text):
    lines = text.splitlines()
    out = []
    i = 0
    replaced = 0
    while i < len(lines):
        line = lines[i]
        match = re.match(r'^(\s*)"@type": type\.googleapis\.com/envoy\.extensions\.filters\.http\.wasm\.v3\.Wasm\s*$', line)
        if not match:
            out.append(line)
            i += 1
            continue
        indent = match.group(1)
        # Skip the Wasm settings up to the filter's configuration and its @type.
        j = i + 1
        while j < len(lines) and not re.match(r'^\s*configuration:\s*$', lines[j]):
            j += 1
        if (j + 2 >= len(lines) or "google.protobuf.StringValue" not in lines[j + 1]
                or not re.match(r"^\s*value: \|\s*$", lines[j + 2])):
            sys.exit("native-config: no StringValue configuration after the Wasm filter")
        out += [
            f'{indent}"@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter',
            f"{indent}dynamic_module_config: {{name: tollgate_native, do_not_close: true, metrics_namespace: wasmcustom}}",
            f"{indent}filter_name: tollgate",
            f"{indent}filter_config:",
            f'{indent}  "@type": type.googleapis.com/google.protobuf.StringValue',
            f"{indent}  value: |",
        ]
        i = j + 3
        replaced += 1
    if replaced != 1:
        sys.exit(f"native-config: {replaced} Wasm filters found, expected 1")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sys.stdout.write(native(f.read()))
