//! TLS for pgha's own SQL to other nodes, with libpq's meanings, over OpenSSL.
//!
//! Owns the `ssl*` keywords of a connection string as libpq reads them (PostgreSQL 15,
//! "SSL Support" in libpq's documentation, `fe-secure-openssl.c`), and the OpenSSL connector
//! that enforces them for tokio-postgres. pg_rewind and pg_basebackup get the same keywords in
//! their connection string and let libpq, on the same libssl, decide the same way.
//!
//! - `sslmode`: `disable`; `allow` and `prefer` (TLS when the server offers it; tokio-postgres
//!   has no "clear text first" mode, so `allow` tries TLS first, which libpq only does second:
//!   neither authenticates the server); `require`; `verify-ca` (the chain up to
//!   `sslrootcert`); `verify-full` (also the host name: subjectAltName, else the CN, as libpq).
//!   Default `prefer`, as libpq.
//! - `sslrootcert`: default `~/.postgresql/root.crt`. When that file exists, `prefer` and
//!   `require` verify the chain too (libpq's compatibility rule); the `verify-*` modes refuse
//!   to go on without it. `system` trusts OpenSSL's default store and, as libpq 16, requires
//!   `verify-full`.
//! - `sslcert`/`sslkey`: default `~/.postgresql/postgresql.{crt,key}`; a missing certificate
//!   means no client certificate. The key must not be readable by group or others (0640 when
//!   owned by root), as libpq requires.
//! - `sslcrl`: default `~/.postgresql/root.crl`, used when it exists and a root is loaded.
//!
//! `~` is the system user's home: pgha connects for that user, as its children do. The files
//! are named by `primary_conninfo`, which the postgres account can change: they are read with
//! [`read_bounded`] (regular files only, bounded, never blocking on a FIFO).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use openssl::error::ErrorStack;
use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::{X509Lookup, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::X509;
use postgres_openssl::MakeTlsConnector;

use super::conninfo;

/// The connection keywords this module reads: pgha's checks, pg_rewind and pg_basebackup
/// must all receive them.
pub const KEYWORDS: [&str; 5] = ["sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl"];

/// Certificates, keys and CRLs are small; anything larger is not one.
const MAX_FILE: u64 = 1 << 20;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = TlsError;

    fn from_str(text: &str) -> Result<SslMode, TlsError> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(TlsError::Mode(other.to_owned())),
        })
    }
}

impl SslMode {
    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }

    /// What tokio-postgres is told: it only knows whether TLS is off, optional or required;
    /// the verification is the connector's.
    fn tokio(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as T;
        match self {
            SslMode::Disable => T::Disable,
            SslMode::Allow | SslMode::Prefer => T::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => T::Require,
        }
    }
}

/// Which certificates are trusted to sign the server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// None: the server's certificate is not checked (`prefer`/`require` without a root file).
    Unchecked,
    File(PathBuf),
    /// `sslrootcert=system`: OpenSSL's default store.
    System,
}

/// The TLS of connections made with one [`TlsSettings`]: the mode tokio-postgres enforces
/// (whether TLS is used at all), and the connector that checks the server.
#[derive(Clone)]
pub struct Connector {
    pub mode: tokio_postgres::config::SslMode,
    pub make: Option<MakeTlsConnector>,
}

/// The TLS part of one connection string, resolved against the system user's home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    pub roots: Roots,
    /// Client certificate and key, when the certificate file exists.
    pub client: Option<(PathBuf, PathBuf)>,
    pub crl: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "invalid sslmode value {0:?} (disable, allow, prefer, require, verify-ca or verify-full)"
    )]
    Mode(String),
    #[error(
        "sslmode={mode} needs a root certificate to check the server's: \"{}\" does not exist \
         (set sslrootcert, or use sslrootcert=system)", path.display()
    )]
    NoRoot { mode: String, path: PathBuf },
    #[error("sslrootcert=system needs sslmode=verify-full, not {0}")]
    WeakSystem(String),
    #[error("{what} \"{}\": {why}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error("could not set up TLS: {0}")]
    OpenSsl(#[from] ErrorStack),
}

