//! The OCF actions: where Pacemaker's side (`ocf`, `pacemaker`) meets PostgreSQL's
//! (`instance`). One file per action; this module holds what they share: the action names,
//! the run context, the checks made before every action, and dispatch.

mod demote;
mod error;
mod monitor;
mod notify;
mod promote;
mod rejoin;
mod scores;
mod start;
mod stop;
mod validate;

use std::cell::OnceCell;

use crate::deadline::Deadline;
use crate::instance::{self, Absence, Instance};
use crate::ocf::env::{self, OcfEnv};
use crate::ocf::params::Params;
use crate::ocf::status::OcfStatus;
use crate::pacemaker::{self, Cluster};
pub use error::{Error, Result};

/// An OCF action this agent implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Monitor,
    Promote,
    Demote,
    Notify,
    Reload,
    ReloadAgent,
    MetaData,
    Methods,
    ValidateAll,
}

impl Action {
    pub fn from_name(name: &str) -> Option<Action> {
        Some(match name {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "monitor" => Action::Monitor,
            "promote" => Action::Promote,
            "demote" => Action::Demote,
            "notify" => Action::Notify,
            "reload" => Action::Reload,
            "reload-agent" => Action::ReloadAgent,
            "meta-data" => Action::MetaData,
            "methods" => Action::Methods,
            "validate-all" => Action::ValidateAll,
            _ => return None,
        })
    }
}

/// How an action ended: its code and, for failures, the reason Pacemaker shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: OcfStatus,
    pub reason: Option<String>,
}

impl Outcome {
    pub fn new(status: OcfStatus) -> Outcome {
        Outcome {
            status,
            reason: None,
        }
    }

    pub fn because(status: OcfStatus, reason: impl Into<String>) -> Outcome {
        Outcome {
            status,
            reason: Some(reason.into()),
        }
    }
}

impl From<Error> for Outcome {
    fn from(e: Error) -> Outcome {
        Outcome::because(e.ocf_status(), e.to_string())
    }
}

/// Everything an action runs with.
pub struct Ctx<'a> {
    pub env: &'a OcfEnv,
    pub params: Params,
    pub action: Action,
    pub deadline: Deadline,
    pub cluster: &'a dyn Cluster,
    node: OnceCell<String>,
}

impl Ctx<'_> {
    /// This node's name, looked up once and only when needed, and refused when it could not
    /// name a folder (`pacemaker::check_node_name`).
    pub fn node(&self) -> Result<&str> {
        if let Some(node) = self.node.get() {
            return Ok(node);
        }
        let node = pacemaker::local_node_name(self.env.on_node.as_deref(), self.cluster)?;
        Ok(self.node.get_or_init(|| node))
    }
}

/// Runs an action that needs the OCF environment (all but meta-data and methods).
pub fn run(
    action: Action,
    env: &OcfEnv,
    params: Params,
    deadline: Deadline,
    cluster: &dyn Cluster,
) -> Outcome {
    let ctx = Ctx {
        env,
        params,
        action,
        deadline,
        cluster,
        node: OnceCell::new(),
    };
    if let Err(e) = check_meta(env) {
        return e.into();
    }
    if action == Action::ValidateAll {
        return validate::validate_all(&ctx).unwrap_or_else(Outcome::from);
    }
    if matches!(action, Action::Reload | Action::ReloadAgent) {
        // Parameters are read at every run: there is nothing to reload.
        log::info!("parameters reloaded");
        return Outcome::new(OcfStatus::Success);
    }
    let instance = match Instance::resolve(&ctx.params) {
        Ok(instance) => instance,
        Err((absence, e)) => return missing_instance(&ctx, absence, e),
    };
    if matches!(
        action,
        Action::Start | Action::Stop | Action::Promote | Action::Demote
    ) {
        scores::forget(&ctx);
    }
    let result = match action {
        Action::Start => start::start(&ctx, &instance),
        Action::Stop => stop::stop(&ctx, &instance),
        Action::Monitor => monitor::monitor(&ctx, &instance),
        Action::Promote => promote::promote(&ctx, &instance),
        Action::Demote => demote::demote(&ctx, &instance),
        Action::Notify => notify::notify(&ctx, &instance),
        Action::ValidateAll
        | Action::Reload
        | Action::ReloadAgent
        | Action::MetaData
        | Action::Methods => Err(Error::Internal(format!("{action:?} dispatched late"))),
    };
    result.unwrap_or_else(Outcome::from)
}

/// The meta attributes PAF requires, checked only when Pacemaker passed them: `pcs resource
/// create` validates with none (PAF #216).
fn check_meta(env: &OcfEnv) -> Result<()> {
    if let Some(notify) = &env.meta_notify {
        if !env::is_true(notify) {
            return Err(Error::Misconfigured(format!(
                "the clone must have meta attribute notify=true (it is {notify:?})"
            )));
        }
    }
    if let Some(max) = &env.meta_promoted_max {
        if max.trim() != "1" {
            return Err(Error::Misconfigured(format!(
                "the clone must have meta attribute promoted-max=1 (it is {max:?})"
            )));
        }
    }
    Ok(())
}

/// The local checks failed. Where the instance simply is not on this node, a probe says
/// "not running" (PAF #235) and a stop succeeds: nothing of it can be running here.
fn missing_instance(ctx: &Ctx, absence: Option<Absence>, e: instance::Error) -> Outcome {
    let absent = absence.is_some();
    match ctx.action {
        Action::Monitor if absent && ctx.env.is_probe() => {
            log::info!("probe: {e}; reporting not running");
            Outcome::new(OcfStatus::NotRunning)
        }
        Action::Stop if absent => {
            log::warn!("stop: {e}; nothing can be running from it");
            Outcome::new(OcfStatus::Success)
        }
        Action::Notify => {
            log::warn!("notify ignored: {e}");
            Outcome::new(OcfStatus::Success)
        }
        _ => Error::from(e).into(),
    }
}
