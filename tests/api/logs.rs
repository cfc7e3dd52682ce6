//! Capturing what the app under test logs, to check what a log line says and what it leaves out.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::subscriber::Interest;
use tracing::{Event, Metadata, span};
use tracing_subscriber::fmt::MakeWriter;

/// Log lines written while a capture is active: one JSON object per line.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures the logs of this thread (a `#[tokio::test]` runs the app's tasks on its own
    /// thread) at `filter` until the guard is dropped.
    #[must_use]
    pub fn capture(filter: &str) -> (Logs, tracing::subscriber::DefaultGuard) {
        undecided();
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(logs.clone())
            .with_env_filter(filter)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// Every captured line, parsed.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON log line"))
            .collect()
    }

    /// The captured lines at `level` (`"INFO"`, `"ERROR"`, …).
    pub fn at(&self, level: &str) -> Vec<serde_json::Value> {
        self.lines()
            .into_iter()
            .filter(|l| l["level"] == level)
            .collect()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// Keeps tracing from deciding a log line's fate once for all threads. With one subscriber in
/// the process, tracing caches each line's interest from whichever thread reaches it first:
/// a line first reached by a test that captures nothing would then be dropped for the test
/// that captures. A second, never-used subscriber that is undecided about every line makes
/// tracing ask the current thread's subscriber each time.
fn undecided() {
    static UNDECIDED: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    UNDECIDED.get_or_init(|| tracing::Dispatch::new(Undecided));
}

struct Undecided;

impl tracing::Subscriber for Undecided {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::sometimes()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}
