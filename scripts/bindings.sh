#!/usr/bin/env bash
# The Kotlin and Swift bindings, in one command: builds the library (release)
# and generates the sources UniFFI derives from it into the Gradle module
# (bindings/kotlin) and the Swift package (bindings/swift). Where the
# platforms' tools are installed it also builds what an app links:
#   - Android: with cargo-ndk and an NDK (ANDROID_NDK_HOME), the library for
#     arm64-v8a, armeabi-v7a and x86_64 into the module's jniLibs;
#   - Apple: with xcodebuild (macOS), static libraries for iOS, the iOS
#     simulator and macOS, wrapped in MimiDiscoveryFFI.xcframework.
# Python needs none of this: `pip install ./bindings` (maturin).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --locked --release -p mimi-bindings
case "$(uname -s)" in
  Darwin) lib="$target_dir/release/libmimi_discovery.dylib" ;;
  *) lib="$target_dir/release/libmimi_discovery.so" ;;
esac
bindgen="$target_dir/release/uniffi-bindgen"
generated=$(mktemp -d)
trap 'rm -rf "$generated"' EXIT
"$bindgen" generate --library "$lib" --language kotlin --language swift \
  --no-format --out-dir "$generated" >/dev/null

# Kotlin: the sources, and the host's library where JNA looks for it on the
# classpath (desktop JVMs and unit tests; Android loads jniLibs instead).
kotlin=bindings/kotlin/src/main
mkdir -p "$kotlin/kotlin/mimi/discovery"
cp "$generated/mimi/discovery/mimi_discovery.kt" "$kotlin/kotlin/mimi/discovery/"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) jna_dir=linux-x86-64 ;;
  Linux-aarch64) jna_dir=linux-aarch64 ;;
  Darwin-arm64) jna_dir=darwin-aarch64 ;;
  Darwin-x86_64) jna_dir=darwin-x86-64 ;;
  *) jna_dir="" ;;
esac
if [ -n "$jna_dir" ]; then
  mkdir -p "$kotlin/resources/$jna_dir"
  cp "$lib" "$kotlin/resources/$jna_dir/"
  # The release profile keeps line tables for backtraces (about 110 MB
  # here); the copy an app ships does not need them.
  if command -v strip >/dev/null 2>&1; then
    strip -S "$kotlin/resources/$jna_dir/$(basename "$lib")" || true
  fi
fi
if command -v cargo-ndk >/dev/null 2>&1 && [ -n "${ANDROID_NDK_HOME:-}" ]; then
  cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -o "$kotlin/jniLibs" \
    build --locked --release -p mimi-bindings
  android="built into $kotlin/jniLibs"
else
  android="not built (needs cargo-ndk and ANDROID_NDK_HOME; see README)"
fi

# Swift: the sources, and the C header and module map of the FFI module.
swift=bindings/swift
mkdir -p "$swift/Sources/MimiDiscovery" "$swift/build/include"
cp "$generated/MimiDiscovery.swift" "$swift/Sources/MimiDiscovery/"
cp "$generated/MimiDiscoveryFFI.h" "$swift/build/include/"
cp "$generated/MimiDiscoveryFFI.modulemap" "$swift/build/include/module.modulemap"
if command -v xcodebuild >/dev/null 2>&1; then
  frameworks=()
  for triple in aarch64-apple-ios aarch64-apple-ios-sim aarch64-apple-darwin; do
    rustup target add "$triple" >/dev/null
    cargo rustc --locked --release -p mimi-bindings --lib --crate-type staticlib --target "$triple"
    frameworks+=(-library "$target_dir/$triple/release/libmimi_discovery.a" -headers "$swift/build/include")
  done
  rm -rf "$swift/MimiDiscoveryFFI.xcframework"
  xcodebuild -create-xcframework "${frameworks[@]}" -output "$swift/MimiDiscoveryFFI.xcframework"
  apple="built into $swift/MimiDiscoveryFFI.xcframework"
else
  apple="not built (needs macOS with Xcode; see README)"
fi

echo "Kotlin: $kotlin/kotlin/mimi/discovery/mimi_discovery.kt (Gradle module bindings/kotlin)"
echo "Android libraries: $android"
echo "Swift: $swift/Sources/MimiDiscovery/MimiDiscovery.swift (Swift package bindings/swift)"
echo "Apple libraries: $apple"
