//! The extension's one error type and how it becomes a PostgreSQL error: a SQLSTATE for every
//! variant, a message that names what went wrong, and a hint where there is something to do about
//! it. Every layer returns [`Result`]; an SPI failure converts with `?` (`From<SpiError>`).

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum AutoscaleError {
    /// A SQL function argument is out of its allowed range.
    #[error("invalid value for {argument}: {value}")]
    InvalidArgument {
        argument: &'static str,
        value: String,
        allowed: String,
    },
    /// A bad argument whose message already names the argument, the value and what is allowed.
    #[error("{0}")]
    Invalid(String),
    /// A required argument is NULL.
    #[error("argument {argument} must not be NULL")]
    NullArgument {
        argument: &'static str,
        allowed: String,
    },
    /// The function needs the citus extension in this database.
    #[error("{function} requires the citus extension, which is not installed in database \"{database}\"")]
    CitusMissing {
        function: &'static str,
        database: String,
    },
    /// The function acts on the cluster and must run on the coordinator.
    #[error(
        "{function} must run on the Citus coordinator; this node is a worker (group {groupid})"
    )]
    NotCoordinator {
        function: &'static str,
        groupid: i32,
    },
    /// Something in the cluster is not in the state the operation needs.
    #[error("{0}")]
    NotInPrerequisiteState(String),
    #[error("{0}")]
    Privilege(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Duplicate(String),
    #[error("{0}")]
    Unreachable(String),
    /// A step of the extension's own work failed (a caught Citus error, a sample that could not
    /// be taken): the message says which.
    #[error("{0}")]
    Failed(String),
    /// The server interface failed under the extension (a type mismatch, a missing row): a bug.
    #[error("SPI: {0}")]
    Spi(#[from] pgrx::spi::SpiError),
}

/// The result of every fallible function of this crate.
pub type Result<T, E = AutoscaleError> = std::result::Result<T, E>;

impl AutoscaleError {
    pub fn invalid(
        argument: &'static str,
        value: impl ToString,
        allowed: impl Into<String>,
    ) -> Self {
        AutoscaleError::InvalidArgument {
            argument,
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    /// The value of a required argument, or the NULL error naming it.
    pub fn required<T>(
        argument: &'static str,
        value: Option<T>,
        allowed: &str,
    ) -> Result<T, AutoscaleError> {
        value.ok_or_else(|| AutoscaleError::NullArgument {
            argument,
            allowed: allowed.to_string(),
        })
    }

    fn code(&self) -> PgSqlErrorCode {
        match self {
            AutoscaleError::InvalidArgument { .. } | AutoscaleError::Invalid(_) => {
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE
            }
            AutoscaleError::NullArgument { .. } => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            AutoscaleError::CitusMissing { .. } => PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            AutoscaleError::NotCoordinator { .. } | AutoscaleError::NotInPrerequisiteState(_) => {
                PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE
            }
            AutoscaleError::Privilege(_) => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            AutoscaleError::NotFound(_) => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            AutoscaleError::Duplicate(_) => PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
            AutoscaleError::Unreachable(_) => PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE,
            AutoscaleError::Failed(_) | AutoscaleError::Spi(_) => {
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR
            }
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            AutoscaleError::InvalidArgument { allowed, .. }
            | AutoscaleError::NullArgument { allowed, .. } => Some(format!("Allowed: {allowed}.")),
            _ => None,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            AutoscaleError::CitusMissing { .. } => Some(
                "Install Citus (packages: https://docs.citusdata.com/en/stable/installation/) and run CREATE EXTENSION citus."
                    .into(),
            ),
            AutoscaleError::NotCoordinator { .. } => {
                Some("Connect to the coordinator and call the function there.".into())
            }
            _ => None,
        }
    }

    /// Raises this error as a PostgreSQL ERROR (does not return).
    pub fn report(self) -> ! {
        let mut report = ErrorReport::new(self.code(), self.to_string(), "citus_autoscale");
        if let Some(d) = self.detail() {
            report = report.set_detail(d);
        }
        if let Some(h) = self.hint() {
            report = report.set_hint(h);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }
}

/// Unwraps a result or raises the error as a PostgreSQL ERROR.
pub trait OrReport<T> {
    fn or_report(self) -> T;
}

impl<T> OrReport<T> for Result<T> {
    fn or_report(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => e.report(),
        }
    }
}

impl<T> OrReport<T> for std::result::Result<T, pgrx::spi::SpiError> {
    fn or_report(self) -> T {
        self.map_err(AutoscaleError::from).or_report()
    }
}
