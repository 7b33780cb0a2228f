//! The one place pgha starts other programs.
//!
//! Every child gets an absolute program path, `LC_ALL=C`/`LANG=C` (so its output parses and
//! pg_rewind's messages are English), stdin from /dev/null, `/` as working directory (the
//! postgres user may not read the caller's), stdout and stderr drained together on a thread
//! (no full-pipe deadlock; only the first and last [`KEEP`] bytes are kept), and a wait
//! bounded by the operation's [`Deadline`], after which it is killed. Secrets reach a child
//! through its environment ([`Cmd::env_secret`]), never its arguments: the command line is
//! what errors and logs show, and what `ps` shows every local user. Children stay in the
//! agent's process group, so Pacemaker's timeout kill reaches them too (`pg_ctl` detaches
//! the server itself).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use nix::unistd::{Gid, Uid, User};

use crate::deadline::Deadline;
use crate::safe_fs::Owner;

/// An OS account to run children as, resolved before any fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    pub home: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("system user {0:?} does not exist")]
    Unknown(String),
    #[error("could not look up system user {name:?}: {source}")]
    Lookup { name: String, source: nix::Error },
}

impl RunAs {
    pub fn lookup(name: &str) -> Result<RunAs, UserError> {
        let user = User::from_name(name)
            .map_err(|source| UserError::Lookup {
                name: name.to_owned(),
                source,
            })?
            .ok_or_else(|| UserError::Unknown(name.to_owned()))?;
        Ok(RunAs {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            home: user.dir,
        })
    }

    /// Supplementary groups: std's `Command::uid` would drop them, and Debian's postgres
    /// reads its TLS key through `ssl-cert`. Looked up only when a child needs them: the
    /// lookup goes through NSS, which costs more than a whole standby monitor's SQL.
    fn groups(&self) -> Vec<Gid> {
        std::ffi::CString::new(self.name.as_str())
            .ok()
            .and_then(|name| nix::unistd::getgrouplist(&name, self.gid).ok())
            .unwrap_or_else(|| vec![self.gid])
    }

    /// Whether children must switch to this user: only root can, and needs to.
    pub fn needs_switch(&self) -> bool {
        Uid::effective().is_root() && !self.uid.is_root()
    }

    /// Who the files pgha creates for this user belong to: this user when pgha runs as root,
    /// else whoever runs it (the tests).
    pub fn owner(&self) -> Option<Owner> {
        self.needs_switch().then_some(Owner {
            uid: self.uid,
            gid: self.gid,
        })
    }
}

/// How a child ended badly. Carries the command line and the tail of its output.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("could not run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{command} exited with code {code}{}", tail(.output))]
    Exit {
        command: String,
        code: i32,
        output: String,
    },
    #[error("{command} was killed by signal {signal}{}", tail(.output))]
    Signal {
        command: String,
        signal: i32,
        output: String,
    },
    #[error("{command} did not finish within {after:?} and was killed{}", tail(.output))]
    Timeout {
        command: String,
        after: Duration,
        output: String,
    },
}

impl ToolError {
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ToolError::Exit { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn output(&self) -> &str {
        match self {
            ToolError::Spawn { .. } => "",
            ToolError::Exit { output, .. }
            | ToolError::Signal { output, .. }
            | ToolError::Timeout { output, .. } => output,
        }
    }
}

/// The last lines of a child's output, for messages.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.trim().lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(3);
    format!(": {}", lines.get(start..).unwrap_or_default().join(" | "))
}

/// What a child printed (stdout and stderr interleaved) and how it ended.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub text: String,
}

/// A value that is never printed, not even by `Debug`.
struct Hidden(OsString);

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("********")
    }
}

/// A child to run; see the module doc for what every child gets.
#[derive(Debug)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    secrets: Vec<(OsString, Hidden)>,
    user: Option<RunAs>,
    discard_stdout: bool,
}

