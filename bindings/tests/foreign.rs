//! The bindings in Python and Kotlin, generated from the library these
//! tests were built with, against the testbed's worlds: an honest one, one
//! whose relay substitutes keys, and (for Python's cancellation tests) a DNS
//! server that never answers. Python needs `python3`; Kotlin needs `kotlinc`,
//! JNA and kotlinx-coroutines (CI installs Debian's), and is skipped with a
//! note where they are missing, except in CI.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mimi_testbed::World;
use mimi_testbed::hostile::RelayAttack;
use mimi_testbed::world::Setup;

/// The library next to this test executable (cargo builds it first).
fn library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let name = format!(
        "{}mimi_discovery{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    [deps.join(&name), deps.parent().unwrap().join(&name)]
        .into_iter()
        .find(|p| p.exists())
        .expect("the cdylib is built beside the tests")
}

/// Generates `language`'s bindings into `dir` and puts the library beside
/// them (where the Python module loads it from; Kotlin is told).
fn generate(language: &str, dir: &Path) {
    let lib = library();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args([
            "generate",
            "--language",
            language,
            "--no-format",
            "--library",
        ])
        .arg(&lib)
        .arg("--out-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "uniffi-bindgen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(&lib, dir.join(lib.file_name().unwrap())).unwrap();
}

/// The Python package as `pip install ./bindings` lays it out, in `dir`:
/// `mimi_discovery/__init__.py` (the repository's), and the generated
/// bindings with the library as its `_ffi` module.
fn python_package(dir: &Path) {
    let package = dir.join("mimi_discovery");
    let ffi = package.join("_ffi");
    std::fs::create_dir_all(&ffi).unwrap();
    generate("python", &ffi);
    // What maturin writes as the generated module's package.
    std::fs::write(
        ffi.join("__init__.py"),
        "from .mimi_discovery import *  # NOQA\n",
    )
    .unwrap();
    let init = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/mimi_discovery/__init__.py");
    std::fs::copy(init, package.join("__init__.py")).unwrap();
}

/// A child process's output, bounded in time.
async fn output(mut command: tokio::process::Command, what: &str) -> std::process::Output {
    let run = command.kill_on_drop(true).output();
    tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .unwrap_or_else(|_| panic!("{what} finishes within five minutes"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

async fn worlds() -> (World, World) {
    let honest = World::start().await.unwrap();
    let hostile = World::start_with(Setup {
        relay_attack: Some(RelayAttack::SubstituteKeys),
        ..Setup::default()
    })
    .await
    .unwrap();
    (honest, hostile)
}

/// The relay substituting keys tried, and read nothing.
fn read_nothing(hostile: &World) {
    let relay = hostile.hostile_relay.as_ref().unwrap();
    assert!(relay.substituted() > 0, "the relay tried its keys");
    assert_eq!(relay.decrypted(), 0, "the relay read a lookup");
}

fn describe(world: &World) -> serde_json::Value {
    serde_json::json!({
        "relay": format!("https://{}", world.relay_addr),
        "dns": format!("udp:{}", world.dns_addr),
        "ca_file": world.ca_file,
        "trust_anchor": world.trust_anchor,
        "authority_keys": world.authority_keys,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_bindings_discover_through_the_world() {
    let (honest, hostile) = worlds().await;
    let tokens = World::start_with(Setup {
        tokens: true,
        ..Setup::default()
    })
    .await
    .unwrap();
    // Accepts connections (the kernel does) and never answers a question.
    let silent = tokio::net::TcpListener::bind("127.0.0.9:0").await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    python_package(dir.path());
    let description_file = dir.path().join("worlds.json");
    let description = serde_json::json!({
        "honest": describe(&honest),
        "hostile": describe(&hostile),
        "tokens": describe(&tokens),
        "credential_file": tokens.tokens.as_ref().unwrap().credential_file,
        "silent_dns": format!("tcp:{}", silent.local_addr().unwrap()),
    });
    std::fs::write(&description_file, description.to_string()).unwrap();

    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut python = tokio::process::Command::new("python3");
    python
        .args(["-m", "unittest", "-v", "test_discovery", "test_readme"])
        .current_dir(manifest.join("python/tests"))
        .env("PYTHONPATH", dir.path())
        .env("MIMI_TEST_WORLD", &description_file)
        .env("MIMI_README", manifest.join("../README.md"));
    let out = output(python, "python3 running the Python tests").await;
    let report = String::from_utf8_lossy(&out.stderr);
    println!("{report}");
    assert!(out.status.success(), "the Python tests failed:\n{report}");
    // The attack the suite saw as key_inconsistent.
    read_nothing(&hostile);
    tokens.shutdown().await;
    drop(silent);
    honest.shutdown().await;
    hostile.shutdown().await;
}

/// Where Debian's packages put the Kotlin test's libraries; a colon-separated
/// list in `MIMI_KOTLIN_CLASSPATH` replaces it.
const DEBIAN_KOTLIN_CLASSPATH: &str = "/usr/share/java/jna.jar:/usr/share/java/kotlinx-coroutines-core.jar:/usr/share/java/atomicfu.jar";

/// Kotlin's version from `kotlinc -version` (`info: kotlinc-jvm 1.9.24 …`).
fn kotlin_version() -> Option<(u32, u32)> {
    let out = std::process::Command::new("kotlinc")
        .arg("-version")
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let version = text
        .split("kotlinc-jvm ")
        .nth(1)?
        .split_whitespace()
        .next()?;
    // Debian's says `1.3-SNAPSHOT`: the leading digits of each part count.
    let mut parts = version.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    Some((parts.next()??, parts.next()??))
}

/// The generated Kotlin, lowered to what Kotlin 1.3 and kotlinx-coroutines
/// 1.0 (Debian's) accept: trailing commas in parameter and argument lists
/// removed (outside string literals). Nothing else is changed; the two names
/// those versions lack come from [`KOTLIN_1_3_SHIMS`].
fn lower_to_kotlin_1_3(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let (mut i, mut in_string) = (0, false);
    while i < chars.len() {
        let c = chars[i];
        if in_string {
            out.push(c);
            if c == '\\' && i + 1 < chars.len() {
                out.push(chars[i + 1]);
                i += 1;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if !matches!(next, Some(')' | '>')) {
                out.push(c);
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

/// `DelicateCoroutinesApi` (kotlinx-coroutines 1.5) and
/// `Throwable.stackTraceToString` (Kotlin 1.4), for the lowered copy only.
const KOTLIN_1_3_SHIMS: [(&str, &str); 2] = [
    (
        "shim_coroutines.kt",
        "package kotlinx.coroutines\nannotation class DelicateCoroutinesApi\n",
    ),
    (
        "shim_stdlib.kt",
        "package mimi.discovery\n\
         internal fun Throwable.stackTraceToString(): String {\n\
         \x20   val out = java.io.StringWriter()\n\
         \x20   printStackTrace(java.io.PrintWriter(out))\n\
         \x20   return out.toString()\n\
         }\n",
    ),
];

/// The README's Kotlin example, as a file to compile beside the bindings.
fn readme_kotlin_example() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("### Kotlin")
        .nth(1)
        .expect("README has a Kotlin section");
    let block = section
        .split("```kotlin\n")
        .nth(1)
        .expect("a Kotlin example");
    format!(
        "package mimi.discovery.readme\n\n{}",
        &block[..block.find("```").unwrap()]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kotlin_bindings_compile_and_discover_through_the_world() {
    let Some(version) = kotlin_version() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "kotlinc is missing in CI (.ci/run installs Debian's kotlin)"
        );
        println!(
            "skipped: no kotlinc here (.ci/run installs Debian's kotlin, libjna-java and libkotlinx-coroutines-java)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    generate("kotlin", dir.path());
    let generated = dir.path().join("mimi/discovery/mimi_discovery.kt");
    let mut sources = vec![generated.clone()];
    if version < (1, 5) {
        let lowered = lower_to_kotlin_1_3(&std::fs::read_to_string(&generated).unwrap());
        std::fs::write(&generated, lowered).unwrap();
        for (name, text) in KOTLIN_1_3_SHIMS {
            std::fs::write(dir.path().join(name), text).unwrap();
            sources.push(dir.path().join(name));
        }
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    sources.push(manifest.join("kotlin/src/test/kotlin/mimi/discovery/Smoke.kt"));
    let example = dir.path().join("ReadmeExample.kt");
    std::fs::write(&example, readme_kotlin_example()).unwrap();
    sources.push(example);

    let classpath = std::env::var("MIMI_KOTLIN_CLASSPATH")
        .unwrap_or_else(|_| DEBIAN_KOTLIN_CLASSPATH.to_owned());
    let jar = dir.path().join("smoke.jar");
    let mut kotlinc = tokio::process::Command::new("kotlinc");
    kotlinc
        .args(["-nowarn", "-include-runtime", "-cp", &classpath, "-d"])
        .arg(&jar)
        .args(&sources);
    let out = output(kotlinc, "kotlinc compiling the bindings").await;
    assert!(
        out.status.success(),
        "kotlinc {version:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (honest, hostile) = worlds().await;
    let mut java = tokio::process::Command::new("java");
    java.arg(format!("-Djna.library.path={}", dir.path().display()))
        .arg("-cp")
        .arg(format!("{}:{classpath}", jar.display()))
        .arg("mimi.discovery.smoke.SmokeKt");
    for world in [&honest, &hostile] {
        java.arg(format!("https://{}", world.relay_addr))
            .arg(format!("udp:{}", world.dns_addr))
            .arg(&world.ca_file)
            .arg(&world.trust_anchor)
            .arg(&world.authority_keys);
    }
    let out = output(java, "java running the Kotlin smoke test").await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("kotlin smoke test: ok"),
        "the Kotlin smoke test failed:\n{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_nothing(&hostile);
    honest.shutdown().await;
    hostile.shutdown().await;
}

#[test]
fn lowering_removes_trailing_commas_only_outside_strings() {
    let source = "fun f(a: Int,\n) = g(a, \"x,)\",)\nval m: Map<Int, Int,> = mapOf()";
    assert_eq!(
        lower_to_kotlin_1_3(source),
        "fun f(a: Int\n) = g(a, \"x,)\")\nval m: Map<Int, Int> = mapOf()"
    );
}
