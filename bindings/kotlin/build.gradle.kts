// The Android library module of mimi-bindings. `bash scripts/bindings.sh`
// generates src/main/kotlin/mimi/discovery/mimi_discovery.kt and, with
// cargo-ndk and an NDK, the native libraries in src/main/jniLibs. Include
// this folder in an app's settings.gradle.kts:
//   include(":mimi-discovery")
//   project(":mimi-discovery").projectDir = file("path/to/bindings/kotlin")
plugins {
    id("com.android.library") version "8.5.2"
    kotlin("android") version "1.9.24"
}

android {
    namespace = "mimi.discovery"
    compileSdk = 34
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
}

dependencies {
    // The generated code calls the Rust library through JNA, and its async
    // functions are suspend functions.
    implementation("net.java.dev.jna:jna:5.14.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.8.1")
}
