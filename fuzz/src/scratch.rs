//! A scratch folder per process and thread for the harnesses whose library entry point reads
//! files (images, annotation files): in `/dev/shm` where it exists, so no disk is touched.

use std::path::PathBuf;

/// This thread's scratch folder, created on first use.
pub fn dir() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    let dir = base.join(format!("feedbacknet-fuzz-{}-{thread}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}
