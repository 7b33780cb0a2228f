//! Runs the real `pgha` binary the way Pacemaker does, and checks how it ended.
//!
//! In the spirit of just's `Test` (STYLE.md practice 12): a `#[must_use]` builder whose
//! `expect*` methods compare the exit code, stdout (empty unless stated) and the
//! `ocf-exit-reason:` line (absent unless stated), report every mismatch at once with the
//! whole run, and point at the caller's line.
//!
//! The environment is cleared first: only `PATH` and what the test sets reach the agent,
//! so a developer's own `OCF_*` or `HA_*` variables cannot change a result.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::fake::FakePacemaker;
use crate::pg::Pg;

/// The resource id the tests use, as `OCF_RESOURCE_INSTANCE`.
pub const RSC: &str = "pgsqld";

/// The operation timeout given to the agent unless a test sets another.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;

pub const BIN: &str = env!("CARGO_BIN_EXE_pgha");

#[derive(Debug, Clone)]
enum Stdout {
    Empty,
    Exactly(String),
    Any,
}

#[must_use = "an Agent does nothing until .expect(), .expect_reason() or .run()"]
#[derive(Debug, Clone)]
pub struct Agent {
    args: Vec<String>,
    env: BTreeMap<String, String>,
    stdout: Stdout,
}

/// A run's result.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The command line with its environment, for messages.
    pub shown: String,
}

