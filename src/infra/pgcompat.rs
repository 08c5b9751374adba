//! Differences between the PostgreSQL majors this tree builds for (15 to 18), each in one place. The
//! rest of the code calls these and never tests a `pg1x` feature itself.

use pgrx::pg_sys;

/// Whether this process is a background worker. PostgreSQL 15 and 16 have the global
/// `IsBackgroundWorker`; 17 removed it for `MyBackendType == B_BG_WORKER`.
pub fn is_background_worker() -> bool {
    #[cfg(any(feature = "pg15", feature = "pg16"))]
    {
        unsafe { pg_sys::IsBackgroundWorker }
    }
    #[cfg(not(any(feature = "pg15", feature = "pg16")))]
    {
        unsafe { pg_sys::MyBackendType == pg_sys::BackendType::B_BG_WORKER }
    }
}
