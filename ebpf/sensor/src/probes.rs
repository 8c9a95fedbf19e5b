//! Loading the BPF object and attaching its programs: the syscall and scheduler tracepoints once, and the
//! TLS uprobes on every OpenSSL-compatible file (a shared `libssl`, or an executable that links OpenSSL or
//! BoringSSL statically and exports its symbols, like Node.js) found in a running process. A file is
//! identified by device and inode, so a library mapped by a thousand processes — or seen through many
//! `/proc/<pid>/root` paths — is probed once, and a probe on it fires for every process that maps it.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::uprobe::{UProbeAttachLocation, UProbeScope};
use aya::programs::{TracePoint, UProbe};
use aya::{Ebpf, EbpfLoader};
use object::{Object, ObjectSection, ObjectSymbol};

static BPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sensor.bpf.o"));

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot load the BPF programs: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("BPF program {0} is missing from the object")]
    MissingProgram(&'static str),
    #[error("BPF map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("BPF program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("BPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// Tracepoint programs: (program, category, tracepoint).
const TRACEPOINTS: &[(&str, &str, &str)] = &[
    ("sys_enter_write", "syscalls", "sys_enter_write"),
    ("sys_exit_write", "syscalls", "sys_exit_write"),
    ("sys_enter_read", "syscalls", "sys_enter_read"),
    ("sys_exit_read", "syscalls", "sys_exit_read"),
    ("sys_enter_sendto", "syscalls", "sys_enter_sendto"),
    ("sys_exit_sendto", "syscalls", "sys_exit_sendto"),
    ("sys_enter_recvfrom", "syscalls", "sys_enter_recvfrom"),
    ("sys_exit_recvfrom", "syscalls", "sys_exit_recvfrom"),
    ("sys_enter_writev", "syscalls", "sys_enter_writev"),
    ("sys_exit_writev", "syscalls", "sys_exit_writev"),
    ("sys_enter_readv", "syscalls", "sys_enter_readv"),
    ("sys_exit_readv", "syscalls", "sys_exit_readv"),
    ("sys_enter_sendmsg", "syscalls", "sys_enter_sendmsg"),
    ("sys_exit_sendmsg", "syscalls", "sys_exit_sendmsg"),
    ("sys_enter_recvmsg", "syscalls", "sys_enter_recvmsg"),
    ("sys_exit_recvmsg", "syscalls", "sys_exit_recvmsg"),
    ("sys_enter_connect", "syscalls", "sys_enter_connect"),
    ("sys_exit_connect", "syscalls", "sys_exit_connect"),
    ("sys_enter_accept4", "syscalls", "sys_enter_accept4"),
    ("sys_exit_accept4", "syscalls", "sys_exit_accept4"),
    ("sys_enter_accept", "syscalls", "sys_enter_accept"),
    ("sys_exit_accept", "syscalls", "sys_exit_accept"),
    ("sys_enter_close", "syscalls", "sys_enter_close"),
    ("sched_process_exec", "sched", "sched_process_exec"),
    ("sched_process_exit", "sched", "sched_process_exit"),
];

/// TLS functions probed: (symbol, program at entry, program at return).
const TLS_PROBES: &[(&str, &str, Option<&str>)] = &[
    ("SSL_write", "ssl_write_enter", Some("ssl_write_exit")),
    ("SSL_read", "ssl_read_enter", Some("ssl_read_exit")),
    (
        "SSL_write_ex",
        "ssl_write_ex_enter",
        Some("ssl_write_ex_exit"),
    ),
    ("SSL_read_ex", "ssl_read_ex_enter", Some("ssl_read_ex_exit")),
    ("SSL_shutdown", "ssl_close", None),
    ("SSL_free", "ssl_close", None),
];

const UPROBE_PROGRAMS: &[&str] = &[
    "ssl_write_enter",
    "ssl_write_exit",
    "ssl_read_enter",
    "ssl_read_exit",
    "ssl_write_ex_enter",
    "ssl_write_ex_exit",
    "ssl_read_ex_enter",
    "ssl_read_ex_exit",
    "ssl_close",
];

/// Largest executable or library read for its symbols (Node.js is about 100 MB).
const MAX_PROBED_FILE: u64 = 1 << 30;

pub struct LoadOptions {
    pub ring_buffer_bytes: u32,
    pub capture_server: bool,
}

/// The maps user space reads or writes, taken out of the object.
pub struct Maps {
    pub events: RingBuf<MapData>,
    pub stats: PerCpuArray<MapData, u64>,
    pub excluded: BpfHashMap<MapData, u32, u8>,
}

/// What probing a file found.
#[derive(Debug, Clone, PartialEq)]
pub enum FileProbe {
    /// Probes attached; the TLS library's name (`openssl`, `boringssl`).
    Attached {
        library: &'static str,
        probes: usize,
    },
    /// The file has no TLS functions to probe.
    NoTls,
    /// Probing failed (the reason is logged once).
    Failed(String),
}

pub struct Probes {
    ebpf: Ebpf,
    /// Outcome per (device, inode): each file is looked at once.
    files: HashMap<(u64, u64), FileProbe>,
    /// Links attached so far (tracepoints and uprobes).
    pub links: usize,
}

pub fn load(options: &LoadOptions) -> Result<(Probes, Maps), ProbeError> {
    let self_tgid = std::process::id();
    let capture_server = u32::from(options.capture_server);
    let mut ebpf = EbpfLoader::new()
        .override_global("self_tgid", &self_tgid, true)
        .override_global("capture_server", &capture_server, true)
        .map_max_entries("events", options.ring_buffer_bytes)
        .load(BPF_OBJECT)?;
    let mut links = 0;
    for &(name, category, tracepoint) in TRACEPOINTS {
        let program: &mut TracePoint = program(&mut ebpf, name)?;
        let failed = |source| ProbeError::Program { name, source };
        program.load().map_err(failed)?;
        program.attach(category, tracepoint).map_err(failed)?;
        links += 1;
    }
    for &name in UPROBE_PROGRAMS {
        let program: &mut UProbe = program(&mut ebpf, name)?;
        program
            .load()
            .map_err(|source| ProbeError::Program { name, source })?;
    }
    let events = take_map(&mut ebpf, "events")?;
    let stats = take_map(&mut ebpf, "stats")?;
    let excluded = take_map(&mut ebpf, "excluded")?;
    Ok((
        Probes {
            ebpf,
            files: HashMap::new(),
            links,
        },
        Maps {
            events,
            stats,
            excluded,
        },
    ))
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, ProbeError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(ProbeError::MissingProgram(name))?
        .try_into()
        .map_err(|source| ProbeError::Program { name, source })
}

fn take_map<T>(ebpf: &mut Ebpf, name: &'static str) -> Result<T, ProbeError>
where
    T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(ProbeError::MissingMap(name))?;
    T::try_from(map).map_err(|source| ProbeError::Map { name, source })
}

/// The TLS functions of a file.
pub struct TlsSymbols {
    /// (symbol, file offset).
    pub offsets: Vec<(&'static str, u64)>,
    /// `openssl` or `boringssl`.
    pub library: &'static str,
}

/// The file offsets of the TLS functions an ELF file defines (exported or in its symbol table).
pub fn tls_symbols(data: &[u8]) -> Result<TlsSymbols, String> {
    let file = object::File::parse(data).map_err(|e| format!("not an ELF file: {e}"))?;
    let mut found = Vec::new();
    let mut boring = false;
    for symbol in file.dynamic_symbols().chain(file.symbols()) {
        let Ok(name) = symbol.name() else { continue };
        if name == "OPENSSL_is_boringssl" || name == "BORINGSSL_self_test" {
            boring = true;
        }
        let Some(&(wanted, _, _)) = TLS_PROBES.iter().find(|(s, _, _)| *s == name) else {
            continue;
        };
        if !symbol.is_definition() || found.iter().any(|(s, _)| *s == wanted) {
            continue;
        }
        let Some(index) = symbol.section_index() else {
            continue;
        };
        let Ok(section) = file.section_by_index(index) else {
            continue;
        };
        let Some((section_offset, _)) = section.file_range() else {
            continue;
        };
        if let Ok(UProbeAttachLocation::AbsoluteOffset(offset)) =
            UProbeAttachLocation::from_virtual_address(
                symbol.address(),
                section.address(),
                section_offset,
            )
        {
            found.push((wanted, offset));
        }
    }
    Ok(TlsSymbols {
        offsets: found,
        library: if boring { "boringssl" } else { "openssl" },
    })
}

impl Probes {
    /// Probes the TLS functions of `path` unless this file (by device and inode) was looked at before.
    /// Returns the outcome and whether this call did the work.
    pub fn probe_file(&mut self, path: &Path) -> (FileProbe, bool) {
        let Ok(meta) = std::fs::metadata(path) else {
            return (
                FileProbe::Failed(format!("cannot stat {}", path.display())),
                false,
            );
        };
        let id = (meta.dev(), meta.ino());
        if let Some(outcome) = self.files.get(&id) {
            return (outcome.clone(), false);
        }
        let outcome = self.attach_tls(path);
        self.files.insert(id, outcome.clone());
        (outcome, true)
    }

    fn attach_tls(&mut self, path: &Path) -> FileProbe {
        // The whole file is read to find its symbols: a bound keeps a huge file from taking the memory.
        match std::fs::metadata(path) {
            Ok(meta) if meta.len() > MAX_PROBED_FILE => {
                return FileProbe::Failed(format!(
                    "{} is {} bytes, more than the {MAX_PROBED_FILE} read to find TLS symbols",
                    path.display(),
                    meta.len()
                ));
            }
            _ => {}
        }
        let data = match std::fs::read(path) {
            Ok(d) => d,
            Err(e) => return FileProbe::Failed(format!("cannot read {}: {e}", path.display())),
        };
        let TlsSymbols {
            offsets: symbols,
            library,
        } = match tls_symbols(&data) {
            Ok(s) => s,
            Err(e) => return FileProbe::Failed(format!("{}: {e}", path.display())),
        };
        let has = |s: &str| symbols.iter().any(|(n, _)| *n == s);
        if !(has("SSL_write") || has("SSL_write_ex")) || !(has("SSL_read") || has("SSL_read_ex")) {
            return FileProbe::NoTls;
        }
        let mut probes = 0;
        for &(symbol, offset) in &symbols {
            let Some(&(_, entry, exit)) = TLS_PROBES.iter().find(|(s, _, _)| *s == symbol) else {
                continue;
            };
            for program in std::iter::once(entry).chain(exit) {
                match self.attach_uprobe(program, offset, path) {
                    Ok(()) => probes += 1,
                    Err(e) => {
                        return FileProbe::Failed(format!(
                            "{}: attaching {program} to {symbol}: {e}",
                            path.display()
                        ));
                    }
                }
            }
        }
        self.links += probes;
        FileProbe::Attached { library, probes }
    }

    fn attach_uprobe(&mut self, program: &str, offset: u64, path: &Path) -> Result<(), String> {
        let probe: &mut UProbe = self
            .ebpf
            .program_mut(program)
            .ok_or_else(|| format!("no program {program}"))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| e.to_string())?;
        probe
            .attach(
                UProbeAttachLocation::AbsoluteOffset(offset),
                path,
                UProbeScope::AllProcesses,
            )
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Files probed so far with their outcome.
    pub fn attached_files(&self) -> usize {
        self.files
            .values()
            .filter(|o| matches!(o, FileProbe::Attached { .. }))
            .count()
    }
}

/// Files of process `pid` that may hold TLS functions: its executable and every mapped `libssl`, as paths
/// through `/proc/<pid>/root` so that files inside containers resolve.
pub fn candidate_files(pid: u32) -> Vec<PathBuf> {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let mut files = Vec::new();
    if let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe"))
        && let Some(path) = under_root(&root, &exe)
    {
        files.push(path);
    }
    if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
        for line in maps.lines() {
            // address perms offset dev inode path
            let Some(path) = line.split_whitespace().nth(5) else {
                continue;
            };
            if !is_tls_library(path) || line.ends_with("(deleted)") {
                continue;
            }
            if let Some(p) = under_root(&root, Path::new(path))
                && !files.contains(&p)
            {
                files.push(p);
            }
        }
    }
    files
}

fn under_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let relative = path.strip_prefix("/").ok()?;
    Some(root.join(relative))
}

