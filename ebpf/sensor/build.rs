//! Compiles the BPF programs (C, `bpf/*.bpf.c`) with clang into `$OUT_DIR/sensor.bpf.o`, which
//! `src/probes.rs` embeds. Needs `clang` and libbpf's headers (Debian: `apt-get install clang libbpf-dev`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("sensor.bpf.o");
    println!("cargo:rerun-if-changed=bpf/sensor.bpf.c");
    println!("cargo:rerun-if-changed=bpf/sensor.h");
    println!("cargo:rerun-if-env-changed=CLANG");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let arch_include = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg("-D__TARGET_ARCH_x86")
        .arg(format!("-I{arch_include}"))
        .arg("-c")
        .arg("bpf/sensor.bpf.c")
        .arg("-o")
        .arg(&object)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} failed to compile bpf/sensor.bpf.c ({s})"),
        Err(e) => panic!(
            "cannot run {clang} to compile the BPF programs ({e}); install clang and libbpf-dev \
             (tests/run.sh does)"
        ),
    }
}
