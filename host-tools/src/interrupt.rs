//! Ctrl-C and SIGTERM leave no lock behind, and an interrupted `train` says how
//! to continue rather than ending in silence.

use std::path::Path;

/// Makes SIGINT and SIGTERM remove the model folder's lock file, and the folder
/// if the command made it and it is still empty
/// ([`lstm_edge_trainer::files::release_on_signal`]), then print the hint of
/// [`say_on_interrupt`] if one was set, and end the process by that signal as
/// if unhandled (so a shell sees 130 for Ctrl-C, and a script loop stops). A
/// signal the process inherited as ignored stays ignored.
/// Unix only; elsewhere a no-op.
#[cfg(unix)]
pub fn release_lock_on_interrupt() {
    extern "C" fn on_signal(signal: libc::c_int) {
        // First, so that a blocked stderr cannot keep the folder locked.
        lstm_edge_trainer::files::release_on_signal();
        hints::write();
        // SAFETY: raise(2) is async-signal-safe. SA_RESETHAND has restored the
        // default action and SA_NODEFER leaves the signal unblocked, so this ends
        // the process now; _exit(2) is the fallback should it not.
        unsafe {
            libc::raise(signal);
            libc::_exit(128 + signal);
        }
    }
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler calls
    // only async-signal-safe functions.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESETHAND | libc::SA_NODEFER;
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // A signal the parent ignores (`cmd &` in a script, `trap '' INT`) stays
            // ignored, as it would without the handler.
            let mut inherited: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut inherited) == 0
                && inherited.sa_sigaction != libc::SIG_IGN
            {
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(not(unix))]
pub fn release_lock_on_interrupt() {}

/// Sets what an interrupt prints (see [`release_lock_on_interrupt`]): `hint`
/// when `checkpoint` exists then, else `hint_before_any`.
#[cfg(unix)]
pub fn say_on_interrupt(hint: &str, checkpoint: &Path, hint_before_any: &str) {
    hints::set(hint, checkpoint, hint_before_any);
}

#[cfg(not(unix))]
pub fn say_on_interrupt(_hint: &str, _checkpoint: &Path, _hint_before_any: &str) {}

#[cfg(unix)]
mod hints {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::OnceLock;

    struct Hints {
        saved: Vec<u8>,
        none: Vec<u8>,
        checkpoint: CString,
    }

    static HINTS: OnceLock<Hints> = OnceLock::new();

    pub(super) fn set(hint: &str, checkpoint: &Path, hint_before_any: &str) {
        let Ok(checkpoint) = CString::new(checkpoint.as_os_str().as_bytes()) else {
            return;
        };
        let _ = HINTS.set(Hints {
            saved: format!("\n{hint}\n").into_bytes(),
            none: format!("\n{hint_before_any}\n").into_bytes(),
            checkpoint,
        });
    }

    /// From the signal handler.
    pub(super) fn write() {
        if let Some(hints) = HINTS.get() {
            // SAFETY: access(2) and write(2) are async-signal-safe, and the hints
            // live for the process.
            unsafe {
                let saved = libc::access(hints.checkpoint.as_ptr(), libc::F_OK) == 0;
                let hint = if saved { &hints.saved } else { &hints.none };
                libc::write(2, hint.as_ptr().cast(), hint.len());
            }
        }
    }
}
