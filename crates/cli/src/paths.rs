//! Where the shared models and data are: as given, or beside this source tree.

use std::path::{Path, PathBuf};

/// The models folder: as given if it exists, else `shared/models` beside this source tree (for
/// runs from another working directory during development).
pub fn resolve_dir(dir: &Path) -> PathBuf {
    resolve_shared(dir, "models")
}

/// A path under `../shared`: as given if it exists; if it is the default `../shared/<sub>` and
/// does not exist from here, the same path beside this source tree (for runs from another
/// working directory during development).
pub fn resolve_shared(path: &Path, sub: &str) -> PathBuf {
    if path.exists() {
        return path.to_path_buf();
    }
    let default = Path::new("../shared").join(sub);
    let fallback = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(sub);
    if path == default && fallback.exists() {
        fallback
    } else {
        path.to_path_buf()
    }
}
