//! Tells `bench_gort` which gort features exist, by reading gort's
//! sources: `cfg(gort_chan)` once `gort::chan::Chan` is there,
//! `cfg(gort_select)` once `gort::select!` is exported and implemented, `cfg(gort_mutex)`
//! and `cfg(gort_waitgroup)` once `gort::sync` exports them, `cfg(gort_gc)`
//! once `gort::gc` has `Gc<T>`. A row whose feature is missing prints
//! "not yet" instead of failing to compile.

use std::fs;
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut String) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push_str(&fs::read_to_string(&p).unwrap_or_default());
            out.push('\n');
        }
    }
}

fn main() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtime/src");
    println!("cargo::rerun-if-changed={}", src.display());
    let read = |sub: &str| {
        let mut s = String::new();
        sources(&src.join(sub), &mut s);
        s
    };
    let chan = read("chan");
    let sync = read("sync");
    let sync_mod = fs::read_to_string(src.join("sync/mod.rs")).unwrap_or_default();
    let gc = read("gc");
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let macros = fs::read_to_string(src.join("macros.rs")).unwrap_or_default();
    let macros_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../macros/src");
    println!("cargo::rerun-if-changed={}", macros_dir.display());
    let macros_lib = fs::read_to_string(macros_dir.join("lib.rs")).unwrap_or_default();
    let exported = |item: &str| {
        sync.contains(&format!("pub struct {item}"))
            && sync_mod.lines().any(|l| l.trim_start().starts_with("pub ") && l.contains(item))
    };
    let features = [
        ("gort_chan", chan.contains("pub struct Chan<")),
        (
            "gort_select",
            macros.lines().any(|l| l.contains("pub use gort_macros::") && l.contains("select"))
                && macros_lib.contains("mod select;"),
        ),
        ("gort_mutex", exported("Mutex")),
        ("gort_waitgroup", exported("WaitGroup")),
        ("gort_gc", gc.contains("pub struct Gc<") && lib.lines().any(|l| l.trim_start().starts_with("pub mod gc;"))),
    ];
    for (name, on) in features {
        println!("cargo::rustc-check-cfg=cfg({name})");
        if on {
            println!("cargo::rustc-cfg={name}");
        }
    }
}
