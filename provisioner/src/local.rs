//! The `local` driver: one PostgreSQL node per provision request on this host, in
//! <root>/<request_key>, run as the user the daemon runs as.
//!
//! Crash safety: a node is initialised in <root>/<request_key>.new and renamed to its final
//! name only once initdb and its configuration (with its port, also in the state file) are
//! complete; a leftover .new directory is removed and made again. An existing final directory
//! is reused: a request never gets a second node. Starting, CREATE EXTENSION and the answer are
//! each safe to repeat.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::Local;
use crate::protocol::{Node, Request};
use crate::{failpoint, log, Error};

/// The state file in each data directory: what the daemon needs to find the node again.
const STATE_FILE: &str = "citus_autoscale_provisioner.json";

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct State {
    port: u16,
}

pub struct Driver {
    pub cfg: Local,
}

impl Driver {
    fn dir(&self, key: &str) -> PathBuf {
        self.cfg.root.join(key)
    }

    fn bin(&self, program: &str) -> PathBuf {
        self.cfg.bin.join(program)
    }

    /// Makes (or finds again) the node of request `r`, starts it and prepares it; its address.
    pub fn provision(&self, r: &Request) -> Result<Node, Error> {
        let key = r.safe_key()?;
        let dir = self.dir(key);
        let port = match read_state(&dir)? {
            Some(s) => {
                log(&format!(
                    "request {}: data directory {} exists (port {}), reused",
                    r.id,
                    dir.display(),
                    s.port
                ));
                s.port
            }
            None => self.create(r.id, key, &dir, &r.size_lines()?)?,
        };
        self.start(&dir)?;
        self.prepare(port)?;
        log(&format!("request {}: node 127.0.0.1:{port} is up", r.id));
        failpoint("after_create");
        Ok(Node {
            host: "127.0.0.1".into(),
            port: i32::from(port),
        })
    }

    /// `size`: postgresql.conf lines of a resize's size, after the configured settings (they win).
    fn create(&self, id: i64, key: &str, dir: &Path, size: &[String]) -> Result<u16, Error> {
        std::fs::create_dir_all(&self.cfg.root).map_err(|e| {
            Error::Driver(format!("cannot create {}: {e}", self.cfg.root.display()))
        })?;
        let tmp = self.cfg.root.join(format!("{key}.new"));
        if tmp.exists() {
            log(&format!(
                "request {id}: removing the unfinished {}",
                tmp.display()
            ));
            std::fs::remove_dir_all(&tmp)
                .map_err(|e| Error::Driver(format!("cannot remove {}: {e}", tmp.display())))?;
        }
        let port = self.free_port()?;
        run(Command::new(self.bin("initdb")).arg("-D").arg(&tmp).args([
            "-U",
            &self.cfg.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]))?;
        let settings: Vec<String> = self.cfg.settings.iter().chain(size).cloned().collect();
        let conf = node_conf(port, &settings);
        append(&tmp.join("postgresql.conf"), &conf)?;
        std::fs::write(tmp.join(STATE_FILE), format!("{{\"port\": {port}}}\n"))
            .map_err(|e| Error::Driver(format!("cannot write the state file: {e}")))?;
        std::fs::rename(&tmp, dir).map_err(|e| {
            Error::Driver(format!(
                "cannot rename {} to {}: {e}",
                tmp.display(),
                dir.display()
            ))
        })?;
        log(&format!(
            "request {id}: initdb {} (port {port})",
            dir.display()
        ));
        Ok(port)
    }

    /// A port of the range that no node of this root has and nothing listens on.
    fn free_port(&self) -> Result<u16, Error> {
        let taken = self.ports_in_use();
        let [lo, hi] = self.cfg.port_range;
        (lo..=hi)
            .find(|p| !taken.contains(p) && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .ok_or_else(|| {
                Error::Driver(format!(
                    "no free port in port_range [{lo}, {hi}] (taken by nodes of {}: {taken:?})",
                    self.cfg.root.display()
                ))
            })
    }

    fn ports_in_use(&self) -> Vec<u16> {
        self.nodes().into_iter().map(|(_, s)| s.port).collect()
    }

    /// The finished data directories under root, with their state.
    fn nodes(&self) -> Vec<(PathBuf, State)> {
        let Ok(entries) = std::fs::read_dir(&self.cfg.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let p = e.path();
                read_state(&p).ok().flatten().map(|s| (p, s))
            })
            .collect()
    }