impl Cmd {
    pub fn new(program: impl AsRef<Path>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            secrets: Vec::new(),
            user: None,
            discard_stdout: false,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// An environment variable holding a secret (`PGPASSWORD`): unlike an argument, it is
    /// in no command line pgha shows, and `/proc/<pid>/environ` is readable only by the
    /// child's own user and root, where `/proc/<pid>/cmdline` is readable by everyone.
    pub fn env_secret(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.secrets
            .push((key.as_ref().to_owned(), Hidden(value.as_ref().to_owned())));
        self
    }

    /// Runs the child as `user` (uid, gid and supplementary groups) when we are root.
    pub fn run_as(mut self, user: &RunAs) -> Cmd {
        self.user = Some(user.clone());
        self
    }

    /// Sends stdout to /dev/null: `pg_ctl start` hands its stdout to the server it starts,
    /// which would hold a pipe open forever.
    pub fn discard_stdout(mut self) -> Cmd {
        self.discard_stdout = true;
        self
    }

    /// The command line, for logs and errors. It holds no secret as long as none is given
    /// as an argument: connection strings go to children through
    /// `conninfo::split_password` and [`Cmd::env_secret`].
    /// The program's file name, for messages.
    pub fn program_name(&self) -> String {
        self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    pub fn display(&self) -> String {
        let mut line = self.program.display().to_string();
        for arg in &self.args {
            line.push(' ');
            line.push_str(&arg.to_string_lossy());
        }
        line
    }

    /// Runs to completion; a non-zero exit is an error.
    pub fn run(self, deadline: &Deadline) -> Result<Output, ToolError> {
        let command = self.display();
        let out = self.run_status(deadline)?;
        check_exit(command, out)
    }

    /// Runs until it exits (a non-zero exit is an error, as with [`Cmd::run`]) or until
    /// `done` says what it waits for has happened: `done` is asked at least every `every`,
    /// and the child is then killed. For tools that wait with a coarse step of their own
    /// (`pg_ctl start -w` looks every 100 ms) whose failure reports are still wanted.
    pub fn run_until(
        self,
        deadline: &Deadline,
        every: Duration,
        mut done: impl FnMut() -> bool,
    ) -> Result<(), ToolError> {
        let command = self.display();
        let (out, early) = self.spawn_and_wait(deadline, Some((every, &mut done)))?;
        if !early {
            check_exit(command, out)?;
        }
        Ok(())
    }

    /// Runs to completion and returns how it ended, whatever the exit code.
    pub fn run_status(self, deadline: &Deadline) -> Result<Output, ToolError> {
        Ok(self.spawn_and_wait(deadline, None)?.0)
    }

    /// Spawns, then waits for the exit, the deadline, or `early`'s condition (the child is
    /// then killed); `true` with the output when it ended early.
    fn spawn_and_wait(
        self,
        deadline: &Deadline,
        mut early: Option<(Duration, &mut dyn FnMut() -> bool)>,
    ) -> Result<(Output, bool), ToolError> {
        let command = self.display();
        let program = self.program.display().to_string();
        let spawn_err = |source| ToolError::Spawn {
            program: program.clone(),
            source,
        };

        let (reader, writer) = std::io::pipe().map_err(spawn_err)?;
        let stdout = if self.discard_stdout {
            Stdio::null()
        } else {
            Stdio::from(writer.try_clone().map_err(spawn_err)?)
        };
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .env_remove("LANGUAGE")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::from(writer));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, Hidden(v)) in &self.secrets {
            cmd.env(k, v);
        }
        if let Some(user) = self.user.as_ref().filter(|u| u.needs_switch()) {
            let (uid, gid, groups) = (user.uid, user.gid, user.groups());
            cmd.env("HOME", &user.home)
                .env("USER", &user.name)
                .env("LOGNAME", &user.name);
            // SAFETY: setgroups/setgid/setuid are async-signal-safe system calls and the
            // closure allocates nothing: everything it uses was resolved before the fork.
            unsafe {
                cmd.pre_exec(move || {
                    nix::unistd::setgroups(&groups)?;
                    nix::unistd::setgid(gid)?;
                    nix::unistd::setuid(uid)?;
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().map_err(spawn_err)?;
        // Our copies of the pipe's write end must go, or the reader never sees its end.
        drop(cmd);

        let buffer = Arc::new(Mutex::new(Captured::default()));
        let (done_tx, done_rx) = mpsc::channel();
        {
            let buffer = Arc::clone(&buffer);
            let mut reader = reader;
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = reader.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut b) = buffer.lock() {
                        b.push(chunk.get(..n).unwrap_or_default());
                    }
                }
                let _ = done_tx.send(());
            });
        }
        let text =
            |buffer: &Arc<Mutex<Captured>>| buffer.lock().map(|b| b.text()).unwrap_or_default();

        // The pipe's end usually comes with the child's exit: wait on it, so a short child
        // is reaped within a millisecond instead of at the next tick of a sleep. A grandchild
        // that keeps the pipe (a server started without a log file) falls back to ticks.
        let mut pipe_closed = false;
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(source) => return Err(ToolError::Spawn { program, source }),
            }
            if deadline.expired() {
                let _ = child.kill();
                let _ = child.wait();
                let _ = done_rx.recv_timeout(Duration::from_millis(100));
                return Err(ToolError::Timeout {
                    command,
                    after: deadline.elapsed(),
                    output: text(&buffer),
                });
            }
            if let Some((every, done)) = early.as_mut() {
                if done() {
                    let _ = child.kill();
                    let status = child.wait().map_err(|source| ToolError::Spawn {
                        program: program.clone(),
                        source,
                    })?;
                    let _ = done_rx.recv_timeout(Duration::from_millis(100));
                    return Ok((
                        Output {
                            status,
                            text: text(&buffer),
                        },
                        true,
                    ));
                }
                pause = pause.min(*every);
            }
            let wait = pause.min(deadline.remaining());
            if pipe_closed {
                thread::sleep(wait);
            } else if !matches!(
                done_rx.recv_timeout(wait),
                Err(mpsc::RecvTimeoutError::Timeout)
            ) {
                pipe_closed = true;
                pause = Duration::from_millis(1);
                continue;
            }
            pause = (pause * 2).min(Duration::from_millis(20));
        };
        // A grandchild that kept the pipe must not hold us: take what arrived shortly after
        // the exit.
        if !pipe_closed {
            let _ = done_rx.recv_timeout(Duration::from_millis(200));
        }
        Ok((
            Output {
                status,
                text: text(&buffer),
            },
            false,
        ))
    }
}

