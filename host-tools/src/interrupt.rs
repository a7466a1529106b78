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
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Set by the first signal: a second one (a double Ctrl-C, or `timeout` signalling
    /// the process and then its group) must not end the process mid-cleanup.
    static ENDING: AtomicBool = AtomicBool::new(false);
    /// Set once the lock and folder are released.
    static RELEASED: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(signal: libc::c_int) {
        if ENDING.swap(true, Ordering::SeqCst) {
            // Another thread is cleaning up and ends the process when done. Give it
            // a moment to print its hint; past that (stderr blocked), end it here,
            // once nothing is left behind.
            let tick = libc::timespec {
                tv_sec: 0,
                tv_nsec: 10_000_000,
            };
            for _ in 0..50 {
                // SAFETY: nanosleep(2) is async-signal-safe.
                unsafe { libc::nanosleep(&tick, std::ptr::null_mut()) };
            }
            if RELEASED.load(Ordering::SeqCst) {
                // SAFETY: _exit(2) is async-signal-safe.
                unsafe { libc::_exit(128 + signal) };
            }
            return;
        }
        // First, so that a blocked stderr cannot keep the folder locked.
        lstm_edge_trainer::files::release_on_signal();
        RELEASED.store(true, Ordering::SeqCst);
        hints::write();
        // SAFETY: sigaction(2), raise(3), pthread_sigmask(3) and _exit(2) are
        // async-signal-safe. With the default action back, the signal raised here
        // (blocked while its handler runs) ends the process once unblocked; _exit(2)
        // is the fallback should it not.
        unsafe {
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &default, std::ptr::null_mut());
            libc::raise(signal);
            let mut unblock: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut unblock);
            libc::sigaddset(&mut unblock, signal);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &unblock, std::ptr::null_mut());
            libc::_exit(128 + signal);
        }
    }
    const HANDLED: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler calls
    // only async-signal-safe functions.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // Both signals wait while the handler runs on this thread.
        libc::sigemptyset(&mut action.sa_mask);
        for signal in HANDLED {
            libc::sigaddset(&mut action.sa_mask, signal);
        }
        for signal in HANDLED {
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
