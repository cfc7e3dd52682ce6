//! shopbridge's own roles (`serve`, `worker`) as child processes of the bench, so that their
//! memory and CPU are measured apart from the load generator's. A child is killed when its
//! handle drops, so an error or a panic in the bench leaves no process behind.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// Where and how the children run: the scratch database and queue prefix of the run.
#[derive(Clone, Debug)]
pub struct ServiceEnv {
    /// `DATABASE_URL` of the children.
    pub database_url: String,
    /// `AMQP_URL` of the children.
    pub amqp_url: String,
    /// `SHOPBRIDGE_QUEUE_PREFIX` of the children.
    pub queue_prefix: String,
    /// `SHOPBRIDGE_LISTEN` of `serve`.
    pub listen: std::net::SocketAddr,
    /// `SHOPBRIDGE_METRICS_LISTEN` of `serve`.
    pub metrics_listen: std::net::SocketAddr,
    /// Directory the children's logs are written to (`{role}.log`).
    pub log_dir: PathBuf,
}

impl ServiceEnv {
    /// Base URL of the `serve` child.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.listen)
    }

    /// Base URL of the `serve` child's metrics listener.
    #[must_use]
    pub fn metrics_url(&self) -> String {
        format!("http://{}", self.metrics_listen)
    }
}

/// Memory and CPU of a child process so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Peak resident set size (`VmHWM`), in KiB.
    pub peak_rss_kib: u64,
    /// User plus system CPU time.
    pub cpu: Duration,
}

/// A running shopbridge child process.
pub struct Service {
    role: &'static str,
    child: Child,
    pid: u32,
}

impl Service {
    /// Starts `shopbridge {role}` (this executable) in `env`, logging to `{log_name}.log`.
    /// Settings not given by `env` (batch size, publish channels, ...) come from this
    /// process's environment. Its PostgreSQL sessions are named [`Service::application_name`].
    ///
    /// # Errors
    /// When the executable or the log file cannot be found or created.
    pub fn start(role: &'static str, log_name: &str, env: &ServiceEnv) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the shopbridge executable")?;
        let log_path = env.log_dir.join(format!("{log_name}.log"));
        let separator = if env.database_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let database_url = format!(
            "{}{separator}application_name={}",
            env.database_url,
            Self::application_name(role)
        );
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let err = log.try_clone().context("cannot share the log file")?;
        let child = Command::new(exe)
            .arg(role)
            .env("DATABASE_URL", database_url)
            .env("AMQP_URL", &env.amqp_url)
            .env("SHOPBRIDGE_QUEUE_PREFIX", &env.queue_prefix)
            .env(
                "SHOPBRIDGE_QUEUE_EXPIRES",
                format!("{}s", super::QUEUE_EXPIRES.as_secs()),
            )
            .env("SHOPBRIDGE_LISTEN", env.listen.to_string())
            .env("SHOPBRIDGE_METRICS_LISTEN", env.metrics_listen.to_string())
            .env("SHOPBRIDGE_PUBLIC_URL", env.base_url())
            // The bench's connections keep plaintext secrets in the scratch database.
            .env_remove("SHOPBRIDGE_MASTER_KEY")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start `shopbridge {role}`"))?;
        let pid = child
            .id()
            .with_context(|| format!("`shopbridge {role}` exited at once"))?;
        eprintln!(
            "started `shopbridge {role}` (pid {pid}, log {})",
            log_path.display()
        );
        Ok(Service { role, child, pid })
    }

    /// The `application_name` of the PostgreSQL sessions of a `role` child.
    #[must_use]
    pub fn application_name(role: &str) -> String {
        format!("shopbridge-bench-{role}")
    }

    /// Waits until the child answers ready at `/readyz` (for `serve`).
    ///
    /// # Errors
    /// When the child exits or is not ready within `limit`.
    pub async fn ready(&mut self, base_url: &str, limit: Duration) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{base_url}/readyz");
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("`shopbridge {}` exited with {status}", self.role);
            }
            let answer = client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < limit,
                "`shopbridge {}` not ready at {url} within {limit:?}",
                self.role
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Peak RSS and CPU time so far.
    ///
    /// # Errors
    /// When `/proc` cannot be read (the child is gone, or this is not Linux).
    pub fn usage(&self) -> anyhow::Result<Usage> {
        usage_of(self.pid).with_context(|| format!("cannot read /proc of {}", self.role))
    }

    /// Reads the usage, then stops the child with SIGTERM and waits for it (killing it after
    /// 30 s). Returns the usage read just before the signal.
    ///
    /// # Errors
    /// When `/proc` cannot be read, the signal cannot be sent, or the child fails.
    pub async fn stop(mut self) -> anyhow::Result<Usage> {
        let usage = self.usage()?;
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await
            .context("cannot run kill")?;
        anyhow::ensure!(sent.success(), "cannot signal `shopbridge {}`", self.role);
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                anyhow::ensure!(
                    status.success(),
                    "`shopbridge {}` exited with {status}",
                    self.role
                );
            }
            Err(_) => {
                self.child.kill().await.ok();
                anyhow::bail!("`shopbridge {}` did not stop within 30 s", self.role);
            }
        }
        eprintln!("stopped `shopbridge {}`", self.role);
        Ok(usage)
    }
}

/// Peak RSS (`VmHWM` of `/proc/{pid}/status`) and CPU time (`utime + stime` of
/// `/proc/{pid}/stat`) of any process.
///
/// # Errors
/// When `/proc` cannot be read or parsed.
pub fn usage_of(pid: u32) -> anyhow::Result<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let peak_rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    Ok(Usage {
        peak_rss_kib,
        cpu: cpu_of(pid)?,
    })
}

/// CPU time (user plus system) of a process so far.
///
/// # Errors
/// When `/proc/{pid}/stat` cannot be read or parsed.
pub fn cpu_of(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces: the
    // state is field 3, utime 14 and stime 15 (proc(5)).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc/pid/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .context("unexpected /proc/pid/stat")
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(total * 1000 / clock_ticks()))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}
