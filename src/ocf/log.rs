//! The agent's logger: `ocf_log` of the shell library, natively.
//!
//! Lines go to syslog under the tag `pgsqlms(<instance>)[<pid>]` with the facility Pacemaker
//! passes in `HA_LOGFACILITY`; to the files `HA_LOGFILE` and `HA_DEBUGLOG` name
//! (`<tag>:\t<YYYY/MM/DD_HH:MM:SS> <line>`, as ocf-shellfuncs' `ha_log` appends them, the
//! date in UTC); and to stderr when stderr is a terminal (a hand run) or when
//! neither a facility nor a log file is set. Each line reads `<LEVEL>: <action>: <message>`.
//! Debug lines only with `HA_debug=1`. Exit reasons are logged through the target
//! [`EXIT_REASON`], which never goes to stderr: the reason line itself is already there.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::str::FromStr;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use syslog::{Facility, Formatter3164, LoggerBackend};

/// Log target for the copy of an exit reason that goes to syslog only.
pub const EXIT_REASON: &str = "pgha::exit_reason";

/// Where and how this run logs.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Agent name, `pgsqlms`.
    pub agent: String,
    /// `OCF_RESOURCE_INSTANCE`, if known.
    pub instance: Option<String>,
    /// The action being run, prefixed to every line.
    pub action: String,
    pub facility: Option<String>,
    pub debug: bool,
    /// `HA_LOGFILE` and `HA_DEBUGLOG`.
    pub log_file: Option<String>,
    pub debug_log: Option<String>,
}

struct OcfLogger {
    tag: String,
    action: String,
    syslog: Option<Mutex<syslog::Logger<LoggerBackend, Formatter3164>>>,
    /// `HA_LOGFILE`, and `HA_DEBUGLOG` unless it is the same file.
    log_file: Option<Mutex<File>>,
    debug_log: Option<Mutex<File>>,
    stderr: bool,
    level: LevelFilter,
}

/// Opens a log file for appending, created 0640 when missing; its last component is never
/// followed. `None` (a warning on stderr) when it cannot be opened: no log file must stop an
/// action.
fn open_log(path: &str) -> Option<Mutex<File>> {
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    match opened {
        Ok(file) => Some(Mutex::new(file)),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "could not open the log file {path}: {e}");
            None
        }
    }
}

/// Installs the logger for this process. Safe to call once; later calls are ignored.
pub fn init(settings: &LogSettings) {
    let process = match &settings.instance {
        Some(instance) => format!("{}({instance})", settings.agent),
        None => settings.agent.clone(),
    };
    let pid = std::process::id();
    let syslog = settings.facility.as_deref().and_then(|name| {
        let facility = Facility::from_str(name).unwrap_or(Facility::LOG_DAEMON);
        let formatter = Formatter3164 {
            facility,
            hostname: None,
            process: process.clone(),
            pid,
        };
        syslog::unix(formatter).ok().map(Mutex::new)
    });
    let log_file = settings.log_file.as_deref().and_then(open_log);
    let debug_log = settings
        .debug_log
        .as_deref()
        .filter(|path| settings.log_file.as_deref() != Some(*path))
        .and_then(open_log);
    // A syslog we could not reach must not make the agent silent.
    let stderr = std::io::stderr().is_terminal() || (syslog.is_none() && log_file.is_none());
    let level = if settings.debug {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    let logger = OcfLogger {
        tag: format!("{process}[{pid}]"),
        action: settings.action.clone(),
        syslog,
        log_file,
        debug_log,
        stderr,
        level,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level);
    }
}

fn level_word(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug | Level::Trace => "DEBUG",
    }
}

impl Log for OcfLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        // Our lines only: libraries' debug output (tokio-postgres) is not the agent's log.
        metadata.level() <= self.level && metadata.target().starts_with("pgha")
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{}: {}: {}",
            level_word(record.level()),
            self.action,
            record.args()
        );
        if let Some(syslog) = &self.syslog {
            if let Ok(mut syslog) = syslog.lock() {
                // A lost syslog line is not worth failing an action for.
                let _ = match record.level() {
                    Level::Error => syslog.err(&line),
                    Level::Warn => syslog.warning(&line),
                    Level::Info => syslog.info(&line),
                    Level::Debug | Level::Trace => syslog.debug(&line),
                };
            }
        }
        let in_file = |file: &Mutex<File>| {
            if let Ok(mut file) = file.lock() {
                let stamp = crate::clock::log_stamp(std::time::SystemTime::now());
                let _ = writeln!(file, "{}:\t{stamp}{line}", self.tag);
            }
        };
        self.log_file
            .iter()
            .chain(&self.debug_log)
            .for_each(in_file);
        if self.stderr && record.target() != EXIT_REASON {
            let _ = writeln!(std::io::stderr(), "{}: {line}", self.tag);
        }
    }

    fn flush(&self) {}
}