/// How much of a child's output is kept at each end: the beginning says what it set out to
/// do (pg_rewind's `need to copy`, its point of no return), the end how it ended. A child
/// that prints more (pg_rewind `--debug` lists every file) loses its middle, not its memory
/// bound; the pipe is still read to its end, so the child never blocks on it.
pub const KEEP: usize = 64 * 1024;

/// The line that stands where output was cut.
const CUT: &str = "[pgha: output cut here:";

/// Whether a line of a child's output is the mark of a cut ([`KEEP`]): what the child
/// printed there is unknown.
pub fn is_cut_mark(line: &str) -> bool {
    line.trim_start().starts_with(CUT)
}

/// A child's output as kept: the first [`KEEP`] bytes, the last [`KEEP`], and how many
/// bytes between them were dropped.
#[derive(Default)]
struct Captured {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: u64,
}

impl Captured {
    fn push(&mut self, bytes: &[u8]) {
        let room = KEEP.saturating_sub(self.head.len()).min(bytes.len());
        let (head, rest) = bytes.split_at(room);
        self.head.extend_from_slice(head);
        self.tail.extend(rest);
        let excess = self.tail.len().saturating_sub(KEEP);
        self.tail.drain(..excess);
        self.dropped += excess as u64;
    }

    fn text(&self) -> String {
        let mut bytes = self.head.clone();
        if self.dropped > 0 {
            bytes
                .extend_from_slice(format!("\n{CUT} {} bytes dropped]\n", self.dropped).as_bytes());
        }
        bytes.extend(self.tail.iter());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A non-zero exit or a death by signal is an error carrying what the child printed.
fn check_exit(command: String, out: Output) -> Result<Output, ToolError> {
    match (out.status.code(), out.status.signal()) {
        (Some(0), _) => Ok(out),
        (Some(code), _) => Err(ToolError::Exit {
            command,
            code,
            output: out.text,
        }),
        (None, signal) => Err(ToolError::Signal {
            command,
            signal: signal.unwrap_or(0),
            output: out.text,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soon() -> Deadline {
        Deadline::after(Duration::from_secs(10))
    }

    #[test]
    fn captures_stdout_and_stderr_together() {
        let out = Cmd::new("/bin/sh")
            .args(["-c", "echo out; echo err >&2"])
            .run(&soon())
            .unwrap();
        assert!(
            out.text.contains("out") && out.text.contains("err"),
            "{}",
            out.text
        );
    }

    #[test]
    fn children_get_the_c_locale_and_root_cwd() {
        let out = Cmd::new("/bin/sh")
            .args(["-c", "echo $LC_ALL $LANG; pwd"])
            .run(&soon())
            .unwrap();
        assert_eq!(out.text, "C C\n/\n");
    }

    #[test]
    fn non_zero_exit_is_an_error_with_output() {
        let err = Cmd::new("/bin/sh")
            .args(["-c", "echo boom; exit 3"])
            .run(&soon())
            .unwrap_err();
        assert_eq!(err.exit_code(), Some(3));
        assert!(err.to_string().contains("boom"), "{err}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = Cmd::new("/nonexistent/tool").run(&soon()).unwrap_err();
        assert!(matches!(err, ToolError::Spawn { .. }), "{err}");
    }

    #[test]
    fn deadline_kills_the_child() {
        let deadline = Deadline::after(Duration::from_millis(200));
        let err = Cmd::new("/bin/sleep").arg("30").run(&deadline).unwrap_err();
        assert!(matches!(err, ToolError::Timeout { .. }), "{err}");
    }

    #[test]
    fn a_grandchild_holding_the_pipe_does_not_block() {
        let started = std::time::Instant::now();
        let out = Cmd::new("/bin/sh")
            .args(["-c", "sleep 5 & echo parent"])
            .run(&soon())
            .unwrap();
        assert!(out.text.contains("parent"));
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn run_until_stops_waiting_once_done_and_kills_the_child() {
        let marker = tempfile::NamedTempFile::new().unwrap();
        let path = marker.path().to_owned();
        std::fs::remove_file(&path).unwrap();
        let started = std::time::Instant::now();
        // The child makes the condition true, then would wait 30 s more.
        Cmd::new("/bin/sh")
            .args(["-c", &format!("touch {} && sleep 30", path.display())])
            .run_until(&soon(), Duration::from_millis(10), || path.exists())
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn run_until_reports_a_failed_child() {
        let err = Cmd::new("/bin/sh")
            .args(["-c", "echo no way; exit 3"])
            .run_until(&soon(), Duration::from_millis(10), || false)
            .unwrap_err();
        assert_eq!(err.exit_code(), Some(3));
        assert!(err.output().contains("no way"));
    }

    /// Finding 9: a child's whole output was held in memory. 10 MB of output: the child
    /// still runs to its end (the pipe is drained), and only both ends are kept.
    #[test]
    fn finding_9_child_output_is_bounded_and_the_pipe_still_drained() {
        let out = Cmd::new("/bin/sh")
            .args([
                "-c",
                "echo FIRST; head -c 10000000 /dev/zero | tr '\\0' x; echo; echo LAST",
            ])
            .run(&soon())
            .unwrap();
        assert!(out.text.len() <= 2 * KEEP + 100, "{} bytes", out.text.len());
        assert!(out.text.starts_with("FIRST\n"), "{:?}", out.text.get(..20));
        assert!(out.text.ends_with("\nLAST\n"));
        let cut: Vec<_> = out.text.lines().filter(|l| is_cut_mark(l)).collect();
        assert_eq!(
            cut,
            [format!(
                "{CUT} {} bytes dropped]",
                10_000_000 + 6 + 1 + 5 - 2 * KEEP
            )]
        );
        // Short output is kept whole, with no mark.
        let out = Cmd::new("/bin/sh")
            .args(["-c", "echo hi"])
            .run(&soon())
            .unwrap();
        assert_eq!(out.text, "hi\n");
    }

    #[test]
    fn finding_3_secrets_go_to_the_environment_and_nowhere_shown() {
        let cmd = Cmd::new("/bin/sh")
            .args(["-c", "echo \"$PGPASSWORD\"; cat /proc/$$/cmdline"])
            .env_secret("PGPASSWORD", "Sup3rS3cret");
        assert!(!cmd.display().contains("Sup3rS3cret"));
        assert!(!format!("{cmd:?}").contains("Sup3rS3cret"), "{cmd:?}");
        let out = cmd.run(&soon()).unwrap();
        let (env, cmdline) = out.text.split_once('\n').unwrap();
        assert_eq!(env, "Sup3rS3cret");
        assert!(!cmdline.contains("Sup3rS3cret"), "{cmdline}");
    }

    #[test]
    fn looks_up_users() {
        let root = RunAs::lookup("root").unwrap();
        assert!(root.uid.is_root());
        assert!(matches!(
            RunAs::lookup("no-such-user-pgha"),
            Err(UserError::Unknown(_))
        ));
    }
}
