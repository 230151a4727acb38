// Lets the module build on its own (`gradle assembleRelease` in this folder);
// an app includes it as a module instead (see build.gradle.kts).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "mimi-discovery"
