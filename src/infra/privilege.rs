//! Who the extension's SQL runs as. set_policy() runs as its caller and writes the validated
//! policy with the extension owner's rights ([`as_extension_owner`]); custom metric SQL runs as
//! the non-superuser role `autoscale.custom_sql_role`, read-only, with search_path pinned to
//! pg_catalog, pg_temp, as a security-restricted operation ([`as_custom_sql_role`]).

use std::ffi::CString;

use pgrx::pg_sys;
use pgrx::prelude::*;

/// Puts the user id and security context back when dropped (also while unwinding; an aborted
/// (sub)transaction restores them too).
struct Restore {
    user: pg_sys::Oid,
    context: i32,
}

impl Drop for Restore {
    fn drop(&mut self) {
        unsafe { pg_sys::SetUserIdAndSecContext(self.user, self.context) };
    }
}

fn current() -> Restore {
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    Restore { user, context }
}

/// The owner of the citus_autoscale extension (who created it: the functions' owner).
fn extension_owner() -> pg_sys::Oid {
    Spi::get_one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'citus_autoscale'",
    )
    .ok()
    .flatten()
    .unwrap_or(pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID))
}

/// Runs `f` with the extension owner's rights, as a SECURITY DEFINER function would, after the
/// caller's own checks were made as the caller.
pub fn as_extension_owner<T>(f: impl FnOnce() -> T) -> T {
    let owner = extension_owner();
    let saved = current();
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved.context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        )
    };
    let r = f();
    drop(saved);
    r
}

/// The role custom SQL runs as: `autoscale.custom_sql_role`, which must exist and must not be a
/// superuser (nor able to become one through its memberships' superuser attribute).
pub fn custom_sql_role() -> Result<pg_sys::Oid, String> {
    let Some(name) = super::settings::custom_sql_role() else {
        return Err(
            "autoscale.custom_sql_role is not set: a superuser sets it to a role without \
                    superuser that may read what the custom metrics need"
                .to_string(),
        );
    };
    let c = CString::new(name.clone()).map_err(|_| "bad role name".to_string())?;
    let oid = unsafe { pg_sys::get_role_oid(c.as_ptr(), true) };
    if oid == pg_sys::InvalidOid {
        return Err(format!(
            "autoscale.custom_sql_role names role \"{name}\", which does not exist"
        ));
    }
    if unsafe { pg_sys::superuser_arg(oid) } {
        return Err(format!(
            "autoscale.custom_sql_role names role \"{name}\", which is a superuser; custom SQL runs \
             as a role without superuser"
        ));
    }
    Ok(oid)
}

fn set_local(name: &std::ffi::CStr, value: &std::ffi::CStr) {
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            0,
            false,
        );
    }
}

/// Runs `f` as `role`, read-only, with search_path = pg_catalog, pg_temp, as a
/// security-restricted operation. Call inside a subtransaction that is rolled back afterwards:
/// that also undoes the settings.
pub fn as_custom_sql_role<T>(role: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    set_local(c"search_path", c"pg_catalog, pg_temp");
    set_local(c"transaction_read_only", c"on");
    let saved = current();
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            role,
            saved.context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        )
    };
    let r = f();
    drop(saved);
    r
}
