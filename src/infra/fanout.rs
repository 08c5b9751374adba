//! One command on several nodes in parallel, on connections of our own (libpq, non-blocking),
//! for the sample's fan-outs.
//!
//! Why not Citus's `run_command_on_workers`/`master_run_on_worker`: a node that hangs while a
//! query to it is in flight (its processes stopped; its kernel still acknowledges TCP) makes the
//! statement time out, and at the end of the transaction Citus cancels the running statement with
//! libpq's `PQcancel`, which waits with no timeout for the hung node to close the cancel
//! connection: the background worker stopped there until the node answered again (finding 8 in
//! docs/faults.md). Here a node that has not answered by the deadline is given up: its
//! connection is closed (`PQfinish`), no cancel request is sent, and nothing waits for it.
//!
//! The connections use what Citus's would: the node's host and port, this database, the current
//! user, and the keywords of `citus.node_conninfo` (sslmode, ...); libpq reads the password file
//! itself. Citus can also take credentials from `pg_dist_authinfo` and route through
//! `pg_dist_poolinfo`; with either in use the caller keeps Citus's fan-out (`infra::citus`).

use autoscale_core::operations::NodeAddr;
use pgrx::pg_sys;
use pq_sys as pq;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::time::{Duration, Instant};

/// How to connect: `(keyword, value)` pairs common to every node (dbname, user, the keywords of
/// citus.node_conninfo, ...); host and port are added per node.
pub type Params = Vec<(String, String)>;

/// The keywords of a conninfo string such as `citus.node_conninfo` (`sslmode=require`), or the
/// reason it does not parse.
pub fn parse_conninfo(conninfo: &str) -> Result<Params, String> {
    let c = CString::new(conninfo).map_err(|_| "a NUL in the conninfo".to_string())?;
    let mut err: *mut c_char = std::ptr::null_mut();
    // SAFETY: libpq allocates the array (or the error), freed below
    let opts = unsafe { pq::PQconninfoParse(c.as_ptr(), &mut err) };
    if opts.is_null() {
        let why = if err.is_null() {
            "out of memory".to_string()
        } else {
            let s = unsafe { CStr::from_ptr(err) }
                .to_string_lossy()
                .trim()
                .to_string();
            unsafe { pq::PQfreemem(err.cast()) };
            s
        };
        return Err(why);
    }
    let mut out = Vec::new();
    let mut p = opts;
    // SAFETY: the array ends with an entry whose keyword is NULL
    unsafe {
        while !(*p).keyword.is_null() {
            if !(*p).val.is_null() {
                out.push((
                    CStr::from_ptr((*p).keyword).to_string_lossy().into_owned(),
                    CStr::from_ptr((*p).val).to_string_lossy().into_owned(),
                ));
            }
            p = p.add(1);
        }
        pq::PQconninfoFree(opts);
    }
    Ok(out)
}

/// A libpq connection, closed (without a cancel request) when dropped, also when an error
/// unwinds through the fan-out.
struct Conn(*mut pq::PGconn);

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a connection of ours, finished once
            unsafe { pq::PQfinish(self.0) };
        }
    }
}

impl Conn {
    fn error(&self) -> String {
        // SAFETY: a live connection; libpq owns the message
        let m = unsafe { pq::PQerrorMessage(self.0) };
        if m.is_null() {
            return "connection failed".into();
        }
        let s = unsafe { CStr::from_ptr(m) }
            .to_string_lossy()
            .trim()
            .to_string();
        if s.is_empty() {
            "connection failed".into()
        } else {
            s
        }
    }
}

enum State {
    /// connecting; what PQconnectPoll asked to wait for (true: readable)
    Connecting(bool),
    /// the query is being sent (PQflush not done)
    Sending,
    /// waiting for the answer
    Waiting,
    Done(Result<String, String>),
}

/// Runs each node's command (one row, one column expected) on it, all at once. A node whose
/// connection is not made within `connect` answers Err("timeout ... while connecting"); one that
/// has not answered within `total` Err("timeout ... waiting for the answer"). Answers in the
/// order of `nodes`.
pub fn run(
    nodes: &[(NodeAddr, &str)],
    params: &Params,
    connect: Duration,
    total: Duration,
) -> Vec<Result<String, String>> {
    let start = Instant::now();
    let mut conns: Vec<Conn> = Vec::with_capacity(nodes.len());
    let mut states: Vec<State> = Vec::with_capacity(nodes.len());
    for (node, _) in nodes {
        let (conn, state) = start_connect(node, params);
        conns.push(conn);
        states.push(state);
    }
    loop {
        // advance every node that can move without waiting
        for i in 0..nodes.len() {
            step(&conns[i], &mut states[i], nodes[i].1, None);
        }
        let elapsed = start.elapsed();
        let mut fds = Vec::new();
        let mut who = Vec::new();
        for (i, s) in states.iter_mut().enumerate() {
            let events = match s {
                State::Connecting(_) if elapsed >= connect => {
                    *s = State::Done(Err(format!(
                        "timeout expired after {} ms while connecting",
                        connect.as_millis()
                    )));
                    continue;
                }
                _ if !matches!(s, State::Done(_)) && elapsed >= total => {
                    *s = State::Done(Err(format!(
                        "timeout expired after {} ms waiting for the answer",
                        total.as_millis()
                    )));
                    continue;
                }
                State::Connecting(true) | State::Waiting => libc::POLLIN,
                State::Connecting(false) => libc::POLLOUT,
                State::Sending => libc::POLLIN | libc::POLLOUT,
                State::Done(_) => continue,
            };
            // SAFETY: a live connection
            let fd = unsafe { pq::PQsocket(conns[i].0) };
            if fd < 0 {
                *s = State::Done(Err(conns[i].error()));
                continue;
            }
            fds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
            who.push(i);
        }
        if fds.is_empty() {
            break;
        }
        // short waits, so that a cancel or a shutdown of this backend is seen promptly
        let wait = total
            .saturating_sub(elapsed)
            .min(Duration::from_millis(100))
            .as_millis()
            .max(1) as i32;
        // SAFETY: fds is a valid array of fds.len() entries
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait) };
        pg_sys::check_for_interrupts!();
        if n <= 0 {
            continue;
        }
        for (k, fd) in fds.iter().enumerate() {
            if fd.revents != 0 {
                let i = who[k];
                step(&conns[i], &mut states[i], nodes[i].1, Some(fd.revents));
            }
        }
    }
    // conns drop here: every connection closed, none cancelled
    states
        .into_iter()
        .map(|s| match s {
            State::Done(r) => r,
            _ => Err("no answer".into()),
        })
        .collect()
}

