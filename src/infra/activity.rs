//! What the background worker is doing, as `pg_stat_activity.query` shows it. Only the background
//! worker reports: a session that calls `autoscale.tick()` keeps its own statement there.

use pgrx::pg_sys;

/// Sets the background worker's `pg_stat_activity.query` to `what` (state active). Does nothing in
/// a client session.
pub fn report(what: &str) {
    if !super::pgcompat::is_background_worker() {
        return;
    }
    // pg_stat_activity wants a C string; an interior NUL cannot come from our own texts
    let Ok(text) = std::ffi::CString::new(what) else {
        return;
    };
    unsafe { pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, text.as_ptr()) };
}
