//! Target processes: spawning pinned to a core, readiness, and what `/proc` says about them;
//! the Redis the cross-node targets share, and the nginx in front of `hub-lb` / `hub-lb-sticky`.

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

/// Where nginx is, if anywhere: `HUB_BENCH_NGINX` when set (a path), else Debian's
/// `/usr/sbin/nginx`, else the first on `PATH`.
pub(crate) fn nginx_program() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HUB_BENCH_NGINX") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let debian = PathBuf::from("/usr/sbin/nginx");
    if debian.is_file() {
        return Some(debian);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("nginx"))
        .find(|path| path.is_file())
}

/// The configuration of the load balancer in front of `hub-lb` / `hub-lb-sticky`: nginx on
/// 127.0.0.1:`port`, everything it writes in `dir`, one process, proxying to `upstreams` round
/// robin (`sticky`: `ip_hash`, which puts every loopback client on one of them) with a fresh
/// upstream connection per request (no `keepalive`), so that the requests of one client spread
/// over the nodes. The proxy settings are those of `tests/node/nginx.mjs` (the Node tests'
/// nginx), plus what a benchmark needs: more connections than the default 512 (each proxied
/// request holds two), client keep-alive for as many requests as a window sends on one
/// connection (the default 1000 would close the generator's connections mid-window), and an
/// access log of failed requests only (status other than 2xx/3xx: which request, which node,
/// what the node answered).
pub(crate) fn nginx_config(
    dir: &Path,
    port: u16,
    upstreams: &[SocketAddr],
    sticky: bool,
) -> String {
    let path = |name: &str| dir.join(name).display().to_string();
    let mut lines = vec![
        "daemon off;".to_owned(),
        // One process, no privilege drop: killing the spawned pid stops all of it.
        "master_process off;".to_owned(),
        "worker_processes 1;".to_owned(),
        format!("pid {};", path("nginx.pid")),
        format!("error_log {} warn;", path("error.log")),
        "events {".to_owned(),
        "  worker_connections 16384;".to_owned(),
        "}".to_owned(),
        "http {".to_owned(),
        format!("  client_body_temp_path {};", path("client_body")),
        format!("  proxy_temp_path {};", path("proxy")),
        format!("  fastcgi_temp_path {};", path("fastcgi")),
        format!("  uwsgi_temp_path {};", path("uwsgi")),
        format!("  scgi_temp_path {};", path("scgi")),
        "  map $status $hub_bench_failed {".to_owned(),
        "    ~^[23] 0;".to_owned(),
        "    default 1;".to_owned(),
        "  }".to_owned(),
        // Tab-separated; $upstream_addr lists every node tried ("a, b" after a retry).
        "  log_format hubs '$msec\\t$status\\t$upstream_addr\\t$upstream_status\\t$request_time\\t$request';"
            .to_owned(),
        format!(
            "  access_log {} hubs if=$hub_bench_failed;",
            path("access.log")
        ),
        "  keepalive_requests 1000000;".to_owned(),
        "  keepalive_timeout 300s;".to_owned(),
        "  map $http_upgrade $connection_upgrade {".to_owned(),
        "    default upgrade;".to_owned(),
        "    '' close;".to_owned(),
        "  }".to_owned(),
        // No `keepalive` here: a fresh upstream connection per request, so round robin spreads
        // one client's requests over every node.
        "  upstream hubs {".to_owned(),
    ];
    if sticky {
        lines.push("    ip_hash;".to_owned());
    }
    lines.extend(upstreams.iter().map(|a| format!("    server {a};")));
    lines.extend(
        [
            "  }",
            "  server {",
            &format!("    listen 127.0.0.1:{port};"),
            "    location / {",
            "      proxy_pass http://hubs;",
            "      proxy_http_version 1.1;",
            "      proxy_set_header Upgrade $http_upgrade;",
            "      proxy_set_header Connection $connection_upgrade;",
            "      proxy_set_header Host $host;",
            "      proxy_read_timeout 300s;",
            "      proxy_send_timeout 300s;",
            "      proxy_buffering off;",
            "      proxy_cache off;",
            "    }",
            "  }",
            "}",
            "",
        ]
        .map(str::to_owned),
    );
    lines.join("\n")
}

/// An nginx of our own in front of a target's nodes ([`nginx_config`]), everything it writes
/// in a fresh directory; killed (by its pid) and its directory removed on
/// [`stop`](Self::stop) or drop.
pub(crate) struct Nginx {
    child: Option<std::process::Child>,
    dir: PathBuf,
    pub(crate) pid: u32,
    pub(crate) addr: SocketAddr,
}

