//! Target processes: spawning pinned to a core, readiness, and what `/proc` says about them.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};

/// The core targets run on; the generator takes the other one.
pub(crate) const TARGET_CORE: usize = 0;
/// The generator's core.
pub(crate) const GENERATOR_CORE: usize = 1;

/// Whether `taskset` is usable here (it is part of util-linux).
pub(crate) fn have_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Pins every thread of this process to the generator core (call before starting a runtime).
pub(crate) fn pin_self() -> Result<()> {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        bail!("fewer than two cores available: targets and generator cannot be separated");
    }
    let status = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &GENERATOR_CORE.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .context("running taskset")?;
    if !status.success() {
        bail!("taskset failed to pin the generator");
    }
    Ok(())
}

/// A free local port (bound then released).
pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How to start one target.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) dir: Option<PathBuf>,
    /// Environment variable carrying the port (peers), else `--port` is appended.
    pub(crate) port_env: Option<&'static str>,
}

/// A running target process.
pub(crate) struct Target {
    child: std::process::Child,
    pub(crate) pid: u32,
    pub(crate) addr: SocketAddr,
}

impl Target {
    /// Starts `launch` pinned to [`TARGET_CORE`] and waits until it accepts connections.
    pub(crate) fn start(launch: &Launch, pin: bool) -> Result<Target> {
        let port = free_port()?;
        let mut command = if pin {
            let mut c = Command::new("taskset");
            c.args(["-c", &TARGET_CORE.to_string()])
                .arg(&launch.program);
            c
        } else {
            Command::new(&launch.program)
        };
        command.args(&launch.args);
        match launch.port_env {
            Some(name) => {
                command.env(name, port.to_string());
            }
            None => {
                command.args(["--port", &port.to_string()]);
            }
        }
        if let Some(dir) = &launch.dir {
            command.current_dir(dir);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", launch.program.display()))?;
        let pid = child.id();
        let mut target = Target {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect_timeout(&target.addr, Duration::from_millis(200))
                .is_ok()
            {
                return Ok(target);
            }
            if let Some(status) = target.child.try_wait()? {
                bail!("{} exited early: {status}", launch.program.display());
            }
            if Instant::now() > deadline {
                target.stop();
                bail!("{} did not listen within 30 s", launch.program.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the target and reaps it.
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

/// On-CPU nanoseconds of every live thread of `pid` (`/proc/<pid>/task/*/schedstat`).
pub(crate) fn cpu_ns(pid: u32) -> u64 {
    cpu_ns_in(Path::new(&format!("/proc/{pid}/task")))
}

/// On-CPU nanoseconds of this process.
pub(crate) fn self_cpu_ns() -> u64 {
    cpu_ns_in(Path::new("/proc/self/task"))
}

fn cpu_ns_in(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Resident set size of `pid` in bytes (`VmRSS` in `/proc/<pid>/status`).
pub(crate) fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Machine-wide CPU time so far (busy, steal) in clock ticks, from `/proc/stat`.
pub(crate) fn machine_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let get = |i: usize| fields.get(i).copied().unwrap_or(0);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6);
    (busy, get(7))
}

/// Ticks per second of `/proc/stat` (USER_HZ, 100 on Linux).
pub(crate) const TICKS_PER_SEC: f64 = 100.0;

/// CPU model, kernel, core count.
pub(crate) fn fingerprint() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024 / 1024);
    format!("{model}, {cores} cores, {mem} GiB RAM, Linux {kernel}")
}