impl TlsSettings {
    /// No TLS (the local instance's Unix socket).
    pub fn disabled() -> TlsSettings {
        TlsSettings {
            mode: SslMode::Disable,
            roots: Roots::Unchecked,
            client: None,
            crl: None,
        }
    }

    /// The `ssl*` keywords of `conninfo`, with libpq's defaults under `home`'s `.postgresql`.
    pub fn from_conninfo(conninfo: &str, home: Option<&Path>) -> Result<TlsSettings, TlsError> {
        let get = |key: &str| conninfo::get(conninfo, key).filter(|v| !v.is_empty());
        let default = |name: &str| home.map(|h| h.join(".postgresql").join(name));
        let root_given = get("sslrootcert");
        let mode = match get("sslmode") {
            Some(text) => text.parse()?,
            None if root_given.as_deref() == Some("system") => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        if mode == SslMode::Disable {
            return Ok(TlsSettings::disabled());
        }
        let roots = match root_given {
            Some(system) if system == "system" => {
                if mode != SslMode::VerifyFull {
                    return Err(TlsError::WeakSystem(mode_name(conninfo)));
                }
                Roots::System
            }
            given => {
                let path = given.map(PathBuf::from).or_else(|| default("root.crt"));
                match path {
                    Some(p) if p.exists() => Roots::File(p),
                    Some(p) if mode.verifies() => {
                        return Err(TlsError::NoRoot {
                            mode: mode_name(conninfo),
                            path: p,
                        })
                    }
                    None if mode.verifies() => {
                        return Err(TlsError::NoRoot {
                            mode: mode_name(conninfo),
                            path: PathBuf::from("~/.postgresql/root.crt"),
                        })
                    }
                    _ => Roots::Unchecked,
                }
            }
        };
        let crl = match roots {
            Roots::Unchecked => None,
            Roots::File(_) | Roots::System => get("sslcrl")
                .map(PathBuf::from)
                .or_else(|| default("root.crl"))
                .filter(|p| p.exists()),
        };
        let cert = get("sslcert")
            .map(PathBuf::from)
            .or_else(|| default("postgresql.crt"));
        let key = get("sslkey")
            .map(PathBuf::from)
            .or_else(|| default("postgresql.key"));
        let client = match (cert, key) {
            (Some(cert), Some(key)) if cert.exists() => Some((cert, key)),
            _ => None,
        };
        Ok(TlsSettings {
            mode,
            roots,
            client,
            crl,
        })
    }

    /// What connections made with these settings use, built once: building it loads the
    /// system's roots and the client's files (about 30 ms here, for each connection the
    /// native rewind engine opens when built each time).
    pub fn build(&self) -> Result<Connector, TlsError> {
        Ok(Connector {
            mode: self.mode.tokio(),
            make: self.connector()?,
        })
    }

    /// The connector that checks the server as the settings say, and shows the client
    /// certificate; `None` for `disable`.
    fn connector(&self) -> Result<Option<MakeTlsConnector>, TlsError> {
        if self.mode == SslMode::Disable {
            return Ok(None);
        }
        let mut builder = SslConnector::builder(SslMethod::tls_client())?;
        // libpq's default `ssl_min_protocol_version`.
        builder.set_min_proto_version(Some(SslVersion::TLS1_2))?;
        // Only the roots named here: the builder starts with the system's store.
        let mut store = X509StoreBuilder::new()?;
        match &self.roots {
            Roots::Unchecked => builder.set_verify(SslVerifyMode::NONE),
            Roots::System => store.set_default_paths()?,
            Roots::File(path) => {
                let pem = read_bounded(path, "sslrootcert")?;
                let certs = X509::stack_from_pem(&pem).map_err(|e| bad("sslrootcert", path, e))?;
                if certs.is_empty() {
                    return Err(bad("sslrootcert", path, "no certificate in it"));
                }
                for cert in certs {
                    store.add_cert(cert)?;
                }
            }
        }
        if let Some(path) = &self.crl {
            load_crl(&mut store, path)?;
            store.set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)?;
        }
        builder.set_cert_store(store.build());
        if let Some((cert, key)) = &self.client {
            let pem = read_bounded(cert, "sslcert")?;
            let mut chain = X509::stack_from_pem(&pem)
                .map_err(|e| bad("sslcert", cert, e))?
                .into_iter();
            let leaf = chain
                .next()
                .ok_or_else(|| bad("sslcert", cert, "no certificate in it"))?;
            builder.set_certificate(&leaf)?;
            for extra in chain {
                builder.add_extra_chain_cert(extra)?;
            }
            check_key_mode(key)?;
            let bytes = read_bounded(key, "sslkey")?;
            let pkey = PKey::private_key_from_pem(&bytes)
                .or_else(|_| PKey::private_key_from_der(&bytes))
                .map_err(|e| bad("sslkey", key, e))?;
            builder.set_private_key(&pkey)?;
            builder
                .check_private_key()
                .map_err(|e| bad("sslkey", key, format!("does not match sslcert: {e}")))?;
        }
        let check_host = self.mode == SslMode::VerifyFull;
        let mut connector = MakeTlsConnector::new(builder.build());
        connector.set_callback(move |config, _domain| {
            config.set_verify_hostname(check_host);
            Ok(())
        });
        Ok(Some(connector))
    }
}

