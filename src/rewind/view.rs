//! What a native rewind would do, as `--check` shows it and the engine runs it: the target's
//! changes, where replay starts after it (and the blocks that adds), and the file map. Above
//! the parts it gathers ([`changes`](super::changes), [`replay`](super::replay),
//! [`filemap`](super::filemap)), which know nothing of one another's.

use super::changes::TargetChanges;
use super::filemap::FileMap;
use super::replay::Replay;

/// What a native rewind would do: the target's changes, where replay starts and the file map.
#[derive(Debug, Clone)]
pub struct NativeView {
    pub changes: TargetChanges,
    pub map: FileMap,
    /// Where replay starts after the rewind; it may add blocks to fetch.
    pub replay: Replay,
}
