// swift-tools-version:5.9
// The Swift package of mimi-bindings. `bash scripts/bindings.sh` on macOS
// (with Xcode) generates Sources/MimiDiscovery/MimiDiscovery.swift and
// builds MimiDiscoveryFFI.xcframework (the Rust library for iOS, the iOS
// simulator and macOS, with its C header); then add this folder to an app
// as a local package, or publish both.
import PackageDescription

let package = Package(
    name: "MimiDiscovery",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "MimiDiscovery", targets: ["MimiDiscovery"]),
    ],
    targets: [
        .binaryTarget(name: "MimiDiscoveryFFI", path: "MimiDiscoveryFFI.xcframework"),
        .target(
            name: "MimiDiscovery",
            dependencies: ["MimiDiscoveryFFI"],
            path: "Sources/MimiDiscovery",
            exclude: ["README.md"]
        ),
    ]
)
