//! Who a captured call belongs to: process name, executable, container id and Kubernetes pod, read from
//! `/proc` (the kernel's exec record fills in when a short-lived process is already gone), and the
//! include/exclude filters by pid, process name and cgroup/container.

use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessInfo {
    pub pid: u32,
    /// The process's name (the main thread's `comm`), not the name of the thread that made the call.
    pub name: String,
    pub exe: Option<String>,
    pub cgroup: Option<String>,
    pub container_id: Option<String>,
    pub pod_uid: Option<String>,
}

/// Reads what `/proc/<pid>` says; `None` when the process is gone.
pub fn read_process(pid: u32) -> Option<ProcessInfo> {
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| {
            p.to_string_lossy()
                .trim_end_matches(" (deleted)")
                .to_string()
        });
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok();
    let (container_id, pod_uid) = cgroup
        .as_deref()
        .map(|c| (container_id(c), pod_uid(c)))
        .unwrap_or_default();
    Some(ProcessInfo {
        pid,
        name: name.trim_end().to_string(),
        exe,
        cgroup: cgroup.map(|c| c.trim_end().to_string()),
        container_id,
        pod_uid,
    })
}

/// The 64-hex-digit container id in a cgroup file (docker, containerd/CRI, CRI-O, podman layouts).
pub fn container_id(cgroup: &str) -> Option<String> {
    for line in cgroup.lines() {
        let path = line.splitn(3, ':').nth(2).unwrap_or(line);
        for segment in path.rsplit('/') {
            let segment = segment.trim_end_matches(".scope");
            let candidate = segment.rsplit(['-', ':']).next().unwrap_or(segment);
            if candidate.len() == 64 && candidate.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Some(candidate.to_ascii_lowercase());
            }
        }
    }
    None
}

/// The pod UID of a Kubernetes cgroup path: `.../kubepods/burstable/pod<uid>/...` (cgroupfs driver) or
/// `kubepods-burstable-pod<uid_with_underscores>.slice` (systemd driver).
pub fn pod_uid(cgroup: &str) -> Option<String> {
    for segment in cgroup.split(['/', '\n']) {
        let segment = segment.trim_end_matches(".slice");
        let Some(at) = segment.rfind("pod") else {
            continue;
        };
        if !segment.contains("kubepods") && !cgroup.contains("kubepods") {
            continue;
        }
        let uid = segment[at + 3..].replace('_', "-");
        let is_uid = uid.len() == 36
            && uid.bytes().enumerate().all(|(i, b)| {
                matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
            });
        if is_uid {
            return Some(uid);
        }
    }
    None
}

/// Which processes are captured. Empty include lists mean "everything".
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub include_pids: Vec<u32>,
    pub exclude_pids: Vec<u32>,
    /// Process names (`comm`) or executable file names.
    pub include_names: Vec<String>,
    pub exclude_names: Vec<String>,
    /// Substrings of the cgroup path, or container id prefixes.
    pub include_cgroups: Vec<String>,
    pub exclude_cgroups: Vec<String>,
}

impl Filters {
    pub fn allows(&self, p: &ProcessInfo) -> bool {
        let exe_name = p
            .exe
            .as_deref()
            .and_then(|e| e.rsplit('/').next())
            .unwrap_or("");
        let name_matches = |names: &[String]| names.iter().any(|n| n == &p.name || n == exe_name);
        let cgroup_matches = |patterns: &[String]| {
            patterns.iter().any(|pat| {
                p.cgroup
                    .as_deref()
                    .is_some_and(|c| c.contains(pat.as_str()))
                    || p.container_id
                        .as_deref()
                        .is_some_and(|c| c.starts_with(pat.as_str()))
            })
        };
        if self.exclude_pids.contains(&p.pid)
            || name_matches(&self.exclude_names)
            || cgroup_matches(&self.exclude_cgroups)
        {
            return false;
        }
        let any_include = !self.include_pids.is_empty()
            || !self.include_names.is_empty()
            || !self.include_cgroups.is_empty();
        !any_include
            || self.include_pids.contains(&p.pid)
            || name_matches(&self.include_names)
            || cgroup_matches(&self.include_cgroups)
    }
}

