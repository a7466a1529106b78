//! An interrupted `train` says how to continue, rather than ending in silence.

/// Makes SIGINT and SIGTERM print `hint` before the process ends with the shell's
/// code for that signal (130 for Ctrl-C), removing the model folder's lock file as
/// the lock's own drop would. Unix only; elsewhere a no-op.
#[cfg(unix)]
pub fn say_on_interrupt(hint: &str) {
    use std::sync::OnceLock;
    static HINT: OnceLock<Vec<u8>> = OnceLock::new();
    extern "C" fn on_signal(signal: libc::c_int) {
        if let Some(hint) = HINT.get() {
            // SAFETY: write(2) is async-signal-safe, and `hint` lives for the process.
            unsafe { libc::write(2, hint.as_ptr().cast(), hint.len()) };
        }
        let lock = lstm_edge_trainer::files::held_lock_file();
        if !lock.is_null() {
            // SAFETY: unlink(2) is async-signal-safe; `lock` is a leaked C string.
            unsafe { libc::unlink(lock) };
        }
        // SAFETY: _exit(2) is async-signal-safe; the checkpoint is written by rename,
        // so ending between two writes leaves the last whole one.
        unsafe { libc::_exit(128 + signal) };
    }
    if HINT.set(format!("\n{hint}\n").into_bytes()).is_err() {
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
pub fn say_on_interrupt(_hint: &str) {}
