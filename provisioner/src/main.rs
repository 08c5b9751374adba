//! citus-autoscale-provisioner: fulfils the provision and deprovision requests of a
//! citus_autoscale coordinator. It LISTENs on autoscale_provision and also polls (a NOTIFY can be
//! missed); it claims one request at a time with autoscale.claim_provision_request() (a lease: a
//! daemon that dies mid-request is taken over), fulfils it through its driver (local or command)
//! and answers it (autoscale.answer_provision_request) or fails it
//! (autoscale.fail_provision_request, retried while attempts are left). One line per action on
//! stderr; SIGTERM or SIGINT: it finishes the request in hand and exits 0.
//!
//! Usage: citus-autoscale-provisioner [--config PATH] (default /etc/citus-autoscale/provisioner.toml)

mod command;
mod config;
mod local;
mod protocol;

use postgres::fallible_iterator::FallibleIterator;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use config::Config;
use protocol::{decide, Kind, Next, Node, Request};

/// The NOTIFY channel of the extension's requests.
const CHANNEL: &str = "autoscale_provision";
const DEFAULT_CONFIG: &str = "/etc/citus-autoscale/provisioner.toml";
/// Test builds and scenarios: exit by SIGKILL at this step (after_create: the local driver made
/// and started the node, not yet answered; after_claim: a request was claimed).
const FAILPOINT_ENV: &str = "CITUS_AUTOSCALE_PROVISIONER_FAIL_AT";

static STOP: AtomicBool = AtomicBool::new(false);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),
    /// The request cannot be handled as it is: never retried.
    #[error("{0}")]
    Protocol(String),
    /// The driver failed this time: retried while attempts are left.
    #[error("driver: {0}")]
    Driver(String),
    #[error("database: {}", db_text(.0))]
    Db(#[from] postgres::Error),
}