    fn running(&self, dir: &Path) -> bool {
        Command::new(self.bin("pg_ctl"))
            .arg("status")
            .arg("-D")
            .arg(dir)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    fn start(&self, dir: &Path) -> Result<(), Error> {
        if self.running(dir) {
            return Ok(());
        }
        let logfile = dir.with_extension("log");
        run(Command::new(self.bin("pg_ctl"))
            .arg("-D")
            .arg(dir)
            .arg("-l")
            .arg(&logfile)
            .args(["-w", "-t", "120", "start"]))?;
        log(&format!("pg_ctl start {}", dir.display()));
        Ok(())
    }

    /// CREATE EXTENSION citus (as a standby of the pool has it; citus_autoscale is created on a
    /// node by Citus when it joins).
    fn prepare(&self, port: u16) -> Result<(), Error> {
        let conninfo = format!(
            "host=127.0.0.1 port={port} user={} dbname={} connect_timeout=10",
            self.cfg.user, self.cfg.database
        );
        let mut c = postgres::Client::connect(&conninfo, postgres::NoTls).map_err(|e| {
            Error::Driver(format!(
                "cannot connect to the new node on port {port}: {e}"
            ))
        })?;
        c.batch_execute("CREATE EXTENSION IF NOT EXISTS citus")
            .map_err(|e| Error::Driver(format!("CREATE EXTENSION citus on port {port}: {e}")))?;
        Ok(())
    }

    /// Stops and removes the node of a deprovision request (kept running when keep_warm).
    /// Ok(false): kept warm (the caller offers it to the pool again).
    pub fn deprovision(&self, r: &Request) -> Result<bool, Error> {
        let node = r.node()?;
        let Some((dir, _)) = self
            .nodes()
            .into_iter()
            .find(|(_, s)| node.host == "127.0.0.1" && i32::from(s.port) == node.port)
        else {
            return Err(Error::Protocol(format!(
                "node {node} is not one this provisioner made (no data directory under {} has its port)",
                self.cfg.root.display()
            )));
        };
        if self.cfg.keep_warm {
            log(&format!(
                "request {}: node {node} kept warm ({})",
                r.id,
                dir.display()
            ));
            return Ok(false);
        }
        if self.running(&dir) {
            run(Command::new(self.bin("pg_ctl"))
                .arg("-D")
                .arg(&dir)
                .args(["-m", "fast", "-w", "-t", "120", "stop"]))?;
            log(&format!("request {}: pg_ctl stop {}", r.id, dir.display()));
        }
        std::fs::remove_dir_all(&dir)
            .map_err(|e| Error::Driver(format!("cannot remove {}: {e}", dir.display())))?;
        let _ = std::fs::remove_file(dir.with_extension("log"));
        log(&format!("request {}: removed {}", r.id, dir.display()));
        Ok(true)
    }
}

/// The lines added to a node's postgresql.conf: the settings of a Citus node with
/// citus_autoscale preloaded, then the configured ones.
pub fn node_conf(port: u16, settings: &[String]) -> String {
    let mut s = format!(
        "\n# citus-autoscale-provisioner\nport = {port}\nlisten_addresses = '127.0.0.1'\n\
         unix_socket_directories = ''\nshared_preload_libraries = 'citus,citus_autoscale'\n\
         wal_level = logical\nmax_connections = 200\nmax_worker_processes = 32\n\
         max_wal_senders = 20\nmax_replication_slots = 20\n"
    );
    for line in settings {
        s.push_str(line);
        s.push('\n');
    }
    s
}

fn read_state(dir: &Path) -> Result<Option<State>, Error> {
    let path = dir.join(STATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| Error::Driver(format!("state file {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Driver(format!("state file {}: {e}", path.display()))),
    }
}

fn append(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::Driver(format!("cannot write {}: {e}", path.display())))
}

/// Runs a program to its end; its exit status and the tail of its stderr on failure.
fn run(cmd: &mut Command) -> Result<(), Error> {
    let out = cmd
        .output()
        .map_err(|e| Error::Driver(format!("cannot run {:?}: {e}", cmd.get_program())))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(Error::Driver(format!(
        "{:?} failed ({}): {}",
        cmd.get_program(),
        out.status,
        crate::protocol::tail(err.trim(), 500)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_has_the_port_and_the_libraries() {
        let c = node_conf(8390, &["autoscale.database_name = 'postgres'".into()]);
        assert!(c.contains("\nport = 8390\n"), "{c}");
        assert!(
            c.contains("shared_preload_libraries = 'citus,citus_autoscale'"),
            "{c}"
        );
        assert!(c.ends_with("autoscale.database_name = 'postgres'\n"), "{c}");
    }

    #[test]
    fn state_files_and_ports() {
        let root = std::env::temp_dir().join(format!("cap-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(root.join("b.new")).unwrap();
        std::fs::write(root.join("a").join(STATE_FILE), "{\"port\": 40001}").unwrap();
        let d = Driver {
            cfg: Local {
                root: root.clone(),
                bin: "/nonexistent".into(),
                port_range: [40001, 40002],
                database: "postgres".into(),
                user: "postgres".into(),
                settings: vec![],
                keep_warm: false,
            },
        };
        assert_eq!(d.ports_in_use(), vec![40001]);
        assert_eq!(read_state(&root.join("b.new")).unwrap(), None);
        // 40001 is a node's: the next free one (unless something else listens there)
        if std::net::TcpListener::bind(("127.0.0.1", 40002)).is_ok() {
            assert_eq!(d.free_port().unwrap(), 40002);
        }
        std::fs::write(root.join("a").join(STATE_FILE), "{").unwrap();
        assert!(read_state(&root.join("a")).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
