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
//! The background worker keeps its sample connections across samples ([`run_kept`]): one per
//! node, so a sample is one round trip per node instead of a fork and an authentication on every
//! node at every sample. A kept connection that fails before answering (the node restarted, an
//! idle_session_timeout closed it) is replaced by a new one within the same sample; a node whose
//! connection cannot be made is tried again with a backoff; a node that left is let go.
//!
//! The connections use what Citus's would: the node's host and port, this database, the current
//! user, and the keywords of `citus.node_conninfo` (sslmode, ...); libpq reads the password file
//! itself. Citus can also take credentials from `pg_dist_authinfo` and route through
//! `pg_dist_poolinfo`; with either in use the caller keeps Citus's fan-out (`infra::citus`).

use autoscale_core::backoff::reconnect_after;
use autoscale_core::operations::NodeAddr;
use pgrx::pg_sys;
use pq_sys as pq;
use std::cell::RefCell;
use std::collections::HashMap;
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
    let mut conns: Vec<Conn> = Vec::with_capacity(nodes.len());
    let mut states: Vec<State> = Vec::with_capacity(nodes.len());
    for (node, _) in nodes {
        let (conn, state) = start_connect(node, params);
        conns.push(conn);
        states.push(state);
    }
    let mut kept = vec![false; nodes.len()];
    drive(
        nodes,
        params,
        &mut conns,
        &mut states,
        &mut kept,
        connect,
        total,
    );
    // conns drop here: every connection closed, none cancelled
    answers(states)
}

/// Kept connections of this process, by node (the background worker's).
#[derive(Default)]
struct Pool {
    /// what the connections were made with; other parameters replace them all
    params: Params,
    conns: HashMap<NodeAddr, Conn>,
    /// nodes whose connection failed: consecutive failures, when to try again, the last error
    failing: HashMap<NodeAddr, (u32, Instant, String)>,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

/// As [`run`], on connections kept from the previous call of this process: each node's kept
/// connection is used when it is still good, else one is made; afterwards the connections that
/// answered are kept, the others closed (no cancel request), and the kept ones of nodes not in
/// `nodes` are closed. A node whose connections failed is not connected to again before its
/// backoff (`autoscale_core::backoff::reconnect_after`) has passed; until then it answers its last error.
pub fn run_kept(
    nodes: &[(NodeAddr, &str)],
    params: &Params,
    connect: Duration,
    total: Duration,
    base: Duration,
) -> Vec<Result<String, String>> {
    let mut pool = POOL.with(|p| std::mem::take(&mut *p.borrow_mut()));
    if &pool.params != params {
        pool.conns.clear();
        pool.params = params.clone();
    }
    pool.conns.retain(|n, _| nodes.iter().any(|(m, _)| m == n));
    pool.failing
        .retain(|n, _| nodes.iter().any(|(m, _)| m == n));
    let now = Instant::now();
    let mut conns: Vec<Conn> = Vec::with_capacity(nodes.len());
    let mut states: Vec<State> = Vec::with_capacity(nodes.len());
    let mut kept = vec![false; nodes.len()];
    for (i, (node, command)) in nodes.iter().enumerate() {
        if let Some((n, next, last)) = pool.failing.get(node) {
            if now < *next {
                conns.push(Conn(std::ptr::null_mut()));
                states.push(State::Done(Err(format!(
                    "{last} (not connecting again for {} ms after {n} failed attempts)",
                    next.duration_since(now).as_millis()
                ))));
                continue;
            }
        }
        match pool.conns.remove(node) {
            // SAFETY: a connection of ours, idle since the last call
            Some(c) if unsafe { pq::PQstatus(c.0) } == pq::ConnStatusType::CONNECTION_OK => {
                let state = send(&c, command);
                conns.push(c);
                states.push(state);
                kept[i] = true;
            }
            _ => {
                let (c, state) = start_connect(node, params);
                conns.push(c);
                states.push(state);
            }
        }
    }
    drive(
        nodes,
        params,
        &mut conns,
        &mut states,
        &mut kept,
        connect,
        total,
    );
    let now = Instant::now();
    for (i, conn) in conns.into_iter().enumerate() {
        let node = &nodes[i].0;
        if conn.0.is_null() {
            continue; // waiting out its backoff
        }
        // SAFETY: a connection of ours; answered or given up
        let good = matches!(states[i], State::Done(_))
            && unsafe { pq::PQstatus(conn.0) } == pq::ConnStatusType::CONNECTION_OK
            && unsafe { pq::PQtransactionStatus(conn.0) }
                == pq::PGTransactionStatusType::PQTRANS_IDLE;
        if good {
            pool.failing.remove(node);
            pool.conns.insert(node.clone(), conn);
        } else {
            let error = match &states[i] {
                State::Done(Err(e)) => e.clone(),
                _ => "no answer".into(),
            };
            let n = pool.failing.get(node).map_or(0, |f| f.0) + 1;
            pool.failing
                .insert(node.clone(), (n, now + reconnect_after(n, base), error));
            // conn drops here: closed, not cancelled
        }
    }
    POOL.with(|p| *p.borrow_mut() = pool);
    answers(states)
}

fn answers(states: Vec<State>) -> Vec<Result<String, String>> {
    states
        .into_iter()
        .map(|s| match s {
            State::Done(r) => r,
            _ => Err("no answer".into()),
        })
        .collect()
}

/// Sends `command` on a connected connection.
fn send(conn: &Conn, command: &str) -> State {
    let Ok(q) = CString::new(command) else {
        return State::Done(Err("a NUL in the command".into()));
    };
    // SAFETY: a connected connection; the query is copied by libpq
    unsafe { pq::PQsetnonblocking(conn.0, 1) };
    if unsafe { pq::PQsendQuery(conn.0, q.as_ptr()) } == 0 {
        State::Done(Err(conn.error()))
    } else {
        State::Sending
    }
}

/// Moves every node on until each has answered or run out of time: `connect` to connect and
/// `total` in all, a kept connection (`kept`) `connect` in all. A kept connection that fails
/// before answering is replaced by a new one, once.
fn drive(
    nodes: &[(NodeAddr, &str)],
    params: &Params,
    conns: &mut [Conn],
    states: &mut [State],
    kept: &mut [bool],
    connect: Duration,
    total: Duration,
) {
    let start = Instant::now();
    loop {
        // advance every node that can move without waiting
        for i in 0..nodes.len() {
            step(&conns[i], &mut states[i], nodes[i].1, None);
        }
        // a kept connection that broke (closed by the node) is made anew
        for i in 0..nodes.len() {
            if kept[i]
                && matches!(states[i], State::Done(Err(_)))
                // SAFETY: a connection of ours
                && unsafe { pq::PQstatus(conns[i].0) } == pq::ConnStatusType::CONNECTION_BAD
            {
                kept[i] = false;
                let (c, state) = start_connect(&nodes[i].0, params);
                conns[i] = c;
                states[i] = state;
            }
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
                // a kept connection skipped the connecting: it gets `connect` in all, so that a
                // node that hangs costs a sample no more than a node that accepts no connection
                _ if !matches!(s, State::Done(_))
                    && elapsed >= if kept[i] { connect } else { total } =>
                {
                    *s = State::Done(Err(format!(
                        "timeout expired after {} ms waiting for the answer",
                        if kept[i] { connect } else { total }.as_millis()
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
                    *state = send(conn, command);
                    step(conn, state, command, None);
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
