//! Which engine rewinds (`rewind_engine`, `pgha rewind --engine`): pure, from what was
//! asked, the major, whether the native engine runs on this pair and what it and a re-clone
//! would cost. `auto` uses the native engine only where all of these hold: its differential
//! suite passes on the major ([`native_proven`]), it runs here ([`native::unsupported`]
//! finds nothing and the target's WAL is classified), and it fetches fewer bytes than a
//! re-clone copies (at pg_rewind's rate: it fetches the same way), or no re-clone is
//! allowed. Otherwise pg_rewind, whose own estimate then decides against a re-clone
//! (`plan.rs`).
//!
//! [`native::unsupported`]: super::native::unsupported

use std::fmt;

use super::decision::CostEstimate;
use super::major::native_proven;
use super::native;
use super::settings::Engine;
use super::view::NativeView;

/// The engine that runs (pg_rewind or native, never auto), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineChoice {
    pub engine: Engine,
    pub why: String,
}

impl fmt::Display for EngineChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.engine, self.why)
    }
}

/// Whether the native engine's view is worth gathering (the target's WAL read from the
/// last common checkpoint, both data directories listed) for `requested` on `major`.
pub fn considers_native(requested: Engine, major: u32) -> bool {
    match requested {
        Engine::PgRewind => false,
        Engine::Native => true,
        Engine::Auto => native_proven(major),
    }
}

/// What [`choose`] needs of the native engine's view: the bytes its file map fetches, or
/// why it does not run on this pair (`None`: not gathered).
pub fn native_cost(
    view: Option<&Result<NativeView, String>>,
    source_in_recovery: bool,
) -> Option<Result<u64, String>> {
    Some(match view? {
        Ok(view) => match native::unsupported(view, source_in_recovery) {
            Some(why) => Err(why),
            // The source's WAL read to start replay at its checkpoint costs too.
            None => Ok(view.map.bytes_to_fetch()
                + view.replay.from_source.as_ref().map_or(0, |f| f.wal_read)),
        },
        Err(why) => Err(why.clone()),
    })
}

/// The engine for `requested` on `major`. `native`: [`native_cost`]. `reclone`: the
/// estimate, when a re-clone is allowed (automatic rejoin, re-clone fallback) and known.
pub fn choose(
    requested: Engine,
    major: u32,
    native: Option<Result<u64, String>>,
    reclone: Option<&CostEstimate>,
) -> EngineChoice {
    let choice = |engine, why: String| EngineChoice { engine, why };
    if requested == Engine::PgRewind {
        return choice(Engine::PgRewind, "asked for".into());
    }
    if requested == Engine::Auto && !native_proven(major) {
        return choice(
            Engine::PgRewind,
            format!("auto: the native engine is not proven on PostgreSQL {major}"),
        );
    }
    let fetched = match native {
        Some(Ok(fetched)) => fetched,
        Some(Err(why)) => {
            return choice(
                Engine::PgRewind,
                format!("the native engine hands over to pg_rewind: {why}"),
            )
        }
        None => {
            return choice(
                Engine::PgRewind,
                "the native engine's plan is not known".into(),
            )
        }
    };
    let mb = fetched >> 20;
    match (requested, reclone) {
        (Engine::Auto, Some(e)) => {
            let native = CostEstimate {
                native_fetch: Some(fetched),
                ..*e
            };
            let versus = format!(
                "{mb} MB to fetch, a re-clone about {} MB",
                e.reclone_bytes() >> 20
            );
            if native.prefers_reclone() {
                choice(
                    Engine::PgRewind,
                    format!("auto: {versus}: the native engine is not the cheaper"),
                )
            } else {
                choice(Engine::Native, format!("auto: {versus}"))
            }
        }
        (Engine::Auto, None) => choice(
            Engine::Native,
            format!("auto: {mb} MB to fetch, no re-clone to compare with"),
        ),
        _ => choice(Engine::Native, format!("asked for: {mb} MB to fetch")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewind::major::WalCopied;

    #[test]
    fn choices() {
        let gb = 1u64 << 30;
        let estimate = CostEstimate {
            source_wal: 2 * gb,
            source_wal_from_fork: 64 << 20,
            wal_copied: WalCopied::All,
            source_databases: gb,
            source_since_fork: 20 << 20,
            target_since_fork: 20 << 20,
            native_fetch: None,
        };
        let ok = |mb: u64| Some(Ok(mb << 20));
        let not = || Some(Err("pg_tblspc/16384 is a tablespace or a link".to_owned()));
        use Engine::{Auto, Native, PgRewind};
        // (asked, major, native engine's bytes or why not, re-clone estimate, engine, why)
        let table = [
            (PgRewind, 15, ok(1), Some(&estimate), PgRewind, "asked for"),
            (
                Native,
                15,
                ok(1),
                Some(&estimate),
                Native,
                "asked for: 1 MB",
            ),
            // Asked for, it runs on any major it classifies and whatever a re-clone costs.
            (Native, 13, ok(900), Some(&estimate), Native, "asked for"),
            (
                Native,
                15,
                not(),
                None,
                PgRewind,
                "hands over to pg_rewind: pg_tblspc",
            ),
            (
                Auto,
                15,
                ok(80),
                Some(&estimate),
                Native,
                "80 MB to fetch, a re-clone",
            ),
            (
                Auto,
                19,
                ok(80),
                None,
                Native,
                "no re-clone to compare with",
            ),
            (Auto, 14, ok(80), None, Native, "auto"),
            (Auto, 13, ok(1), None, Native, "no re-clone"),
            (
                Auto,
                12,
                ok(1),
                None,
                PgRewind,
                "not proven on PostgreSQL 12",
            ),
            (
                Auto,
                20,
                ok(1),
                None,
                PgRewind,
                "not proven on PostgreSQL 20",
            ),
            (Auto, 15, not(), Some(&estimate), PgRewind, "hands over"),
            (Auto, 15, None, None, PgRewind, "not known"),
            // 700 MB fetched weigh more than a 1 GB re-clone.
            (
                Auto,
                15,
                ok(700),
                Some(&estimate),
                PgRewind,
                "not the cheaper",
            ),
            (Auto, 15, ok(700), None, Native, "no re-clone"),
        ];
        for (asked, major, native, reclone, engine, why) in table {
            let c = choose(asked, major, native.clone(), reclone);
            assert_eq!(c.engine, engine, "{asked} {major} {native:?}: {c}");
            assert!(c.why.contains(why), "{asked} {major} {native:?}: {c}");
        }
    }

    #[test]
    fn the_view_is_gathered_only_where_it_may_be_used() {
        assert!(!considers_native(Engine::PgRewind, 15));
        assert!(considers_native(Engine::Native, 13));
        assert!(considers_native(Engine::Auto, 14));
        assert!(considers_native(Engine::Auto, 13));
        assert!(!considers_native(Engine::Auto, 20));
        assert!(native_cost(None, false).is_none());
        let why = "an unknown resource manager 200".to_owned();
        assert_eq!(native_cost(Some(&Err(why.clone())), false), Some(Err(why)));
    }
}