/// A database error as the server said it (its message and detail), not only "db error".
fn db_text(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({d})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

impl Error {
    pub fn retryable(&self) -> bool {
        !matches!(self, Error::Protocol(_) | Error::Config(_))
    }
}

pub fn log(line: &str) {
    eprintln!("citus-autoscale-provisioner: {line}");
}

/// Exits by SIGKILL when the failpoint environment variable names `step`.
pub fn failpoint(step: &str) {
    if std::env::var(FAILPOINT_ENV).as_deref() == Ok(step) {
        log(&format!("failpoint {step}: killed"));
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

enum Driver {
    Local(local::Driver),
    Command(command::Driver),
}

/// What an attempt did: a node answers the request, or a deprovisioned node was kept warm
/// (offered to the pool again).
enum Done {
    Answer(Node),
    KeptWarm(Node),
}

impl Driver {
    fn fulfil(&self, r: &Request) -> Result<Done, Error> {
        match (self, r.kind) {
            (Driver::Local(d), Kind::Provision) => d.provision(r).map(Done::Answer),
            (Driver::Local(d), Kind::Deprovision) => {
                let node = r.node()?;
                if d.deprovision(r)? {
                    Ok(Done::Answer(node))
                } else {
                    Ok(Done::KeptWarm(node))
                }
            }
            (Driver::Command(d), Kind::Provision) => d
                .run(r)?
                .map(Done::Answer)
                .ok_or_else(|| Error::Protocol("the driver answered no node".into())),
            (Driver::Command(d), Kind::Deprovision) => {
                let node = r.node()?;
                d.run(r)?;
                Ok(Done::Answer(node))
            }
        }
    }
}

fn claim(c: &mut postgres::Client, claimer: &str, lease: u64) -> Result<Option<Request>, Error> {
    let rows = c.query(
        "SELECT id, kind, request_key, payload::text, attempts
           FROM autoscale.claim_provision_request($1, pg_catalog.make_interval(secs => $2::float8))",
        &[&claimer, &(lease as f64)],
    )?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let payload: String = row.get(3);
    Ok(Some(Request {
        id: row.get(0),
        kind: Kind::parse(row.get::<_, &str>(1))?,
        request_key: row.get(2),
        payload: serde_json::from_str(&payload)
            .map_err(|e| Error::Protocol(format!("payload: {e}")))?,
        attempts: row.get(4),
    }))
}

fn answer(c: &mut postgres::Client, id: i64, n: &Node) -> Result<(), Error> {
    c.query_one(
        "SELECT autoscale.answer_provision_request($1, $2, $3)::text",
        &[&id, &n.host, &n.port],
    )?;
    Ok(())
}

fn fail(c: &mut postgres::Client, id: i64, error: &str, retry: bool) -> Result<(), Error> {
    c.query_one(
        "SELECT autoscale.fail_provision_request($1, $2, $3)::text",
        &[&id, &error, &retry],
    )?;
    Ok(())
}

fn offer_again(c: &mut postgres::Client, n: &Node) -> Result<(), Error> {
    c.query_one(
        "SELECT autoscale.add_standby_node($1, $2)::text",
        &[&n.host, &n.port],
    )?;
    Ok(())
}

/// Claims and handles requests until none is left (or a stop is asked).
fn drain(
    c: &mut postgres::Client,
    cfg: &Config,
    claimer: &str,
    driver: &Driver,
) -> Result<(), Error> {
    while !STOP.load(Ordering::SeqCst) {
        let r = match claim(c, claimer, cfg.lease) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(e) => return Err(e),
        };
        log(&format!(
            "claimed request {} ({}, key {}, attempt {})",
            r.id,
            r.kind.as_str(),
            r.request_key,
            r.attempts
        ));
        failpoint("after_claim");
        let started = Instant::now();
        let result = driver.fulfil(&r);
        let next = match result {
            Ok(Done::KeptWarm(n)) => {
                // offered again: the deprovision request is fulfilled by add_standby_node()
                match offer_again(c, &n) {
                    Ok(()) => {
                        log(&format!(
                            "request {}: node {n} offered to the pool again",
                            r.id
                        ));
                        continue;
                    }
                    Err(e) => decide(Err(e), r.attempts, cfg.max_attempts),
                }
            }
            Ok(Done::Answer(n)) => decide(Ok(n), r.attempts, cfg.max_attempts),
            Err(e) => decide(Err(e), r.attempts, cfg.max_attempts),
        };
        match next {
            Next::Answer(n) => match answer(c, r.id, &n) {
                Ok(()) => log(&format!(
                    "answered request {} with {n} ({:.1} s)",
                    r.id,
                    started.elapsed().as_secs_f64()
                )),
                Err(e) => {
                    let Next::Fail { error, retry } = decide(Err(e), r.attempts, cfg.max_attempts)
                    else {
                        unreachable!()
                    };
                    log(&format!("request {}: the answer failed: {error}", r.id));
                    fail(c, r.id, &error, retry)?;
                }
            },
            Next::Fail { error, retry } => {
                log(&format!(
                    "request {} failed ({}): {error}",
                    r.id,
                    if retry { "retried later" } else { "given up" }
                ));
                fail(c, r.id, &error, retry)?;
            }
        }
    }
    Ok(())
}

/// Waits for a NOTIFY on the channel, the poll interval, or a stop, whichever comes first.
fn wait(c: &mut postgres::Client, poll: Duration) -> Result<(), Error> {
    let deadline = Instant::now() + poll;
    while !STOP.load(Ordering::SeqCst) && Instant::now() < deadline {
        let mut n = c.notifications();
        if n.timeout_iter(Duration::from_millis(250)).next()?.is_some() {
            // the rest of a burst too; one drain handles them all
            while n.iter().next()?.is_some() {}
            return Ok(());
        }
    }
    Ok(())
}

fn serve(cfg: &Config, claimer: &str, driver: &Driver) -> Result<(), Error> {
    let mut c = postgres::Client::connect(&cfg.conninfo, postgres::NoTls)?;
    c.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    log(&format!(
        "connected, listening on {CHANNEL}, claiming as '{claimer}'"
    ));
    while !STOP.load(Ordering::SeqCst) {
        drain(&mut c, cfg, claimer, driver)?;
        wait(&mut c, Duration::from_secs(cfg.poll_interval))?;
    }
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut path = DEFAULT_CONFIG.to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" | "-c" => path = args.next().unwrap_or_default(),
            "--help" | "-h" => {
                println!(
                    "usage: citus-autoscale-provisioner [--config PATH] (default {DEFAULT_CONFIG})"
                );
                return;
            }
            other => {
                log(&format!(
                    "unknown argument '{other}' (allowed: --config PATH, --help)"
                ));
                std::process::exit(2);
            }
        }
    }
    let cfg = match Config::load(std::path::Path::new(&path)) {
        Ok(c) => c,
        Err(e) => {
            log(&e.to_string());
            std::process::exit(2);
        }
    };
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let claimer = cfg.claimer();
    let driver = match &cfg.driver {
        config::Driver::Local(l) => Driver::Local(local::Driver { cfg: l.clone() }),
        config::Driver::Command(c) => Driver::Command(command::Driver { cfg: c.clone() }),
    };
    log(&format!(
        "started (config {path}, pid {})",
        std::process::id()
    ));
    while !STOP.load(Ordering::SeqCst) {
        if let Err(e) = serve(&cfg, &claimer, &driver) {
            log(&format!("{e}; reconnecting in {} s", cfg.poll_interval));
            let until = Instant::now() + Duration::from_secs(cfg.poll_interval);
            while !STOP.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    log("stopped (SIGTERM)");
}