impl Run {
    /// The last `ocf-exit-reason:` line's text, which is what Pacemaker keeps.
    pub fn reason(&self) -> Option<&str> {
        self.stderr
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("ocf-exit-reason:"))
    }

    pub fn describe(&self) -> String {
        format!(
            "run: {}\nexit code: {:?} after {:?}\n--- stdout\n{}--- stderr\n{}---",
            self.shown, self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// A run with the base environment: the resource id and a timeout.
pub fn agent() -> Agent {
    Agent {
        args: Vec::new(),
        env: BTreeMap::from([
            ("OCF_RESOURCE_INSTANCE".to_owned(), RSC.to_owned()),
            (
                "OCF_RESKEY_CRM_meta_timeout".to_owned(),
                DEFAULT_TIMEOUT_MS.to_string(),
            ),
        ]),
        stdout: Stdout::Empty,
    }
}

impl Agent {
    /// argv[1].
    pub fn action(mut self, action: &str) -> Agent {
        self.args = vec![action.to_owned()];
        self
    }

    /// Raw arguments, for the non-OCF command line (`--help`).
    pub fn args(mut self, args: &[&str]) -> Agent {
        self.args = args.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Agent {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn unset(mut self, key: &str) -> Agent {
        self.env.remove(key);
        self
    }

    /// `OCF_RESKEY_<name>`.
    pub fn param(self, name: &str, value: &str) -> Agent {
        self.env(&format!("OCF_RESKEY_{name}"), value)
    }

    /// `OCF_RESKEY_CRM_meta_<name>`.
    pub fn meta(self, name: &str, value: &str) -> Agent {
        self.env(&format!("OCF_RESKEY_CRM_meta_{name}"), value)
    }

    pub fn timeout_ms(self, ms: u64) -> Agent {
        self.meta("timeout", &ms.to_string())
    }

    pub fn interval_ms(self, ms: u64) -> Agent {
        self.meta("interval", &ms.to_string())
    }

    /// A recurring monitor's interval (PAF's default for the unpromoted role).
    pub fn recurring(self) -> Agent {
        self.interval_ms(15_000)
    }

    /// A probe: a monitor with interval 0.
    pub fn probe(self) -> Agent {
        self.interval_ms(0)
    }

    pub fn check_level(self, level: u32) -> Agent {
        self.env("OCF_CHECK_LEVEL", &level.to_string())
    }

    /// The parameters and node of `pg`, with its fake Pacemaker tools and its own
    /// `HA_RSCTMP` (never the host's /run/resource-agents). `bindir` is the tests' own
    /// ([`crate::pg::agent_bindir`]): unset for the host's 15, which the agent finds from
    /// `PG_VERSION`.
    pub fn on(self, pg: &Pg) -> Agent {
        let agent = self
            .param("pgdata", &pg.data().display().to_string())
            .param("pghost", &pg.sock().display().to_string())
            .param("pgport", &pg.port.to_string())
            .meta("on_node", &pg.node)
            .env("HA_RSCTMP", &pg.rsctmp().display().to_string())
            .cluster(pg.fake());
        match crate::pg::agent_bindir() {
            Some(dir) => agent.param("bindir", &dir.display().to_string()),
            None => agent,
        }
    }

    /// The Pacemaker tools to use: nodes of one cluster share one fake.
    pub fn cluster(self, fake: &FakePacemaker) -> Agent {
        self.env("HA_SBIN_DIR", &fake.sbin().display().to_string())
    }

    /// Stdout must be exactly `text` (it must be empty unless this is called).
    pub fn stdout(mut self, text: &str) -> Agent {
        self.stdout = Stdout::Exactly(text.to_owned());
        self
    }

    /// Stdout is checked by the caller.
    pub fn any_stdout(mut self) -> Agent {
        self.stdout = Stdout::Any;
        self
    }

    /// Runs the agent, with no checks.
    pub fn run(self) -> Run {
        let timeout_ms = self
            .env
            .get("OCF_RESKEY_CRM_meta_timeout")
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(DEFAULT_TIMEOUT_MS);
        let mut shown = String::new();
        for (k, v) in &self.env {
            write!(shown, "{k}={v:?} ").unwrap();
        }
        write!(shown, "pgha {}", self.args.join(" ")).unwrap();

        let mut cmd = assert_cmd::Command::new(BIN);
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(&self.env)
            .args(&self.args)
            // Pacemaker kills an agent at its timeout; a hung agent must fail the test, not
            // hang it.
            .timeout(Duration::from_millis(timeout_ms) + Duration::from_secs(10));
        let start = Instant::now();
        let out = cmd.output().unwrap_or_else(|e| panic!("{shown}: {e}"));
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: start.elapsed(),
            shown,
        }
    }

    /// The agent must exit with `code`, print no exit reason, and leave stdout as stated.
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        self.check(code, None)
    }

    /// The agent must exit with `code` and give an exit reason containing `reason`.
    #[track_caller]
    pub fn expect_reason(self, code: i32, reason: &str) -> Run {
        self.check(code, Some(reason))
    }

    #[track_caller]
    fn check(self, code: i32, reason: Option<&str>) -> Run {
        let want_stdout = self.stdout.clone();
        let run = self.run();
        let mut wrong = Vec::new();
        if run.code != Some(code) {
            wrong.push(format!("exit code {:?}, expected {code}", run.code));
        }
        match (reason, run.reason()) {
            (None, Some(got)) => wrong.push(format!("unexpected exit reason {got:?}")),
            (Some(want), None) => wrong.push(format!("no exit reason, expected one with {want:?}")),
            (Some(want), Some(got)) if !got.contains(want) => {
                wrong.push(format!("exit reason {got:?} does not contain {want:?}"))
            }
            _ => {}
        }
        match &want_stdout {
            Stdout::Empty if !run.stdout.is_empty() => wrong.push("stdout is not empty".into()),
            Stdout::Exactly(text) if &run.stdout != text => {
                wrong.push(format!("stdout differs, expected:\n{text}"))
            }
            _ => {}
        }
        if !wrong.is_empty() {
            panic!("{}\n{}", wrong.join("\n"), run.describe());
        }
        run
    }
}

/// A recurring monitor of `pg`, then a probe, both end with `code` and no exit reason.
#[track_caller]
pub fn expect_monitors(pg: &Pg, code: i32) {
    agent().on(pg).action("monitor").recurring().expect(code);
    agent().on(pg).action("monitor").probe().expect(code);
}