/// The `sslmode` text as given, for messages.
fn mode_name(conninfo: &str) -> String {
    conninfo::get(conninfo, "sslmode").unwrap_or_else(|| "prefer".into())
}

fn bad(what: &'static str, path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        what,
        path: path.to_owned(),
        why: why.to_string(),
    }
}

/// The CRL file, loaded by OpenSSL through the descriptor [`open_regular`] checked, so that
/// what was checked is what is read.
fn load_crl(store: &mut X509StoreBuilder, path: &Path) -> Result<(), TlsError> {
    let file = open_regular(path, "sslcrl")?;
    let through = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
    let lookup = store.add_lookup(X509Lookup::file())?;
    lookup
        .load_crl_file(&through, SslFiletype::PEM)
        .map_err(|e| bad("sslcrl", path, e))?;
    Ok(())
}

/// libpq refuses a private key that group or others may read, except group read when root
/// owns it.
fn check_key_mode(path: &Path) -> Result<(), TlsError> {
    let meta = std::fs::metadata(path).map_err(|e| bad("sslkey", path, e))?;
    let mode = meta.mode();
    let loose = if meta.uid() == 0 {
        mode & 0o037 != 0
    } else {
        mode & 0o077 != 0
    };
    if loose {
        return Err(bad(
            "sslkey",
            path,
            format!(
                "has group or world access (mode {:04o}): it must be u=rw (0600) or less, or \
                 u=rw,g=r (0640) when owned by root",
                mode & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Opens a file that must be a regular one (links followed: certificates often are
/// links), without blocking on a FIFO or a device, and not larger than [`MAX_FILE`].
fn open_regular(path: &Path, what: &'static str) -> Result<std::fs::File, TlsError> {
    let (file, stat) = crate::safe_fs::open_followed(path).map_err(|e| bad(what, path, e))?;
    if stat.st_size as u64 > MAX_FILE {
        return Err(bad(
            what,
            path,
            format!("{} bytes, more than a {what} can be", stat.st_size),
        ));
    }
    Ok(file)
}

/// The whole of a small regular file, at most [`MAX_FILE`] bytes.
fn read_bounded(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    crate::safe_fs::read_limited(open_regular(path, what)?, MAX_FILE, path)
        .map_err(|e| bad(what, path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libpq's six modes and what tokio-postgres is told for each; anything else is refused.
    #[test]
    fn finding_4_sslmode_parsing_table() {
        use tokio_postgres::config::SslMode as T;
        for (text, mode, tokio) in [
            ("disable", SslMode::Disable, T::Disable),
            ("allow", SslMode::Allow, T::Prefer),
            ("prefer", SslMode::Prefer, T::Prefer),
            ("require", SslMode::Require, T::Require),
            ("verify-ca", SslMode::VerifyCa, T::Require),
            ("verify-full", SslMode::VerifyFull, T::Require),
        ] {
            let parsed: SslMode = text.parse().unwrap();
            assert_eq!(parsed, mode, "{text}");
            assert_eq!(parsed.tokio(), tokio, "{text}");
        }
        for bad in ["", "VERIFY-FULL", "verify_full", "on", "true"] {
            assert!(bad.parse::<SslMode>().is_err(), "{bad:?}");
        }
    }

    fn home_with(files: &[&str]) -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".postgresql")).unwrap();
        for f in files {
            std::fs::write(home.path().join(".postgresql").join(f), "").unwrap();
        }
        home
    }

    #[test]
    fn finding_4_conninfo_tls_settings_table() {
        let empty = home_with(&[]);
        let full = home_with(&["root.crt", "root.crl", "postgresql.crt", "postgresql.key"]);
        let at = |home: &tempfile::TempDir, f: &str| home.path().join(".postgresql").join(f);
        let settings =
            |ci: &str, home: &tempfile::TempDir| TlsSettings::from_conninfo(ci, Some(home.path()));

        // The default is prefer, unchecked without a root file.
        let s = settings("host=a", &empty).unwrap();
        assert_eq!(
            (s.mode, &s.roots, &s.client),
            (SslMode::Prefer, &Roots::Unchecked, &None)
        );
        // With the home's root file, prefer and require check the chain (libpq's rule), and
        // the home's CRL and client certificate are used.
        let s = settings("host=a sslmode=require", &full).unwrap();
        assert_eq!(s.roots, Roots::File(at(&full, "root.crt")));
        assert_eq!(s.crl, Some(at(&full, "root.crl")));
        assert_eq!(
            s.client,
            Some((at(&full, "postgresql.crt"), at(&full, "postgresql.key")))
        );
        // The verify modes need a root.
        for mode in ["verify-ca", "verify-full"] {
            let e = settings(&format!("host=a sslmode={mode}"), &empty).unwrap_err();
            assert!(matches!(e, TlsError::NoRoot { .. }), "{mode}: {e}");
            assert!(e.to_string().contains("root.crt"), "{e}");
        }
        // Given files win over the home's.
        let s = settings(
            &format!(
                "host=a sslmode=verify-full sslrootcert='{}'",
                at(&full, "root.crl").display()
            ),
            &empty,
        )
        .unwrap();
        assert_eq!(s.roots, Roots::File(at(&full, "root.crl")));
        // system: verify-full by default, and nothing weaker.
        let s = settings("host=a sslrootcert=system", &empty).unwrap();
        assert_eq!((s.mode, s.roots), (SslMode::VerifyFull, Roots::System));
        assert!(settings("host=a sslrootcert=system sslmode=require", &empty).is_err());
        // disable reads nothing.
        assert_eq!(
            settings("host=a sslmode=disable", &full).unwrap(),
            TlsSettings::disabled()
        );
        assert!(settings("host=a sslmode=maybe", &empty).is_err());
    }

    #[test]
    fn finding_4_tls_files_must_be_small_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        for path in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
            let e = read_bounded(path, "sslrootcert").unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_FILE as usize + 1]).unwrap();
        assert!(read_bounded(&big, "sslrootcert").is_err());
    }

    #[test]
    fn finding_4_a_key_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        std::fs::write(&key, "").unwrap();
        let owned_by_root = nix::unistd::geteuid().is_root();
        for (mode, ok) in [(0o600, true), (0o640, owned_by_root), (0o644, false)] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(check_key_mode(&key).is_ok(), ok, "{mode:o}");
        }
    }
}
