//! Target processes: spawning pinned to a core, readiness, and what `/proc` says about them;
//! the Redis the cross-node targets share.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
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
    /// How the target is told the URL of the Redis it runs on (targets on a backplane only).
    pub(crate) redis: Option<RedisVia>,
}

/// How a target receives its Redis URL.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RedisVia {
    /// A command-line flag followed by the URL (`hub-bench serve hub --redis URL`).
    Flag(&'static str),
    /// An environment variable (the socketioxide peer's `REDIS_URL`).
    Env(&'static str),
}

/// A command for `program`, pinned to [`TARGET_CORE`] when `pin`.
fn pinned(program: &Path, pin: bool) -> Command {
    if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", &TARGET_CORE.to_string()]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A running target process.
pub(crate) struct Target {
    child: std::process::Child,
    pub(crate) pid: u32,
    pub(crate) addr: SocketAddr,
}

impl Target {
    /// Starts `launch` pinned to [`TARGET_CORE`] (on the Redis at `redis_url`, for targets on
    /// a backplane) and waits until it accepts connections.
    ///
    /// `purge_at_once` runs it with `MIMALLOC_PURGE_DELAY=0`: our Rust targets (which allocate
    /// with mimalloc, see `main.rs`) give free pages back to the system as soon as they are
    /// free, not at some later allocation; the peers ignore it.
    pub(crate) fn start(
        launch: &Launch,
        pin: bool,
        redis_url: Option<&str>,
        purge_at_once: bool,
    ) -> Result<Target> {
        let port = free_port()?;
        let mut command = pinned(&launch.program, pin);
        command.args(&launch.args);
        match (launch.redis, redis_url) {
            (Some(RedisVia::Flag(flag)), Some(url)) => {
                command.args([flag, url]);
            }
            (Some(RedisVia::Env(name)), Some(url)) => {
                command.env(name, url);
            }
            (Some(_), None) => bail!("{} needs a Redis", launch.program.display()),
            (None, _) => {}
        }
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
        if purge_at_once {
            command.env("MIMALLOC_PURGE_DELAY", "0");
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

/// Where `redis-server` is, if anywhere: `HUB_BENCH_REDIS_SERVER` when set (a path), else
/// Debian's `/usr/bin/redis-server`, else the first on `PATH`.
pub(crate) fn redis_server_program() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HUB_BENCH_REDIS_SERVER") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let debian = PathBuf::from("/usr/bin/redis-server");
    if debian.is_file() {
        return Some(debian);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("redis-server"))
        .find(|path| path.is_file())
}

/// A `redis-server` of our own: a free loopback port, a generated configuration without
/// persistence in a fresh directory; killed (by its pid) and its directory removed on
/// [`stop`](Self::stop) or drop.
pub(crate) struct RedisServer {
    child: Option<std::process::Child>,
    dir: PathBuf,
    pub(crate) pid: u32,
    pub(crate) port: u16,
}

impl RedisServer {
    /// Starts `program` (pinned to [`TARGET_CORE`] when `pin`) and waits until it answers PING.
    pub(crate) fn start(program: &Path, pin: bool) -> Result<RedisServer> {
        let port = free_port()?;
        let dir =
            std::env::temp_dir().join(format!("hub-bench-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let config = dir.join("redis.conf");
        std::fs::write(
            &config,
            format!(
                "bind 127.0.0.1\nport {port}\nsave \"\"\nappendonly no\ndir {}\nlogfile {}\n",
                dir.display(),
                dir.join("redis.log").display()
            ),
        )?;
        let mut command = pinned(program, pin);
        command
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(error).with_context(|| format!("starting {}", program.display()));
            }
        };
        let mut redis = RedisServer {
            pid: child.id(),
            child: Some(child),
            dir,
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if redis.ping() {
                return Ok(redis);
            }
            let exited = match redis.child.as_mut() {
                Some(child) => child.try_wait()?,
                None => None,
            };
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(redis.dir.join("redis.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(3).collect();
                redis.stop();
                bail!(
                    "{} did not answer PING on port {port}: {}",
                    program.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// The URL targets connect to.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it, reaps it and removes its directory.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for RedisServer {
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

/// The target's end of a loopback TCP connection (the socket of `server_port` connected to
/// `client_port`) in `/proc/net/tcp`: whether it is still established, and the bytes it has
/// queued that the peer has not acknowledged (`tx_queue`). `None` when there is no such
/// socket (any more).
pub(crate) fn tcp_server_socket(server_port: u16, client_port: u16) -> Option<(bool, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |address: &str| {
        address
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let (local, remote, state, queues) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        if port(local)? != server_port || port(remote)? != client_port {
            return None;
        }
        let queued = u64::from_str_radix(queues.split_once(':')?.0, 16).ok()?;
        // State 01: ESTABLISHED.
        Some((state == "01", queued))
    })
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
