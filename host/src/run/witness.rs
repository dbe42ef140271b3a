//! Who ended the process? A plugin runs inside `xp`, so a plugin that calls `exit` or `abort`
//! (or crashes) ends `xp` with it. Before each run call the driver writes down which plugin and
//! verb it enters ([`crate::history::PLUGIN_CALL_FILE`]); while the call lasts, an `atexit`
//! hook and handlers of the fatal signals append how the process ended, so that the record of
//! the run can say that the plugin ended it, and not blame a plugin for a `kill -9` from
//! outside (after which the note says only which call was in progress).

use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

/// The note of the call in progress, as a C string; null outside plugin calls.
static NOTE: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

/// What the hooks append to the note: how the process ended (read back by
/// [`crate::history::describe_plugin_call`]).
const ENDED_BY_EXIT: &[u8] = b"; the plugin called exit\n";
const FATAL_SIGNALS: [libc::c_int; 5] = [libc::SIGABRT, libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

/// Appends `text` to the note file. Async-signal-safe: open, write and close only.
fn append(text: &[u8]) {
    let path = NOTE.load(Ordering::SeqCst);
    if path.is_null() {
        return;
    }
    // SAFETY: `path` is a NUL-terminated string leaked by `enter` and only freed after the
    // pointer was swapped out; open/write/close are async-signal-safe.
    unsafe {
        let fd = libc::open(path, libc::O_WRONLY | libc::O_APPEND | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::write(fd, text.as_ptr().cast(), text.len());
            libc::close(fd);
        }
    }
}

extern "C" fn at_exit() {
    append(ENDED_BY_EXIT);
}

extern "C" fn on_fatal_signal(signal: libc::c_int) {
    let mut text = *b"; the plugin ended the process with signal 00\n";
    let digits = text.len() - 3;
    text[digits] = b'0' + (signal / 10 % 10) as u8;
    text[digits + 1] = b'0' + (signal % 10) as u8;
    append(&text);
    // SAFETY: back to the default action, then the same signal again: the process ends as it
    // would have without this handler (a core dump for SIGSEGV, say).
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

fn install_hooks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registering an extern "C" fn with atexit, and handlers that only append to
        // a file (async-signal-safe) before re-raising with the default action.
        unsafe {
            libc::atexit(at_exit);
            for signal in FATAL_SIGNALS {
                libc::signal(signal, on_fatal_signal as *const () as libc::sighandler_t);
            }
        }
    });
}

/// A plugin call in progress; dropping it (the call returned) removes the note.
pub struct PluginCall {
    note: std::path::PathBuf,
}

/// Writes `note` (`plugin 'NAME' (LIBRARY) was running VERB`) to `path` and arms the hooks.
/// Best effort: a run never fails for want of this note.
pub fn enter(path: &Path, note: &str) -> PluginCall {
    install_hooks();
    if std::fs::write(path, note).is_ok() {
        if let Ok(c_path) = CString::new(path.as_os_str().as_encoded_bytes()) {
            let old = NOTE.swap(c_path.into_raw(), Ordering::SeqCst);
            free(old);
        }
    }
    PluginCall {
        note: path.to_path_buf(),
    }
}

fn free(pointer: *mut libc::c_char) {
    if !pointer.is_null() {
        // SAFETY: every non-null pointer in NOTE came from CString::into_raw.
        drop(unsafe { CString::from_raw(pointer) });
    }
}

impl Drop for PluginCall {
    fn drop(&mut self) {
        free(NOTE.swap(std::ptr::null_mut(), Ordering::SeqCst));
        let _ = std::fs::remove_file(&self.note);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_lives_as_long_as_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugin-call");
        let call = enter(&path, "plugin 'x' (/l.so) was running run");
        assert!(path.is_file());
        append(b"; appended\n");
        assert!(std::fs::read_to_string(&path).unwrap().ends_with("; appended\n"));
        drop(call);
        assert!(!path.exists());
        append(b"nowhere");
    }
}
