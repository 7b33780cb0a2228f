//! The version a user sees is one: `pgha --version`, the meta-data's `version` (what
//! `crm_resource --show-metadata` and pcs show), the crate's, and the Debian package's (the top
//! entry of debian/changelog, which debian/build.sh stamps on the package and which must
//! match the binary it packages).

use std::process::Command;

use crate::actions::{meta_data, repo, tool};
use crate::agent::BIN;

#[test]
fn version_agrees_in_binary_meta_data_and_package() {
    let version = env!("CARGO_PKG_VERSION");
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success(), "pgha --version failed: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("pgha {version}")
    );

    let xml = meta_data();
    let agent = format!("<resource-agent name=\"pgsqlms\" version=\"{version}\">");
    assert!(xml.contains(&agent), "meta-data lacks {agent}:\n{xml}");

    let changelog = repo().join("debian/changelog");
    let out = tool("/usr/bin/dpkg-parsechangelog", "dpkg-dev")
        .arg("-l")
        .arg(&changelog)
        .args(["-S", "Version"])
        .output()
        .unwrap();
    assert!(out.status.success(), "dpkg-parsechangelog: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        version,
        "the top entry of {} is not the crate's version",
        changelog.display()
    );
}
