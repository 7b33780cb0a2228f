//! notify: Pacemaker ignores its result, so it always succeeds.
//!
//! The agent core logs the notification; the election through pre-promote notifications is
//! built on top of this in the election module.

use super::{Ctx, Outcome};
use crate::error::Result;
use crate::instance::Instance;
use crate::ocf::status::OcfStatus;

pub fn notify(ctx: &Ctx, _instance: &Instance) -> Result<Outcome> {
    let kind = std::env::var("OCF_RESKEY_CRM_meta_notify_type").unwrap_or_default();
    let operation = std::env::var("OCF_RESKEY_CRM_meta_notify_operation").unwrap_or_default();
    log::debug!("{kind}-{operation} notification on {}", ctx.node());
    Ok(Outcome::new(OcfStatus::Success))
}