impl Nginx {
    /// Starts `program` (pinned to [`TARGET_CORE`] when `pin`) in front of `upstreams` and
    /// waits until it accepts connections.
    pub(crate) fn start(
        program: &Path,
        upstreams: &[SocketAddr],
        sticky: bool,
        pin: bool,
    ) -> Result<Nginx> {
        let port = free_port()?;
        let dir =
            std::env::temp_dir().join(format!("hub-bench-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let config = dir.join("nginx.conf");
        std::fs::write(&config, nginx_config(&dir, port, upstreams, sticky))?;
        let mut command = pinned(program, pin);
        // -e: the error log before the configuration is read (the compiled-in default may be
        // unwritable).
        command
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&config)
            .arg("-e")
            .arg(dir.join("error.log"))
            .current_dir(&dir)
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
        let mut nginx = Nginx {
            pid: child.id(),
            child: Some(child),
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect_timeout(&nginx.addr, Duration::from_millis(200)).is_ok() {
                return Ok(nginx);
            }
            let exited = match nginx.child.as_mut() {
                Some(child) => child.try_wait()?,
                None => None,
            };
            if exited.is_some() || Instant::now() > deadline {
                let log = nginx.error_log_tail(5);
                nginx.stop();
                bail!(
                    "{} did not accept connections on port {port}: {log}",
                    program.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last `n` lines of its error log, joined with " / ".
    fn error_log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(n).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
    }

    /// The requests it answered with a status other than 2xx/3xx so far (its access log's
    /// lines: time, status, nodes tried, their statuses, seconds, request line), and its error
    /// log's last lines; `None` when there were none.
    pub(crate) fn failures(&self) -> Option<(usize, String)> {
        let access = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        let failed: Vec<&str> = access.lines().filter(|l| !l.is_empty()).collect();
        if failed.is_empty() {
            return None;
        }
        let shown: Vec<String> = failed
            .iter()
            .take(3)
            .map(|l| l.replace('\t', " "))
            .collect();
        Some((
            failed.len(),
            format!(
                "nginx answered {} request(s) with an error status (time status node node-status seconds request): {}; nginx error log: {}",
                failed.len(),
                shown.join(" | "),
                self.error_log_tail(3)
            ),
        ))
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

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A random secret for the connection tokens of one window's `hub-lb` nodes: 32 bytes of
/// `/dev/urandom`, hex (64 characters).
pub(crate) fn random_token_key() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_config_round_robin_or_ip_hash_everything_in_its_dir() {
        let dir = Path::new("/tmp/hub-bench-nginx-test");
        let upstreams = [
            SocketAddr::from(([127, 0, 0, 1], 4001)),
            SocketAddr::from(([127, 0, 0, 1], 4002)),
            SocketAddr::from(([127, 0, 0, 1], 4003)),
        ];
        let round_robin = nginx_config(dir, 4000, &upstreams, false);
        let sticky = nginx_config(dir, 4000, &upstreams, true);
        for config in [&round_robin, &sticky] {
            for line in [
                "daemon off;",
                "master_process off;",
                "worker_processes 1;",
                "    server 127.0.0.1:4001;",
                "    server 127.0.0.1:4003;",
                "    listen 127.0.0.1:4000;",
                "      proxy_pass http://hubs;",
                "      proxy_http_version 1.1;",
                "      proxy_set_header Connection $connection_upgrade;",
                "      proxy_buffering off;",
            ] {
                assert!(config.lines().any(|l| l == line), "{line}");
            }
            // No upstream keep-alive: each request picks a node anew.
            assert!(!config
                .lines()
                .any(|l| l.trim_start().starts_with("keepalive ")));
            for directive in [
                "pid ",
                "error_log ",
                "client_body_temp_path ",
                "proxy_temp_path ",
                "fastcgi_temp_path ",
                "uwsgi_temp_path ",
                "scgi_temp_path ",
                "access_log ",
            ] {
                let line = config
                    .lines()
                    .find(|l| l.trim_start().starts_with(directive))
                    .unwrap_or_default();
                assert!(line.contains("/tmp/hub-bench-nginx-test/"), "{directive}");
            }
        }
        assert!(!round_robin.contains("ip_hash"));
        assert!(sticky.lines().any(|l| l == "    ip_hash;"));
    }
}
