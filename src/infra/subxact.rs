//! Run a piece of work in a subtransaction and get its error back as a value instead of
//! aborting the caller's transaction: for custom metrics, Citus calls whose failure is an
//! outcome (the operation records it and goes on), and anything else that may fail alone.

use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::PgTryBuilder;

/// The message of a caught error.
pub fn message(e: &CaughtError) -> String {
    match e {
        CaughtError::PostgresError(r)
        | CaughtError::ErrorReport(r)
        | CaughtError::RustPanic { ereport: r, .. } => r.message().to_string(),
    }
}

/// Runs `f` in a subtransaction: on success it is released (its work stays), on error it is
/// rolled back and the error message returned.
pub fn catch<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, String> {
    in_subtransaction(f, true)
}

/// Runs `f` in a subtransaction that is always rolled back: nothing `f` did stays (for custom
/// metric SQL, which must have no side effects). Its result, or its error message.
pub fn catch_and_roll_back<T>(f: impl FnOnce() -> T + std::panic::UnwindSafe) -> Result<T, String> {
    in_subtransaction(f, false)
}

/// Runs `f` in an internal subtransaction and catches its error; the subtransaction is released
/// when `f` succeeded and `keep` is true, and rolled back otherwise. The caller's memory context
/// and resource owner are restored either way.
fn in_subtransaction<T>(
    f: impl FnOnce() -> T + std::panic::UnwindSafe,
    keep: bool,
) -> Result<T, String> {
    unsafe {
        let old_context = pg_sys::CurrentMemoryContext;
        let old_owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(old_context);
        let result = PgTryBuilder::new(|| Ok(f()))
            .catch_others(|e| Err(message(&e)))
            .execute();
        if keep && result.is_ok() {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(old_context);
        pg_sys::CurrentResourceOwner = old_owner;
        result
    }
}

// utils/timeout.h is not in pgrx's bindings. TimeoutId::STATEMENT_TIMEOUT is 3 in PostgreSQL 15.
const STATEMENT_TIMEOUT: i32 = 3;
unsafe extern "C-unwind" {
    fn enable_timeout_after(id: i32, delay_ms: i32);
    fn disable_timeout(id: i32, keep_indicator: bool);
    fn get_timeout_active(id: i32) -> bool;
}

/// Runs `f` with PostgreSQL's statement timeout armed for `ms` milliseconds, unless the current
/// statement already has one armed (its limit then applies). Setting `statement_timeout` inside a
/// running statement arms nothing: the timer starts with each top-level statement.
pub fn with_statement_timeout<T>(ms: i32, f: impl FnOnce() -> T) -> T {
    let arm = unsafe {
        !pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| get_timeout_active(STATEMENT_TIMEOUT))
    };
    if arm {
        unsafe {
            pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
                enable_timeout_after(STATEMENT_TIMEOUT, ms)
            })
        };
    }
    let disarm = Disarm(arm);
    let r = f();
    drop(disarm);
    r
}

/// Disarms the statement timeout when dropped, also while unwinding from an error.
struct Disarm(bool);

impl Drop for Disarm {
    fn drop(&mut self) {
        if self.0 {
            unsafe {
                pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
                    disable_timeout(STATEMENT_TIMEOUT, false)
                })
            };
        }
    }
}
