//! The configuration file (TOML): how to reach the coordinator, how often to poll, how long a
//! claim holds, and the driver that makes and removes nodes.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Error;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// libpq-style connection string of the coordinator's database (where citus_autoscale is).
    pub conninfo: String,
    /// The name this daemon claims requests under (default: the host name). A restarted daemon
    /// with the same name resumes its own claims at once.
    #[serde(default)]
    pub claimer: Option<String>,
    /// Seconds between two polls of the request table (a NOTIFY can be missed).
    #[serde(default = "default_poll")]
    pub poll_interval: u64,
    /// Seconds a claim holds; another daemon takes the request over after it.
    #[serde(default = "default_lease")]
    pub lease: u64,
    /// Attempts at one request before it is given up (fail_provision_request retry = false).
    #[serde(default = "default_attempts")]
    pub max_attempts: i32,
    pub driver: Driver,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Driver {
    Local(Local),
    Command(Command),
}

/// Nodes on this host: one data directory per request under `root`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Local {
    /// Where the data directories go: <root>/<request_key>.
    pub root: PathBuf,
    /// The PostgreSQL programs (initdb, pg_ctl) with Citus and citus_autoscale installed.
    pub bin: PathBuf,
    /// Ports a new node may take, both ends included.
    pub port_range: [u16; 2],
    /// The database the cluster uses (CREATE EXTENSION citus runs there).
    #[serde(default = "default_database")]
    pub database: String,
    /// The superuser initdb creates.
    #[serde(default = "default_user")]
    pub user: String,
    /// Lines appended to each node's postgresql.conf after the built-in ones.
    #[serde(default)]
    pub settings: Vec<String>,
    /// A deprovisioned node stays running and is offered to the pool again instead of being
    /// stopped and removed.
    #[serde(default)]
    pub keep_warm: bool,
}

/// The user's program: the request json on stdin, {"host": .., "port": ..} on stdout.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub program: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    /// Seconds the program may run; it is killed after them (with its process group). Less than
    /// the lease.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_poll() -> u64 {
    5
}
fn default_lease() -> u64 {
    120
}
fn default_attempts() -> i32 {
    3
}
fn default_database() -> String {
    "postgres".into()
}
fn default_user() -> String {
    "postgres".into()
}
fn default_timeout() -> u64 {
    90
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, Error> {
        let c: Config = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        c.check()?;
        Ok(c)
    }

    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text)
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |key: &str, value: String, allowed: &str| {
            Err(Error::Config(format!(
                "invalid value for {key}: {value}; allowed: {allowed}"
            )))
        };
        if self.poll_interval == 0 || self.poll_interval > 3600 {
            return bad(
                "poll_interval",
                self.poll_interval.to_string(),
                "1 to 3600 seconds",
            );
        }
        if !(1..=86_400).contains(&self.lease) {
            return bad("lease", self.lease.to_string(), "1 to 86400 seconds");
        }
        if !(1..=100).contains(&self.max_attempts) {
            return bad("max_attempts", self.max_attempts.to_string(), "1 to 100");
        }
        match &self.driver {
            Driver::Local(l) => {
                let [lo, hi] = l.port_range;
                if lo == 0 || lo > hi {
                    return bad(
                        "driver.port_range",
                        format!("[{lo}, {hi}]"),
                        "[first, last] with 1 <= first <= last <= 65535",
                    );
                }
                if !l.root.is_absolute() {
                    return bad("driver.root", format!("{:?}", l.root), "an absolute path");
                }
            }
            Driver::Command(c) => {
                // the claim must outlive the program: else another daemon could take the request
                // over while the program still makes its node
                if c.timeout == 0 || c.timeout >= self.lease {
                    return bad(
                        "driver.timeout",
                        c.timeout.to_string(),
                        &format!(
                            "1 second or more and less than lease ({} seconds)",
                            self.lease
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// The claimer name: the configured one, else the host name.
    pub fn claimer(&self) -> String {
        self.claimer.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "citus-autoscale-provisioner".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_driver_with_defaults() {
        let c = Config::parse(
            r#"
conninfo = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
[driver]
kind = "local"
root = "/var/lib/citus-autoscale/nodes"
bin = "/usr/lib/postgresql/18/bin"
port_range = [6500, 6599]
"#,
        )
        .unwrap();
        assert_eq!(c.poll_interval, 5);
        assert_eq!(c.lease, 120);
        assert_eq!(c.max_attempts, 3);
        match c.driver {
            Driver::Local(l) => {
                assert_eq!(l.port_range, [6500, 6599]);
                assert_eq!(l.database, "postgres");
                assert!(!l.keep_warm);
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn command_driver() {
        let c = Config::parse(
            r#"
conninfo = "dbname=postgres"
claimer = "p1"
[driver]
kind = "command"
program = "/etc/citus-autoscale/provision.sh"
timeout = 30
"#,
        )
        .unwrap();
        assert_eq!(c.claimer(), "p1");
        assert_eq!(
            c.driver,
            Driver::Command(Command {
                program: "/etc/citus-autoscale/provision.sh".into(),
                args: vec![],
                timeout: 30
            })
        );
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../provisioner.example.toml").replace("@PG_MAJOR@", "18");
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.lease, 120);
        assert!(matches!(c.driver, Driver::Local(ref l) if l.bin.ends_with("18/bin")));
    }

    #[test]
    fn bad_values_are_named() {
        let base = "conninfo = \"x\"\n[driver]\nkind = \"local\"\nroot = \"/r\"\nbin = \"/b\"\n";
        let e = Config::parse(&format!("{base}port_range = [7000, 6000]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("driver.port_range") && e.contains("[7000, 6000]"),
            "{e}"
        );
        let e = Config::parse(&format!("poll_interval = 0\n{base}port_range = [1, 2]\n"))
            .unwrap_err()
            .to_string();
        // a key after a table header belongs to the table: put it first
        assert!(e.contains("poll_interval"), "{e}");
        let e = Config::parse(
            "conninfo = \"x\"\n[driver]\nkind = \"local\"\nroot = \"r\"\nbin = \"/b\"\nport_range = [1, 2]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("driver.root") && e.contains("absolute"), "{e}");
        let e = Config::parse("conninfo = \"x\"\n[driver]\nkind = \"cloud\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cloud"), "{e}");
        let e = Config::parse(
            "conninfo = \"x\"\nlease_secs = 3\n[driver]\nkind = \"command\"\nprogram = \"/p\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("lease_secs"), "{e}");
    }
}