fn start_connect(node: &NodeAddr, params: &Params) -> (Conn, State) {
    let mut pairs: Vec<(CString, CString)> = Vec::with_capacity(params.len() + 3);
    let mut push = |k: &str, v: &str| {
        if let (Ok(k), Ok(v)) = (CString::new(k), CString::new(v)) {
            pairs.push((k, v));
        }
    };
    for (k, v) in params {
        if k != "host" && k != "hostaddr" && k != "port" {
            push(k, v);
        }
    }
    push("host", &node.host);
    push("port", &node.port.to_string());
    let mut kw: Vec<*const c_char> = pairs.iter().map(|(k, _)| k.as_ptr()).collect();
    let mut vals: Vec<*const c_char> = pairs.iter().map(|(_, v)| v.as_ptr()).collect();
    kw.push(std::ptr::null());
    vals.push(std::ptr::null());
    // SAFETY: NULL-terminated arrays of C strings that outlive the call
    let conn = Conn(unsafe { pq::PQconnectStartParams(kw.as_ptr(), vals.as_ptr(), 0) });
    if conn.0.is_null() {
        return (conn, State::Done(Err("out of memory".into())));
    }
    if unsafe { pq::PQstatus(conn.0) } == pq::ConnStatusType::CONNECTION_BAD {
        let e = conn.error();
        return (conn, State::Done(Err(e)));
    }
    // as if PQconnectPoll had answered PGRES_POLLING_WRITING
    (conn, State::Connecting(false))
}

/// Moves one node on: after its socket became ready (`revents`), or without waiting (None: only
/// what needs no socket event, such as sending the query once connected).
fn step(conn: &Conn, state: &mut State, command: &str, revents: Option<libc::c_short>) {
    let c = conn.0;
    match state {
        State::Connecting(_) => {
            if revents.is_none() {
                return;
            }
            // SAFETY: a live connection, polled after its socket was ready
            match unsafe { pq::PQconnectPoll(c) } {
                pq::PostgresPollingStatusType::PGRES_POLLING_OK => {
                    let Ok(q) = CString::new(command) else {
                        *state = State::Done(Err("a NUL in the command".into()));
                        return;
                    };
                    // SAFETY: a connected connection; the query is copied by libpq
                    unsafe { pq::PQsetnonblocking(c, 1) };
                    if unsafe { pq::PQsendQuery(c, q.as_ptr()) } == 0 {
                        *state = State::Done(Err(conn.error()));
                    } else {
                        *state = State::Sending;
                        step(conn, state, command, None);
                    }
                }
                pq::PostgresPollingStatusType::PGRES_POLLING_READING => {
                    *state = State::Connecting(true)
                }
                pq::PostgresPollingStatusType::PGRES_POLLING_WRITING => {
                    *state = State::Connecting(false)
                }
                _ => *state = State::Done(Err(conn.error())),
            }
        }
        State::Sending => match unsafe { pq::PQflush(c) } {
            0 => *state = State::Waiting,
            1 => {}
            _ => *state = State::Done(Err(conn.error())),
        },
        State::Waiting => {
            if revents.is_none() {
                return;
            }
            // SAFETY: a live connection whose socket is readable
            if unsafe { pq::PQconsumeInput(c) } == 0 {
                *state = State::Done(Err(conn.error()));
                return;
            }
            let mut answer: Option<Result<String, String>> = None;
            while unsafe { pq::PQisBusy(c) } == 0 {
                let res = unsafe { pq::PQgetResult(c) };
                if res.is_null() {
                    *state = State::Done(answer.unwrap_or_else(|| Err("no result".into())));
                    return;
                }
                let status = unsafe { pq::PQresultStatus(res) };
                let this = if status == pq::ExecStatusType::PGRES_TUPLES_OK
                    && unsafe { pq::PQntuples(res) } == 1
                    && unsafe { pq::PQnfields(res) } == 1
                {
                    let v = unsafe { pq::PQgetvalue(res, 0, 0) };
                    Ok(unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned())
                } else {
                    let m = unsafe { pq::PQresultErrorMessage(res) };
                    let m = if m.is_null() {
                        String::new()
                    } else {
                        unsafe { CStr::from_ptr(m) }
                            .to_string_lossy()
                            .trim()
                            .to_string()
                    };
                    Err(if m.is_empty() {
                        "the command returned no single value".into()
                    } else {
                        m
                    })
                };
                // the first result is the answer (an error after it is kept instead)
                answer = match (answer, this) {
                    (None, r) | (Some(Ok(_)), r @ Err(_)) => Some(r),
                    (a, _) => a,
                };
                unsafe { pq::PQclear(res) };
            }
        }
        State::Done(_) => {}
    }
}
