use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use super::*;

fn scratch() -> (tempfile::TempDir, Dir) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Dir::open(tmp.path()).unwrap();
    (tmp, dir)
}

#[test]
fn names_are_single_components() {
    let (_tmp, dir) = scratch();
    for bad in ["", ".", "..", "a/b", "/etc/passwd", "a\0b"] {
        assert!(dir.read(bad, 10).is_err(), "{bad:?}");
        assert!(dir.remove_tree(bad, None).is_err(), "{bad:?}");
    }
}

#[test]
fn a_link_is_never_read_through() {
    let (tmp, dir) = scratch();
    std::fs::write(tmp.path().join("secret"), "root only").unwrap();
    symlink(tmp.path().join("secret"), tmp.path().join("postmaster.pid")).unwrap();
    let err = dir.read("postmaster.pid", 100).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
    symlink("/", tmp.path().join("sub")).unwrap();
    assert!(dir.open_dir("sub").is_err());
}

#[test]
fn reads_are_bounded() {
    let (tmp, dir) = scratch();
    std::fs::write(tmp.path().join("big"), vec![b'x'; 101]).unwrap();
    assert_eq!(dir.read("big", 101).unwrap().len(), 101);
    let err = dir.read("big", 100).unwrap_err();
    assert!(err.to_string().contains("larger than 100 bytes"), "{err}");
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let (tmp, dir) = scratch();
    nix::unistd::mkfifo(&tmp.path().join("PG_VERSION"), Mode::S_IRWXU).unwrap();
    let started = Instant::now();
    let err = dir.read("PG_VERSION", 100).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn writing_replaces_a_planted_link_not_its_target() {
    let (tmp, dir) = scratch();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    symlink(&victim, tmp.path().join("standby.signal")).unwrap();
    dir.write_file("standby.signal", b"", 0o600, None).unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(
        std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let written = std::fs::symlink_metadata(tmp.path().join("standby.signal")).unwrap();
    assert!(written.is_file());
    assert_eq!(written.mode() & 0o777, 0o600);
    assert_eq!(dir.entries().unwrap().len(), 2, "no temporary file left");
}

#[test]
fn created_folders_get_the_asked_mode_whatever_the_umask() {
    let (_tmp, dir) = scratch();
    let sub = dir.create_dir("kept", 0o700, None).unwrap();
    assert_eq!(sub.mode().unwrap(), 0o700);
    assert!(
        dir.create_dir("kept", 0o700, None).is_err(),
        "must not exist"
    );
    let again = dir.ensure_dir("kept", 0o755, None).unwrap();
    assert_eq!(
        again.mode().unwrap(),
        0o700,
        "an existing folder is left as it is"
    );
}

#[test]
fn removing_a_tree_never_follows_its_links() {
    let (tmp, dir) = scratch();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep-me"), "x").unwrap();
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("a/b")).unwrap();
    std::fs::write(tree.join("a/b/f"), "y").unwrap();
    symlink(outside.path(), tree.join("a/link")).unwrap();
    dir.remove_tree("tree", None).unwrap();
    assert!(!tree.exists());
    assert!(outside.path().join("keep-me").exists());
    dir.remove_tree("tree", None).unwrap();
}

#[test]
fn exchange_swaps_two_folders() {
    let (tmp, dir) = scratch();
    std::fs::create_dir(tmp.path().join("a")).unwrap();
    std::fs::write(tmp.path().join("a/which"), "a").unwrap();
    std::fs::create_dir(tmp.path().join("b")).unwrap();
    dir.exchange("a", "b").unwrap();
    assert!(tmp.path().join("b/which").exists());
    assert!(!tmp.path().join("a/which").exists());
}

#[test]
fn copies_keep_the_mode_and_links_refuse_links() {
    let (tmp, dir) = scratch();
    std::fs::write(tmp.path().join("f"), "data").unwrap();
    std::fs::set_permissions(tmp.path().join("f"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let into = dir.create_dir("into", 0o700, None).unwrap();
    assert_eq!(into.copy_file(&dir, "f", "g", None, 100).unwrap(), 4);
    let meta = std::fs::metadata(tmp.path().join("into/g")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o640);
    symlink("/etc/passwd", tmp.path().join("l")).unwrap();
    assert!(into.copy_file(&dir, "l", "m", None, 100).is_err());
    assert!(into.hard_link(&dir, "l", "m").is_err());
    into.hard_link(&dir, "f", "h").unwrap();
    assert_eq!(std::fs::metadata(tmp.path().join("f")).unwrap().nlink(), 2);
}

/// The security review: copies kept the source's owner and set-user-ID bit, so a folder of
/// root's holding a postgres file came back as a root-owned set-user-ID program.
#[test]
fn finding_1_copies_never_keep_a_set_user_id_bit_nor_the_source_owner() {
    let (tmp, dir) = scratch();
    std::fs::create_dir(tmp.path().join("conf")).unwrap();
    std::fs::write(tmp.path().join("conf/sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        tmp.path().join("conf/sh"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    let nobody = Owner {
        uid: Uid::from_raw(65534),
        gid: Gid::from_raw(65534),
    };
    let into = dir.create_dir("into", 0o700, None).unwrap();
    into.copy_tree(&dir, "conf", "conf", Some(nobody), 100)
        .unwrap();
    let copy = std::fs::metadata(tmp.path().join("into/conf/sh")).unwrap();
    assert_eq!(copy.mode() & 0o7777, 0o755);
    if Uid::effective().is_root() {
        assert_eq!(copy.uid(), 65534);
    }
    std::fs::write(tmp.path().join("big"), vec![0u8; 101]).unwrap();
    assert!(into.copy_file(&dir, "big", "big", None, 100).is_err());
    assert!(
        into.kind("big").unwrap().is_none(),
        "a partial copy was left"
    );
}

/// The security review: a tree thousands of levels deep exhausted descriptors (EMFILE) or
/// the stack.
#[test]
fn trees_deeper_than_the_limit_are_refused() {
    let (tmp, dir) = scratch();
    let mut deep = tmp.path().join("deep");
    for _ in 0..=MAX_DEPTH {
        deep.push("d");
    }
    std::fs::create_dir_all(&deep).unwrap();
    let err = dir.remove_tree("deep", None).unwrap_err();
    assert!(err.to_string().contains("levels deep"), "{err}");
    let into = dir.create_dir("into", 0o700, None).unwrap();
    assert!(into.copy_tree(&dir, "deep", "deep", None, 100).is_err());
}

/// The security review: root removed a folder of root's that postgres had renamed into the
/// way of a name root removes (the kept-WAL folder renamed to `main.pgha-clone`).
#[test]
fn removal_for_a_user_spares_folders_that_are_not_theirs() {
    let (tmp, dir) = scratch();
    std::fs::create_dir(tmp.path().join("theirs")).unwrap();
    let nobody = Owner {
        uid: Uid::from_raw(65534),
        gid: Gid::from_raw(65534),
    };
    let err = dir.remove_tree("theirs", Some(nobody)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(tmp.path().join("theirs").is_dir());
}

/// The security review: a path that postgres points at a device was opened (a watchdog
/// starts on open) before its type was checked.
#[test]
fn a_followed_path_to_a_device_is_never_opened() {
    let (tmp, _dir) = scratch();
    symlink("/dev/null", tmp.path().join("root.crt")).unwrap();
    let err = open_followed(&tmp.path().join("root.crt")).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    std::fs::write(tmp.path().join("real.crt"), "pem").unwrap();
    symlink(tmp.path().join("real.crt"), tmp.path().join("link.crt")).unwrap();
    let (mut file, _) = open_followed(&tmp.path().join("link.crt")).unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    assert_eq!(text, "pem");
}

/// The native engine's security review: a file that was already there and is not the
/// owner's (a hard link postgres made to one of root's, where the kernel allows it) was
/// handed to postgres and overwritten by root.
#[test]
fn finding_native_writes_refuse_an_existing_file_not_the_owners() {
    let (tmp, dir) = scratch();
    std::fs::write(tmp.path().join("shadow"), "root:x\n").unwrap();
    let nobody = Owner {
        uid: Uid::from_raw(65534),
        gid: Gid::from_raw(65534),
    };
    let err = dir
        .open_writable("shadow", true, 0o600, Some(nobody))
        .unwrap_err();
    assert!(err.to_string().contains("not written"), "{err}");
    let left = std::fs::metadata(tmp.path().join("shadow")).unwrap();
    assert_eq!(left.uid(), Uid::effective().as_raw());
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("shadow")).unwrap(),
        "root:x\n"
    );
    dir.open_writable("shadow", false, 0o600, None).unwrap();
    if Uid::effective().is_root() {
        dir.open_writable("new", true, 0o600, Some(nobody)).unwrap();
        let made = std::fs::metadata(tmp.path().join("new")).unwrap();
        assert_eq!(made.uid(), 65534);
    }
}
