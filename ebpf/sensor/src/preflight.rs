//! What the sensor needs from the node, checked before anything is loaded, so that a missing piece is
//! reported by name with the way to fix it rather than as a kernel error code.

use std::path::Path;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
const CAP_SYS_PTRACE: u32 = 19;

pub struct Check {
    pub what: &'static str,
    pub ok: bool,
    pub detail: String,
}

fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

fn has(caps: u64, cap: u32) -> bool {
    caps & (1u64 << cap) != 0
}

/// Mounts tracefs at /sys/kernel/tracing when it is not mounted (tracepoints are found through it).
fn ensure_tracefs() -> Result<(), String> {
    if Path::new("/sys/kernel/tracing/events").exists()
        || Path::new("/sys/kernel/debug/tracing/events").exists()
    {
        return Ok(());
    }
    let target = c"/sys/kernel/tracing";
    let fstype = c"tracefs";
    let source = c"nodev";
    // SAFETY: all arguments are valid NUL-terminated strings; a failure is reported through errno.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "tracefs is not mounted and mounting it at /sys/kernel/tracing failed ({}); \
             mount it (`mount -t tracefs nodev /sys/kernel/tracing`) or give the sensor the host's /sys/kernel/tracing",
            std::io::Error::last_os_error()
        ))
    }
}

pub fn run() -> Vec<Check> {
    let mut checks = Vec::new();
    let caps = effective_caps().unwrap_or(0);
    let root = unsafe { libc::geteuid() } == 0;
    let bpf_ok = has(caps, CAP_SYS_ADMIN) || (has(caps, CAP_BPF) && has(caps, CAP_PERFMON));
    checks.push(Check {
        what: "privileges",
        ok: bpf_ok,
        detail: if bpf_ok {
            format!(
                "euid {}, CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN present",
                if root { "0" } else { "non-root" }
            )
        } else {
            "needs root, or CAP_BPF and CAP_PERFMON (kernel >= 5.8) — e.g. run as root or \
             `setcap cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search+ep lumen-sensor`"
                .into()
        },
    });
    let ptrace = has(caps, CAP_SYS_PTRACE) || has(caps, CAP_SYS_ADMIN);
    checks.push(Check {
        what: "other processes' memory maps",
        ok: true,
        detail: if ptrace {
            "CAP_SYS_PTRACE present: /proc/<pid>/maps and /proc/<pid>/root of every process are readable".into()
        } else {
            "warning: without CAP_SYS_PTRACE the TLS libraries of other users' processes cannot be found".into()
        },
    });
    let btf = Path::new("/sys/kernel/btf/vmlinux").exists();
    checks.push(Check {
        what: "kernel BTF",
        ok: btf,
        detail: if btf {
            "/sys/kernel/btf/vmlinux".into()
        } else {
            "/sys/kernel/btf/vmlinux is missing: the kernel needs CONFIG_DEBUG_INFO_BTF=y (any distribution kernel since 2020 has it)".into()
        },
    });
    let uprobes = Path::new("/sys/bus/event_source/devices/uprobe").exists();
    checks.push(Check {
        what: "uprobes",
        ok: uprobes,
        detail: if uprobes {
            "uprobe PMU present".into()
        } else {
            "/sys/bus/event_source/devices/uprobe is missing: the kernel needs CONFIG_UPROBE_EVENTS=y".into()
        },
    });
    let tracefs = if bpf_ok {
        ensure_tracefs()
    } else {
        Err("not checked without privileges".into())
    };
    let syscalls = Path::new("/sys/kernel/tracing/events/syscalls").exists()
        || Path::new("/sys/kernel/debug/tracing/events/syscalls").exists();
    checks.push(Check {
        what: "syscall tracepoints",
        ok: tracefs.is_ok() && syscalls,
        detail: match tracefs {
            Err(e) => e,
            Ok(()) if !syscalls => {
                "tracefs has no events/syscalls: the kernel needs CONFIG_FTRACE_SYSCALLS=y".into()
            }
            Ok(()) => "syscalls:sys_enter_*/sys_exit_* available".into(),
        },
    });
    checks
}