/// Process facts by pid, kept while the process lives.
#[derive(Default)]
pub struct ProcessTable {
    known: HashMap<u32, Arc<ProcessInfo>>,
}

impl ProcessTable {
    /// The process's facts, read on first sight; `fallback` names a process that already exited.
    pub fn get(&mut self, pid: u32, fallback: &str) -> Arc<ProcessInfo> {
        self.known
            .entry(pid)
            .or_insert_with(|| {
                Arc::new(read_process(pid).unwrap_or_else(|| ProcessInfo {
                    pid,
                    name: fallback.to_string(),
                    ..ProcessInfo::default()
                }))
            })
            .clone()
    }

    /// A new program image: forget what was known, re-read, and keep the exec'd file name if /proc is
    /// already gone.
    pub fn exec(&mut self, pid: u32, filename: &str, comm: &str) -> Arc<ProcessInfo> {
        let info = read_process(pid).unwrap_or_else(|| ProcessInfo {
            pid,
            name: comm.to_string(),
            exe: Some(filename.to_string()),
            ..ProcessInfo::default()
        });
        let info = Arc::new(info);
        self.known.insert(pid, info.clone());
        info
    }

    pub fn exit(&mut self, pid: u32) {
        self.known.remove(&pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4a92c0d6cd2eb6e408da2458e77ca08b4a92c0d6cd2eb6e408da2458e77ca08b";

    #[test]
    fn container_ids_from_cgroup_layouts() {
        for cgroup in [
            format!("0::/system.slice/docker-{ID}.scope\n"),
            format!("12:memory:/docker/{ID}\n"),
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_0000_1111_2222_333344445555.slice/cri-containerd-{ID}.scope\n"
            ),
            format!("0::/kubepods/besteffort/pod1b2c3d4e-0000-1111-2222-333344445555/{ID}\n"),
            format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
            format!("0::/crio-{ID}.scope"),
        ] {
            assert_eq!(container_id(&cgroup).as_deref(), Some(ID), "{cgroup}");
        }
        assert_eq!(
            container_id("0::/user.slice/user-0.slice/session-1.scope\n"),
            None
        );
        assert_eq!(
            container_id("4:memory:/process_api/4a92c0d6cd2eb6e408da2458e77ca08b\n"),
            None
        );
    }

    #[test]
    fn pod_uids_from_both_cgroup_drivers() {
        let systemd = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_0000_1111_2222_333344445555.slice/cri-containerd-abc.scope";
        let cgroupfs = "0::/kubepods/besteffort/pod1b2c3d4e-0000-1111-2222-333344445555/abc";
        for c in [systemd, cgroupfs] {
            assert_eq!(
                pod_uid(c).as_deref(),
                Some("1b2c3d4e-0000-1111-2222-333344445555"),
                "{c}"
            );
        }
        assert_eq!(pod_uid("0::/system.slice/podman.service"), None);
    }

    #[test]
    fn filters() {
        let p = ProcessInfo {
            pid: 10,
            name: "python".into(),
            exe: Some("/usr/bin/python3.11".into()),
            cgroup: Some("0::/system.slice/docker-abc.scope".into()),
            container_id: Some(ID.into()),
            pod_uid: None,
        };
        assert!(Filters::default().allows(&p));
        let f = |f: Filters| f.allows(&p);
        assert!(f(Filters {
            include_names: vec!["python3.11".into()],
            ..Default::default()
        }));
        assert!(!f(Filters {
            include_names: vec!["node".into()],
            ..Default::default()
        }));
        assert!(!f(Filters {
            exclude_names: vec!["python".into()],
            ..Default::default()
        }));
        assert!(f(Filters {
            include_pids: vec![10],
            ..Default::default()
        }));
        assert!(!f(Filters {
            include_pids: vec![10],
            exclude_pids: vec![10],
            ..Default::default()
        }));
        assert!(f(Filters {
            include_cgroups: vec!["4a92c0d6".into()],
            ..Default::default()
        }));
        assert!(!f(Filters {
            exclude_cgroups: vec!["docker-".into()],
            ..Default::default()
        }));
    }

    #[test]
    fn reads_its_own_process() {
        let me = read_process(std::process::id()).unwrap();
        assert!(!me.name.is_empty());
        assert!(me.exe.is_some());
        assert!(read_process(u32::MAX - 1).is_none());
    }
}
