//! An interrupted `train` says how to continue, rather than ending in silence.

use std::path::Path;

/// Makes SIGINT and SIGTERM print what the run leaves before the process ends
/// with the shell's code for that signal (130 for Ctrl-C): `hint` when
/// `checkpoint` exists then, else `hint_before_any`. It first removes the model
/// folder's lock file, and the folder if this run made it and it is still empty
/// ([`lstm_edge_trainer::files::release_on_signal`]).
/// Unix only; elsewhere a no-op.
#[cfg(unix)]
pub fn say_on_interrupt(hint: &str, checkpoint: &Path, hint_before_any: &str) {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::sync::OnceLock;
    struct Hints {
        saved: Vec<u8>,
        none: Vec<u8>,
        checkpoint: CString,
    }
    static HINTS: OnceLock<Hints> = OnceLock::new();
    extern "C" fn on_signal(signal: libc::c_int) {
        // First, so that a blocked stderr cannot keep the folder locked.
        lstm_edge_trainer::files::release_on_signal();
        if let Some(hints) = HINTS.get() {
            // SAFETY: access(2) and write(2) are async-signal-safe, and the hints
            // live for the process.
            unsafe {
                let saved = libc::access(hints.checkpoint.as_ptr(), libc::F_OK) == 0;
                let hint = if saved { &hints.saved } else { &hints.none };
                libc::write(2, hint.as_ptr().cast(), hint.len());
            }
        }
        // SAFETY: _exit(2) is async-signal-safe; the checkpoint is written by rename,
        // so ending between two writes leaves the last whole one.
        unsafe { libc::_exit(128 + signal) };
    }
    let Ok(checkpoint) = CString::new(checkpoint.as_os_str().as_bytes()) else {
        return;
    };
    let hints = Hints {
        saved: format!("\n{hint}\n").into_bytes(),
        none: format!("\n{hint_before_any}\n").into_bytes(),
        checkpoint,
    };
    if HINTS.set(hints).is_err() {
        return;
    }
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler calls only async-signal-safe functions.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

#[cfg(not(unix))]
pub fn say_on_interrupt(_hint: &str, _checkpoint: &Path, _hint_before_any: &str) {}