/// `libssl.so.3`, `libssl.so.1.1`, `libssl-<hash>.so.3` (bundled in wheels); not NSS's `libssl3.so`,
/// which has a different API.
pub fn is_tls_library(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    (name.starts_with("libssl.so") || name.starts_with("libssl-")) && name.contains(".so")
}

/// Shared TLS libraries installed in the usual places, probed at start so that a process that loads
/// one later is covered from its first call.
pub fn installed_tls_libraries() -> Vec<PathBuf> {
    let dirs = [
        "/lib",
        "/lib64",
        "/usr/lib",
        "/usr/lib64",
        "/usr/local/lib",
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
    ];
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Some(name) = path.to_str()
                && is_tls_library(name)
                && path.is_file()
            {
                found.push(path);
            }
        }
    }
    found
}

/// Running processes (pids from /proc).
pub fn all_pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_library_names() {
        assert!(is_tls_library("/usr/lib/x86_64-linux-gnu/libssl.so.3"));
        assert!(is_tls_library("/opt/venv/lib/libssl-8c1f3a.so.1.1"));
        assert!(!is_tls_library("/usr/lib/x86_64-linux-gnu/libssl3.so"));
        assert!(!is_tls_library("/usr/lib/x86_64-linux-gnu/libcrypto.so.3"));
    }

    #[test]
    fn finds_openssl_symbols_in_the_system_library() {
        let Some(lib) = installed_tls_libraries().into_iter().next() else {
            // tests/run.sh installs libssl (a dependency of curl and python); a bare machine may not have it.
            return;
        };
        let data = std::fs::read(&lib).unwrap();
        let TlsSymbols {
            offsets: symbols,
            library,
        } = tls_symbols(&data).unwrap();
        let names: Vec<_> = symbols.iter().map(|(n, _)| *n).collect();
        for wanted in [
            "SSL_write",
            "SSL_read",
            "SSL_write_ex",
            "SSL_read_ex",
            "SSL_free",
        ] {
            assert!(
                names.contains(&wanted),
                "{wanted} not found in {}",
                lib.display()
            );
        }
        assert_eq!(library, "openssl");
        assert!(
            symbols
                .iter()
                .all(|(_, off)| *off > 0 && (*off as usize) < data.len())
        );
    }

    #[test]
    fn non_elf_is_an_error_not_a_panic() {
        assert!(tls_symbols(b"#!/bin/sh\necho hi\n").is_err());
        assert!(tls_symbols(&[0x7f, b'E', b'L', b'F', 2, 1, 1]).is_err());
    }
}
